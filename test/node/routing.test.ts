import { describe, expect, it } from 'vitest';
import { realClock } from '../../src/clock';
import { FencedLeaderEpochError, LeaderNotAvailableError, NotLeaderOrFollowerError, TimeoutError, UnknownLeaderEpochError, type LetterboxError } from '../../src/errors';
import type { PeerRpc } from '../../src/network/worker';
import type { ProduceRequest, ProduceResult } from '../../src/node';
import type { FetchMessage, ListOffsetsMessage, ProduceMessage } from '../../src/protocol';
import { listOffsetsRouted, produceRouted, serveRouted, type RoutedBroker } from '../../src/node/routing';

// produceRouted against a scripted cluster: partition p of topic 't' is led by broker p (1 here),
// each other broker answering at peer `b<p>` as `answers` says, attempt by attempt.

/** 'hang': the leader never answers (a paused tab): the request ends only when its signal aborts. */
type Answer = 'ok' | 'hang' | LetterboxError;

function cluster(answers: Record<string, Answer[]>) {
  const appended: string[] = [];
  /** The leader epochs each forwarded batch carried. */
  const epochs: number[] = [];
  const offsets = new Map<number, number>();
  const append = (batches: ProduceRequest['batches']): ProduceResult[] =>
    batches.map(({ topic, partition }) => {
      appended.push(`${topic}-${partition}`);
      const baseOffset = offsets.get(partition) ?? 0;
      offsets.set(partition, baseOffset + 1);
      return { topic, partition, baseOffset, logStartOffset: 0 };
    });
  const rpc = {
    request: async (peer: string, _type: string, body: { batches: Array<ProduceRequest['batches'][number] & { leaderEpoch: number }> }, options: { signal?: AbortSignal } = {}) => {
      epochs.push(...body.batches.map((b) => b.leaderEpoch));
      const answer = answers[peer]!.shift() ?? 'ok';
      if (answer === 'hang') return new Promise((_, reject) => options.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
      if (answer !== 'ok') return { kind: 'response', results: body.batches.map(({ topic, partition }) => ({ topic, partition, baseOffset: -1, logStartOffset: -1, error: answer })) };
      return { kind: 'response', results: append(body.batches) };
    },
  } as unknown as PeerRpc;
  /** Partitions whose leader moved to another broker (this broker's view): to `partition + 10`. */
  const moved = new Set<number>();
  const broker: RoutedBroker = {
    clusterId: 'c',
    clock: realClock,
    leaderCheckMs: 10,
    rpc,
    routeOf: (_topic, partition) => (partition === 1 ? { here: true } : { here: false, leader: moved.has(partition) ? partition + 10 : partition }),
    leaderEpochOf: (_topic, partition) => 10 + partition,
    addressOf: (brokerId) => `b${brokerId}`,
    produceHere: async (_acks, batches) => append(batches),
    fetchHere: async () => [],
    listOffsetsHere: async () => [],
    remoteFetches: new Map(),
  };
  return { broker, appended, epochs, moved };
}

const batches = (partitions: number[]): ProduceRequest['batches'] => partitions.map((partition) => ({ topic: 't', partition, bytes: new Uint8Array(1) }));

describe('produceRouted', () => {
  it('a part refused with a retriable error while others were appended is sent again alone: nothing is appended twice', async () => {
    const { broker, appended, epochs } = cluster({ b2: [new NotLeaderOrFollowerError('t', 2, 3), new LeaderNotAvailableError('t', 2)], b3: [] });
    const results = await produceRouted(broker, -1, batches([1, 2, 3]));
    expect(results.map((r) => [r.partition, r.baseOffset])).toEqual([[1, 0], [2, 0], [3, 0]]);
    expect(appended.sort()).toEqual(['t-1', 't-2', 't-3']);
    // Each forwarded batch carries its partition's leader epoch as this broker's metadata has it.
    expect(new Set(epochs)).toEqual(new Set([12, 13]));
  });

  it('every part refused: nothing was appended, the refusal is thrown for the client to decide', async () => {
    const refusal = new LeaderNotAvailableError('t', 2);
    const { broker, appended } = cluster({ b2: [refusal] });
    await expect(produceRouted(broker, -1, batches([2]))).rejects.toBe(refusal);
    expect(appended).toEqual([]);
  });

  it('a part forwarded to a leader that stopped answering is given up once this broker knows another leader: NotLeaderOrFollowerError naming it, not a wait for the RPC bound', async () => {
    const { broker, appended, moved } = cluster({ b2: ['hang'] });
    const produced = produceRouted(broker, -1, batches([2]));
    moved.add(2);
    await expect(produced).rejects.toMatchObject({ name: 'NotLeaderOrFollowerError', partition: 2, leader: 12 });
    expect(appended).toEqual([]);
  });

  it('listOffsets at a leader that stopped answering ends once another leads (NotLeaderOrFollowerError), or at the bound asked for (TimeoutError)', async () => {
    const { broker, moved } = cluster({});
    const hanging = (timeouts: number[]) =>
      ({
        request: (_peer: string, _type: string, _body: unknown, options: { timeoutMs?: number; signal?: AbortSignal }) =>
          new Promise((_, reject) => {
            timeouts.push(options.timeoutMs ?? -1);
            options.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
            setTimeout(() => reject(new TimeoutError(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
          }),
      }) as unknown as PeerRpc;
    const timeouts: number[] = [];
    const stuck = { ...broker, rpc: hanging(timeouts) };
    const listed = listOffsetsRouted(stuck, [{ topic: 't', partition: 2, query: 'latest' }]);
    moved.add(2);
    await expect(listed).rejects.toMatchObject({ name: 'NotLeaderOrFollowerError', leader: 12 });
    await expect(listOffsetsRouted(stuck, [{ topic: 't', partition: 3, query: 'latest' }], 50)).rejects.toBeInstanceOf(TimeoutError);
    expect(timeouts.at(-1)).toBe(50);
  });

  it('a part that timed out is not sent again (it may have been appended): the timeout is thrown', async () => {
    const timeout = new TimeoutError('no answer');
    const { broker, appended } = cluster({ b2: [timeout], b3: [] });
    await expect(produceRouted(broker, -1, batches([1, 2, 3]))).rejects.toBe(timeout);
    expect(appended.sort()).toEqual(['t-1', 't-3']);
  });
});

describe('serveRouted', () => {
  /** A broker leading partitions 0–2 of 't' at leader epoch 4, serving forwarded requests through a scripted rpc. */
  function leader() {
    const handlers = new Map<string, (body: unknown, context: { signal: AbortSignal }) => Promise<unknown>>();
    const appended: number[] = [];
    const read: number[] = [];
    const broker: RoutedBroker = {
      clusterId: 'c',
      clock: realClock,
      leaderCheckMs: 10,
      rpc: { handle: (type: string, handler: (body: unknown, context: { signal: AbortSignal }) => Promise<unknown>) => (handlers.set(type, handler), () => handlers.delete(type)) } as unknown as PeerRpc,
      routeOf: () => ({ here: true }),
      leaderEpochOf: () => 4,
      addressOf: () => undefined,
      produceHere: async (_acks, batches) => batches.map(({ topic, partition }) => (appended.push(partition), { topic, partition, baseOffset: 0, logStartOffset: 0 })),
      fetchHere: async (request) => request.partitions.map(({ topic, partition }) => (read.push(partition), { topic, partition, highWatermark: 1, logStartOffset: 0, batches: [] })),
      listOffsetsHere: async (queries) => queries.map(() => 1),
      remoteFetches: new Map(),
    };
    serveRouted(broker);
    const call = <T>(type: string, body: unknown) => handlers.get(type)!(body, { signal: new AbortController().signal }) as Promise<T>;
    return { call, appended, read };
  }
  const batch = (partition: number, leaderEpoch: number) => ({ topic: 't', partition, leaderEpoch, bytes: new Uint8Array(1) });

  it('refuses a produce carrying a stale or an unknown leader epoch, all of it: nothing appended', async () => {
    const { call, appended } = leader();
    const stale = await call<ProduceMessage>('produce', { kind: 'request', clusterId: 'c', acks: -1, timeoutMs: 1000, batches: [batch(0, 4), batch(1, 3)] });
    expect(stale).toMatchObject({ kind: 'response', results: [{ error: { code: 'FENCED_LEADER_EPOCH', retriable: true } }, { error: { code: 'FENCED_LEADER_EPOCH' } }] });
    if (stale.kind === 'response') expect(stale.results[0]!.error).toBeInstanceOf(FencedLeaderEpochError);
    const ahead = await call<ProduceMessage>('produce', { kind: 'request', clusterId: 'c', acks: -1, timeoutMs: 1000, batches: [batch(2, 5)] });
    if (ahead.kind === 'response') expect(ahead.results[0]!.error).toBeInstanceOf(UnknownLeaderEpochError);
    expect(appended).toEqual([]);
    // The current epoch, or none given (-1, an older peer's version 0): appended.
    await call('produce', { kind: 'request', clusterId: 'c', acks: -1, timeoutMs: 1000, batches: [batch(0, 4), batch(1, -1)] });
    expect(appended).toEqual([0, 1]);
  });

  it('answers a fetch’s partitions asked at another leader epoch with its error code, and reads the rest', async () => {
    const { call, read } = leader();
    const part = (partition: number, leaderEpoch: number) => ({ topic: 't', partition, leaderEpoch, fetchOffset: 0, maxBytes: 100 });
    const answer = await call<FetchMessage>('fetch', { kind: 'request', clusterId: 'c', maxWaitMs: 0, minBytes: 0, maxBytes: 100, partitions: [part(0, 3), part(1, 4), part(2, 9)] });
    expect(answer).toMatchObject({ kind: 'response', partitions: [{ partition: 0, errorCode: 'FENCED_LEADER_EPOCH' }, { partition: 1, highWatermark: 1 }, { partition: 2, errorCode: 'UNKNOWN_LEADER_EPOCH' }] });
    expect(read).toEqual([1]);
  });

  it('answers listOffsets at another leader epoch with the typed error', async () => {
    const { call } = leader();
    const answer = await call<ListOffsetsMessage>('listOffsets', { kind: 'request', clusterId: 'c', queries: [{ topic: 't', partition: 0, leaderEpoch: 1, query: 'latest' }, { topic: 't', partition: 0, leaderEpoch: 4, query: 'latest' }] });
    expect(answer).toMatchObject({ kind: 'response', results: [{ error: { code: 'FENCED_LEADER_EPOCH' } }, { offset: 1 }] });
  });
});
