import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError, NotConnectedError, RecordBatchTooLargeError, SlotNotAdoptableError, StorageLostError, UnknownTopicOrPartitionError } from '../../src/errors';
import { createBrokerNode, type NodeApi, type NodeStartInit } from '../../src/node';
import { encodeBatch } from '../../src/protocol';
import { createMemoryStorage, type MemoryStorage, type Storage } from '../../src/storage';
import { openFrom } from './databases';
import { createFakeLocks } from './fake-locks';
import { realClock } from '../../src/clock';

const utf8 = new TextEncoder();
const batch = (...values: string[]) => encodeBatch({ baseTimestamp: 1, records: values.map((v) => ({ value: utf8.encode(v) })) });
const init: NodeStartInit = { clientId: 'test', slotWaitMs: 50, knownIncarnations: {}, onStorageLost: 'fail' };

function setup(databases = new Map<string, MemoryStorage>(), locks = createFakeLocks()) {
  let ids = 0;
  const node = createBrokerNode({
    openStorage: openFrom(databases),
    locks,
    clock: { ...realClock, now: () => 1000 },
    randomId: () => `incarnation-${ids++}`,
  });
  return { node, databases, locks };
}

let started: NodeApi[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(started.map((n) => n.close()));
  started = [];
});
const start = async (node: NodeApi, options: Partial<NodeStartInit> = {}) => {
  const info = await node.start({ ...init, ...options });
  started.push(node);
  return info;
};

