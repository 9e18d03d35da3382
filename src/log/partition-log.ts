import { InvalidOffsetError, InvalidProducerEpochError, InvalidRecordError, OffsetOutOfRangeError, OutOfOrderSequenceNumberError, RecordBatchTooLargeError, StorageError, UnknownTopicOrPartitionError, type LetterboxError } from '../errors';
import { decodeBatch, decodeBatchAsync, nextOffset, readBatchHeader, setBaseOffset, setPartitionLeaderEpoch, verifyBatch, type BatchHeader } from '../protocol';
import type { BatchSummary, PartitionId, PartitionMeta, Storage, StorageWrite } from '../storage';
import { BatchIndex } from './batch-index';
import { recoverPartition } from './recovery';
import { compacts, deletes, type LogConfig } from './config';
import type { FlushPart, FlushSource, GroupCommitter } from './group-commit';
import { TailCache } from './tail-cache';
import { isIdempotentBatch, ProducerStateTable, type ProducerDecision, type ProducerFields, type ProducerImage } from './producer-state';
import type { RecentSlots } from './recent-slots';

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
}

export interface ReadOptions {
  /** Stop after the batch that brings the total past this (at least one batch is returned). */
  maxBytes: number;
  /** Stop once this many records at or after the offset are included. */
  maxRecords?: number;
  /**
   * Read only batches wholly below this (as Kafka, a batch the high watermark cuts is not
   * visible yet); default and upper limit: the high watermark. Replication passes the log end.
   */
  endOffset?: number;
}

export type OffsetSpec = 'earliest' | 'latest' | { timestamp: number };

/** Summaries read per storage call while scanning. */
const SCAN_CHUNK = 1024;
/**
 * Bytes a sequential reader's read-ahead asks storage for at once; a reader holds at most
 * about twice this plus one fetch.
 */
const READ_AHEAD_BYTES = 2 * 1024 * 1024;
/**
 * Logs of one node that keep a read-ahead at once (the most recently read): bounds what
 * read-ahead holds per node to about 8 × 4 MiB, however many partitions are being caught up.
 */
export const READ_AHEAD_LOGS_MAX = 8;
/** Summaries a sequential reader's window holds: one storage request sizes many fetches. */
const WINDOW_SUMMARIES = 256;
/** Appends waiting for a flush, per partition, before `append` makes its caller wait. */
const PENDING_BYTES_MAX = 32 * 1024 * 1024;
/** Newest batches kept in memory per partition for readers at the tail. */
const TAIL_CACHE_BYTES = 1024 * 1024;
/** Logs of one node that keep a tail cache at once (the most recently appended to): at most 16 MiB per node. */
export const TAIL_CACHE_LOGS_MAX = 16;

/** What the raft side of a log reads of its batches' places (batch-index.ts), without changing them. */
export type BatchPlaces = Pick<BatchIndex, 'startIndex' | 'startEpoch' | 'lastIndex' | 'nextOffset' | 'at' | 'epochAt' | 'indexOfOffset' | 'endOfEpoch' | 'epochs'>;

/** A raft entry's batch for {@link PartitionLog.stageEntries}: its bytes and the term it is appended in. */
export interface StagedBatch {
  bytes: Uint8Array;
  epoch: number;
}

