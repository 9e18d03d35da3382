import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptBatchError, UnsupportedCompressionError } from '../../src/errors';
import { BATCH_HEADER_BYTES, crc32c, decodeBatchAsync, encodeBatch, encodeBatchAsync, readBatchHeader } from '../../src/protocol';
import { batchInput } from './arbitraries';

const fixCrc = (bytes: Uint8Array) => {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(17, crc32c(bytes.subarray(21)));
  return bytes;
};

/** A gzip batch whose compressed part is replaced by `payload`. */
const withPayload = (header: Uint8Array, payload: Uint8Array) => {
  const bytes = new Uint8Array(BATCH_HEADER_BYTES + payload.length);
  bytes.set(header.subarray(0, BATCH_HEADER_BYTES));
  bytes.set(payload, BATCH_HEADER_BYTES);
  new DataView(bytes.buffer).setInt32(8, bytes.length - 12);
  return fixCrc(bytes);
};

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe('gzip batches', () => {
  const value = new TextEncoder().encode('a fairly compressible value, '.repeat(40));
  const input = { compression: 'gzip' as const, baseTimestamp: 1000, records: Array.from({ length: 50 }, () => ({ key: null, value })) };

  it('round-trip, smaller than uncompressed', async () => {
    const bytes = await encodeBatchAsync(input);
    expect(readBatchHeader(bytes).compression).toBe('gzip');
    expect(bytes.length).toBeLessThan(encodeBatch({ ...input, compression: 'none' }).length / 10);
    const batch = await decodeBatchAsync(bytes);
    expect(batch.compression).toBe('gzip');
    expect(batch.records).toHaveLength(50);
    expect(batch.records[49]!.value).toEqual(value);
    // Re-encoding the decoded batch keeps its compression.
    expect(readBatchHeader(await encodeBatchAsync(batch)).compression).toBe('gzip');
  });

  it('decodeBatchAsync also reads uncompressed batches', async () => {
    const bytes = encodeBatch({ ...input, compression: 'none' });
    expect((await decodeBatchAsync(bytes)).records).toHaveLength(50);
  });

  it('round-trips random batches', async () => {
    await fc.assert(
      fc.asyncProperty(batchInput(10), async (random) => {
        const bytes = await encodeBatchAsync({ ...random, compression: 'gzip' });
        const batch = await decodeBatchAsync(bytes);
        expect(batch.records.map((r) => r.value)).toEqual(random.records.map((r) => r.value));
        expect(batch.records.map((r) => r.offsetDelta)).toEqual(random.records.map((r) => r.offsetDelta));
      }),
      { numRuns: 50 },
    );
  });

  it('rejects snappy, lz4 and zstd with UnsupportedCompressionError', async () => {
    for (const compression of ['snappy', 'lz4', 'zstd'] as const) {
      await expect(encodeBatchAsync({ ...input, compression })).rejects.toBeInstanceOf(UnsupportedCompressionError);
      const bytes = encodeBatch({ ...input, compression: 'none' });
      bytes[22] = (bytes[22]! & ~7) | { snappy: 2, lz4: 3, zstd: 4 }[compression];
      const error = await decodeBatchAsync(fixCrc(bytes)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedCompressionError);
      expect((error as UnsupportedCompressionError).code).toBe('UNSUPPORTED_COMPRESSION_TYPE');
    }
  });

  it('rejects gzip data that does not decompress', async () => {
    const header = await encodeBatchAsync(input);
    for (const payload of [new Uint8Array(0), new Uint8Array([1, 2, 3]), header.subarray(BATCH_HEADER_BYTES, header.length - 5)]) {
      await expect(decodeBatchAsync(withPayload(header, payload))).rejects.toBeInstanceOf(CorruptBatchError);
    }
  });

  it('rejects gzip records that do not match the record count', async () => {
    const header = await encodeBatchAsync(input);
    const twoRecords = encodeBatch({ ...input, compression: 'none', records: input.records.slice(0, 2) }).subarray(BATCH_HEADER_BYTES);
    await expect(decodeBatchAsync(withPayload(header, await gzip(twoRecords)))).rejects.toThrow(CorruptBatchError);
  });

  it('stops a decompression bomb at maxDecompressedBytes', async () => {
    const bytes = await encodeBatchAsync(input);
    await expect(decodeBatchAsync(bytes, { maxDecompressedBytes: 1000 })).rejects.toThrow(/more than 1000 bytes/);
    const bomb = withPayload(bytes, await gzip(new Uint8Array(8 * 1024 * 1024)));
    await expect(decodeBatchAsync(bomb, { maxDecompressedBytes: 1024 * 1024 })).rejects.toThrow(CorruptBatchError);
  });

  it('bit flips in a gzip batch never crash and never decode with a bad CRC', async () => {
    const bytes = await encodeBatchAsync(input);
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 7 }), async (at, bit) => {
        const flipped = bytes.slice();
        const index = at % flipped.length;
        flipped[index]! ^= 1 << bit;
        const result = await decodeBatchAsync(flipped).catch((e: unknown) => e);
        if (result instanceof Error) expect(result).toBeInstanceOf(CorruptBatchError);
        else expect(index < 17).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
