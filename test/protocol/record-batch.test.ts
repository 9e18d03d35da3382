import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptBatchError, InvalidRecordError, LetterboxError, UnsupportedCompressionError } from '../../src/errors';
import {
  BATCH_HEADER_BYTES,
  crc32c,
  decodeBatch,
  encodeBatch,
  readBatchHeader,
  setBaseOffset,
  setPartitionLeaderEpoch,
  verifyBatch,
  type RecordBatch,
  type RecordBatchInput,
} from '../../src/protocol';
import { batchInput } from './arbitraries';

const utf8 = (s: string) => new TextEncoder().encode(s);

/** The fields an encoded batch should give back, with the encoder's defaults filled in. */
function expected(input: RecordBatchInput) {
  const records = input.records.map((r, i) => ({
    attributes: r.attributes ?? 0,
    timestampDelta: r.timestampDelta ?? 0,
    offsetDelta: r.offsetDelta ?? i,
    key: r.key ?? null,
    value: r.value,
    headers: (r.headers ?? []).map((h) => ({ key: h.key, value: h.value })),
  }));
  return {
    baseOffset: input.baseOffset ?? 0,
    partitionLeaderEpoch: input.partitionLeaderEpoch ?? -1,
    compression: 'none',
    timestampType: input.timestampType ?? 'CreateTime',
    isTransactional: input.isTransactional ?? false,
    isControl: input.isControl ?? false,
    lastOffsetDelta: input.lastOffsetDelta ?? records.at(-1)?.offsetDelta ?? 0,
    baseTimestamp: input.baseTimestamp,
    maxTimestamp: input.maxTimestamp ?? input.baseTimestamp + (records.length === 0 ? 0 : Math.max(...records.map((r) => r.timestampDelta))),
    producerId: input.producerId ?? -1,
    producerEpoch: input.producerEpoch ?? -1,
    baseSequence: input.baseSequence ?? -1,
    recordCount: records.length,
    records,
  };
}

const sample: RecordBatchInput = {
  baseTimestamp: 1_700_000_000_000,
  records: [
    { key: utf8('k1'), value: utf8('hello'), headers: [{ key: 'trace', value: utf8('abc') }] },
    { key: null, value: null, timestampDelta: 5 },
    { key: utf8(''), value: utf8('x'), headers: [{ key: 'ünï', value: null }] },
  ],
};

