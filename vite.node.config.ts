import { defineConfig } from 'vite';

// Node programs (the relay and the command-line runners under test/), bundled as ES
// modules for Node 20, which cannot run TypeScript itself. Dependencies stay external.
export default defineConfig({
  publicDir: false,
  build: {
    ssr: true,
    target: 'node20',
    outDir: 'dist/node',
    emptyOutDir: true,
    sourcemap: true,
    rollupOptions: {
      input: {
        relay: 'src/relay/main.ts',
        bench: 'test/bench/main.ts',
        sim: 'test/sim/main.ts',
      },
      output: { entryFileNames: '[name].js' },
    },
  },
});
