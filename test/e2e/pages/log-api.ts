import type { Remote } from 'comlink';

export interface LogTestConfig {
  retentionMs?: number;
  retentionBytes?: number;
  cleanupPolicy?: 'delete' | 'compact' | 'compact,delete';
  deleteRetentionMs?: number;
}

/** What the log test worker exposes: the partition log on real IndexedDB, driven from the page. */
export interface LogTestApi {
  /** Opens the database `name` and the partition logs it holds. */
  open(name: string): Promise<void>;
  /**
   * Appends `count` records `${prefix}${i}` (keys `k${i % keys}` when keys > 0) in batches of
   * `perBatch`, as concurrent appends; resolves with the last offset once all are durable.
   */
  append(topic: string, partition: number, count: number, perBatch: number, options?: { prefix?: string; keys?: number; timestamp?: number; config?: LogTestConfig }): Promise<number>;
  /** Every record below the high watermark as [offset, key, value], from the log start. */
  readAll(topic: string, partition: number): Promise<Array<[number, string | null, string | null]>>;
  /** Log start, log end and high watermark. */
  offsets(topic: string, partition: number): Promise<{ logStartOffset: number; logEndOffset: number; highWatermark: number }>;
  /** Group-commit transactions so far. */
  transactions(): Promise<number>;
  /** Flips one byte inside the stored batch at `baseOffset`, behind the log's back. */
  corrupt(topic: string, partition: number, baseOffset: number): Promise<void>;
  /** Runs maintenance (retention, compaction) until no work is left; returns the rounds it took. */
  maintain(nowMs: number): Promise<number>;
  /** Appends a batch of `bytes` random bytes; resolves with the error's name and code, or 'ok'. */
  appendBlob(topic: string, partition: number, bytes: number): Promise<{ outcome: 'ok' | 'error'; name?: string; code?: string; retriable?: boolean }>;
  /** Deletes a partition's log. */
  deletePartition(topic: string, partition: number): Promise<void>;
}

declare global {
  interface Window {
    logTest: Remote<LogTestApi>;
  }
}
