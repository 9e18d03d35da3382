import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// One config for the browser side, by mode:
// - `vite build` (mode production): the ES module package in dist/lib/, worker as its own file;
// - `vite build --mode iife`: dist/lib/letterbox.iife.js, one file for a <script> tag whose
//   worker is inline (started from a Blob URL, so the script may come from another origin);
// - `vite` / tests: the dev server for test and bench pages (127.0.0.1 only), and Vitest.
export default defineConfig(({ mode }) => ({
  base: './',
  // public/ is the relay's to serve (the demo); builds and test pages do not copy it.
  publicDir: false,
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
  resolve:
    mode === 'iife'
      ? {
          alias: [
            { find: /^\.\/start-worker$/, replacement: here('src/client/start-worker.inline.ts') },
            { find: /^\.\/load-network$/, replacement: here('src/client/load-network.inline.ts') },
          ],
        }
      : {},
  build:
    mode === 'iife'
      ? {
          outDir: 'dist/lib',
          emptyOutDir: false,
          lib: { entry: here('src/client/global.ts'), name: 'Letterbox', formats: ['iife'], fileName: () => 'letterbox.iife.js' },
        }
      : {
          outDir: 'dist/lib',
          emptyOutDir: true,
          lib: { entry: here('src/client/index.ts'), formats: ['es'], fileName: () => 'letterbox.js' },
        },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // Vitest's default of 5 s per test measures how busy the machine is (property tests and
    // in-memory clusters took over 5 s on a loaded 2-core machine); waits inside tests come
    // from the protocol's own bounds, and this only ends a test that hangs.
    testTimeout: 60_000,
  },
}));
