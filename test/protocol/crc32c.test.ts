import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/protocol';

const ascii = (s: string) => new TextEncoder().encode(s);

describe('crc32c', () => {
  // The CRC catalogue's check value for CRC-32C ("123456789").
  it('matches the standard check value', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
  });

  // RFC 3720 (iSCSI), appendix B.4: 32 bytes of zeros, of ones, ascending, descending.
  it('matches the RFC 3720 vectors', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  // Kafka's own vector: Crc32CTest.testValue in clients/src/test/java/org/apache/kafka/common/utils/.
  it('matches Kafka\'s Crc32CTest vector', () => {
    expect(crc32c(ascii('Some String'))).toBe(608512271);
  });

  it('agrees with a bytewise reference on every length around the 8-byte stride', () => {
    const reference = (bytes: Uint8Array) => {
      let c = 0xffffffff;
      for (const b of bytes) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 151 + 7) & 0xff);
    for (let length = 0; length <= data.length; length++) {
      expect(crc32c(data.subarray(0, length)), `length ${length}`).toBe(reference(data.subarray(0, length)));
    }
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });
});

describe('crc32c continued', () => {
  it('continues from the CRC of the bytes before, at every split point', () => {
    const data = Uint8Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff);
    for (let split = 0; split <= data.length; split++) {
      expect(crc32c(data.subarray(split), crc32c(data.subarray(0, split)))).toBe(crc32c(data));
    }
  });
});
