import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, putVarint, putVarlong, varintBytes, varlongBytes } from '../../src/protocol/bytes';

class Malformed extends Error {}
const malformed = (message: string) => new Malformed(message);
const reader = (bytes: number[] | Uint8Array) => new ByteReader(Uint8Array.from(bytes), malformed);

const encodeVarint = (value: number) => {
  const out = new Uint8Array(varintBytes(value));
  expect(putVarint(out, 0, value)).toBe(out.length);
  return [...out];
};
const encodeVarlong = (value: number) => {
  const out = new Uint8Array(varlongBytes(value));
  expect(putVarlong(out, 0, value)).toBe(out.length);
  return [...out];
};

// Vectors from Kafka's ByteUtilsTest (testVarintSerde, testVarlongSerde, testInvalidVarint,
// testInvalidVarlong) in clients/src/test/java/org/apache/kafka/common/utils/.
const VARINT_VECTORS: Array<[number, number[]]> = [
  [0, [0x00]],
  [-1, [0x01]],
  [1, [0x02]],
  [63, [0x7e]],
  [-64, [0x7f]],
  [64, [0x80, 0x01]],
  [-65, [0x81, 0x01]],
  [8191, [0xfe, 0x7f]],
  [-8192, [0xff, 0x7f]],
  [8192, [0x80, 0x80, 0x01]],
  [-8193, [0x81, 0x80, 0x01]],
  [1048575, [0xfe, 0xff, 0x7f]],
  [-1048576, [0xff, 0xff, 0x7f]],
  [1048576, [0x80, 0x80, 0x80, 0x01]],
  [-1048577, [0x81, 0x80, 0x80, 0x01]],
  [134217727, [0xfe, 0xff, 0xff, 0x7f]],
  [-134217728, [0xff, 0xff, 0xff, 0x7f]],
  [134217728, [0x80, 0x80, 0x80, 0x80, 0x01]],
  [-134217729, [0x81, 0x80, 0x80, 0x80, 0x01]],
  [2147483647, [0xfe, 0xff, 0xff, 0xff, 0x0f]],
  [-2147483648, [0xff, 0xff, 0xff, 0xff, 0x0f]],
];
// Only the varlong vectors whose values are safe integers: Letterbox keeps int64s as numbers.
const VARLONG_VECTORS: Array<[number, number[]]> = [
  ...VARINT_VECTORS,
  [17179869183, [0xfe, 0xff, 0xff, 0xff, 0x7f]],
  [-17179869184, [0xff, 0xff, 0xff, 0xff, 0x7f]],
  [17179869184, [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  [-17179869185, [0x81, 0x80, 0x80, 0x80, 0x80, 0x01]],
  [2199023255551, [0xfe, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  [-2199023255552, [0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  [2199023255552, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  [-2199023255553, [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  [281474976710655, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  [-281474976710656, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
  [281474976710656, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  [-281474976710657, [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
];

describe('varints', () => {
  it.each(VARINT_VECTORS)('varint %d matches Kafka', (value, bytes) => {
    expect(encodeVarint(value)).toEqual(bytes);
    const r = reader(bytes);
    expect(r.varint('v')).toBe(value);
    expect(r.position).toBe(bytes.length);
  });

  it.each(VARLONG_VECTORS)('varlong %d matches Kafka', (value, bytes) => {
    expect(encodeVarlong(value)).toEqual(bytes);
    const r = reader(bytes);
    expect(r.varlong('v')).toBe(value);
    expect(r.position).toBe(bytes.length);
  });

  it('rejects Kafka\'s invalid varint and varlong (one overflow byte)', () => {
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).varint('v')).toThrow(Malformed);
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).varlong('v')).toThrow(Malformed);
  });

  it('rejects varlongs outside the safe integer range (Long.MAX_VALUE, Long.MIN_VALUE)', () => {
    expect(() => reader([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).varlong('v')).toThrow(/safe integer/);
    expect(() => reader([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).varlong('v')).toThrow(/safe integer/);
  });

  it('rejects truncated varints with the caller\'s error', () => {
    expect(() => reader([0x80]).varint('v')).toThrow(Malformed);
    expect(() => reader([]).varint('v')).toThrow(Malformed);
    expect(() => reader([0x80, 0x80, 0x80, 0x80, 0x80]).varlong('v')).toThrow(Malformed);
    expect(() => reader([0x05]).bytesOrNull('v')).toThrow(Malformed); // length 3 but nothing follows
    expect(() => reader([0x03]).bytesOrNull('v')).toThrow(/negative length/); // -2
  });

  it('round-trips every int32 and every safe integer', () => {
    fc.assert(
      fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), (value) => {
        expect(reader(encodeVarint(value)).varint('v')).toBe(value);
      }),
    );
    fc.assert(
      fc.property(fc.maxSafeInteger(), (value) => {
        const bytes = encodeVarlong(value);
        expect(bytes.length).toBe(varlongBytes(value));
        expect(reader(bytes).varlong('v')).toBe(value);
      }),
    );
  });
});
