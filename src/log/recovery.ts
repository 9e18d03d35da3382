import { StorageFullError } from '../errors';
import { verifyBatch } from '../protocol';
import type { BatchSummary, PartitionId, PartitionMeta, Storage } from '../storage';
import { BatchIndex } from './batch-index';
import { ProducerStateTable } from './producer-state';

/** Bytes read per storage call while verifying. */
const VERIFY_CHUNK_BYTES = 4 * 1024 * 1024;
const SUMMARY_CHUNK = 1024;

export interface RecoveredState {
  meta: PartitionMeta;
  logEndOffset: number;
  sizeBytes: number;
  /** Raft index and epoch of every batch kept. */
  places: BatchIndex;
  /** Idempotent producers' state, from the summaries of the batches kept. */
  producers: ProducerStateTable;
  /** Offset from which corrupt or torn batches were removed, if any. */
  truncatedFrom?: number;
}

/** A summary's producer fields as the producer state reads them. */
const producerFieldsOf = (s: BatchSummary) => ({ producerId: s.producer!.id, producerEpoch: s.producer!.epoch, baseSequence: s.producer!.baseSequence, lastOffsetDelta: s.lastOffset - s.baseOffset });

/** Whether the stored bytes are the batch its summary describes, intact. */
function intact(summary: BatchSummary, bytes: Uint8Array, previousLastOffset: number): boolean {
  try {
    const header = verifyBatch(bytes);
    return (
      header.baseOffset === summary.baseOffset &&
      header.baseOffset + header.lastOffsetDelta === summary.lastOffset &&
      header.partitionLeaderEpoch === summary.epoch &&
      bytes.length === summary.sizeBytes &&
      summary.baseOffset > previousLastOffset
    );
  } catch {
    return false;
  }
}

/**
 * Brings a partition's stored log to a consistent state on open: every batch from the
 * recovery point on (always including the last one) is checked for length, CRC and
 * continuity, and the log is truncated before the first that fails. Returns the state to
 * open the log with; writes the metadata of a new partition.
 */
export async function recoverPartition(storage: Storage, id: PartitionId): Promise<RecoveredState> {
  const stored = await storage.readMeta(id);
  const meta: PartitionMeta = stored ?? { logStartOffset: 0, recoveryPoint: 0, highWatermark: 0 };

  let sizeBytes = 0;
  let last: BatchSummary | undefined;
  const summaries: BatchSummary[] = [];
  /** Summaries of idempotent producers' batches, oldest first. */
  const produced: BatchSummary[] = [];
  let places: BatchIndex | undefined;
  /** The first batch that does not continue the raft index: the log ends before it, as before a torn one. */
  let outOfOrder: number | undefined;
  for (let at = meta.logStartOffset; ; ) {
    const chunk = await storage.readSummaries(id, at, SUMMARY_CHUNK);
    for (const s of chunk) {
      places ??= new BatchIndex({ index: s.raftIndex - 1, epoch: meta.removedThrough?.epoch ?? 0, nextOffset: s.baseOffset });
      if (outOfOrder === undefined && (s.raftIndex !== places.lastIndex + 1 || s.baseOffset !== places.nextOffset)) outOfOrder = s.baseOffset;
      if (outOfOrder !== undefined) continue;
      places.push({ index: s.raftIndex, baseOffset: s.baseOffset, lastOffset: s.lastOffset, epoch: s.epoch, sizeBytes: s.sizeBytes });
      if (s.producer !== undefined) produced.push(s);
      sizeBytes += s.sizeBytes;
      if (s.lastOffset >= meta.recoveryPoint) summaries.push(s);
      last = s;
    }
    const lastRead = chunk.at(-1);
    if (chunk.length < SUMMARY_CHUNK || lastRead === undefined) break;
    at = lastRead.lastOffset + 1;
  }
  places ??= new BatchIndex(
    meta.removedThrough === undefined
      ? { index: 0, epoch: 0, nextOffset: meta.logStartOffset }
      : { index: meta.removedThrough.raftIndex, epoch: meta.removedThrough.epoch, nextOffset: meta.removedThrough.nextOffset },
  );
  // Keep the last batch under check even when it lies below the recovery point.
  if (summaries.length === 0 && last !== undefined) summaries.push(last);

  let truncatedFrom: number | undefined;
  let previousLastOffset = -Infinity;
  let index = 0;
  verify: while (index < summaries.length) {
    let count = 0;
    for (let bytes = 0; index + count < summaries.length && bytes < VERIFY_CHUNK_BYTES; count++) bytes += summaries[index + count]!.sizeBytes;
    const batches = await storage.readBatches(id, summaries[index]!.baseOffset, count);
    if (batches.length === 0) break;
    for (const bytes of batches) {
      const summary = summaries[index];
      if (summary === undefined) break verify;
      if (!intact(summary, bytes, previousLastOffset)) {
        truncatedFrom = summary.baseOffset;
        break verify;
      }
      previousLastOffset = summary.lastOffset;
      index++;
    }
  }

  let logEndOffset = last === undefined ? meta.logStartOffset : last.lastOffset + 1;
  if (truncatedFrom !== undefined) {
    sizeBytes -= summaries.slice(index).reduce((sum, s) => sum + s.sizeBytes, 0);
    places.truncateFrom(places.indexOfOffset(truncatedFrom));
  }
  truncatedFrom ??= outOfOrder;
  const producers = new ProducerStateTable();
  for (const s of produced) if (truncatedFrom === undefined || s.baseOffset < truncatedFrom) producers.record(producerFieldsOf(s), { baseOffset: s.baseOffset, lastOffset: s.lastOffset, index: s.raftIndex });
  if (truncatedFrom !== undefined) {
    await storage.write([{ kind: 'deleteBatches', id, fromBaseOffset: truncatedFrom, toBaseOffset: Infinity }]);
    logEndOffset = Math.max(meta.logStartOffset, truncatedFrom);
  }
  const lastValid = index > 0 ? summaries[index - 1] : undefined;
  const recovered: PartitionMeta = {
    ...meta,
    recoveryPoint: lastValid?.baseOffset ?? Math.min(meta.recoveryPoint, logEndOffset),
    highWatermark: Math.min(meta.highWatermark, logEndOffset),
  };
  if (stored === undefined || recovered.recoveryPoint !== meta.recoveryPoint || recovered.highWatermark !== meta.highWatermark) {
    try {
      await storage.write([{ kind: 'putMeta', id, meta: recovered }]);
    } catch (error) {
      // On a full disk a stored partition still opens (so space can be freed): its metadata is
      // only a checkpoint, which the next recovery finds again. A new partition needs it stored.
      if (!(error instanceof StorageFullError) || stored === undefined) throw error;
    }
  }
  return truncatedFrom === undefined ? { meta: recovered, logEndOffset, sizeBytes, places, producers } : { meta: recovered, logEndOffset, sizeBytes, places, producers, truncatedFrom };
}