interface PendingAppend {
  bytes: Uint8Array;
  header: BatchHeader;
  keepOffsets: boolean;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

/**
 * The error a refused idempotent batch is answered with (nothing written), undefined when it is
 * appended or answered as a duplicate.
 * @example const error = producerRefusal(log.producers.decide(header), 'orders', 0, header);
 */
export function producerRefusal(decision: ProducerDecision, topic: string, partition: number, batch: ProducerFields): LetterboxError | undefined {
  switch (decision.kind) {
    case 'outOfOrder':
      return new OutOfOrderSequenceNumberError(topic, partition, batch.producerId, decision.expected, decision.got);
    case 'staleEpoch':
      return new InvalidProducerEpochError(topic, partition, batch.producerId, decision.got, decision.current);
    case 'invalid':
      return new InvalidRecordError(decision.reason);
    default:
      return undefined;
  }
}

/** A summary's producer fields, for an idempotent producer's batch. */
const producerOf = (header: BatchHeader): BatchSummary['producer'] =>
  isIdempotentBatch(header) && header.producerEpoch >= 0 && header.baseSequence >= 0 ? { id: header.producerId, epoch: header.producerEpoch, baseSequence: header.baseSequence } : undefined;

/** The offset after a batch's last record. */
const nextOffsetAfter = (batch: Uint8Array): number => nextOffset(readBatchHeader(batch));

const bytesOf = (batches: readonly Uint8Array[]) => batches.reduce((sum, b) => sum + b.length, 0);

/** How many of `batches` a read from `offset` returns: at least one, then up to maxBytes and maxRecords. */
function servedCount(batches: readonly Uint8Array[], offset: number, options: ReadOptions): number {
  const maxRecords = options.maxRecords ?? Infinity;
  let count = 0;
  let bytes = 0;
  let records = 0;
  for (const batch of batches) {
    if (count > 0 && (bytes >= options.maxBytes || records >= maxRecords)) break;
    const header = readBatchHeader(batch);
    records += nextOffset(header) - Math.max(offset, header.baseOffset);
    bytes += batch.length;
    count++;
  }
  return count;
}

/**
 * Throws what a log of `topic` with `config` refuses `bytes` with: a corrupt batch, one over
 * max.message.bytes, a keyless record on a compacted topic. Returns the batch's header.
 * @example checkBatch(defaultLogConfig, 'orders', bytes);
 */
export function checkBatch(config: LogConfig, topic: string, bytes: Uint8Array): BatchHeader {
  const header = verifyBatch(bytes);
  if (bytes.length > config.maxMessageBytes) throw new RecordBatchTooLargeError(bytes.length, config.maxMessageBytes);
  if (compacts(config) && header.compression === 'none') {
    // Kafka refuses keyless records on compacted topics; compressed batches are checked when cleaned.
    if (decodeBatch(bytes).records.some((r) => r.key === null)) {
      throw new InvalidRecordError(`compacted topic ${topic} cannot accept a record without a key`);
    }
  }
  return header;
}

/**
 * One partition's log over a {@link Storage}: record batches in offset order, appended
 * through the shared group committer. Its logEndOffset is the durable end: an append
 * resolves only after its transaction fired `complete`.
 */
export class PartitionLog implements FlushSource {
  readonly id: PartitionId;
  #config: LogConfig;
  #logStartOffset: number;
  #logEndOffset: number;
  #highWatermark: number;
  #recoveryPoint: number;
  #sizeBytes: number;
  /** Offset the next leader append gets; ahead of logEndOffset while a flush is in flight. */
  #nextOffset: number;
  readonly #pending: PendingAppend[] = [];
  #pendingBytes = 0;
  #inFlight = 0;
  /** Batches numbered by the flush in flight, not yet in #places. */
  #inFlightBatches = 0;
  #truncating = false;
  readonly #idleWaiters: Array<() => void> = [];
  readonly #roomWaiters: Array<() => void> = [];
  #followsDurableEnd: boolean;
  /** Fetches waiting at the end of the log, woken when the high watermark passes their offset. */
  readonly #hwWaiters = new Set<{ offset: number; wake: () => void }>();
  readonly #tail = new TailCache(TAIL_CACHE_BYTES);
  /** For a sequential reader: batches read ahead of it and the request in flight after them; dropped by any rewrite. */
  #readAhead: { offset: number; endOffset: number; buffered: Uint8Array[]; pending: Promise<Uint8Array[]> | undefined } | undefined;
  /**
   * Summaries from a sequential reader's position on, read a chunk at a time so that a fetch
   * costs one storage request (a batch read sized by them); dropped by any rewrite.
   */
  #window: { from: number; summaries: readonly BatchSummary[] } = { from: Infinity, summaries: [] };
  /** Counts rewrites, so a read that overlapped one is done again. */
  #rewrites = 0;
  /** Counts restores from a leader's snapshot, so a head removal chosen before one is dropped. */
  #restores = 0;
  /** The base offset of the last batch a head removal in flight deletes (-1: none), which a rewrite must not put back. */
  #removingThrough = -1;
  #deleted = false;
  /** Raft index, offsets and epoch of every batch after the last removed from the head. */
  #places: BatchIndex;
  /** Idempotent producers' state as of the last batch numbered (staged or in a flush). */
  #producers: ProducerStateTable;
  /** Leader epoch written into the batches `append` numbers (a log not replicated by raft). */
  #epoch = 0;
  /** Retention and deleteRecords delete batches up to this raft index only: raft's compaction point (none until raft says; no bound without raft). */
  #removableThrough: number;
  #removedThrough: PartitionMeta['removedThrough'];
  /** The offset the owner says is committed (advanceHighWatermark); the high watermark follows it up to the durable end. */
  #committedEnd = 0;

  constructor(
    readonly storage: Storage,
    readonly committer: GroupCommitter,
    /** Shared by the node's logs: which of them may keep a read-ahead, and a tail cache. */
    readonly slots: { readAheads: RecentSlots; tailCaches: RecentSlots },
    id: PartitionId,
    config: LogConfig,
    state: { meta: PartitionMeta; logEndOffset: number; sizeBytes: number; places: BatchIndex; producers: ProducerStateTable; followsDurableEnd: boolean },
  ) {
    this.id = { ...id };
    this.#config = config;
    this.#logStartOffset = state.meta.logStartOffset;
    this.#recoveryPoint = state.meta.recoveryPoint;
    this.#logEndOffset = state.logEndOffset;
    this.#nextOffset = state.logEndOffset;
    this.#sizeBytes = state.sizeBytes;
    this.#places = state.places;
    this.#producers = state.producers;
    this.#removedThrough = state.meta.removedThrough;
    this.#followsDurableEnd = state.followsDurableEnd;
    this.#removableThrough = state.followsDurableEnd ? Infinity : 0;
    this.#highWatermark = state.followsDurableEnd ? state.logEndOffset : Math.min(state.meta.highWatermark, state.logEndOffset);
  }

  get logStartOffset(): number {
    return this.#logStartOffset;
  }
  /** One past the last durable offset. */
  get logEndOffset(): number {
    return this.#logEndOffset;
  }
  /** Consumers read below this. A single node's high watermark is its durable end. */
  get highWatermark(): number {
    return this.#highWatermark;
  }
  /** Bytes of all stored batches. */
  get sizeBytes(): number {
    return this.#sizeBytes;
  }
  get config(): LogConfig {
    return this.#config;
  }

  /** Applies new topic settings (alterConfigs); the next maintenance pass obeys them. */
  setConfig(config: LogConfig): void {
    this.#config = config;
  }

  /**
   * Moves the high watermark forward to `offset` (never back), as soon as the log is durable
   * that far: at once, or when the write that takes it there is.
   * @example log.advanceHighWatermark(committedOffset);
   */
  advanceHighWatermark(offset: number): void {
    this.#committedEnd = Math.max(this.#committedEnd, offset);
    this.#followCommitted();
  }

  /** The high watermark goes as far as what is committed and durable here (a follower may learn of a commit before its write is). */
  #followCommitted(): void {
    const offset = Math.min(this.#committedEnd, this.#logEndOffset);
    if (offset > this.#highWatermark) this.#setHighWatermark(offset);
  }

  /**
   * Resolves once the high watermark is past `offset` (at once if it already is), or when
   * `signal` aborts. Woken by the append itself, not by polling.
   * @example await log.waitForData(position, timeoutSignal(clock, maxWaitMs));
   */
  waitForData(offset: number, signal?: AbortSignal): Promise<void> {
    if (this.#highWatermark > offset || signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        offset,
        wake: () => {
          this.#hwWaiters.delete(waiter);
          signal?.removeEventListener('abort', waiter.wake);
          resolve();
        },
      };
      this.#hwWaiters.add(waiter);
      signal?.addEventListener('abort', waiter.wake, { once: true });
    });
  }

