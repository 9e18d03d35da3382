import { describe, expect, it, vi } from 'vitest';
import type { PeerRequestOptions, PeerRpc } from '../../src/network/worker';
import type { PeerRequestReport } from '../../src/node';
import { encodeBatch } from '../../src/protocol';
import { peerBrokerName, REPORTS_TAKEN_MS, tracedCall, tracedRouter } from '../../src/node/request-reports';
import type { RoutedBroker } from '../../src/node/routing';
import { createMemoryLocks } from '../support/memory-locks';
import { FORM_BOUND_MS, newCluster, oneCluster, openTab } from './cluster-tabs';

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

describe('tracedCall', () => {
  it('answers after the page took its reports, or once the bound passed when the page takes none', async () => {
    let observe: PeerRequestOptions['observe'];
    const router = routerWith((_, __, options) => (observe = options.observe));
    const timers: Array<{ ms: number; fn: () => void; cancelled: boolean }> = [];
    const clock = {
      after: (ms: number, fn: () => void) => {
        const timer = { ms, fn, cancelled: false };
        timers.push(timer);
        return () => void (timer.cancelled = true);
      },
    };
    const answered = (reported: (report: PeerRequestReport) => Promise<void>) => {
      let done = false;
      const call = tracedCall(router, 4, reported, clock, async (traced) => {
        await traced.rpc.request('peer-b', 'produce', { kind: 'request', clusterId: 'c', acks: -1, timeoutMs: 1, batches: [] });
        observe!({ kind: 'answered', requestId: 1, version: 0, bytes: 8, createdAt: 1, sentAt: 1, answeredAt: 2 });
        return 'result';
      }).then((result) => ((done = true), result));
      return { call, done: () => done };
    };
    const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

    // Taken: the call answers once the page's acknowledgement came, and its timer is cancelled.
    let take!: () => void;
    const one = answered(() => new Promise<void>((resolve) => (take = resolve)));
    await settle();
    expect(one.done()).toBe(false);
    take();
    await expect(one.call).resolves.toBe('result');
    expect(timers.map((t) => [t.ms, t.cancelled])).toEqual([[REPORTS_TAKEN_MS, true]]);

    // Never taken (the page gone): answered when the bound passes.
    const two = answered(() => new Promise<void>(() => undefined));
    await settle();
    expect(two.done()).toBe(false);
    timers[1]!.fn();
    await expect(two.call).resolves.toBe('result');
  });
});

describe('a traced call of a broker of a cluster', { timeout: 2 * FORM_BOUND_MS }, () => {
  it('answers once the page has taken the reports of its peer requests, as KafkaJS emits a request’s REQUEST before the call it served resolves', async () => {
    // The reports travel on a channel of their own (a Comlink callback): a page that takes
    // each a moment after it was posted must still have them all when the call answers, or a
    // listener counting REQUEST events after `await producer.send()` misses the last ones.
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['p1', 'p2'].map((peerId) => openTab(locks, cluster, peerId)));
    const [info] = await oneCluster(tabs);
    const [tab, other] = tabs as [(typeof tabs)[0], (typeof tabs)[0]];
    const from = { node: tab.node, info: info! };
    await expect(from.node.createTopics([{ topic: 'traced', numPartitions: 2 }], false)).resolves.toEqual([true]);
    const leaders = async () => (await from.node.describeTopics(['traced']))[0]!.partitions.map((p) => p.leader);
    // Two partitions over two brokers: one led by the other tab, whose image has the topic too.
    expect(new Set(await leaders()).size).toBe(2);
    await vi.waitFor(async () => expect(await other.node.listTopics()).toContain('traced'), { timeout: FORM_BOUND_MS, interval: 50 });

    const taken: PeerRequestReport[] = [];
    from.node.reportPeerRequests(async (report) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      taken.push(report);
    });
    const batch = () => encodeBatch({ baseTimestamp: 1, records: [{ value: new TextEncoder().encode('v') }] });
    await from.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [0, 1].map((partition) => ({ topic: 'traced', partition, bytes: batch() })) }, 1);
    expect(taken.filter((r) => r.type === 'request').map((r) => [r.trace, r.payload.apiName])).toEqual([[1, 'Produce']]);
    await from.node.listOffsets([0, 1].map((partition) => ({ topic: 'traced', partition, query: 'latest' as const })), 2);
    expect(taken.filter((r) => r.type === 'request').map((r) => [r.trace, r.payload.apiName])).toEqual([[1, 'Produce'], [2, 'ListOffsets']]);
    // A fetch answers once a part has records: of the partition the other tab leads, after its answer.
    const elsewhere = (await leaders()).findIndex((leader) => leader !== from.info.brokerId);
    await from.node.fetch({ requestId: 9, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, partitions: [{ topic: 'traced', partition: elsewhere, fetchOffset: 0, maxBytes: 1 << 20 }] }, 3);
    expect(taken.filter((r) => r.type === 'request' && r.trace === 3).map((r) => r.type === 'request' && r.payload.apiName)).toEqual(['Fetch']);
  });
});
