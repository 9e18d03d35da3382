import { expose, transfer, type Endpoint } from 'comlink';
import { realClock } from '../clock';
import { registerErrorTransfer } from '../errors';
import { openIndexedDbStorage } from '../storage';
import type { NodeApi } from './api';
import { createBrokerNode } from './broker';

/**
 * Starts a broker node on IndexedDB and Web Locks and serves it over `endpoint` with
 * Comlink: errors cross with their class and fields, fetched batches are transferred.
 * @example exposeBrokerNode(self); // in workers/node.worker.ts
 */
export function exposeBrokerNode(endpoint: Endpoint & { location?: { origin: string } }): void {
  registerErrorTransfer();
  const node = createBrokerNode({
    openStorage: (name) => openIndexedDbStorage(name),
    locks: navigator.locks,
    clock: realClock,
    randomId: () => crypto.randomUUID(),
    onError: (error) => console.error('letterbox node:', error),
  });
  const api: NodeApi = {
    ...node,
    async fetch(request, trace) {
      const partitions = await node.fetch(request, trace);
      const buffers = new Set(partitions.flatMap((p) => p.batches.map((b) => b.buffer as ArrayBuffer)));
      return transfer(partitions, [...buffers]);
    },
  };
  expose(api, endpoint);
}
