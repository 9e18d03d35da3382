import { describe, expect, it } from 'vitest';
import type { PeerRequestOptions, PeerRpc } from '../../src/network/worker';
import type { PeerRequestReport } from '../../src/node';
import { peerBrokerName, tracedRouter } from '../../src/node/request-reports';
import type { RoutedBroker } from '../../src/node/routing';

/** A router whose peer requests go to `request`; the rest is never called here. */
function routerWith(request: (peerId: string, type: string, options: PeerRequestOptions) => void): RoutedBroker {
  const rpc = {
    request: async (peerId: string, type: string, _body: unknown, options: PeerRequestOptions = {}) => {
      request(peerId, type, options);
      return { kind: 'response' };
    },
  } as unknown as PeerRpc;
  return { clusterId: 'c', rpc, remoteFetches: new Map() } as unknown as RoutedBroker;
}

describe('traced router', () => {
  it('reports each observation of its peer requests under the trace, with Kafka’s name and key and the peer named as describeCluster names it', async () => {
    const reports: PeerRequestReport[] = [];
    let observed: PeerRequestOptions | undefined;
    const plain = routerWith((_, __, options) => (observed = options));
    const traced = tracedRouter(plain, 7, (report) => reports.push(report));
    expect(traced.clusterId).toBe('c');
    expect(traced.remoteFetches).toBe(plain.remoteFetches);

    await traced.rpc.request('peer-b', 'listOffsets', { kind: 'request', clusterId: 'c', queries: [] }, { timeoutMs: 50 });
    expect(observed?.timeoutMs).toBe(50);
    const observe = observed!.observe!;
    observe({ kind: 'queue', queueSize: 2 });
    observe({ kind: 'answered', requestId: 5, version: 0, bytes: 64, createdAt: 100, sentAt: 103, answeredAt: 110 });
    observe({ kind: 'timedOut', requestId: 6, version: 0, createdAt: 100, sentAt: 101, timedOutAt: 120 });
    observe({ kind: 'timedOut', requestId: 0, version: 0, createdAt: 100, sentAt: undefined, timedOutAt: 130 });
    const broker = peerBrokerName('peer-b');
    expect(broker).toBe('peer-b:0');
    const names = { apiName: 'ListOffsets', apiKey: 2, apiVersion: 0 };
    expect(reports).toEqual([
      { type: 'request_queue_size', trace: 7, payload: { broker, queueSize: 2 } },
      { type: 'request', trace: 7, payload: { broker, correlationId: 5, size: 64, createdAt: 100, sentAt: 103, pendingDuration: 3, duration: 7, ...names } },
      { type: 'request_timeout', trace: 7, payload: { broker, correlationId: 6, createdAt: 100, sentAt: 101, pendingDuration: 1, ...names } },
      { type: 'request_timeout', trace: 7, payload: { broker, correlationId: 0, createdAt: 100, sentAt: 130, pendingDuration: 30, ...names } },
    ]);

    // The plain router observes nothing.
    await plain.rpc.request('peer-b', 'produce', { kind: 'request', clusterId: 'c', acks: -1, timeoutMs: 1, batches: [] });
    expect(observed?.observe).toBeUndefined();
  });
});
