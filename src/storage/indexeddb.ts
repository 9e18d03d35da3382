import { openDB, type DBSchema, type IDBPDatabase, type IDBPObjectStore, type StoreNames } from 'idb';
import { StorageClosedError, StorageError, StorageFullError } from '../errors';
import { freesSpace, isDelete } from './frees-space';
import type { BatchSummary, PartitionId, PartitionMeta, Storage, StorageWrite } from './types';

type BatchKey = [topic: string, partition: number, baseOffset: number];

/** The database of one node slot. Version 3. */
interface LetterboxDb extends DBSchema {
  /** Record batches as their wire bytes, one value per batch. */
  batches: { key: BatchKey; value: ArrayBuffer };
  /** The summary of each batch under the same key, so that scans never read batch values. raftIndex and epoch since version 3. */
  summaries: { key: BatchKey; value: Omit<BatchSummary, 'baseOffset'> };
  partitions: { key: [topic: string, partition: number]; value: PartitionMeta };
  /** Node-level values: the database marker, topic definitions. Since version 2. */
  node: { key: string; value: unknown };
}

const DB_VERSION = 3;

/**
 * Version 3: each stored batch gets its raft index (1, 2, … per partition, in offset order: the
 * raft log starts at the first stored batch) and epoch 0 (the log had no leader epochs yet).
 * Runs inside the upgrade transaction, which commits only once the last update is done.
 */
async function numberStoredBatches(summaries: IDBPObjectStore<LetterboxDb, ArrayLike<StoreNames<LetterboxDb>>, 'summaries', 'versionchange'>): Promise<void> {
  let partition: string | undefined;
  let raftIndex = 0;
  for (let cursor = await summaries.openCursor(); cursor !== null; cursor = await cursor.continue()) {
    const [topic, number] = cursor.key;
    const key = `${number}\u0000${topic}`;
    raftIndex = key === partition ? raftIndex + 1 : 1;
    partition = key;
    await cursor.update({ ...cursor.value, raftIndex, epoch: 0 });
  }
}

export interface IndexedDbStorageInit {
  /** How long to wait for other connections (an older tab) to let an upgrade through. Default 5000. */
  blockedTimeoutMs?: number;
  /** Called once when the store closes by itself: another tab upgraded the database, or the browser terminated it. */
  onClose?: (error: StorageClosedError) => void;
}

const partitionRange = (id: PartitionId, from: number, to: number, openEnd = true) =>
  IDBKeyRange.bound([id.topic, id.partition, from], [id.topic, id.partition, to], false, openEnd);

/** A batch's bytes as an ArrayBuffer of exactly that length: a view into a larger buffer would store all of it. */
function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  const { buffer, byteOffset, byteLength } = bytes;
  if (buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength) return buffer;
  return bytes.slice().buffer as ArrayBuffer;
}

function translate(error: unknown): Error {
  if (error instanceof Error && error.name === 'QuotaExceededError') {
    return new StorageFullError('storage quota exceeded: the write was not applied', { cause: error });
  }
  if (error instanceof Error && error.name === 'InvalidStateError') {
    return new StorageClosedError('the IndexedDB connection is closed', { cause: error });
  }
  if (error instanceof StorageClosedError || error instanceof StorageError) return error;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new StorageError(`IndexedDB failed: ${message}`, { cause: error });
}

/**
 * Opens (creating or upgrading) the IndexedDB database `name` as a {@link Storage}.
 * Writes use relaxed durability: `complete` fires once the data is handed to the OS, so an
 * acknowledged write survives a browser crash; only an OS crash or power loss can lose it
 * (Chromium's default has been relaxed since v121; strict costs ~40% and fsyncs per commit).
 * @example const storage = await openIndexedDbStorage('letterbox-slot-0');
 */
