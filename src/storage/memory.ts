import { StorageClosedError, StorageFullError } from '../errors';
import { freesSpace, isDelete } from './frees-space';
import type { BatchSummary, PartitionId, PartitionMeta, Storage, StorageWrite } from './types';

interface MemoryPartition {
  id: PartitionId;
  /** Ascending by baseOffset. */
  summaries: BatchSummary[];
  bytes: Map<number, Uint8Array>;
  meta?: PartitionMeta;
}

/** Hooks for tests and the simulator: the contents behind the store, to corrupt or inspect. */
export interface MemoryStorage extends Storage {
  /** The stored bytes of a batch (the same array the store keeps: flipping bits corrupts it). */
  storedBatch(id: PartitionId, baseOffset: number): Uint8Array | undefined;
  /**
   * Makes writes that store anything fail as if out of quota while `full` is true; as in
   * Chromium, deletes go through, and one that removes stored batches makes room (clears it).
   */
  setFull(full: boolean): void;
  /** Number of write transactions applied so far. */
  readonly writeCount: number;
  /** A new open handle on the same contents, as opening the database again would give. */
  reopen(): MemoryStorage;
}

interface MemoryContents {
  partitions: Map<string, MemoryPartition>;
  values: Map<string, unknown>;
}

const keyOf = (id: PartitionId) => `${id.partition}\u0000${id.topic}`;

/** Index of the summary holding `offset`, or of the first one after it (may be length). */
function startIndex(summaries: readonly BatchSummary[], offset: number): number {
  let low = 0;
  let high = summaries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (summaries[mid]!.lastOffset < offset) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * A {@link Storage} in memory: for unit tests and the simulator. Writes are atomic and
 * copy their bytes, as IndexedDB's structured clone does.
 * @example const storage = createMemoryStorage(); const log = await openPartitionLog(storage, id, config);
 */
export function createMemoryStorage(contents: MemoryContents = { partitions: new Map(), values: new Map() }): MemoryStorage {
  const { partitions, values } = contents;
  let closed = false;
  let full = false;
  let writeCount = 0;

  const partitionOf = (id: PartitionId, create: boolean): MemoryPartition | undefined => {
    const key = keyOf(id);
    let p = partitions.get(key);
    if (p === undefined && create) {
      p = { id: { ...id }, summaries: [], bytes: new Map() };
      partitions.set(key, p);
    }
    return p;
  };
  const ensureOpen = () => {
    if (closed) throw new StorageClosedError('the in-memory store is closed');
  };

  const apply = (write: StorageWrite) => {
    switch (write.kind) {
      case 'putBatch': {
        const p = partitionOf(write.id, true)!;
        const at = startIndex(p.summaries, write.summary.baseOffset);
        const existing = p.summaries[at];
        const replaces = existing?.baseOffset === write.summary.baseOffset;
        p.summaries.splice(at, replaces ? 1 : 0, { ...write.summary });
        p.bytes.set(write.summary.baseOffset, write.bytes.slice());
        break;
      }
      case 'deleteBatches': {
        const p = partitionOf(write.id, false);
        if (p === undefined) break;
        p.summaries = p.summaries.filter((s) => {
          const inRange = s.baseOffset >= write.fromBaseOffset && s.baseOffset < write.toBaseOffset;
          if (inRange) p.bytes.delete(s.baseOffset);
          return !inRange;
        });
        break;
      }
      case 'putMeta':
        partitionOf(write.id, true)!.meta = { ...write.meta };
        break;
      case 'deletePartition':
        partitions.delete(keyOf(write.id));
        break;
      case 'putValue':
        if (write.value === undefined) values.delete(write.key);
        else values.set(write.key, structuredClone(write.value));
        break;
    }
  };

  const storedBatches = () => [...partitions.values()].reduce((n, p) => n + p.summaries.length, 0);
  const applyAll = (writes: readonly StorageWrite[]) => {
    const before = full ? storedBatches() : 0;
    writes.forEach(apply);
    writeCount++;
    if (full && storedBatches() < before) full = false;
  };

  return {
    async write(writes) {
      ensureOpen();
      if (full && !writes.every(isDelete)) {
        if (!freesSpace(writes)) throw new StorageFullError();
        // As IndexedDB does (indexeddb.ts): the deletes go first to make room, then the whole write.
        applyAll(writes.filter(isDelete));
        if (full) throw new StorageFullError();
      }
      applyAll(writes);
    },
    async readBatches(id, fromBaseOffset, count) {
      ensureOpen();
      const p = partitionOf(id, false);
      if (p === undefined) return [];
      const holder = startIndex(p.summaries, fromBaseOffset);
      const from = (p.summaries[holder]?.baseOffset ?? Infinity) < fromBaseOffset ? holder + 1 : holder;
      return p.summaries.slice(from, from + count).map((s) => p.bytes.get(s.baseOffset)!.slice());
    },
    async readSummaries(id, offset, limit) {
      ensureOpen();
      const p = partitionOf(id, false);
      if (p === undefined) return [];
      const at = startIndex(p.summaries, offset);
      return p.summaries.slice(at, at + limit).map((s) => ({ ...s }));
    },
    async readLastSummaries(id, limit) {
      ensureOpen();
      const p = partitionOf(id, false);
      return p === undefined ? [] : p.summaries.slice(-limit).reverse().map((s) => ({ ...s }));
    },
    async readMeta(id) {
      ensureOpen();
      const meta = partitionOf(id, false)?.meta;
      return meta === undefined ? undefined : { ...meta };
    },
    async readValue(key) {
      ensureOpen();
      return structuredClone(values.get(key));
    },
    async listPartitions() {
      ensureOpen();
      return [...partitions.values()].filter((p) => p.meta !== undefined).map((p) => ({ ...p.id }));
    },
    close() {
      closed = true;
    },
    storedBatch(id, baseOffset) {
      return partitionOf(id, false)?.bytes.get(baseOffset);
    },
    setFull(value) {
      full = value;
    },
    get writeCount() {
      return writeCount;
    },
    reopen: () => createMemoryStorage(contents),
  };
}
