import { defineConfig } from 'vitest/config';

// One config for the browser side: the dev server that serves test and bench pages
// (on 127.0.0.1 only) and the Vitest unit tests, which run in Node.
export default defineConfig({
  base: './',
  server: {
    host: '127.0.0.1',
    // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs,
    // which the round-trip benchmarks need.
    headers: {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    },
  },
  optimizeDeps: {
    entries: ['test/**/*.html'],
    include: ['idb', 'comlink'],
  },
  worker: { format: 'es' },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
