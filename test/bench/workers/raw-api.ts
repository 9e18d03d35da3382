/** A measured batch of work: how many records and bytes, in how many milliseconds. */
export interface Throughput {
  records: number;
  bytes: number;
  ms: number;
}

/** What the raw-baseline worker exposes through Comlink. */
export interface RawWorkerApi {
  /** Deletes and recreates the benchmark database. */
  reset(): Promise<void>;
  /** Puts `batches` values of `batchRecords` × `recordBytes` random bytes, one relaxed readwrite transaction each. */
  idbPut(batches: number, batchRecords: number, recordBytes: number): Promise<Throughput>;
  /** Reads every stored batch back with one getAll. */
  idbRead(batchRecords: number): Promise<Throughput>;
  /** CRC32C over `batches` random 1 MiB buffers, measured in the worker. */
  crc32c(batches: number, batchBytes: number): Promise<Throughput>;
  /** Serves raw round trips on `port`: a number is echoed; an ArrayBuffer is put in its own transaction, then acknowledged. */
  serve(port: MessagePort): void;
}
