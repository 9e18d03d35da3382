import { describe, expect, it } from 'vitest';
import { CorruptBatchError, InvalidOffsetError } from '../../src/errors';
import { BatchIndex, createLogManager } from '../../src/log';
import { readBatchHeader } from '../../src/protocol';
import { createMemoryStorage, type MemoryStorage, type StorageWrite } from '../../src/storage';
import { batchOf, recordsOf } from './batches';

// The partition log as a raft log (src/raft/index.ts): each batch is a raft entry with its
// index and epoch, offsets numbered when the entry is staged, replacing a suffix is one write.

const id = { topic: 'orders', partition: 0 };
const all = { maxBytes: Infinity };

async function openLog(storage: MemoryStorage = createMemoryStorage()) {
  const logs = createLogManager(storage);
  return { storage, logs, log: await logs.open(id, {}, { highWatermark: 'replicated' }) };
}

/** Stages and writes entries as the executor would: one storage write, then `durable`. */
async function persist(storage: MemoryStorage, staged: { writes: StorageWrite[]; durable: () => void }): Promise<void> {
  await storage.write(staged.writes);
  staged.durable();
}

const places = (log: { places: { at(i: number): { baseOffset: number; lastOffset: number; epoch: number } | undefined; startIndex: number; lastIndex: number } }) => {
  const out: Array<[number, number, number, number]> = [];
  for (let i = log.places.startIndex + 1; i <= log.places.lastIndex; i++) {
    const p = log.places.at(i)!;
    out.push([i, p.baseOffset, p.lastOffset, p.epoch]);
  }
  return out;
};

describe('BatchIndex', () => {
  it('maps raft indices to offsets and epochs, and epochs to their start offsets', () => {
    const index = new BatchIndex({ index: 0, epoch: 0, nextOffset: 0 });
    index.push({ index: 1, baseOffset: 0, lastOffset: 2, epoch: 1, sizeBytes: 10 });
    index.push({ index: 2, baseOffset: 3, lastOffset: 3, epoch: 1, sizeBytes: 10 });
    index.push({ index: 3, baseOffset: 4, lastOffset: 9, epoch: 3, sizeBytes: 10 });
    expect(index.indexOfOffset(0)).toBe(1);
    expect(index.indexOfOffset(3)).toBe(2);
    expect(index.indexOfOffset(5)).toBe(3);
    expect(index.indexOfOffset(10)).toBe(4);
    expect(index.epochs()).toEqual([{ epoch: 1, startOffset: 0 }, { epoch: 3, startOffset: 4 }]);
    // Kafka's OffsetsForLeaderEpoch: epoch 2 was never written; it ends where epoch 3 starts.
    expect(index.endOfEpoch(2)).toEqual({ epoch: 1, endOffset: 4 });
    expect(index.endOfEpoch(3)).toEqual({ epoch: 3, endOffset: 10 });
    expect(index.endOfEpoch(0)).toEqual({ epoch: 0, endOffset: 0 });
    index.truncateFrom(3);
    expect(index.epochs()).toEqual([{ epoch: 1, startOffset: 0 }]);
    expect(index.nextOffset).toBe(4);
    index.compactThrough(1);
    expect([index.startIndex, index.startEpoch, index.lastIndex, index.at(1), index.at(2)?.baseOffset]).toEqual([1, 1, 2, undefined, 3]);
    expect(index.endOfEpoch(1)).toEqual({ epoch: 1, endOffset: 4 });
  });

  it('refuses a batch that does not continue the index or the offsets', () => {
    const index = new BatchIndex({ index: 4, epoch: 2, nextOffset: 100 });
    expect(() => index.push({ index: 6, baseOffset: 100, lastOffset: 100, epoch: 2, sizeBytes: 1 })).toThrow(InvalidOffsetError);
    expect(() => index.push({ index: 5, baseOffset: 101, lastOffset: 101, epoch: 2, sizeBytes: 1 })).toThrow(InvalidOffsetError);
    expect(() => index.push({ index: 5, baseOffset: 100, lastOffset: 99, epoch: 2, sizeBytes: 1 })).toThrow(InvalidOffsetError);
    index.push({ index: 5, baseOffset: 100, lastOffset: 100, epoch: 2, sizeBytes: 1 });
    expect(index.lastIndex).toBe(5);
  });
});

