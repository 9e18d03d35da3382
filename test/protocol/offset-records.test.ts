import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidRecordError } from '../../src/errors';
import { decodeOffsetKey, decodeOffsetValue, encodeOffsetKey, encodeOffsetValue } from '../../src/protocol';

// The records of __consumer_offsets: Kafka's OffsetCommitKey v1 and OffsetCommitValue v3 bytes.

const int16String = (s: string) => {
  const bytes = [...new TextEncoder().encode(s)];
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
};
const int64 = (n: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt(n));
  return [...out];
};
const text = fc.string({ unit: 'binary', maxLength: 20 });

describe('offsets topic records', () => {
  it('writes Kafka’s OffsetCommitKey v1 and OffsetCommitValue v3 layouts', () => {
    expect(encodeOffsetKey({ groupId: 'app', topic: 'orders', partition: 2 })).toEqual(Uint8Array.of(0, 1, ...int16String('app'), ...int16String('orders'), 0, 0, 0, 2));
    // offset, leaderEpoch -1, metadata (null as length -1), commitTimestamp.
    expect(encodeOffsetValue({ offset: 42, commitTimestamp: 1_700_000_000_000, metadata: null })).toEqual(Uint8Array.of(0, 3, ...int64(42), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...int64(1_700_000_000_000)));
    expect(encodeOffsetValue({ offset: 0, commitTimestamp: 5, metadata: 'm' })).toEqual(Uint8Array.of(0, 3, ...int64(0), 0xff, 0xff, 0xff, 0xff, ...int16String('m'), ...int64(5)));
  });

  it('decodes to what was encoded', () => {
    fc.assert(
      fc.property(text, text, fc.nat({ max: 0x7fff_ffff }), fc.maxSafeNat(), fc.maxSafeInteger(), fc.option(text, { nil: null }), (groupId, topic, partition, offset, commitTimestamp, metadata) => {
        expect(decodeOffsetKey(encodeOffsetKey({ groupId, topic, partition }))).toEqual({ groupId, topic, partition });
        expect(decodeOffsetValue(encodeOffsetValue({ offset, commitTimestamp, metadata }))).toEqual({ offset, commitTimestamp, metadata });
      }),
    );
  });

  it('skips Kafka’s group metadata keys and reads version 0 offset keys', () => {
    expect(decodeOffsetKey(Uint8Array.of(0, 2, ...int16String('app')))).toBeUndefined();
    expect(decodeOffsetKey(Uint8Array.of(0, 0, ...int16String('a'), ...int16String('t'), 0, 0, 0, 0))).toEqual({ groupId: 'a', topic: 't', partition: 0 });
  });

  it('refuses damaged records: truncated, trailing bytes, unknown versions, negative partitions and offsets, invalid UTF-8', () => {
    const key = encodeOffsetKey({ groupId: 'g', topic: 't', partition: 1 });
    const value = encodeOffsetValue({ offset: 7, commitTimestamp: 1, metadata: 'x' });
    for (let n = 0; n < key.length; n++) expect(() => decodeOffsetKey(key.subarray(0, n))).toThrow(InvalidRecordError);
    for (let n = 0; n < value.length; n++) expect(() => decodeOffsetValue(value.subarray(0, n))).toThrow(InvalidRecordError);
    expect(() => decodeOffsetKey(Uint8Array.of(...key, 0))).toThrow(InvalidRecordError);
    expect(() => decodeOffsetValue(Uint8Array.of(...value, 0))).toThrow(InvalidRecordError);
    expect(() => decodeOffsetKey(Uint8Array.of(0, 9, ...key.subarray(2)))).toThrow(InvalidRecordError);
    expect(() => decodeOffsetValue(Uint8Array.of(0, 1, ...value.subarray(2)))).toThrow(InvalidRecordError);
    expect(() => decodeOffsetKey(Uint8Array.of(0, 1, ...int16String('g'), ...int16String('t'), 0xff, 0xff, 0xff, 0xff))).toThrow(InvalidRecordError);
    expect(() => decodeOffsetValue(Uint8Array.of(0, 3, ...int64(-1), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...int64(0)))).toThrow(InvalidRecordError);
    expect(() => decodeOffsetKey(Uint8Array.of(0, 1, 0, 1, 0xff, ...int16String('t'), 0, 0, 0, 0))).toThrow(InvalidRecordError);
    expect(() => encodeOffsetValue({ offset: -1, commitTimestamp: 0, metadata: null })).toThrow(InvalidRecordError);
  });
});
