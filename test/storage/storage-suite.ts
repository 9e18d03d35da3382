import { beforeEach, describe, expect, it } from 'vitest';
import { StorageClosedError } from '../../src/errors';
import type { BatchSummary, PartitionId, Storage } from '../../src/storage';

/** A fake batch: its bytes name its offsets, so reads can be checked. */
export function fakeBatch(baseOffset: number, records: number, sizeBytes = 100): { summary: BatchSummary; bytes: Uint8Array } {
  const bytes = new Uint8Array(sizeBytes);
  new DataView(bytes.buffer).setFloat64(0, baseOffset);
  return { summary: { baseOffset, lastOffset: baseOffset + records - 1, maxTimestamp: 1000 + baseOffset, sizeBytes, raftIndex: baseOffset / 10 + 1, epoch: 2 }, bytes };
}
const baseOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset).getFloat64(0);

/**
 * The acceptance tests every {@link Storage} passes (as automerge-repo ships its adapter
 * tests): run against the in-memory and the IndexedDB implementation.
 */
export function runStorageTests(name: string, open: () => Promise<Storage>): void {
  describe(`Storage contract: ${name}`, () => {
    const a: PartitionId = { topic: 'a', partition: 0 };
    const a1: PartitionId = { topic: 'a', partition: 1 };
    const ab: PartitionId = { topic: 'ab', partition: 0 };
    let storage: Storage;

    beforeEach(async () => {
      storage = await open();
      // batches of 10 records at 0, 10, 20, 30; other partitions interleaved in key order
      const writes = [0, 10, 20, 30].flatMap((base) => [
        { kind: 'putBatch' as const, id: a, ...fakeBatch(base, 10) },
        { kind: 'putBatch' as const, id: a1, ...fakeBatch(base, 10) },
        { kind: 'putBatch' as const, id: ab, ...fakeBatch(base, 10) },
      ]);
      await storage.write([...writes, { kind: 'putMeta', id: a, meta: { logStartOffset: 0, recoveryPoint: 0, highWatermark: 40 } }]);
    });

    it('reads a count of batches from the first at or after a base offset', async () => {
      const read = async (fromBaseOffset: number, count: number) => (await storage.readBatches(a, fromBaseOffset, count)).map(baseOf);
      expect(await read(0, 10)).toEqual([0, 10, 20, 30]);
      expect(await read(10, 10)).toEqual([10, 20, 30]);
      expect(await read(11, 2)).toEqual([20, 30]);
      expect(await read(10, 1)).toEqual([10]);
      expect(await read(-5, 1)).toEqual([0]);
      expect(await read(31, 10)).toEqual([]);
      expect(await storage.readBatches({ topic: 'none', partition: 0 }, 0, 10)).toEqual([]);
    });

    it('reads summaries forwards and backwards', async () => {
      expect((await storage.readSummaries(a, 12, 2)).map((s) => s.baseOffset)).toEqual([10, 20]);
      expect(await storage.readSummaries(a, 35, 10)).toEqual([fakeBatch(30, 10).summary]);
      expect((await storage.readLastSummaries(a, 3)).map((s) => s.baseOffset)).toEqual([30, 20, 10]);
      expect(await storage.readLastSummaries({ topic: 'none', partition: 0 }, 3)).toEqual([]);
    });

    it('deletes a range of batches and only that partition', async () => {
      await storage.write([{ kind: 'deleteBatches', id: a, fromBaseOffset: 10, toBaseOffset: 30 }]);
      expect((await storage.readSummaries(a, 0, 10)).map((s) => s.baseOffset)).toEqual([0, 30]);
      expect((await storage.readSummaries(a1, 0, 10)).map((s) => s.baseOffset)).toEqual([0, 10, 20, 30]);
      const read = await storage.readBatches(a, 0, 10);
      expect(read.map(baseOf)).toEqual([0, 30]);
    });

    it('replaces a batch stored at the same base offset (compaction rewrites in place)', async () => {
      await storage.write([{ kind: 'putBatch', id: a, ...fakeBatch(10, 5, 40) }]);
      const [summary] = await storage.readSummaries(a, 10, 1);
      expect(summary).toEqual({ baseOffset: 10, lastOffset: 14, maxTimestamp: 1010, sizeBytes: 40, raftIndex: 2, epoch: 2 });
      expect((await storage.readBatches(a, 10, 1))[0]!.length).toBe(40);
    });

    it('keeps metadata per partition and lists partitions that have it', async () => {
      expect(await storage.readMeta(a)).toEqual({ logStartOffset: 0, recoveryPoint: 0, highWatermark: 40 });
      expect(await storage.readMeta(a1)).toBeUndefined();
      expect(await storage.listPartitions()).toEqual([a]);
      await storage.write([{ kind: 'deletePartition', id: a }]);
      expect(await storage.readMeta(a)).toBeUndefined();
      expect(await storage.readSummaries(a, 0, 10)).toEqual([]);
      expect((await storage.readSummaries(ab, 0, 10)).length).toBe(4);
    });

    it('copies written bytes: changing the caller’s buffer later changes nothing stored', async () => {
      const batch = fakeBatch(40, 1);
      await storage.write([{ kind: 'putBatch', id: a, ...batch }]);
      batch.bytes.fill(0xff);
      const [read] = await storage.readBatches(a, 40, 1);
      expect(baseOf(read!)).toBe(40);
    });

    it('stores exactly the bytes of a view into a larger buffer', async () => {
      const big = new Uint8Array(1000);
      const view = big.subarray(100, 164);
      new DataView(big.buffer).setFloat64(100, 40);
      await storage.write([{ kind: 'putBatch', id: a, summary: { baseOffset: 40, lastOffset: 40, maxTimestamp: 0, sizeBytes: 64, raftIndex: 5, epoch: 2 }, bytes: view }]);
      const [read] = await storage.readBatches(a, 40, 1);
      expect(read!.byteLength).toBe(64);
      expect(baseOf(read!)).toBe(40);
    });

    it('keeps node-level values as structured clones, and deletes them', async () => {
      const marker = { incarnation: 'abc', createdAt: 5, topics: [{ name: 't', partitions: 3 }] };
      await storage.write([{ kind: 'putValue', key: 'marker', value: marker }]);
      marker.createdAt = 6;
      expect(await storage.readValue('marker')).toEqual({ incarnation: 'abc', createdAt: 5, topics: [{ name: 't', partitions: 3 }] });
      expect(await storage.readValue('missing')).toBeUndefined();
      await storage.write([{ kind: 'putValue', key: 'marker', value: undefined }]);
      expect(await storage.readValue('marker')).toBeUndefined();
    });

    it('applies and settles writes to one kind of record in call order, issued without waiting', async () => {
      const settled: string[] = [];
      const issue = (name: string, writes: Parameters<Storage['write']>[0]) => storage.write(writes).then(() => void settled.push(name));
      await Promise.all([
        issue('value 1', [{ kind: 'putValue', key: 'k', value: 1 }]),
        issue('value 2 and a batch', [{ kind: 'putValue', key: 'k', value: 2 }, { kind: 'putBatch', id: a, ...fakeBatch(40, 1) }]),
        issue('value 3', [{ kind: 'putValue', key: 'k', value: 3 }]),
        issue('batch deleted', [{ kind: 'deleteBatches', id: a, fromBaseOffset: 40, toBaseOffset: 41 }]),
        issue('batch again', [{ kind: 'putBatch', id: a, ...fakeBatch(40, 2) }]),
      ]);
      expect(await storage.readValue('k')).toBe(3);
      expect(await storage.readSummaries(a, 40, 1)).toEqual([fakeBatch(40, 2).summary]);
      // Each kind's writes settled in call order.
      const order = (names: string[]) => settled.filter((name) => names.includes(name));
      expect(order(['value 1', 'value 2 and a batch', 'value 3'])).toEqual(['value 1', 'value 2 and a batch', 'value 3']);
      expect(order(['value 2 and a batch', 'batch deleted', 'batch again'])).toEqual(['value 2 and a batch', 'batch deleted', 'batch again']);
    });

    it('rejects every call after close with StorageClosedError', async () => {
      storage.close();
      await expect(storage.readMeta(a)).rejects.toBeInstanceOf(StorageClosedError);
      await expect(storage.write([])).rejects.toBeInstanceOf(StorageClosedError);
    });
  });
}
