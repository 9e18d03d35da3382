import { wrap, type Remote } from 'comlink';
import type { BenchCase, BenchFigure } from '../types';
import type { CodecWorkerApi } from '../workers/codec-api';
import type { Throughput } from '../workers/raw-api';

// The record batch codec (src/protocol) in a DedicatedWorker, on batches of 1 KiB random
// records. Uncompressed encode and decode are compared with raw.crc32c: the checksum is
// work the codec cannot avoid, so the ratio shows what everything else costs.

const RECORD_BYTES = 1024;
/** About 64 MiB of batches per measurement, whatever the batch size. */
const BYTES_PER_RUN = 64 * 1024 * 1024;
const SIZES = [100, 1000];

let worker: Remote<CodecWorkerApi> | undefined;
const codecWorker = () =>
  (worker ??= wrap<CodecWorkerApi>(new Worker(new URL('../workers/codec.worker.ts', import.meta.url), { type: 'module' })));

const mbps = (t: Throughput) => t.bytes / 1e6 / (t.ms / 1000);
const batchesFor = (records: number) => Math.max(8, Math.round(BYTES_PER_RUN / (records * RECORD_BYTES)));

const versusCrc = (id: string, t: Throughput): BenchFigure => ({ id, value: mbps(t), unit: 'MB/s', better: 'higher', baseline: 'raw.crc32c' });

export const cases: BenchCase[] = [
  {
    id: 'codec.encode',
    title: 'encodeBatch, uncompressed, 100 and 1000 records of 1 KiB (MB/s of batch bytes, ratio to raw.crc32c)',
    baselines: ['raw.crc32c'],
    async run() {
      const figures: BenchFigure[] = [];
      for (const records of SIZES) figures.push(versusCrc(`codec.encode.${records}`, await codecWorker().encode(batchesFor(records), records, RECORD_BYTES)));
      // The floor under encode: a fresh buffer's first touch costs about as much as the
      // checksum here, so encode's ratio cannot exceed about 1 / (1 + crc/freshbuffer).
      figures.push(versusCrc('codec.encode.freshbuffer', await codecWorker().freshBuffer(batchesFor(1000), 1000, RECORD_BYTES)));
      return figures;
    },
  },
  {
    id: 'codec.decode',
    title: 'decodeBatch with CRC32C check, uncompressed, 100 and 1000 records of 1 KiB (ratio to raw.crc32c)',
    baselines: ['raw.crc32c'],
    async run() {
      const figures: BenchFigure[] = [];
      for (const records of SIZES) figures.push(versusCrc(`codec.decode.${records}`, await codecWorker().decode(batchesFor(records), records, RECORD_BYTES)));
      return figures;
    },
  },
  {
    id: 'codec.gzip',
    title: 'gzip (CompressionStream) encode and decode of 1000-record batches of random 1 KiB values (MB/s of uncompressed bytes)',
    runs: 3,
    async run() {
      const batches = 16;
      return [
        { id: 'codec.gzip.encode.1000', value: mbps(await codecWorker().gzipEncode(batches, 1000, RECORD_BYTES)), unit: 'MB/s', better: 'higher' },
        { id: 'codec.gzip.decode.1000', value: mbps(await codecWorker().gzipDecode(batches, 1000, RECORD_BYTES)), unit: 'MB/s', better: 'higher' },
      ];
    },
  },
];
