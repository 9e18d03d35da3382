import type { Throughput } from './raw-api';

/** What the codec benchmark worker exposes through Comlink. Each call measures `batches` batches of `batchRecords` random records of `recordBytes`. */
export interface CodecWorkerApi {
  /** encodeBatch of uncompressed batches; bytes are the encoded batch bytes. */
  encode(batches: number, batchRecords: number, recordBytes: number): Promise<Throughput>;
  /** What the encoder cannot go under: allocating a fresh batch-sized buffer and copying the values into it. */
  freshBuffer(batches: number, batchRecords: number, recordBytes: number): Promise<Throughput>;
  /** decodeBatch (header, CRC32C, records) of uncompressed batches. */
  decode(batches: number, batchRecords: number, recordBytes: number): Promise<Throughput>;
  /** encodeBatchAsync with gzip; bytes are the uncompressed batch bytes. */
  gzipEncode(batches: number, batchRecords: number, recordBytes: number): Promise<Throughput>;
  /** decodeBatchAsync of gzip batches; bytes are the uncompressed batch bytes. */
  gzipDecode(batches: number, batchRecords: number, recordBytes: number): Promise<Throughput>;
}