const expectCorrupt = (bytes: Uint8Array, message?: RegExp) => {
  let thrown: unknown;
  try {
    decodeBatch(bytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(CorruptBatchError);
  expect((thrown as LetterboxError).code).toBe('CORRUPT_MESSAGE');
  if (message) expect((thrown as Error).message).toMatch(message);
};

/** Rewrites the CRC after a deliberate change, so that the structural checks are what fails. */
const fixCrc = (bytes: Uint8Array) => {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(17, crc32c(bytes.subarray(21)));
  return bytes;
};

describe('record batch', () => {
  it('encodes and decodes a batch with keys, null values and headers', () => {
    const bytes = encodeBatch(sample);
    const batch = decodeBatch(bytes);
    expect(batch).toMatchObject(expected(sample));
    expect(batch.magic).toBe(2);
    expect(batch.batchLength).toBe(bytes.length - 12);
    expect(batch.crc).toBe(crc32c(bytes.subarray(21)));
  });

  it('keeps a header key that starts with U+FEFF', () => {
    const bytes = encodeBatch({ ...sample, records: [{ key: null, value: null, headers: [{ key: '\uFEFFk', value: null }] }] });
    expect(decodeBatch(bytes).records[0]!.headers[0]!.key).toBe('\uFEFFk');
  });

  it('lays out the header at Kafka\'s offsets', () => {
    const bytes = encodeBatch({ ...sample, baseOffset: 0x0102030405, producerId: 77, producerEpoch: 3, baseSequence: 9, partitionLeaderEpoch: 4 });
    const view = new DataView(bytes.buffer);
    expect(view.getBigInt64(0)).toBe(0x0102030405n);
    expect(view.getInt32(8)).toBe(bytes.length - 12);
    expect(view.getInt32(12)).toBe(4);
    expect(view.getInt8(16)).toBe(2);
    expect(view.getInt32(23)).toBe(2); // lastOffsetDelta
    expect(view.getBigInt64(27)).toBe(1_700_000_000_000n);
    expect(view.getBigInt64(35)).toBe(1_700_000_000_005n);
    expect(view.getBigInt64(43)).toBe(77n);
    expect(view.getInt16(51)).toBe(3);
    expect(view.getInt32(53)).toBe(9);
    expect(view.getInt32(57)).toBe(3);
    expect(BATCH_HEADER_BYTES).toBe(61);
  });

  it('returns keys and values as views of the batch bytes', () => {
    const bytes = encodeBatch(sample);
    const value = decodeBatch(bytes).records[0]!.value!;
    expect(value.buffer).toBe(bytes.buffer);
  });

  it('keeps offsetDelta gaps and an explicit lastOffsetDelta (a compacted batch)', () => {
    const input: RecordBatchInput = {
      baseTimestamp: 0,
      lastOffsetDelta: 9,
      records: [
        { offsetDelta: 2, value: utf8('a') },
        { offsetDelta: 7, value: utf8('b') },
      ],
    };
    const batch = decodeBatch(encodeBatch(input));
    expect(batch.records.map((r) => r.offsetDelta)).toEqual([2, 7]);
    expect(batch.lastOffsetDelta).toBe(9);
  });

  it('encodes an empty batch', () => {
    const batch = decodeBatch(encodeBatch({ baseTimestamp: 5, records: [] }));
    expect(batch.recordCount).toBe(0);
    expect(batch.records).toEqual([]);
    expect(batch.lastOffsetDelta).toBe(0);
  });

  it('sets baseOffset and partitionLeaderEpoch in place without breaking the CRC', () => {
    const bytes = encodeBatch(sample);
    setBaseOffset(bytes, 2 ** 40 + 3);
    setPartitionLeaderEpoch(bytes, 17);
    const header = verifyBatch(bytes);
    expect(header.baseOffset).toBe(2 ** 40 + 3);
    expect(header.partitionLeaderEpoch).toBe(17);
    expect(() => setBaseOffset(bytes, -1)).toThrow(InvalidRecordError);
    expect(() => setBaseOffset(bytes, 2 ** 53)).toThrow(InvalidRecordError);
    expect(() => setPartitionLeaderEpoch(bytes, 2 ** 31)).toThrow(InvalidRecordError);
    expect(() => setBaseOffset(new Uint8Array(10), 1)).toThrow(CorruptBatchError);
  });

  it('reads the header of a batch inside a larger buffer', () => {
    const bytes = encodeBatch(sample);
    const larger = new Uint8Array(bytes.length + 20);
    larger.set(bytes, 7);
    const view = larger.subarray(7, 7 + bytes.length);
    expect(decodeBatch(view)).toMatchObject(expected(sample));
  });

  describe('rejects bad input with a typed error', () => {
    const good = () => encodeBatch(sample);

    it('shorter than the header', () => {
      expectCorrupt(new Uint8Array(0), /shorter/);
      expectCorrupt(good().subarray(0, 60), /shorter/);
      expect(() => readBatchHeader(new Uint8Array(3))).toThrow(CorruptBatchError);
    });

    it('truncated or with bytes appended (batchLength disagrees)', () => {
      const bytes = good();
      expectCorrupt(bytes.subarray(0, bytes.length - 1), /says it has/);
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      expectCorrupt(longer, /says it has/);
    });

    it('magic other than 2', () => {
      for (const magic of [0, 1, 3, -1]) {
        const bytes = good();
        bytes[16] = magic & 0xff;
        expectCorrupt(bytes, /magic/);
      }
    });

    it('a CRC mismatch', () => {
      const bytes = good();
      bytes[bytes.length - 1]! ^= 0x01;
      expectCorrupt(bytes, /CRC32C/);
      expect(() => verifyBatch(bytes)).toThrow(CorruptBatchError);
      // The header alone does not check the CRC: the log reads headers cheaply.
      expect(readBatchHeader(bytes).recordCount).toBe(3);
    });

    it('unknown and unsupported compression codecs', () => {
      for (const id of [2, 3, 4, 5, 6, 7]) {
        const bytes = good();
        bytes[22] = (bytes[22]! & ~7) | id;
        fixCrc(bytes);
        expect(() => decodeBatch(bytes)).toThrow(id <= 4 ? UnsupportedCompressionError : CorruptBatchError);
      }
      const gzip = good();
      gzip[22] = (gzip[22]! & ~7) | 1;
      expect(() => decodeBatch(fixCrc(gzip))).toThrow(/decodeBatchAsync/);
    });

    it('int64 fields outside the safe integer range', () => {
      const bytes = good();
      new DataView(bytes.buffer).setBigInt64(27, 2n ** 62n);
      expectCorrupt(fixCrc(bytes), /baseTimestamp.*safe integer/);
      const offset = good();
      new DataView(offset.buffer).setBigInt64(0, -(2n ** 60n));
      expectCorrupt(offset, /baseOffset/);
    });

    it('a record count that disagrees with the records', () => {
      for (const count of [2, 4, 1000, 0x7fffffff, -1]) {
        const bytes = good();
        new DataView(bytes.buffer).setInt32(57, count);
        expectCorrupt(fixCrc(bytes));
      }
    });

    it('a record length that overruns the batch or leaves bytes over', () => {
      for (const delta of [1, -1, 100]) {
        const bytes = good();
        bytes[61] = bytes[61]! + 2 * delta; // zigzag: +2 per unit
        expectCorrupt(fixCrc(bytes));
      }
    });

    it('a header key that is null or not UTF-8', () => {
      const nullKey = encodeBatch({ baseTimestamp: 0, records: [{ value: null, headers: [{ key: 'k', value: null }] }] });
      // record: len, attr, tsDelta, offDelta, key(-1), value(-1), headerCount(1), keyLen(1) 'k', valueLen(-1)
      const keyLength = BATCH_HEADER_BYTES + 7;
      expect(nullKey[keyLength]).toBe(2);
      nullKey[keyLength] = 1; // -1: a null header key
      nullKey[keyLength + 1] = 1; // the 'k' byte becomes the value's null length
      const shortened = nullKey.slice(0, nullKey.length - 1);
      new DataView(shortened.buffer).setInt32(8, shortened.length - 12);
      shortened[BATCH_HEADER_BYTES] = shortened[BATCH_HEADER_BYTES]! - 2;
      expectCorrupt(fixCrc(shortened), /null key/);

      const badUtf8 = encodeBatch({ baseTimestamp: 0, records: [{ value: null, headers: [{ key: 'k', value: null }] }] });
      badUtf8[keyLength + 1] = 0xff;
      expectCorrupt(fixCrc(badUtf8), /UTF-8/);
    });

    it('invalid records given to the encoder', () => {
      const bad: RecordBatchInput[] = [
        { baseTimestamp: 0, records: [{ offsetDelta: 1, value: null }, { offsetDelta: 1, value: null }] },
        { baseTimestamp: 0, records: [{ offsetDelta: -1, value: null }] },
        { baseTimestamp: 0, records: [{ offsetDelta: 2 ** 31, value: null }] },
        { baseTimestamp: 0, records: [{ timestampDelta: 0.5, value: null }] },
        { baseTimestamp: 0, records: [{ attributes: 300, value: null }] },
        { baseTimestamp: 2 ** 53, records: [] },
        { baseTimestamp: 0, baseOffset: -1.5, records: [] },
        { baseTimestamp: 0, producerEpoch: 40000, records: [] },
        { baseTimestamp: 0, lastOffsetDelta: 0, records: [{ offsetDelta: 3, value: null }] },
      ];
      for (const input of bad) expect(() => encodeBatch(input), JSON.stringify(input)).toThrow(InvalidRecordError);
      expect(() => encodeBatch({ ...sample, compression: 'gzip' })).toThrow(UnsupportedCompressionError);
    });
  });

  describe('properties', () => {
    it('decode ∘ encode is the identity on random batches, and re-encoding gives the same bytes', () => {
      fc.assert(
        fc.property(batchInput(), (input) => {
          const bytes = encodeBatch(input);
          const batch = decodeBatch(bytes);
          expect(batch).toMatchObject(expected(input));
          expect(encodeBatch(batch)).toEqual(bytes);
        }),
        { numRuns: 300 },
      );
    });

    /** Decoding must either succeed with a batch whose CRC is right, or throw a LetterboxError. */
    const decodesSafely = (bytes: Uint8Array): RecordBatch | undefined => {
      try {
        const batch = decodeBatch(bytes);
        expect(crc32c(bytes.subarray(21))).toBe(batch.crc);
        return batch;
      } catch (error) {
        if (!(error instanceof LetterboxError)) throw error;
        return undefined;
      }
    };

    it('random bytes never crash the decoder', () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => void decodesSafely(bytes)), { numRuns: 2000 });
    });

    it('random bytes behind a valid header (right length and CRC) never crash the record decoder', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 5 }), (records, count) => {
          const bytes = new Uint8Array(BATCH_HEADER_BYTES + records.length);
          bytes.set(records, BATCH_HEADER_BYTES);
          const view = new DataView(bytes.buffer);
          view.setInt32(8, bytes.length - 12);
          view.setInt8(16, 2);
          view.setInt32(57, count);
          decodesSafely(fixCrc(bytes));
        }),
        { numRuns: 2000 },
      );
    });

    it('truncations never crash and never decode', () => {
      fc.assert(
        fc.property(batchInput(5), fc.nat(), (input, cut) => {
          const bytes = encodeBatch(input);
          const length = cut % bytes.length;
          expect(decodesSafely(bytes.subarray(0, length))).toBeUndefined();
        }),
        { numRuns: 500 },
      );
    });

    it('bit flips never crash and never decode to a batch with a bad CRC', () => {
      fc.assert(
        fc.property(batchInput(5), fc.nat(), fc.integer({ min: 0, max: 7 }), (input, at, bit) => {
          const bytes = encodeBatch(input);
          const index = at % bytes.length;
          bytes[index]! ^= 1 << bit;
          const batch = decodesSafely(bytes);
          // Only the fields outside the CRC (baseOffset, batchLength's check aside, epoch) may change undetected.
          if (batch !== undefined) expect(index < 17).toBe(true);
        }),
        { numRuns: 1000 },
      );
    });
  });
});
