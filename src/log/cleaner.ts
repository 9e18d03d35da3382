import { decodeBatchAsync, encodeBatchAsync, nextOffset, readBatchHeader, type RecordBatch } from '../protocol';
import { compacts } from './config';
import type { PartitionLog } from './partition-log';

/** Bytes of batches one cleaner step reads: a step is one short transaction, so appends never wait long. */
const STEP_BYTES = 1024 * 1024;
/** Keys remembered per pass; a larger dirty section is cleaned over several passes, as Kafka's dedupe buffer does. */
const MAP_KEYS_MAX = 1_000_000;

interface CleanerPass {
  phase: 'map' | 'rewrite';
  /** Next offset to read in the current phase. */
  at: number;
  /** The pass cleans offsets below this (the high watermark when it began, or where the key map filled). */
  end: number;
  /** Latest offset of each key in [logStart, end). */
  latest: Map<string, number>;
  retainedTombstones: number;
}

const keyString = (key: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < key.length; i += 4096) s += String.fromCharCode(...key.subarray(i, i + 4096));
  return s;
};

/**
 * Log compaction (`cleanup.policy: compact`) in small steps: a pass first maps each key to
 * its latest offset below the high watermark, then rewrites each batch keeping only those
 * records (offsets unchanged, per-key order kept), dropping tombstones older than
 * delete.retention.ms. Each step reads at most ~1 MiB and writes one transaction.
 */
export class LogCleaner {
  readonly #passes = new WeakMap<PartitionLog, CleanerPass>();
  readonly #cleanedUpTo = new WeakMap<PartitionLog, { end: number; retainedTombstones: number }>();

  /**
   * Does one step of compaction on `log`; resolves true while more work remains.
   * @example while (await cleaner.step(log, clock.now())) await yieldToEvents();
   */
  async step(log: PartitionLog, nowMs: number): Promise<boolean> {
    if (!compacts(log.config)) return false;
    let pass = this.#passes.get(log);
    if (pass === undefined) {
      const previous = this.#cleanedUpTo.get(log);
      const dirty = previous === undefined || log.highWatermark > previous.end || previous.retainedTombstones > 0;
      if (!dirty || log.highWatermark <= log.logStartOffset) return false;
      pass = { phase: 'map', at: log.logStartOffset, end: log.highWatermark, latest: new Map(), retainedTombstones: 0 };
      this.#passes.set(log, pass);
    }
    pass.at = Math.max(pass.at, log.logStartOffset); // retention may have moved the head meanwhile
    const batches = pass.at < pass.end ? await log.read(pass.at, { maxBytes: STEP_BYTES, endOffset: pass.end }) : [];
    // Control batches are raft's (a no-op, a configuration change): their records are not keyed data, and stay whole.
    const decoded = (await Promise.all(batches.map((b) => decodeBatchAsync(b)))).filter((batch) => !batch.isControl);
    if (pass.phase === 'map') this.#map(pass, decoded);
    else await this.#rewrite(log, pass, decoded, nowMs);
    const lastRead = batches.at(-1);
    pass.at = lastRead === undefined ? pass.end : nextOffset(readBatchHeader(lastRead));
    if (pass.at < pass.end) return true;
    if (pass.phase === 'map') {
      pass.phase = 'rewrite';
      pass.at = log.logStartOffset;
      return true;
    }
    this.#passes.delete(log);
    this.#cleanedUpTo.set(log, { end: pass.end, retainedTombstones: pass.retainedTombstones });
    return false;
  }

  #map(pass: CleanerPass, batches: readonly RecordBatch[]): void {
    for (const batch of batches) {
      if (pass.latest.size >= MAP_KEYS_MAX) {
        pass.end = batch.baseOffset; // clean up to here this pass; the rest next time
        return;
      }
      for (const record of batch.records) {
        if (record.key !== null) pass.latest.set(keyString(record.key), batch.baseOffset + record.offsetDelta);
      }
    }
  }

  async #rewrite(log: PartitionLog, pass: CleanerPass, batches: readonly RecordBatch[], nowMs: number): Promise<void> {
    const rewritten: Array<{ bytes: Uint8Array; maxTimestamp: number }> = [];
    for (const batch of batches) {
      const kept = batch.records.filter((record) => {
        if (record.key === null) return true;
        const offset = batch.baseOffset + record.offsetDelta;
        if (pass.latest.get(keyString(record.key)) !== offset) return false;
        if (record.value !== null) return true;
        const expired = batch.maxTimestamp < nowMs - log.config.deleteRetentionMs;
        if (!expired) pass.retainedTombstones++;
        return !expired;
      });
      if (kept.length === batch.records.length) continue;
      // The batch keeps its base and last offset (as Kafka's cleaner does), so offsets never move;
      // an emptied one keeps its header, so the raft indices after it never renumber.
      const bytes = await encodeBatchAsync({ ...batch, records: kept });
      const maxTimestamp = kept.reduce((max, r) => Math.max(max, batch.baseTimestamp + r.timestampDelta), batch.baseTimestamp);
      rewritten.push({ bytes, maxTimestamp });
    }
    await log.rewrite(rewritten);
  }
}
