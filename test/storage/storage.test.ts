import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { openDB } from 'idb';
import { StorageClosedError } from '../../src/errors';
import { createMemoryStorage, openIndexedDbStorage } from '../../src/storage';
import { fakeBatch, runStorageTests } from './storage-suite';

let dbCounter = 0;
runStorageTests('in-memory', async () => createMemoryStorage());
runStorageTests('IndexedDB (fake-indexeddb)', () => openIndexedDbStorage(`suite-${dbCounter++}`));

describe('IndexedDB storage lifecycle', () => {
  it('closes itself when another tab upgrades the database, and says so', async () => {
    let closedWith: StorageClosedError | undefined;
    const storage = await openIndexedDbStorage('upgrade-me', { onClose: (e) => (closedWith = e) });
    const upgraded = await openDB('upgrade-me', 99); // another tab, newer version
    expect(closedWith).toBeInstanceOf(StorageClosedError);
    expect(closedWith?.message).toMatch(/another tab is upgrading/);
    await expect(storage.readMeta({ topic: 't', partition: 0 })).rejects.toBeInstanceOf(StorageClosedError);
    upgraded.close();
  });

  it('gives up with a typed error when an older connection blocks the upgrade for too long', async () => {
    // A version-1 database held open by a connection that ignores versionchange.
    const older = await openDB('blocked-db', 1, {
      upgrade(db) {
        for (const name of ['batches', 'summaries', 'partitions']) db.createObjectStore(name);
      },
    });
    older.addEventListener('versionchange', () => undefined);
    await expect(openIndexedDbStorage('blocked-db', { blockedTimeoutMs: 50 })).rejects.toMatchObject({ name: 'StorageError', retriable: true });
    older.close();
  });

  it('numbers the batches of a version-2 database in raft order when it opens it (version 3), per partition', async () => {
    const v2 = await openDB('version-2', 2, {
      upgrade(db) {
        for (const name of ['batches', 'summaries', 'partitions', 'node']) db.createObjectStore(name);
      },
    });
    for (const [topic, partition, base] of [['t', 0, 0], ['t', 0, 10], ['t', 1, 5], ['t', 0, 20]] as const) {
      await v2.put('summaries', { lastOffset: base + 9, maxTimestamp: 1, sizeBytes: 100 }, [topic, partition, base]);
    }
    v2.close();
    const storage = await openIndexedDbStorage('version-2');
    const numbered = (summaries: Array<{ raftIndex: number; epoch: number }>) => summaries.map((s) => [s.raftIndex, s.epoch]);
    expect(numbered(await storage.readSummaries({ topic: 't', partition: 0 }, 0, 10))).toEqual([[1, 0], [2, 0], [3, 0]]);
    expect(numbered(await storage.readSummaries({ topic: 't', partition: 1 }, 0, 10))).toEqual([[1, 0]]);
    storage.close();
  });

  it('memory storage refuses writes while full, applying none of them, and recovers', async () => {
    const storage = createMemoryStorage();
    const id = { topic: 't', partition: 0 };
    storage.setFull(true);
    await expect(storage.write([{ kind: 'putBatch', id, ...fakeBatch(0, 1) }])).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR', retriable: true });
    expect(await storage.readSummaries(id, 0, 1)).toEqual([]);
    storage.setFull(false);
    await storage.write([{ kind: 'putBatch', id, ...fakeBatch(0, 1) }]);
    expect(await storage.readSummaries(id, 0, 1)).toHaveLength(1);
  });

  it('memory storage, full, lets deletes through as Chromium does: they make room, so a delete with its metadata goes through whole', async () => {
    const storage = createMemoryStorage();
    const id = { topic: 't', partition: 0 };
    await storage.write([{ kind: 'putBatch', id, ...fakeBatch(0, 1) }, { kind: 'putBatch', id, ...fakeBatch(2, 1) }]);
    storage.setFull(true);
    const meta = { logStartOffset: 2, recoveryPoint: 2, highWatermark: 4 };
    // Metadata alone, or a value, cannot be stored; deleting nothing makes no room.
    await expect(storage.write([{ kind: 'putMeta', id, meta }])).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    await expect(storage.write([{ kind: 'deleteBatches', id, fromBaseOffset: 10, toBaseOffset: 20 }, { kind: 'putMeta', id, meta }])).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    await expect(storage.write([{ kind: 'deleteBatches', id, fromBaseOffset: 0, toBaseOffset: 2 }, { kind: 'putValue', key: 'k', value: 1 }])).rejects.toMatchObject({ code: 'KAFKA_STORAGE_ERROR' });
    expect(await storage.readSummaries(id, 0, 10)).toHaveLength(2);
    // Deletes with partition metadata only: the deletes make room, then the whole write applies.
    await storage.write([{ kind: 'deleteBatches', id, fromBaseOffset: 0, toBaseOffset: 2 }, { kind: 'putMeta', id, meta }]);
    expect((await storage.readSummaries(id, 0, 10)).map((s) => s.baseOffset)).toEqual([2]);
    expect(await storage.readMeta(id)).toEqual(meta);
  });
});
