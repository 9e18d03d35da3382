import type { BridgePort, PageToWorker, WorkerToPage } from '../../src/network/worker';

/**
 * The page's end of the frame bridge in a test: `fromPage` delivers a message to the worker's
 * side (by reference: a fake channel cannot be cloned), `toPage` records what the worker posts.
 * @example const port = fakePort(); node.attachNetwork(port, { cluster }); port.fromPage({ type: 'self', peerId });
 */
export function fakePort(): BridgePort & { fromPage(message: PageToWorker): void; toPage: WorkerToPage[] } {
  const listeners = new Set<(event: MessageEvent) => void>();
  const toPage: WorkerToPage[] = [];
  return {
    toPage,
    fromPage: (message) => listeners.forEach((listener) => listener({ data: message } as MessageEvent)),
    postMessage: (message) => toPage.push(message as WorkerToPage),
    addEventListener: (_type, listener) => listeners.add(listener),
    removeEventListener: (_type, listener) => listeners.delete(listener),
    start: () => undefined,
    close: () => listeners.clear(),
  };
}
