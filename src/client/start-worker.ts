// The ES build's worker: its own file next to the bundle. The script-tag build swaps this
// module for start-worker.inline.ts (vite.config.ts), which carries the worker inline.
export function startNodeWorker(): Worker {
  return new Worker(new URL('../../workers/node.worker.ts', import.meta.url), { type: 'module', name: 'letterbox-node' });
}
