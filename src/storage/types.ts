/** One partition of one topic. */
export interface PartitionId {
  topic: string;
  partition: number;
}

/**
 * What is known of a stored batch without reading it: kept beside the bytes so that
 * retention, size accounting and lookups by offset or time never read batch values.
 */
export interface BatchSummary {
  baseOffset: number;
  /** Offset of the batch's last record (baseOffset + lastOffsetDelta). */
  lastOffset: number;
  maxTimestamp: number;
  sizeBytes: number;
  /**
   * The batch's place in the partition's raft log: the i-th batch is raft entry i, so an
   * index never renumbers (the cleaner keeps emptied batches, retention deletes only below
   * raft's compaction point). One more than the previous batch's.
   */
  raftIndex: number;
  /** The batch's partitionLeaderEpoch: the raft term it was appended in. */
  epoch: number;
  /**
   * An idempotent producer's batch: its producer id, epoch and base sequence, so that the
   * partition's producer state is rebuilt from summaries on open (absent in older summaries,
   * and for batches of no producer).
   */
  producer?: { id: number; epoch: number; baseSequence: number };
}

/** Per-partition metadata, written only when it changes. */
export interface PartitionMeta {
  /** First offset a consumer may read; retention and deleteRecords advance it. */
  logStartOffset: number;
  /** Batches below this offset were verified once; recovery checks only from here on. */
  recoveryPoint: number;
  /** Last checkpointed high watermark. */
  highWatermark: number;
  /**
   * The last batch removed from the log's head (retention, deleteRecords, raft compaction):
   * where raft indices continue after it. Absent when none was (or before version 3).
   */
  removedThrough?: { raftIndex: number; epoch: number; nextOffset: number };
}

/** One change inside an atomic {@link Storage.write}. */
export type StorageWrite =
  | { kind: 'putBatch'; id: PartitionId; summary: BatchSummary; bytes: Uint8Array }
  /** Deletes the batches whose baseOffset is in [fromBaseOffset, toBaseOffset). */
  | { kind: 'deleteBatches'; id: PartitionId; fromBaseOffset: number; toBaseOffset: number }
  | { kind: 'putMeta'; id: PartitionId; meta: PartitionMeta }
  /** Deletes a partition's batches and metadata. */
  | { kind: 'deletePartition'; id: PartitionId }
  /** Node-level values (the database marker, topic definitions); `value: undefined` deletes. */
  | { kind: 'putValue'; key: string; value: unknown };

/**
 * What the partition log needs from a durable store, nothing more. Implementations:
 * IndexedDB ({@link openIndexedDbStorage}) and in-memory ({@link createMemoryStorage}).
 */
export interface Storage {
  /**
   * Applies `writes` atomically — all or none — and resolves once they are durable.
   * Rejects with StorageFullError when out of quota, StorageClosedError or StorageError;
   * a rejected write applied nothing, and later writes still go ahead. One exception: out
   * of quota, a write of deletes and partition metadata only (retention, deleteRecords)
   * frees its space first, as Chromium lets delete-only transactions through, so its
   * deletes may stay applied without the metadata.
   *
   * Order: two writes that touch the same kind of record — batches (with their summaries),
   * partition metadata, or node values — are applied, settle and become durable in the
   * order `write` was called, issued without waiting for each other or not: a later one
   * never takes effect, resolves or survives a crash without the earlier one (unless that
   * one was rejected). Writes touching only different kinds may complete in either order.
   * The group commit hands over one transaction at a time; callers that write directly
   * and do not wait rely on this order.
   * @example await storage.write([{ kind: 'putValue', key: 'topics', value: topics }]);
   */
  write(writes: readonly StorageWrite[]): Promise<void>;
  /**
   * At most `count` batches in offset order from the first whose baseOffset is at or past
   * `fromBaseOffset`. Callers choose them from summaries, so a read is one request.
   */
  readBatches(id: PartitionId, fromBaseOffset: number, count: number): Promise<Uint8Array[]>;
  /** Summaries in offset order from the one that holds `offset` (or the first after it), at most `limit`. */
  readSummaries(id: PartitionId, offset: number, limit: number): Promise<BatchSummary[]>;
  /** The last `limit` summaries, newest first. */
  readLastSummaries(id: PartitionId, limit: number): Promise<BatchSummary[]>;
  readMeta(id: PartitionId): Promise<PartitionMeta | undefined>;
  /** A node-level value written with `putValue` (a structured clone), or undefined. */
  readValue(key: string): Promise<unknown>;
  /** Every partition that has metadata. */
  listPartitions(): Promise<PartitionId[]>;
  /** Closes the store; later calls reject with StorageClosedError. */
  close(): void;
}