describe('broker node', () => {
  it('a fetch waiting at the end of a partition is woken by a produce, with no timer firing', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 't' }], false);
    vi.useFakeTimers();
    const startedAt = Date.now();
    const fetching = node.fetch({ requestId: 1, maxWaitMs: 60_000, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic: 't', partition: 0, fetchOffset: 0, maxBytes: 1 << 20 }] });
    await vi.advanceTimersByTimeAsync(0);
    await node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 't', partition: 0, bytes: batch('hello') }] });
    const [result] = await fetching;
    expect(result?.batches).toHaveLength(1);
    expect(result?.highWatermark).toBe(1);
    // The 60 s wait never elapsed: the append woke the fetch.
    expect(Date.now() - startedAt).toBeLessThan(1000);
  });

  it('a waiting fetch ends empty at maxWait, or at once when cancelled', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 't' }], false);
    const request = { requestId: 7, maxWaitMs: 60_000, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic: 't', partition: 0, fetchOffset: 0, maxBytes: 1 << 20 }] };
    const fetching = node.fetch(request);
    node.cancel(7);
    expect((await fetching)[0]?.batches).toEqual([]);
    vi.useFakeTimers();
    const timed = node.fetch({ ...request, requestId: 8, maxWaitMs: 500 });
    await vi.advanceTimersByTimeAsync(500);
    expect((await timed)[0]?.batches).toEqual([]);
  });

  it('reports offsets out of range and unknown partitions per partition', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 't' }], false);
    const results = await node.fetch({
      requestId: 1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      partitions: [
        { topic: 't', partition: 0, fetchOffset: 5, maxBytes: 1 << 20 },
        { topic: 'nope', partition: 0, fetchOffset: 0, maxBytes: 1 << 20 },
      ],
    });
    expect(results.map((r) => r.errorCode)).toEqual(['OFFSET_OUT_OF_RANGE', 'UNKNOWN_TOPIC_OR_PARTITION']);
  });

  it('refuses bad produce requests with typed errors and appends nothing', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 't', configEntries: [{ name: 'max.message.bytes', value: '100' }] }], false);
    const produce = (batches: Array<{ topic: string; partition: number; bytes: Uint8Array }>, acks: -1 | 0 | 1 = 1) =>
      node.produce({ acks, allowAutoTopicCreation: false, batches });
    await expect(produce([{ topic: 'nope', partition: 0, bytes: batch('x') }])).rejects.toBeInstanceOf(UnknownTopicOrPartitionError);
    await expect(produce([{ topic: 't', partition: 1, bytes: batch('x') }])).rejects.toMatchObject({ code: 'UNKNOWN_TOPIC_OR_PARTITION', partition: 1 });
    await expect(produce([{ topic: 't', partition: 0, bytes: 'not bytes' as unknown as Uint8Array }])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(produce([{ topic: 't', partition: 0, bytes: batch('x') }], 3 as 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(produce([{ topic: 't', partition: 0, bytes: batch('x'.repeat(200)) }])).rejects.toBeInstanceOf(RecordBatchTooLargeError);
    await expect(produce([{ topic: 't', partition: 0, bytes: new Uint8Array(70) }])).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
    const [state] = await node.describeTopics(['t']);
    expect(state?.partitions[0]?.highWatermark).toBe(0);
  });

  it('a produce refused for one batch writes none of its batches, in any partition or topic', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 't', numPartitions: 2, configEntries: [{ name: 'max.message.bytes', value: '200' }] }, { topic: 'fine' }], false);
    const produce = (batches: Array<{ topic: string; partition: number; bytes: Uint8Array }>) => node.produce({ acks: 1, allowAutoTopicCreation: false, batches });
    const tooLarge = batch('x'.repeat(300));
    await expect(produce([{ topic: 't', partition: 0, bytes: batch('a', 'b', 'c') }, { topic: 't', partition: 0, bytes: tooLarge }, { topic: 't', partition: 0, bytes: batch('d') }])).rejects.toBeInstanceOf(RecordBatchTooLargeError);
    await expect(produce([{ topic: 'fine', partition: 0, bytes: batch('ok') }, { topic: 't', partition: 1, bytes: tooLarge }])).rejects.toBeInstanceOf(RecordBatchTooLargeError);
    await expect(produce([{ topic: 'fine', partition: 0, bytes: batch('ok') }, { topic: 't', partition: 1, bytes: new Uint8Array(70) }])).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
    await expect(produce([{ topic: 'fine', partition: 0, bytes: batch('ok') }, { topic: 't', partition: 2, bytes: batch('x') }])).rejects.toBeInstanceOf(UnknownTopicOrPartitionError);
    const states = await node.describeTopics(['t', 'fine']);
    expect(states.flatMap((s) => s.partitions.map((p) => p.highWatermark))).toEqual([0, 0, 0]);
  });

  it('a delete is ordered against appends in flight: each lands before it and goes with it, or fails; nothing is left for the recreated topic', async () => {
    // Batch writes are held back until released, so appends stay in flight while the delete is called.
    const memory = createMemoryStorage();
    const held: Array<() => void> = [];
    let holding = false;
    const seen: string[] = [];
    const gated: Storage = {
      ...memory,
      async write(writes) {
        seen.push(...writes.map((w) => w.kind));
        if (holding && writes.some((w) => w.kind === 'putBatch')) await new Promise<void>((resolve) => held.push(resolve));
        return memory.write(writes);
      },
    };
    const node = createBrokerNode({ openStorage: async () => gated, locks: createFakeLocks(), clock: { ...realClock, now: () => 1000 }, randomId: () => 'incarnation' });
    await start(node);
    await node.createTopics([{ topic: 'k', numPartitions: 8 }], false);
    holding = true;
    const sends = Array.from({ length: 5 }, (_, i) =>
      node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 'k', partition: 6, bytes: batch(`v${i}`) }] }).then(
        () => 'acked',
        (error: unknown) => (error instanceof UnknownTopicOrPartitionError ? 'refused' : String(error)),
      ),
    );
    seen.length = 0;
    const deleted = node.deleteTopics(['k']);
    await expect(node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 'k', partition: 6, bytes: batch('late') }] })).rejects.toBeInstanceOf(UnknownTopicOrPartitionError);
    // Nothing of the delete is written while the appends before it are in flight.
    expect(seen.filter((kind) => kind !== 'putBatch')).toEqual([]);
    holding = false;
    for (const release of held.splice(0)) release();
    await deleted;
    await node.createTopics([{ topic: 'k', numPartitions: 1 }], false);
    expect(await Promise.all(sends)).toEqual(['acked', 'acked', 'acked', 'acked', 'acked']);
    expect(await memory.readSummaries({ topic: 'k', partition: 6 }, 0, 10)).toEqual([]);
    expect(await memory.listPartitions()).toEqual([{ topic: 'k', partition: 0 }]);
    const [first] = await node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 'k', partition: 0, bytes: batch('new') }] });
    expect(first?.baseOffset).toBe(0);
  });

  it('a deleted topic takes its committed offsets with it, also across a restart and when the disk is full', async () => {
    const first = setup();
    const info = await start(first.node);
    const commit = (node: NodeApi, offset: number) => node.commitOffsets({ groupId: 'g', memberId: null, generationId: -1, offsets: [{ topic: 'a', partition: 0, offset, metadata: null }, { topic: 'b', partition: 0, offset: 3, metadata: null }] });
    await first.node.createTopics([{ topic: 'a' }, { topic: 'b' }], false);
    await first.node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 'a', partition: 0, bytes: batch(...'0123456789'.split('')) }, { topic: 'b', partition: 0, bytes: batch('x', 'y', 'z') }] });
    await commit(first.node, 10);
    await first.node.deleteTopics(['a']);
    expect(await first.node.fetchOffsets('g')).toEqual([{ topic: 'b', partition: 0, offset: 3, metadata: null }]);
    // Full: the delete goes through (deletes only), the offsets leave memory; the stored set cannot be written yet.
    await first.node.createTopics([{ topic: 'a' }], false);
    await commit(first.node, 10);
    const storage = first.databases.get(info.databaseName)!;
    storage.setFull(true);
    await first.node.deleteTopics(['a']);
    expect(await first.node.listTopics()).toEqual(['b']);
    expect(await first.node.fetchOffsets('g')).toEqual([{ topic: 'b', partition: 0, offset: 3, metadata: null }]);
    await first.node.close();
    storage.setFull(false);
    const second = setup(first.databases, first.locks);
    await start(second.node, { preferredSlot: info.slot, knownIncarnations: { [info.slot]: info.incarnation } });
    expect(await second.node.listTopics()).toEqual(['b']);
    expect(await second.node.fetchOffsets('g')).toEqual([{ topic: 'b', partition: 0, offset: 3, metadata: null }]);
    await second.node.createTopics([{ topic: 'a' }], false);
    await second.node.close();
    // The set still holding a's old offset was written again before a was created anew.
    const third = setup(first.databases, first.locks);
    await start(third.node, { preferredSlot: info.slot, knownIncarnations: { [info.slot]: info.incarnation } });
    expect(await third.node.fetchOffsets('g')).toEqual([{ topic: 'b', partition: 0, offset: 3, metadata: null }]);
    expect((await third.node.describeTopics(['a']))[0]?.partitions[0]?.highWatermark).toBe(0);
  });

  it('of two concurrent creates of one name, the loser resolves only once the topic is usable', async () => {
    const { node } = setup();
    await start(node);
    const winner = node.createTopics([{ topic: 'race', numPartitions: 8 }], false);
    const loser = node.createTopics([{ topic: 'race', numPartitions: 8 }], false);
    expect(await loser).toEqual([false]);
    const [result] = await node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 'race', partition: 7, bytes: batch('v') }] });
    expect(result?.baseOffset).toBe(0);
    expect(await winner).toEqual([true]);
  });

  it('deleteRecords refused for one partition deletes in none', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 't', numPartitions: 2 }], false);
    for (const partition of [0, 1]) await node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 't', partition, bytes: batch('a', 'b') }] });
    await expect(node.deleteRecords('t', [{ partition: 0, offset: 2 }, { partition: 1, offset: 5 }])).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await expect(node.deleteRecords('t', [{ partition: 0, offset: 2 }, { partition: 2, offset: 1 }])).rejects.toBeInstanceOf(UnknownTopicOrPartitionError);
    expect((await node.describeTopics(['t']))[0]?.partitions.map((p) => p.logStartOffset)).toEqual([0, 0]);
    expect(await node.deleteRecords('t', [{ partition: 0, offset: 2 }, { partition: 1, offset: -1 }])).toEqual([2, 2]);
  });

  it('a fetch waiting on a topic that is deleted ends at once, reporting the partition unknown', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 'gone' }], false);
    const fetching = node.fetch({ requestId: 1, maxWaitMs: 60_000, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic: 'gone', partition: 0, fetchOffset: 0, maxBytes: 1 << 20 }] });
    await node.deleteTopics(['gone']);
    // No timer has to fire: the delete ends the wait (a 60 s wait would time the test out).
    expect((await fetching).map((p) => p.errorCode)).toEqual(['UNKNOWN_TOPIC_OR_PARTITION']);
  });

  it('acks 0 answers before the batch is durable; acks 1 after', async () => {
    const { node } = setup();
    await start(node);
    await node.createTopics([{ topic: 't' }], false);
    const [fireAndForget] = await node.produce({ acks: 0, allowAutoTopicCreation: false, batches: [{ topic: 't', partition: 0, bytes: batch('a') }] });
    expect(fireAndForget?.baseOffset).toBe(-1);
    const [acked] = await node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 't', partition: 0, bytes: batch('b') }] });
    expect(acked?.baseOffset).toBe(1);
  });

  it('keeps topics and data across a restart on the same slot', async () => {
    const first = setup();
    const info = await start(first.node);
    await first.node.createTopics([{ topic: 'kept', numPartitions: 2 }], false);
    await first.node.produce({ acks: 1, allowAutoTopicCreation: false, batches: [{ topic: 'kept', partition: 1, bytes: batch('v') }] });
    await first.node.close();
    const second = setup(first.databases, first.locks);
    const again = await start(second.node, { preferredSlot: info.slot, knownIncarnations: { [info.slot]: info.incarnation } });
    expect(again).toMatchObject({ slot: info.slot, incarnation: info.incarnation, storageLost: false });
    expect(await second.node.listTopics()).toEqual(['kept']);
    expect((await second.node.describeTopics(['kept']))[0]?.partitions.map((p) => p.highWatermark)).toEqual([0, 1]);
  });

  it('notices a lost database: fails with StorageLostError, or starts afresh when told to', async () => {
    const { node, databases, locks } = setup();
    const info = await start(node);
    await node.close();
    databases.clear(); // evicted
    const known = { preferredSlot: info.slot, knownIncarnations: { [info.slot]: info.incarnation } };
    const second = setup(databases, locks);
    await expect(second.node.start({ ...init, ...known })).rejects.toBeInstanceOf(StorageLostError);
    expect(locks.held()).toEqual([]); // the failed start let go of its slot
    const third = setup(databases, locks);
    expect(await start(third.node, { ...known, onStorageLost: 'continue' })).toMatchObject({ slot: info.slot, storageLost: true });
  });

  it('adopts only a slot whose database holds a broker of the cluster, and takes no lock for it (the adopting page holds it): a lost database, a private broker’s, or no cluster named are refused, nothing written', async () => {
    const { node, databases, locks } = setup();
    const info = await start(node);
    await node.close();
    const adopt = { preferredSlot: info.slot, adopt: true, cluster: 'origin' };
    // A private broker's database: no broker of the cluster to run.
    const second = setup(databases, locks);
    await expect(second.node.start({ ...init, ...adopt })).rejects.toBeInstanceOf(SlotNotAdoptableError);
    expect(locks.held()).toEqual([]);
    await expect(second.node.start({ ...init, preferredSlot: info.slot, adopt: true })).rejects.toBeInstanceOf(InvalidArgumentError);
    // A database gone: refused, and none created in its place.
    databases.clear();
    const third = setup(databases, locks);
    await expect(third.node.start({ ...init, ...adopt })).rejects.toMatchObject({ name: 'SlotNotAdoptableError', slot: info.slot });
    expect(await (await openFrom(databases)(`letterbox-slot-${info.slot}`)).readValue('marker')).toBeUndefined();
  });

  it('gives different nodes different slots, and the preferred one when it is free', async () => {
    const locks = createFakeLocks();
    const a = setup(new Map(), locks);
    const b = setup(new Map(), locks);
    const c = setup(new Map(), locks);
    expect((await start(a.node)).slot).toBe(0);
    expect((await start(b.node, { preferredSlot: 0 })).slot).toBe(1); // 0 stays held: b waits its bounded time, then takes the lowest free
    expect((await start(c.node, { preferredSlot: 5 })).slot).toBe(5);
  });

  it('refuses calls before start and after close', async () => {
    const { node } = setup();
    await expect(node.listTopics()).rejects.toBeInstanceOf(NotConnectedError);
    await start(node);
    await node.close();
    await expect(node.produce({ acks: 1, allowAutoTopicCreation: true, batches: [] })).rejects.toBeInstanceOf(NotConnectedError);
  });
});
