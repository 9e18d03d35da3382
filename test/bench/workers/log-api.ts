import type { Throughput } from './raw-api';

/** What the log benchmark worker exposes through Comlink. */
export interface LogWorkerApi {
  /** Deletes the benchmark database and opens a fresh log. */
  reset(): Promise<void>;
  /**
   * Appends `records` random records of `recordBytes`, `perCall` at a time (like a
   * producer's sendBatch), split into batches of about `batchBytes`.
   */
  append(records: number, recordBytes: number, perCall: number, batchBytes: number): Promise<Throughput>;
  /** Reads the whole log back in 1 MiB fetches. */
  read(): Promise<Throughput>;
  /** Runs a full garbage collection (Chromium started with --js-flags=--expose-gc). */
  collectGarbage(): void;
}
