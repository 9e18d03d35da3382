// The script-tag build's worker, bundled inline and started from a Blob URL, so a page can
// load the script from another origin. Needs `worker-src blob:` if the page has a CSP.
import NodeWorker from '../../workers/node.worker.ts?worker&inline';

export function startNodeWorker(): Worker {
  return new NodeWorker({ name: 'letterbox-node' });
}