export async function openIndexedDbStorage(name: string, init: IndexedDbStorageInit = {}): Promise<Storage> {
  let closedBy: StorageClosedError | undefined;
  let db: IDBPDatabase<LetterboxDb> | undefined;
  const closeBecause = (error: StorageClosedError) => {
    if (closedBy !== undefined) return;
    closedBy = error;
    db?.close();
    init.onClose?.(error);
  };

  const timeoutMs = init.blockedTimeoutMs ?? 5000;
  let blockedTimer: ReturnType<typeof setTimeout> | undefined;
  let rejectBlocked: (error: Error) => void = () => {};
  const blocked = new Promise<never>((_, reject) => (rejectBlocked = reject));
  const opening = openDB<LetterboxDb>(name, DB_VERSION, {
    upgrade(database, oldVersion, _newVersion, transaction) {
      if (oldVersion < 1) {
        database.createObjectStore('batches');
        database.createObjectStore('summaries');
        database.createObjectStore('partitions');
      }
      if (oldVersion < 2) database.createObjectStore('node');
      // A failed update aborts the upgrade transaction, which fails the open: nothing to catch here but the rejection.
      if (oldVersion >= 1 && oldVersion < 3) numberStoredBatches(transaction.objectStore('summaries')).catch(() => undefined);
    },
    blocked() {
      blockedTimer ??= setTimeout(
        () => rejectBlocked(new StorageError(`opening ${name} stayed blocked by another connection for ${timeoutMs} ms`, { retriable: true })),
        timeoutMs,
      );
    },
    blocking: () => closeBecause(new StorageClosedError(`another tab is upgrading ${name}; this connection closed to let it`)),
    terminated: () => closeBecause(new StorageClosedError(`the browser closed ${name} unexpectedly`)),
  });
  try {
    db = await Promise.race([opening, blocked]);
  } catch (error) {
    // Should the open still succeed later, close that connection instead of leaking it.
    void opening.then((late) => late.close(), () => undefined);
    throw translate(error);
  } finally {
    clearTimeout(blockedTimer);
  }
  const database = db;

  const ensureOpen = () => {
    if (closedBy !== undefined) throw closedBy;
  };

  /** Runs `body` against a transaction and translates every failure into the project's errors. */
  async function run<T>(body: () => Promise<T>): Promise<T> {
    ensureOpen();
    try {
      return await body();
    } catch (error) {
      throw translate(closedBy ?? error);
    }
  }

  /** Applies `writes` in one transaction. */
  async function commit(writes: readonly StorageWrite[]): Promise<void> {
    // Only the stores these writes touch: a commit of group offsets (node) must not queue behind appends.
    const scope = new Set<'batches' | 'summaries' | 'partitions' | 'node'>();
    for (const w of writes) {
      if (w.kind === 'putValue') scope.add('node');
      else if (w.kind === 'putMeta') scope.add('partitions');
      else {
        scope.add('batches').add('summaries');
        if (w.kind === 'deletePartition') scope.add('partitions');
      }
    }
    if (scope.size === 0) return;
    const tx = database.transaction([...scope], 'readwrite', { durability: 'relaxed' });
    const store = <N extends 'batches' | 'summaries' | 'partitions' | 'node'>(name: N) => tx.objectStore(name);
    const requests: Promise<unknown>[] = [];
    for (const w of writes) {
      switch (w.kind) {
        case 'putBatch': {
          const key: BatchKey = [w.id.topic, w.id.partition, w.summary.baseOffset];
          const { baseOffset: _, ...rest } = w.summary;
          requests.push(store('batches').put(exactBuffer(w.bytes), key), store('summaries').put(rest, key));
          break;
        }
        case 'deleteBatches': {
          const range = partitionRange(w.id, w.fromBaseOffset, w.toBaseOffset);
          requests.push(store('batches').delete(range), store('summaries').delete(range));
          break;
        }
        case 'putMeta':
          requests.push(store('partitions').put(w.meta, [w.id.topic, w.id.partition]));
          break;
        case 'deletePartition': {
          const range = partitionRange(w.id, -Infinity, Infinity, false);
          requests.push(store('batches').delete(range), store('summaries').delete(range), store('partitions').delete([w.id.topic, w.id.partition]));
          break;
        }
        case 'putValue':
          requests.push(w.value === undefined ? store('node').delete(w.key) : store('node').put(w.value, w.key));
          break;
      }
    }
    // Committed now, not when this task ends: a leader's task goes on (replication frames, answers) after its writes are issued.
    tx.commit();
    // Every request's own rejection is observed; the transaction's outcome is the verdict.
    await Promise.all([...requests.map((r) => r.catch(() => undefined)), tx.done]);
  }

  return {
    write: (writes: readonly StorageWrite[]) =>
      run(async () => {
        try {
          await commit(writes);
        } catch (error) {
          if (!(error instanceof Error && error.name === 'QuotaExceededError') || !freesSpace(writes)) throw error;
          // Out of quota, Chromium still lets a transaction of deletes only through, and counts
          // the space it frees: deletes that only move metadata (retention, deleteRecords) go
          // first, then the whole write again. Should that still fail, the deletes stay applied
          // without the metadata, which only moves the log start over records already gone.
          await commit(writes.filter(isDelete));
          await commit(writes);
        }
      }),

    readBatches: (id, fromBaseOffset, count) =>
      run(async () => {
        const buffers = await database.getAll('batches', partitionRange(id, fromBaseOffset, Infinity, false), count);
        return buffers.map((b) => new Uint8Array(b));
      }),

    readSummaries: (id, offset, limit) =>
      run(async () => {
        const store = database.transaction('summaries', 'readonly').store;
        let from = offset;
        const holder = await store.openCursor(partitionRange(id, -Infinity, offset, false), 'prev');
        if (holder !== null && holder.value.lastOffset >= offset) from = holder.key[2];
        const range = partitionRange(id, from, Infinity);
        const [keys, values] = await Promise.all([store.getAllKeys(range, limit), store.getAll(range, limit)]);
        return values.map((value, i) => ({ baseOffset: keys[i]![2], ...value }));
      }),

    readLastSummaries: (id, limit) =>
      run(async () => {
        const out: BatchSummary[] = [];
        const tx = database.transaction('summaries', 'readonly');
        let cursor = await tx.store.openCursor(partitionRange(id, -Infinity, Infinity, false), 'prev');
        while (cursor !== null && out.length < limit) {
          out.push({ baseOffset: cursor.key[2], ...cursor.value });
          cursor = await cursor.continue();
        }
        return out;
      }),

    readMeta: (id) => run(() => database.get('partitions', [id.topic, id.partition])),

    readValue: (key) => run(() => database.get('node', key)),

    listPartitions: () =>
      run(async () => (await database.getAllKeys('partitions')).map(([topic, partition]) => ({ topic, partition }))),

    close() {
      closeBecause(new StorageClosedError(`${name} was closed`));
    },
  };
}