describe('the partition log as a raft log', () => {
  it('numbers offsets when entries are staged, stamps their epoch, and stores index and epoch with each batch', async () => {
    const { storage, log } = await openLog();
    const first = log.stageEntries(1, [{ bytes: batchOf(['a', 'b']), epoch: 1 }, { bytes: batchOf(['c']), epoch: 1 }]);
    // The next proposal is numbered after the staged ones, before they are durable.
    const second = log.stageEntries(3, [{ bytes: batchOf(['d']), epoch: 2 }]);
    expect(log.logEndOffset).toBe(0);
    await persist(storage, first);
    await persist(storage, second);
    expect(log.logEndOffset).toBe(4);
    expect(places(log)).toEqual([[1, 0, 1, 1], [2, 2, 2, 1], [3, 3, 3, 2]]);
    const summaries = await storage.readSummaries(id, 0, 10);
    expect(summaries.map((s) => [s.raftIndex, s.epoch])).toEqual([[1, 1], [2, 1], [3, 2]]);
    expect((await storage.readBatches(id, 0, 3)).map((b) => readBatchHeader(b).partitionLeaderEpoch)).toEqual([1, 1, 2]);
    log.advanceHighWatermark(4);
    expect(recordsOf(await log.read(0, all)).map((r) => r[2])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('replaces an uncommitted suffix in one write, renumbering the new entries where the old began', async () => {
    const { storage, log } = await openLog();
    await persist(storage, log.stageEntries(1, [{ bytes: batchOf(['a']), epoch: 1 }, { bytes: batchOf(['b', 'b2']), epoch: 1 }, { bytes: batchOf(['c']), epoch: 1 }]));
    log.advanceHighWatermark(1);
    const writesBefore = storage.writeCount;
    const replaced = log.stageEntries(2, [{ bytes: batchOf(['x']), epoch: 2 }]);
    expect(replaced.writes.map((w) => w.kind)).toEqual(['deleteBatches', 'putBatch']);
    await persist(storage, replaced);
    expect(storage.writeCount).toBe(writesBefore + 1);
    expect(places(log)).toEqual([[1, 0, 0, 1], [2, 1, 1, 2]]);
    log.advanceHighWatermark(2);
    expect(recordsOf(await log.read(0, all)).map((r) => r[2])).toEqual(['a', 'x']);
    // Reopened, the log holds the same entries.
    const reopened = await openLog(storage.reopen());
    expect(places(reopened.log)).toEqual([[1, 0, 0, 1], [2, 1, 1, 2]]);
    expect(reopened.log.places.epochs()).toEqual([{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 1 }]);
  });

  it('a commit learned before the write is durable moves the high watermark when the write is', async () => {
    const { storage, log } = await openLog();
    const staged = log.stageEntries(1, [{ bytes: batchOf(['a', 'b']), epoch: 1 }]);
    log.advanceHighWatermark(2);
    expect(log.highWatermark).toBe(0);
    await persist(storage, staged);
    expect(log.highWatermark).toBe(2);
  });

  it('refuses a replacement below the high watermark, a gap after the log and a corrupt batch, writing nothing', async () => {
    const { storage, log } = await openLog();
    await persist(storage, log.stageEntries(1, [{ bytes: batchOf(['a']), epoch: 1 }, { bytes: batchOf(['b']), epoch: 1 }]));
    log.advanceHighWatermark(2);
    expect(() => log.stageEntries(2, [{ bytes: batchOf(['x']), epoch: 2 }])).toThrow(InvalidOffsetError);
    expect(() => log.stageEntries(4, [{ bytes: batchOf(['x']), epoch: 2 }])).toThrow(InvalidOffsetError);
    expect(() => log.stageEntries(0, [{ bytes: batchOf(['x']), epoch: 2 }])).toThrow(InvalidOffsetError);
    const corrupt = batchOf(['x']);
    corrupt[corrupt.length - 1] = corrupt.at(-1)! ^ 0xff;
    expect(() => log.stageEntries(3, [{ bytes: batchOf(['y']), epoch: 2 }, { bytes: corrupt, epoch: 2 }])).toThrow(CorruptBatchError);
    expect(places(log)).toEqual([[1, 0, 0, 1], [2, 1, 1, 1]]);
    expect(log.logEndOffset).toBe(2);
  });

  it('serves entries from memory while they are at the tail, and from storage otherwise', async () => {
    const { storage, log } = await openLog();
    await persist(storage, log.stageEntries(1, [{ bytes: batchOf(['a']), epoch: 1 }, { bytes: batchOf(['b']), epoch: 1 }, { bytes: batchOf(['c']), epoch: 1 }]));
    expect(recordsOf(log.cachedEntries(2, 3, Infinity)!).map((r) => r[2])).toEqual(['b', 'c']);
    expect(log.cachedEntries(2, 3, 1)).toHaveLength(1);
    const reopened = await openLog(storage.reopen());
    expect(reopened.log.cachedEntries(1, 3, Infinity)).toBeUndefined();
    expect(recordsOf(await reopened.log.readEntries(1, 3, Infinity)).map((r) => r[2])).toEqual(['a', 'b', 'c']);
    expect(await reopened.log.readEntries(1, 3, 1)).toHaveLength(1);
    await expect(reopened.log.readEntries(3, 4, Infinity)).rejects.toBeInstanceOf(InvalidOffsetError);
  });

  it('restores a leader snapshot: empty, starting after its index at its offset', async () => {
    const { storage, log } = await openLog();
    await persist(storage, log.stageEntries(1, [{ bytes: batchOf(['a']), epoch: 1 }]));
    await persist(storage, log.stageRestore({ index: 40, epoch: 3, nextOffset: 1200 }));
    expect([log.logStartOffset, log.logEndOffset, log.highWatermark, log.places.startIndex, log.places.startEpoch]).toEqual([1200, 1200, 1200, 40, 3]);
    await persist(storage, log.stageEntries(41, [{ bytes: batchOf(['z']), epoch: 3 }]));
    const reopened = await openLog(storage.reopen());
    expect(places(reopened.log)).toEqual([[41, 1200, 1200, 3]]);
    expect(reopened.log.logStartOffset).toBe(1200);
  });

  it('a leader snapshot restored while retention removes the head stands: the removal, chosen before it, is dropped', async () => {
    const storage = createMemoryStorage();
    const log = await createLogManager(storage).open(id, { retentionBytes: 0 }, { highWatermark: 'replicated' });
    await persist(storage, log.stageEntries(1, ['a', 'b', 'c'].map((value) => ({ bytes: batchOf([value]), epoch: 1 }))));
    log.advanceHighWatermark(3);
    log.setRemovableThrough(2);
    // Retention reads the head it would remove; meanwhile a follower restores its leader's snapshot.
    const removing = log.enforceRetention(Date.now());
    await persist(storage, log.stageRestore({ index: 40, epoch: 3, nextOffset: 1200 }));
    expect(await removing).toBe(0);
    expect([log.logStartOffset, log.logEndOffset, log.places.startIndex, log.sizeBytes]).toEqual([1200, 1200, 40, 0]);
    const reopened = await createLogManager(storage.reopen()).open(id, {}, { highWatermark: 'replicated' });
    expect([reopened.logStartOffset, reopened.logEndOffset, reopened.places.startIndex]).toEqual([1200, 1200, 40]);
  });

  it('a leader snapshot restored while the cleaner rewrites a batch stands: the rewrite leaves the restored log alone', async () => {
    const storage = createMemoryStorage();
    const log = await createLogManager(storage).open(id, {}, { highWatermark: 'replicated' });
    await persist(storage, log.stageEntries(1, ['a', 'b'].map((value) => ({ bytes: batchOf([value]), epoch: 1 }))));
    log.advanceHighWatermark(2);
    // The cleaner rewrites batch 'a' (same offsets, another size); meanwhile a follower restores its leader's snapshot.
    const rewriting = log.rewrite([{ bytes: batchOf(['a much longer value than before']), maxTimestamp: 0 }]);
    await persist(storage, log.stageRestore({ index: 40, epoch: 3, nextOffset: 1200 }));
    await rewriting;
    expect([log.logStartOffset, log.logEndOffset, log.places.startIndex, log.sizeBytes]).toEqual([1200, 1200, 40, 0]);
    const reopened = await createLogManager(storage.reopen()).open(id, {}, { highWatermark: 'replicated' });
    expect([reopened.logStartOffset, reopened.logEndOffset, reopened.sizeBytes]).toEqual([1200, 1200, 0]);
  });

  it('a rewrite of a batch that a head removal in flight deletes writes nothing, so the batch stays deleted', async () => {
    const storage = createMemoryStorage();
    // Writes wait while `held`, as a busy disk would hold them.
    let release: () => void = () => undefined;
    let held: Promise<void> | undefined;
    let writing: () => void = () => undefined;
    const slow = { ...storage, write: async (writes: StorageWrite[]) => {
      if (held !== undefined) writing();
      await held;
      return storage.write(writes);
    } };
    const log = await createLogManager(slow).open(id, { retentionBytes: 0 }, { highWatermark: 'replicated' });
    await persist(storage, log.stageEntries(1, ['a', 'b', 'c'].map((value) => ({ bytes: batchOf([value]), epoch: 1 }))));
    log.advanceHighWatermark(3);
    log.setRemovableThrough(2);
    held = new Promise<void>((resolve) => (release = resolve));
    const writeStarted = new Promise<void>((resolve) => (writing = resolve));
    const removing = log.enforceRetention(Date.now());
    await writeStarted;
    // The cleaner read batch 'a' before retention chose it; its rewrite comes while the removal is being written.
    const rewriting = log.rewrite([{ bytes: batchOf(['a much longer value than before']), maxTimestamp: 0 }]);
    release();
    expect(await removing).toBe(2);
    await rewriting;
    const remaining = await storage.readSummaries(id, 0, 10);
    expect(remaining.map((s) => s.baseOffset)).toEqual([2]);
    expect(log.sizeBytes).toBe(remaining[0]!.sizeBytes);
  });

  it('a batch rewritten after retention read it but before retention removed it: the log size stays that of what is stored', async () => {
    const storage = createMemoryStorage();
    // Reads answer what they read only once `read` is released, as a slow disk would.
    let release: () => void = () => undefined;
    let held: Promise<void> | undefined;
    let reading: () => void = () => undefined;
    const slow = { ...storage, readSummaries: async (...args: Parameters<typeof storage.readSummaries>) => {
      const summaries = await storage.readSummaries(...args);
      if (held !== undefined) reading();
      await held;
      return summaries;
    } };
    const log = await createLogManager(slow).open(id, { retentionBytes: 0 }, { highWatermark: 'replicated' });
    await persist(storage, log.stageEntries(1, ['a', 'b', 'c'].map((value) => ({ bytes: batchOf([value]), epoch: 1 }))));
    log.advanceHighWatermark(3);
    log.setRemovableThrough(2);
    held = new Promise<void>((resolve) => (release = resolve));
    const readDone = new Promise<void>((resolve) => (reading = resolve));
    const removing = log.enforceRetention(Date.now());
    await readDone;
    await log.rewrite([{ bytes: batchOf(['a much longer value than before']), maxTimestamp: 0 }]);
    release();
    expect(await removing).toBe(2);
    const remaining = await storage.readSummaries(id, 0, 10);
    expect(remaining.map((s) => s.baseOffset)).toEqual([2]);
    expect(log.sizeBytes).toBe(remaining[0]!.sizeBytes);
  });

  it('a batch stored out of raft order ends the log at recovery, as a torn one does', async () => {
    const { storage, log } = await openLog();
    await persist(storage, log.stageEntries(1, [{ bytes: batchOf(['a']), epoch: 1 }, { bytes: batchOf(['b']), epoch: 1 }]));
    const [second] = await storage.readSummaries(id, 1, 1);
    const [bytes] = await storage.readBatches(id, 1, 1);
    await storage.write([{ kind: 'putBatch', id, summary: { ...second!, raftIndex: 7 }, bytes: bytes! }]);
    const reopened = await openLog(storage.reopen());
    expect(places(reopened.log)).toEqual([[1, 0, 0, 1]]);
    expect(reopened.log.logEndOffset).toBe(1);
  });

  it('retention removes batches only up to the compaction point, and indices continue after it', async () => {
    const storage = createMemoryStorage();
    const logs = createLogManager(storage);
    const log = await logs.open(id, { retentionBytes: 0 });
    for (const value of ['a', 'b', 'c', 'd']) await log.append(batchOf([value]));
    log.setRemovableThrough(2);
    await log.enforceRetention(Date.now());
    expect([log.places.startIndex, log.places.lastIndex, log.logStartOffset]).toEqual([2, 4, 2]);
    await log.append(batchOf(['e']));
    const reopened = await createLogManager(storage.reopen()).open(id);
    expect(places(reopened)).toEqual([[3, 2, 2, 0], [4, 3, 3, 0], [5, 4, 4, 0]]);
  });

  it('compaction keeps an emptied batch as a header, so no raft index renumbers', async () => {
    const storage = createMemoryStorage();
    const logs = createLogManager(storage);
    const log = await logs.open(id, { cleanupPolicy: 'compact' });
    await log.append(batchOf([{ key: 'k', value: 'old' }]));
    await log.append(batchOf([{ key: 'k', value: 'new' }]));
    await log.append(batchOf([{ key: 'j', value: 'j' }]));
    while (await logs.maintain(Date.now()));
    expect(places(log)).toEqual([[1, 0, 0, 0], [2, 1, 1, 0], [3, 2, 2, 0]]);
    expect(recordsOf(await log.read(0, all)).map((r) => r[2])).toEqual(['new', 'j']);
    const reopened = await createLogManager(storage.reopen()).open(id);
    expect(places(reopened)).toEqual([[1, 0, 0, 0], [2, 1, 1, 0], [3, 2, 2, 0]]);
  });
});
