import { expose } from 'comlink';
import { decodeBatch, decodeBatchAsync, encodeBatch, encodeBatchAsync, type RecordBatchInput } from '../../../src/protocol';
import type { CodecWorkerApi } from './codec-api';
import type { Throughput } from './raw-api';

// Record values are random (incompressible) 1 KiB, like raw.crc32c's buffers; keys are
// short, as with user ids. Inputs are built before the clock starts.

const POOL_BATCHES = 4;

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(length, at + 65536)));
  return bytes;
}

function inputs(batchRecords: number, recordBytes: number): RecordBatchInput[] {
  return Array.from({ length: POOL_BATCHES }, (_, b) => {
    const values = randomBytes(batchRecords * recordBytes);
    return {
      baseTimestamp: 1_700_000_000_000 + b,
      records: Array.from({ length: batchRecords }, (_, i) => ({
        key: new TextEncoder().encode(`user-${i}`),
        value: values.subarray(i * recordBytes, (i + 1) * recordBytes),
        timestampDelta: i,
      })),
    };
  });
}

/** Runs `once(i)` for a warm-up round, then `batches` times under the clock; `once` returns the bytes it handled. */
async function measure(batches: number, batchRecords: number, once: (i: number) => number | Promise<number>): Promise<Throughput> {
  for (let i = 0; i < Math.max(4, batches / 8); i++) await once(i);
  let bytes = 0;
  const start = performance.now();
  for (let i = 0; i < batches; i++) bytes += await once(i);
  const ms = performance.now() - start;
  return { records: batches * batchRecords, bytes, ms };
}

const api: CodecWorkerApi = {
  async encode(batches, batchRecords, recordBytes) {
    const pool = inputs(batchRecords, recordBytes);
    return measure(batches, batchRecords, (i) => encodeBatch(pool[i % POOL_BATCHES]!).length);
  },

  async freshBuffer(batches, batchRecords, recordBytes) {
    const pool = inputs(batchRecords, recordBytes);
    const batchBytes = encodeBatch(pool[0]!).length;
    return measure(batches, batchRecords, (i) => {
      const out = new Uint8Array(batchBytes);
      let position = 0;
      for (const record of pool[i % POOL_BATCHES]!.records) {
        out.set(record.value!, position);
        position += recordBytes;
      }
      return out.length;
    });
  },

  async decode(batches, batchRecords, recordBytes) {
    const pool = inputs(batchRecords, recordBytes).map(encodeBatch);
    return measure(batches, batchRecords, (i) => {
      const bytes = pool[i % POOL_BATCHES]!;
      if (decodeBatch(bytes).records.length !== batchRecords) throw new Error('decoded the wrong number of records');
      return bytes.length;
    });
  },

  async gzipEncode(batches, batchRecords, recordBytes) {
    const plain = inputs(batchRecords, recordBytes);
    const pool = plain.map((input) => ({ ...input, compression: 'gzip' as const }));
    const plainBytes = encodeBatch(plain[0]!).length;
    return measure(batches, batchRecords, async (i) => {
      await encodeBatchAsync(pool[i % POOL_BATCHES]!);
      return plainBytes;
    });
  },

  async gzipDecode(batches, batchRecords, recordBytes) {
    const plain = inputs(batchRecords, recordBytes);
    const pool = await Promise.all(plain.map((input) => encodeBatchAsync({ ...input, compression: 'gzip' })));
    const plainBytes = encodeBatch(plain[0]!).length;
    return measure(batches, batchRecords, async (i) => {
      if ((await decodeBatchAsync(pool[i % POOL_BATCHES]!)).records.length !== batchRecords) throw new Error('decoded the wrong number of records');
      return plainBytes;
    });
  },
};

expose(api);