  #setHighWatermark(offset: number): void {
    this.#highWatermark = offset;
    for (const waiter of this.#hwWaiters) if (offset > waiter.offset) waiter.wake();
  }

  /**
   * Appends one record batch (wire bytes, RecordBatch v2) and resolves once it is durable.
   * The log assigns the offsets by writing the batch's baseOffset in place; with
   * `keepOffsets` (a follower copying its leader) the batch must start at the log end.
   * `checked` is the header `check` returned for these bytes in the same task: the batch is
   * not checked (its CRC computed) a second time.
   * @example const { baseOffset } = await log.append(encodeBatch({ records }));
   */
  async append(bytes: Uint8Array, options: { keepOffsets?: boolean; checked?: BatchHeader } = {}): Promise<AppendResult> {
    const header = options.checked ?? this.check(bytes);
    while (this.#pendingBytes >= PENDING_BYTES_MAX) await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    return new Promise<AppendResult>((resolve, reject) => {
      this.#pending.push({ bytes, header, keepOffsets: options.keepOffsets ?? false, resolve, reject });
      this.#pendingBytes += bytes.length;
      this.committer.schedule(this);
    });
  }

  /**
   * Throws what `append` would refuse `bytes` with (a corrupt batch, one over max.message.bytes,
   * a keyless record on a compacted topic), appending nothing: lets a caller with several
   * batches refuse them all before appending any.
   * @example for (const b of batches) log.check(b);
   */
  check(bytes: Uint8Array): BatchHeader {
    return checkBatch(this.#config, this.id.topic, bytes);
  }

  hasPending(): boolean {
    return this.#pending.length > 0;
  }

  takeFlushPart(budgetBytes: number): FlushPart | undefined {
    if (this.#truncating || this.#pending.length === 0) return undefined;
    const writes: StorageWrite[] = [];
    const taken: Array<{ append: PendingAppend; result: AppendResult; summary: BatchSummary }> = [];
    /** Retries of batches written before: answered with the original's offsets once this flush (and so the original) is durable. */
    const duplicates: Array<{ append: PendingAppend; result: AppendResult }> = [];
    let next = this.#nextOffset;
    let index = this.#places.lastIndex + this.#inFlightBatches;
    let sizeBytes = 0;
    while (this.#pending.length > 0 && (taken.length === 0 || sizeBytes + this.#pending[0]!.bytes.length <= budgetBytes)) {
      const append = this.#pending.shift()!;
      this.#pendingBytes -= append.bytes.length;
      if (append.keepOffsets && append.header.baseOffset !== next) {
        append.reject(new InvalidOffsetError(`batch at ${append.header.baseOffset} does not continue ${this.id.topic}-${this.id.partition} at ${next}`));
        continue;
      }
      if (!append.keepOffsets) {
        // Decided where the offsets are numbered: a retry is answered with its original's, a gap or a fenced epoch refused.
        const decision = this.#producers.decide(append.header);
        const refusal = producerRefusal(decision, this.id.topic, this.id.partition, append.header);
        if (refusal !== undefined) {
          append.reject(refusal);
          continue;
        }
        if (decision.kind === 'duplicate') {
          duplicates.push({ append, result: { baseOffset: decision.batch.baseOffset, lastOffset: decision.batch.lastOffset } });
          continue;
        }
      }
      if (!append.keepOffsets) {
        setBaseOffset(append.bytes, next);
        setPartitionLeaderEpoch(append.bytes, this.#epoch);
      }
      const summary: BatchSummary = {
        baseOffset: next,
        lastOffset: next + append.header.lastOffsetDelta,
        maxTimestamp: append.header.maxTimestamp,
        sizeBytes: append.bytes.length,
        raftIndex: ++index,
        epoch: append.keepOffsets ? append.header.partitionLeaderEpoch : this.#epoch,
      };
      const producer = producerOf(append.header);
      if (producer !== undefined) {
        summary.producer = producer;
        this.#producers.record(append.header, { baseOffset: summary.baseOffset, lastOffset: summary.lastOffset, index: summary.raftIndex });
      }
      writes.push({ kind: 'putBatch', id: this.id, summary, bytes: append.bytes });
      taken.push({ append, result: { baseOffset: summary.baseOffset, lastOffset: summary.lastOffset }, summary });
      sizeBytes += append.bytes.length;
      next = summary.lastOffset + 1;
    }
    this.#wakeRoomWaiters();
    if (taken.length === 0) {
      // Only retries: their originals are durable once the flushes before are (one is in flight at a time).
      if (duplicates.length > 0) {
        void this.#idle().then(() => {
          for (const { append, result } of duplicates) {
            const place = this.#places.at(this.#places.indexOfOffset(result.baseOffset));
            // The original's flush failed meanwhile: the retry is to be sent again.
            if (place?.baseOffset === result.baseOffset && result.lastOffset < this.#logEndOffset) append.resolve(result);
            else append.reject(new StorageError(`the batch ${this.id.topic}-${this.id.partition} repeats was not written`, { retriable: true }));
          }
        });
      }
      return undefined;
    }
    this.#nextOffset = next;
    this.#inFlight++;
    this.#inFlightBatches += taken.length;
    return {
      writes,
      sizeBytes,
      committed: () => {
        this.#inFlightBatches -= taken.length;
        for (const { append, result, summary } of taken) {
          this.#places.push({ index: summary.raftIndex, baseOffset: summary.baseOffset, lastOffset: summary.lastOffset, epoch: summary.epoch, sizeBytes: summary.sizeBytes });
          this.#tail.push({ ...result, bytes: append.bytes });
        }
        this.slots.tailCaches.hold(this, this.#clearTail);
        this.#logEndOffset = next;
        this.#sizeBytes += sizeBytes;
        if (this.#followsDurableEnd) this.#setHighWatermark(next);
        else this.#followCommitted();
        for (const { append, result } of taken) append.resolve(result);
        for (const { append, result } of duplicates) append.resolve(result);
        this.#settle();
      },
      failed: (error) => {
        // One flush is in flight at a time, so nothing after it was numbered yet.
        this.#inFlightBatches -= taken.length;
        this.#nextOffset = this.#logEndOffset;
        this.#producers.truncateFrom(taken[0]!.summary.raftIndex);
        for (const { append } of [...taken, ...duplicates]) append.reject(error);
        this.#settle();
      },
    };
  }

  // --- the log as a raft log (src/raft/index.ts: one raft entry is one batch) ---

  /**
   * Idempotent producers' state as of the last batch numbered: the leader decides a batch
   * against it (`decide`) where its offsets are numbered; a raft snapshot images it (`imageAt`).
   */
  get producers(): Pick<ProducerStateTable, 'decide' | 'get' | 'imageAt' | 'mergeUnder' | 'size'> {
    return this.#producers;
  }

  /** Where each batch sits in the raft log: raft index ↔ offsets, epochs (read-only). */
  get places(): BatchPlaces {
    return this.#places;
  }

  /**
   * Leader epoch stamped into the batches `append` numbers (a broker leading this partition
   * without raft); a raft-replicated log stamps each entry's term in {@link stageEntries}.
   * @example log.setLeaderEpoch(partition.leaderEpoch);
   */
  setLeaderEpoch(epoch: number): void {
    this.#epoch = epoch;
  }

  /**
   * From now on the high watermark follows what raft commits (`advanceHighWatermark`), not the
   * durable end: the log became a replicated partition's raft log. What it holds now stays visible.
   * @example log.replicate();
   */
  replicate(): void {
    if (this.#followsDurableEnd) this.#removableThrough = 0;
    this.#followsDurableEnd = false;
    this.#committedEnd = Math.max(this.#committedEnd, this.#highWatermark);
  }

  /**
   * Raft's compaction point: retention and deleteRecords remove batches up to raft index
   * `index` only, so the raft log never loses an entry a follower may still need.
   * @example log.setRemovableThrough(snapshot.index);
   */
  setRemovableThrough(index: number): void {
    this.#removableThrough = index;
  }

  /**
   * Raft's persist of entries: the storage writes that replace the log from raft index
   * `firstIndex` on with `batches` — deleting the replaced suffix and putting the new
   * batches in one write, which the caller makes atomic with the hard state. Offsets are
   * numbered here, after the batch at firstIndex - 1 (so on the leader, when it proposes),
   * and each batch is stamped with its epoch. The log's raft view moves now; `durable` moves
   * its end once the writes are durable, in the order staged. Refuses (InvalidOffsetError) a
   * gap after the log and a replacement below the high watermark; CorruptBatchError for bad bytes.
   * @example const { writes, durable } = log.stageEntries(index, [{ bytes, epoch: term }]);
   */
  stageEntries(firstIndex: number, batches: readonly StagedBatch[]): { writes: StorageWrite[]; durable: () => void } {
    const places = this.#places;
    if (firstIndex <= places.startIndex || firstIndex > places.lastIndex + 1) {
      throw new InvalidOffsetError(`raft entry ${firstIndex} does not continue ${this.id.topic}-${this.id.partition}, which holds entries ${places.startIndex + 1}..${places.lastIndex}`);
    }
    const headers = batches.map((b) => verifyBatch(b.bytes));
    const writes: StorageWrite[] = [];
    const replaced = places.at(firstIndex);
    if (replaced !== undefined) {
      if (replaced.baseOffset < this.#highWatermark) {
        throw new InvalidOffsetError(`cannot replace ${this.id.topic}-${this.id.partition} from offset ${replaced.baseOffset}, below its high watermark ${this.#highWatermark}`);
      }
      writes.push({ kind: 'deleteBatches', id: this.id, fromBaseOffset: replaced.baseOffset, toBaseOffset: Infinity });
      this.#sizeBytes -= places.bytesFrom(firstIndex);
      this.#places.truncateFrom(firstIndex);
      this.#producers.truncateFrom(firstIndex);
      this.#tail.truncateTo(replaced.baseOffset);
      this.#forgetReads();
      this.#logEndOffset = Math.min(this.#logEndOffset, replaced.baseOffset);
    }
    const staged: Array<{ summary: BatchSummary; bytes: Uint8Array }> = [];
    batches.forEach(({ bytes, epoch }, i) => {
      const header = headers[i]!;
      const baseOffset = this.#places.nextOffset;
      setBaseOffset(bytes, baseOffset);
      setPartitionLeaderEpoch(bytes, epoch);
      const summary: BatchSummary = { baseOffset, lastOffset: baseOffset + header.lastOffsetDelta, maxTimestamp: header.maxTimestamp, sizeBytes: bytes.length, raftIndex: firstIndex + i, epoch };
      const producer = producerOf(header);
      if (producer !== undefined) {
        summary.producer = producer;
        this.#producers.record(header, { baseOffset, lastOffset: summary.lastOffset, index: summary.raftIndex });
      }
      this.#places.push({ index: summary.raftIndex, baseOffset, lastOffset: summary.lastOffset, epoch, sizeBytes: bytes.length });
      this.#sizeBytes += bytes.length;
      writes.push({ kind: 'putBatch', id: this.id, summary, bytes });
      staged.push({ summary, bytes });
    });
    this.#nextOffset = this.#places.nextOffset;
    const endOffset = this.#places.nextOffset;
    return {
      writes,
      durable: () => {
        for (const { summary, bytes } of staged) {
          // A later write may have replaced it already (staged before this one was durable).
          const place = this.#places.at(summary.raftIndex);
          if (place?.baseOffset === summary.baseOffset && place.epoch === summary.epoch) this.#tail.push({ baseOffset: summary.baseOffset, lastOffset: summary.lastOffset, bytes });
        }
        if (staged.length > 0) this.slots.tailCaches.hold(this, this.#clearTail);
        this.#logEndOffset = endOffset;
        if (this.#followsDurableEnd) this.#setHighWatermark(endOffset);
        else this.#followCommitted();
      },
    };
  }

  /**
   * The batches of raft entries `fromIndex..toIndex` from memory, cut after `maxBytes` (at least
   * one), or undefined when the first is not in memory: then {@link readEntries} reads them.
   * @example const batches = log.cachedEntries(next, last, 1 << 20) ?? await log.readEntries(next, last, 1 << 20);
   */
  cachedEntries(fromIndex: number, toIndex: number, maxBytes: number): Uint8Array[] | undefined {
    const first = this.#places.at(fromIndex);
    const last = this.#places.at(toIndex);
    if (first === undefined || last === undefined) return undefined;
    const cached = this.#tail.read(first.baseOffset, maxBytes, last.lastOffset + 1);
    return cached === undefined || cached.length === 0 || readBatchHeader(cached[0]!).baseOffset !== first.baseOffset ? undefined : cached;
  }

  /**
   * The stored batches of raft entries `fromIndex..toIndex` (durable ones), cut after `maxBytes` (at least one).
   * @example const batches = await log.readEntries(next, last, 1 << 20);
   */
  async readEntries(fromIndex: number, toIndex: number, maxBytes: number): Promise<Uint8Array[]> {
    const first = this.#places.at(fromIndex);
    if (first === undefined || this.#places.at(toIndex) === undefined) {
      throw new InvalidOffsetError(`raft entries ${fromIndex}..${toIndex} are not in ${this.id.topic}-${this.id.partition} (${this.#places.startIndex + 1}..${this.#places.lastIndex})`);
    }
    let count = 0;
    for (let bytes = 0, i = fromIndex; i <= toIndex && (count === 0 || bytes + this.#places.at(i)!.sizeBytes <= maxBytes); i++, count++) bytes += this.#places.at(i)!.sizeBytes;
    const batches = await this.storage.readBatches(this.id, first.baseOffset, count);
    const head = batches[0];
    if (head === undefined || readBatchHeader(head).baseOffset !== first.baseOffset) throw new InvalidOffsetError(`raft entry ${fromIndex} was removed while it was read`);
    return batches;
  }

  /**
   * Raft's restore of a leader's snapshot (a follower behind the leader's log start): the
   * writes that empty the log and start it again after raft index `index` of epoch `epoch`,
   * at offset `nextOffset`, all of it committed. The view moves now, as in {@link stageEntries}.
   * @example const { writes } = log.stageRestore({ index: 40, epoch: 3, nextOffset: 1200 });
   */
  stageRestore(start: { index: number; epoch: number; nextOffset: number }, producers: ProducerImage = []): { writes: StorageWrite[]; durable: () => void } {
    this.#restores++;
    this.#producers.restore(producers);
    const removedThrough = { raftIndex: start.index, epoch: start.epoch, nextOffset: start.nextOffset };
    const meta: PartitionMeta = { logStartOffset: start.nextOffset, recoveryPoint: start.nextOffset, highWatermark: start.nextOffset, removedThrough };
    this.#places = new BatchIndex(start);
    this.#tail.clear();
    this.#forgetReads();
    this.#sizeBytes = 0;
    this.#nextOffset = start.nextOffset;
    this.#logStartOffset = start.nextOffset;
    this.#logEndOffset = start.nextOffset;
    this.#recoveryPoint = start.nextOffset;
    this.#removedThrough = removedThrough;
    this.#setHighWatermark(start.nextOffset);
    return {
      writes: [
        { kind: 'deleteBatches', id: this.id, fromBaseOffset: -Infinity, toBaseOffset: Infinity },
        { kind: 'putMeta', id: this.id, meta },
      ],
      durable: () => undefined,
    };
  }

  /**
   * Reads the log's durable state again, dropping what was staged and not written: after a
   * failed write, before raft restarts from what is durable.
   * @example await log.reload();
   */
  async reload(): Promise<void> {
    const state = await recoverPartition(this.storage, this.id);
    this.#logStartOffset = state.meta.logStartOffset;
    this.#recoveryPoint = state.meta.recoveryPoint;
    this.#removedThrough = state.meta.removedThrough;
    this.#logEndOffset = state.logEndOffset;
    this.#nextOffset = state.logEndOffset;
    this.#sizeBytes = state.sizeBytes;
    this.#places = state.places;
    this.#producers = state.producers;
    this.#highWatermark = Math.min(this.#highWatermark, state.logEndOffset);
    this.#tail.clear();
    this.#forgetReads();
  }

  /**
   * Record batches holding the records from `offset` on, wholly below the high watermark (or
   * `endOffset`). The first batch may start before `offset`; readers skip those records.
   * Throws OffsetOutOfRangeError outside [logStartOffset, logEndOffset].
   * @example const batches = await log.read(42, { maxBytes: 1 << 20 });
   */
  async read(offset: number, options: ReadOptions): Promise<Uint8Array[]> {
    if (!Number.isSafeInteger(offset) || offset < this.#logStartOffset || offset > this.#logEndOffset) {
      throw new OffsetOutOfRangeError(this.id.topic, this.id.partition, offset, this.#logStartOffset, this.#logEndOffset);
    }
    const endOffset = Math.min(options.endOffset ?? this.#highWatermark, this.#logEndOffset);
    if (offset >= endOffset) return [];
    const cached = this.#tail.read(offset, options.maxBytes, endOffset);
    if (cached !== undefined) return cached.slice(0, servedCount(cached, offset, options));
    return this.#readStored(offset, options, endOffset);
  }

  /**
   * Stored batches from `offset`, as stored: as in Kafka, the log checks CRCs when it appends
   * and recovers, and readers check them (the consumer, end to end; a follower, by appending).
   * A sequential reader is served from what was read ahead for it, and storage reads the
   * next MiBs in one request while it handles these, so IndexedDB is never idle between fetches.
   */
  async #readStored(offset: number, options: ReadOptions, endOffset: number): Promise<Uint8Array[]> {
    const ahead = this.#readAhead;
    this.#dropReadAhead();
    let available: Uint8Array[];
    let pending: Promise<Uint8Array[]> | undefined;
    if (ahead !== undefined && ahead.offset === offset && ahead.endOffset <= endOffset) {
      available = ahead.buffered;
      pending = ahead.pending;
      if (pending !== undefined && bytesOf(available) < options.maxBytes) {
        available = available.concat(await pending);
        pending = undefined;
      }
    } else {
      available = await this.#readChunk(offset, options.maxBytes, endOffset);
    }
    const served = available.slice(0, servedCount(available, offset, options));
    const rest = available.slice(served.length);
    const last = served.at(-1);
    if (last !== undefined && nextOffsetAfter(last) < endOffset) {
      // Keep storage busy: the next request goes out as soon as what is buffered runs low.
      const restEnd = nextOffsetAfter(rest.at(-1) ?? last);
      if (pending === undefined && restEnd < endOffset && bytesOf(rest) < READ_AHEAD_BYTES) {
        pending = this.#readChunk(restEnd, READ_AHEAD_BYTES, endOffset);
        pending.catch(() => undefined); // a failed read-ahead fails the read that needs it
      }
      this.#readAhead = { offset: nextOffsetAfter(last), endOffset, buffered: rest, pending };
      this.slots.readAheads.hold(this, this.#forgetReadAhead);
    }
    return served;
  }

  /** Stored batches from the one holding `offset`, chosen by their summaries; read again if a rewrite overlapped. */
  async #readChunk(offset: number, maxBytes: number, endOffset: number): Promise<Uint8Array[]> {
    for (;;) {
      const rewrites = this.#rewrites;
      const chosen = await this.#chooseBatches(offset, maxBytes, endOffset);
      const first = chosen[0];
      const batches = first === undefined ? [] : await this.storage.readBatches(this.id, first.baseOffset, chosen.length);
      if (rewrites === this.#rewrites) return batches;
    }
  }

  /** Summaries of the batches a read from `offset` returns: up to maxBytes (at least one), below endOffset. */
  async #chooseBatches(offset: number, maxBytes: number, endOffset: number): Promise<BatchSummary[]> {
    const chosen: BatchSummary[] = [];
    let bytes = 0;
    let at = offset;
    while (bytes < maxBytes && at < endOffset) {
      let window = this.#window;
      let index = window.from <= at ? window.summaries.findIndex((s) => s.lastOffset >= at) : -1;
      if (index < 0) {
        const rewrites = this.#rewrites;
        window = { from: at, summaries: await this.storage.readSummaries(this.id, at, WINDOW_SUMMARIES) };
        // Summaries read across a rewrite serve this read (which is then read again), never others.
        if (rewrites === this.#rewrites) this.#window = window;
        if (window.summaries.length === 0) break;
        index = 0;
      }
      for (; index < window.summaries.length && bytes < maxBytes; index++) {
        const summary = window.summaries[index]!;
        if (summary.lastOffset >= endOffset) return chosen;
        chosen.push(summary);
        bytes += summary.sizeBytes;
        at = summary.lastOffset + 1;
      }
    }
    return chosen;
  }

  /** What RecentSlots call when another log takes this one's slot (made once: they are handed over on every flush and read). */
  readonly #clearTail = () => this.#tail.clear();
  readonly #forgetReadAhead = () => {
    this.#readAhead = undefined;
  };

  #dropReadAhead(): void {
    this.#readAhead = undefined;
    this.slots.readAheads.release(this);
  }

  /**
   * The partition is being deleted: from now on the log writes nothing, so a maintenance
   * round or a truncation in flight cannot write after the delete (into a partition created
   * again under its name); such writes fail with UnknownTopicOrPartitionError.
   * @example log.markDeleted(); await storage.write([{ kind: 'deletePartition', id: log.id }]);
   */
  markDeleted(): void {
    this.#deleted = true;
  }

  get deleted(): boolean {
    return this.#deleted;
  }

  #write(writes: readonly StorageWrite[]): Promise<void> {
    if (this.#deleted) return Promise.reject(new UnknownTopicOrPartitionError(this.id.topic, this.id.partition));
    return this.storage.write(writes);
  }

  /** Whether a sequential reader's next batches are held here (read ahead, or being read). */
  get readingAhead(): boolean {
    return this.#readAhead !== undefined;
  }

  /** Any rewrite of stored batches makes what readers read ahead stale. */
  #forgetReads(): void {
    this.#dropReadAhead();
    this.#window = { from: Infinity, summaries: [] };
    this.#rewrites++;
  }

  /**
   * Removes every batch holding an offset at or past `offset` (replication's truncation of
   * an uncommitted suffix). The log end becomes the start of the first removed batch.
   * @example await log.truncateTo(divergedAt);
   */
  async truncateTo(offset: number): Promise<void> {
    if (offset < this.#highWatermark) {
      throw new InvalidOffsetError(`cannot truncate ${this.id.topic}-${this.id.partition} to ${offset}, below its high watermark ${this.#highWatermark}`);
    }
    this.#truncating = true;
    try {
      await this.#idle();
      const removed = await this.#summariesFrom(offset);
      if (removed.length === 0) return;
      const from = removed[0]!.baseOffset;
      // A batch is removed whole: one the high watermark cuts would take committed records with it.
      if (from < this.#highWatermark) {
        throw new InvalidOffsetError(`cannot truncate ${this.id.topic}-${this.id.partition} to ${offset}: the batch holding it starts at ${from}, below its high watermark ${this.#highWatermark}`);
      }
      await this.#write([{ kind: 'deleteBatches', id: this.id, fromBaseOffset: from, toBaseOffset: Infinity }]);
      this.#places.truncateFrom(removed[0]!.raftIndex);
      this.#producers.truncateFrom(removed[0]!.raftIndex);
      this.#tail.truncateTo(from);
      this.#forgetReads();
      this.#logEndOffset = from;
      this.#nextOffset = from;
      this.#sizeBytes -= removed.reduce((sum, s) => sum + s.sizeBytes, 0);
    } finally {
      this.#truncating = false;
      if (this.#pending.length > 0) this.committer.schedule(this);
    }
  }

  /**
   * Kafka's ListOffsets: `earliest` (log start), `latest` (high watermark), or the first
   * offset whose record timestamp is at or after `timestamp` (undefined if none).
   * @example const offset = await log.offsetFor({ timestamp: clock.now() - 60_000 });
   */
  async offsetFor(spec: OffsetSpec): Promise<number | undefined> {
    if (spec === 'earliest') return this.#logStartOffset;
    if (spec === 'latest') return this.#highWatermark;
    for (let at = this.#logStartOffset; at < this.#highWatermark; ) {
      const summaries = await this.storage.readSummaries(this.id, at, SCAN_CHUNK);
      const hit = summaries.find((s) => s.maxTimestamp >= spec.timestamp && s.baseOffset < this.#highWatermark);
      if (hit !== undefined) {
        const [bytes] = await this.storage.readBatches(this.id, hit.baseOffset, 1);
        if (bytes === undefined) return undefined; // deleted by retention meanwhile
        const batch = await decodeBatchAsync(bytes);
        for (const record of batch.records) {
          const recordOffset = batch.baseOffset + record.offsetDelta;
          if (batch.baseTimestamp + record.timestampDelta >= spec.timestamp && recordOffset >= this.#logStartOffset) return recordOffset;
        }
      }
      const last = summaries.at(-1);
      if (last === undefined) return undefined;
      at = last.lastOffset + 1;
    }
    return undefined;
  }

  /**
   * Kafka's DeleteRecords: moves the log start to `offset` (at most the high watermark) and
   * deletes the batches wholly below it.
   * @example await log.deleteRecordsBefore(1000);
   */
  async deleteRecordsBefore(offset: number): Promise<number> {
    if (offset === -1) offset = this.#highWatermark; // Kafka's "up to the high watermark"
    if (!Number.isSafeInteger(offset) || offset > this.#highWatermark || offset < 0) {
      throw new OffsetOutOfRangeError(this.id.topic, this.id.partition, offset, this.#logStartOffset, this.#highWatermark);
    }
    if (offset <= this.#logStartOffset) return this.#logStartOffset;
    const restores = this.#restores;
    const doomed = (await this.#summariesFrom(this.#logStartOffset, offset)).filter((s) => s.lastOffset < offset);
    await this.#removeHead(doomed, offset, restores);
    return this.#logStartOffset;
  }

  /**
   * Retention: deletes whole batches from the head that are older than retention.ms or
   * beyond retention.bytes, only below the high watermark. Returns how many it deleted.
   * @example await log.enforceRetention(clock.now());
   */
  async enforceRetention(nowMs: number): Promise<number> {
    const restores = this.#restores;
    const doomed = await this.#expired(nowMs, this.#removableThrough);
    if (doomed.length === 0) return 0;
    return (await this.#removeHead(doomed, doomed.at(-1)!.lastOffset + 1, restores)) ? doomed.length : 0;
  }

  /**
   * The raft index up to which retention would delete now, were raft's compaction point no
   * bound (undefined: nothing): where a replicated partition's raft log may be compacted, so
   * that retention can then delete.
   * @example const index = await log.retentionPoint(clock.now()); if (index !== undefined) compact(index);
   */
  async retentionPoint(nowMs: number): Promise<number | undefined> {
    return (await this.#expired(nowMs, Infinity)).at(-1)?.raftIndex;
  }

  /** The batches from the head that retention.ms or retention.bytes dooms, below the high watermark and up to raft index `through`. */
  async #expired(nowMs: number, through: number): Promise<BatchSummary[]> {
    const { retentionMs, retentionBytes } = this.#config;
    if (!deletes(this.#config) || (retentionMs < 0 && retentionBytes < 0)) return [];
    const doomed: BatchSummary[] = [];
    let remainingBytes = this.#sizeBytes;
    for (const s of await this.#summariesFrom(this.#logStartOffset, this.#highWatermark)) {
      if (s.lastOffset >= this.#highWatermark || s.raftIndex > through) break;
      const expired = retentionMs >= 0 && s.maxTimestamp < nowMs - retentionMs;
      const oversize = retentionBytes >= 0 && remainingBytes - s.sizeBytes >= retentionBytes;
      if (!expired && !oversize) break;
      doomed.push(s);
      remainingBytes -= s.sizeBytes;
    }
    return doomed;
  }

  /** Marks the batches verified so far; the next open's recovery starts at the last batch. */
  async checkpoint(): Promise<void> {
    const [last] = await this.storage.readLastSummaries(this.id, 1);
    const recoveryPoint = Math.max(this.#logStartOffset, last?.baseOffset ?? this.#logEndOffset);
    if (recoveryPoint === this.#recoveryPoint) return;
    this.#recoveryPoint = recoveryPoint;
    await this.#write([{ kind: 'putMeta', id: this.id, meta: this.#meta() }]);
  }

  /**
   * Persists new contents of batches below the high watermark (compaction's rewrite): each keeps
   * its offsets, raft index and epoch, so nothing renumbers.
   * @example await log.rewrite([{ bytes: cleaned, maxTimestamp }]);
   */
  async rewrite(batches: ReadonlyArray<{ bytes: Uint8Array; maxTimestamp: number }>): Promise<void> {
    const restores = this.#restores;
    const writes: StorageWrite[] = [];
    let sizeDeltaBytes = 0;
    for (const { bytes, maxTimestamp } of batches) {
      const header = readBatchHeader(bytes);
      // Removed from the head since the cleaner read it (retention, deleteRecords), or being removed: nothing to rewrite.
      if (header.baseOffset < this.#logStartOffset || header.baseOffset <= this.#removingThrough) continue;
      const place = this.#places.at(this.#places.indexOfOffset(header.baseOffset));
      if (place === undefined || place.baseOffset !== header.baseOffset || place.lastOffset !== nextOffset(header) - 1 || header.baseOffset >= this.#highWatermark) {
        throw new InvalidOffsetError(`a rewritten batch at ${header.baseOffset} is not a stored batch below the high watermark of ${this.id.topic}-${this.id.partition}`);
      }
      const summary: BatchSummary = { baseOffset: place.baseOffset, lastOffset: place.lastOffset, maxTimestamp, sizeBytes: bytes.length, raftIndex: place.index, epoch: place.epoch };
      const producer = producerOf(header);
      if (producer !== undefined) summary.producer = producer;
      writes.push({ kind: 'putBatch', id: this.id, summary, bytes });
      sizeDeltaBytes += bytes.length - place.sizeBytes;
    }
    if (writes.length === 0) return;
    await this.#write(writes);
    // A leader's snapshot restored meanwhile replaced the log (its writes, issued after these, delete them): its state stands.
    if (this.#restores !== restores) return;
    for (const w of writes) if (w.kind === 'putBatch') this.#places.resize(w.summary.raftIndex, w.summary.sizeBytes);
    this.#tail.clear(); // the cleaner may have rewritten cached batches
    this.#forgetReads();
    this.#sizeBytes += sizeDeltaBytes;
  }

  #meta(): PartitionMeta {
    const meta: PartitionMeta = { logStartOffset: this.#logStartOffset, recoveryPoint: this.#recoveryPoint, highWatermark: this.#highWatermark };
    if (this.#removedThrough !== undefined) meta.removedThrough = this.#removedThrough;
    return meta;
  }

  /**
   * Removes `candidates` (read while the log had had `restores` restores) and moves the log
   * start; false when a leader's snapshot restored the log meanwhile: its old head is gone
   * already, and the restored state stands (its writes land after any issued here).
   */
  async #removeHead(candidates: readonly BatchSummary[], newLogStartOffset: number, restores: number): Promise<boolean> {
    if (this.#restores !== restores) return false;
    // Only below raft's compaction point: the batches above it are raft entries still to be read.
    const doomed = candidates.filter((s) => s.raftIndex <= this.#removableThrough);
    const logStartOffset = Math.max(this.#logStartOffset, newLogStartOffset);
    const lastDoomed = doomed.at(-1);
    const removedThrough = lastDoomed === undefined ? this.#removedThrough : { raftIndex: lastDoomed.raftIndex, epoch: lastDoomed.epoch, nextOffset: lastDoomed.lastOffset + 1 };
    const meta: PartitionMeta = { ...this.#meta(), logStartOffset, recoveryPoint: Math.max(this.#recoveryPoint, logStartOffset) };
    if (removedThrough !== undefined) meta.removedThrough = removedThrough;
    const writes: StorageWrite[] = [{ kind: 'putMeta', id: this.id, meta }];
    if (lastDoomed !== undefined) {
      writes.push({ kind: 'deleteBatches', id: this.id, fromBaseOffset: doomed[0]!.baseOffset, toBaseOffset: lastDoomed.baseOffset + 1 });
    }
    this.#forgetReads();
    const removingThrough = this.#removingThrough;
    if (lastDoomed !== undefined) this.#removingThrough = Math.max(removingThrough, lastDoomed.baseOffset);
    try {
      await this.#write(writes);
    } finally {
      // Past the write, the batches are gone from storage (and, below, from the index).
      if (this.#removingThrough === lastDoomed?.baseOffset) this.#removingThrough = removingThrough;
    }
    if (this.#restores !== restores) return false;
    this.#logStartOffset = logStartOffset;
    this.#recoveryPoint = Math.max(this.#recoveryPoint, logStartOffset);
    this.#removedThrough = removedThrough;
    // Sizes from the index, which a rewrite landed since the summaries were read has updated.
    this.#sizeBytes -= doomed.reduce((sum, s) => sum + (this.#places.at(s.raftIndex)?.sizeBytes ?? s.sizeBytes), 0);
    if (lastDoomed !== undefined) this.#places.compactThrough(lastDoomed.raftIndex);
    return true;
  }

  /** Summaries of the batches holding offsets in [from, to). */
  async #summariesFrom(from: number, to = Infinity): Promise<BatchSummary[]> {
    const out: BatchSummary[] = [];
    for (let at = from; at < to; ) {
      const chunk = await this.storage.readSummaries(this.id, at, SCAN_CHUNK);
      for (const s of chunk) if (s.baseOffset < to) out.push(s);
      const last = chunk.at(-1);
      if (chunk.length < SCAN_CHUNK || last === undefined) break;
      at = last.lastOffset + 1;
    }
    return out;
  }

  #settle(): void {
    this.#inFlight--;
    if (this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #wakeRoomWaiters(): void {
    if (this.#pendingBytes < PENDING_BYTES_MAX) for (const wake of this.#roomWaiters.splice(0)) wake();
  }

  /** Resolves when no flush of this log is in flight (pending appends are held while truncating). */
  #idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }
}
