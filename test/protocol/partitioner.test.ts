import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LetterboxError } from '../../src/errors';
import { createStickyPartitioner, defaultPartition, murmur2 } from '../../src/protocol';

const ascii = (s: string) => new TextEncoder().encode(s);

/** A seeded generator in [0, 1) (mulberry32), so that the tests replay. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

describe('murmur2', () => {
  // Kafka's UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ])('matches the Java client on %s', (key, hash) => {
    expect(murmur2(ascii(key))).toBe(hash);
  });

  // Akka's Murmur2Spec, "expected correct hash values from the kafka murmur2 impl":
  // keys of every length modulo 4, which exercises each tail case.
  it.each([
    ['1', -1993445489],
    ['12', 126087238],
    ['123', -267702483],
    ['1234', -1614185708],
    ['12345', -1188365604],
  ])('matches Kafka on %s', (key, hash) => {
    expect(murmur2(ascii(key))).toBe(hash);
  });

  it('partitions as toPositive(murmur2) % n', () => {
    // -973932308 & 0x7fffffff = 1173551340
    expect(defaultPartition(ascii('21'), 1000)).toBe(1173551340 % 1000);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 10_000 }), (key, n) => {
        const partition = defaultPartition(key, n);
        expect(partition).toBeGreaterThanOrEqual(0);
        expect(partition).toBeLessThan(n);
      }),
    );
    expect(() => defaultPartition(ascii('k'), 0)).toThrow(LetterboxError);
    expect(() => defaultPartition(ascii('k'), 1.5)).toThrow(LetterboxError);
  });
});

describe('sticky partitioner (KIP-480)', () => {
  it('sticks to one partition per topic until a new batch', () => {
    const sticky = createStickyPartitioner(seeded(1));
    const first = sticky.partition('a', 6);
    for (let i = 0; i < 20; i++) expect(sticky.partition('a', 6)).toBe(first);
    const next = sticky.onNewBatch('a', 6, first);
    expect(next).not.toBe(first);
    expect(sticky.partition('a', 6)).toBe(next);
    // A second caller for the same closed batch does not move the topic again.
    expect(sticky.onNewBatch('a', 6, first)).toBe(next);
  });

  it('keeps topics apart and replays with the same randomness', () => {
    const run = () => {
      const sticky = createStickyPartitioner(seeded(42));
      const picks: number[] = [];
      let current = sticky.partition('t', 10);
      for (let i = 0; i < 50; i++) picks.push((current = sticky.onNewBatch('t', 10, current)));
      return picks;
    };
    expect(run()).toEqual(run());
    const sticky = createStickyPartitioner(seeded(3));
    const a = sticky.partition('a', 1000);
    sticky.partition('b', 1000);
    expect(sticky.partition('a', 1000)).toBe(a);
  });

  it('chooses only available partitions, and spreads over them', () => {
    const sticky = createStickyPartitioner(seeded(7));
    const available = [1, 4, 5];
    const seen = new Set<number>();
    let current = sticky.partition('t', 8, available);
    for (let i = 0; i < 200; i++) {
      expect(available).toContain(current);
      seen.add(current);
      const next = sticky.onNewBatch('t', 8, current, available);
      expect(next).not.toBe(current);
      current = next;
    }
    expect([...seen].sort()).toEqual(available);
    // When its partition becomes unavailable, the topic moves.
    const others = available.filter((p) => p !== current);
    expect(others).toContain(sticky.partition('t', 8, others));
  });

  it('with one partition, stays on it', () => {
    const sticky = createStickyPartitioner(() => 0.999999);
    expect(sticky.partition('t', 1)).toBe(0);
    expect(sticky.onNewBatch('t', 1, 0)).toBe(0);
    expect(sticky.onNewBatch('t', 3, 0, [2])).toBe(2);
  });

  it('stays in range for any randomness, even a generator returning 1', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1 }), fc.integer({ min: 1, max: 50 }), (values, n) => {
        let i = 0;
        const sticky = createStickyPartitioner(() => values[i++ % values.length]!);
        let current = sticky.partition('t', n);
        for (let k = 0; k < 10; k++) {
          expect(current).toBeGreaterThanOrEqual(0);
          expect(current).toBeLessThan(n);
          current = sticky.onNewBatch('t', n, current);
        }
      }),
    );
  });
});
