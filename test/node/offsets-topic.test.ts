import { describe, expect, it } from 'vitest';
import { realClock } from '../../src/clock';
import type { OffsetCommit } from '../../src/group';
import { createLogManager, defaultLogConfig, type PartitionLog } from '../../src/log';
import { OffsetsTopicStore, readOffsets } from '../../src/node/offsets-topic';
import { encodeBatch } from '../../src/protocol';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage';

// The offsets topic as the coordinator writes and loads it: a commit appends the offsets that
// changed, a dropped offset a tombstone; loading gives each group its latest offsets; after a
// failed write the next write is whole.

const compacted = { ...defaultLogConfig, cleanupPolicy: 'compact' as const, deleteRetentionMs: 0 };
const offset = (partition: number, at: number, metadata: string | null = null): OffsetCommit => ({ topic: 'orders', partition, offset: at, metadata });

async function partition(storage: MemoryStorage = createMemoryStorage()): Promise<{ log: PartitionLog; storage: MemoryStorage; maintain(): Promise<boolean> }> {
  const logs = createLogManager(storage, { clock: realClock });
  const log = await logs.open({ topic: '__consumer_offsets', partition: 0 }, compacted);
  return { log, storage, maintain: () => logs.maintain(Date.now()) };
}

/** Each group's offsets as loaded, sorted by partition. */
const loaded = async (log: PartitionLog) => Object.fromEntries([...(await readOffsets(log))].map(([groupId, offsets]) => [groupId, [...offsets.values()].sort((a, b) => a.partition - b.partition)]));

describe('the offsets topic store', () => {
  it('appends only what changed and tombstones what was dropped; loading gives each group its latest offsets', async () => {
    const { log } = await partition();
    const store = new OffsetsTopicStore(() => log, realClock);
    await store.write('a', [offset(0, 5), offset(1, 7, 'note')], false);
    const afterFirst = log.logEndOffset;
    expect(afterFirst).toBe(2);
    await store.write('a', [offset(0, 9), offset(1, 7, 'note')], false);
    expect(log.logEndOffset).toBe(afterFirst + 1); // one record: partition 0's
    await store.write('b', [offset(0, 1)], false);
    expect(await loaded(log)).toEqual({ a: [offset(0, 9), offset(1, 7, 'note')], b: [offset(0, 1)] });
    // Group a's offsets of partition 1 dropped (its topic deleted); group b deleted.
    await store.write('a', [offset(0, 9)], false);
    await store.write('b', [], true);
    expect(await loaded(log)).toEqual({ a: [offset(0, 9)] });
  });

  it('keeps what it loaded: a coordinator that loads a partition goes on from its records', async () => {
    const { log } = await partition();
    await new OffsetsTopicStore(() => log, realClock).write('a', [offset(0, 3), offset(2, 4)], false);
    const groups = await readOffsets(log);
    const store = new OffsetsTopicStore(() => log, realClock);
    store.loaded('a', groups.get('a')!);
    const end = log.logEndOffset;
    await store.write('a', [offset(0, 3)], false);
    expect(log.logEndOffset).toBe(end + 1); // only the tombstone of partition 2
    expect(await loaded(log)).toEqual({ a: [offset(0, 3)] });
  });

  it('after a failed write, the next one is whole: a commit retried after a failure is stored', async () => {
    const { log, storage } = await partition();
    const store = new OffsetsTopicStore(() => log, realClock);
    await store.write('a', [offset(0, 1)], false);
    storage.setFull(true);
    await expect(store.write('a', [offset(0, 1), offset(1, 5)], false)).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    storage.setFull(false);
    // The same commit again: nothing changed since the last write emitted, but that one failed.
    await store.write('a', [offset(0, 1), offset(1, 5)], false);
    expect(await loaded(log)).toEqual({ a: [offset(0, 1), offset(1, 5)] });
    // A set without an offset the failed write may have stored drops it.
    await store.write('a', [offset(2, 7)], false);
    expect(await loaded(log)).toEqual({ a: [offset(2, 7)] });
  });

  it('compaction keeps each group’s latest offsets', async () => {
    const { log, maintain } = await partition();
    const store = new OffsetsTopicStore(() => log, realClock);
    for (let at = 0; at < 20; at++) await store.write('a', [offset(0, at), offset(1, 100 + at)], false);
    await store.write('b', [offset(0, 1)], false);
    await store.write('b', [], true);
    const before = await loaded(log);
    while (await maintain());
    expect(await loaded(log)).toEqual(before);
    expect(before).toEqual({ a: [offset(0, 19), offset(1, 119)] });
  });

  it('refuses to write a group whose partition is not held here, and fails a load of a damaged record', async () => {
    const store = new OffsetsTopicStore(() => undefined, realClock);
    await expect(store.write('a', [offset(0, 1)], false)).rejects.toMatchObject({ code: 'NOT_COORDINATOR', groupId: 'a' });
    const { log } = await partition();
    await log.append(encodeBatch({ baseTimestamp: 1, records: [{ key: Uint8Array.of(0, 1, 0, 9), value: null }] }));
    await expect(readOffsets(log)).rejects.toMatchObject({ name: 'InvalidRecordError' });
  });
});
