import { describe, expect, it } from 'vitest';
import { coordinatorPartition } from '../../src/group';

// Kafka's rule for a group's offsets partition: Utils.abs(groupId.hashCode()) % partitions.
// The hashes below are what a JDK's String.hashCode gave for these strings (java 'H.java').

describe('coordinatorPartition', () => {
  it('is Java’s String.hashCode, made positive as Kafka’s Utils.abs, modulo the partitions', () => {
    expect(coordinatorPartition('hello', 1 << 30)).toBe(99162322 % (1 << 30)); // "hello".hashCode() = 99162322
    expect(coordinatorPartition('orders', 50)).toBe(1008770331 % 50); // "orders".hashCode() = -1008770331 (overflows int32)
    expect(coordinatorPartition('orders', 8)).toBe(3);
    // "polygenelubricants".hashCode() is Integer.MIN_VALUE, which Utils.abs maps to 0.
    expect(coordinatorPartition('polygenelubricants', 7)).toBe(0);
    // Code units, not code points: a character outside the BMP counts as its two surrogates.
    expect(coordinatorPartition('😀', 1 << 30)).toBe(1772899 % (1 << 30)); // "😀".hashCode() = 1772899
    expect(coordinatorPartition('', 8)).toBe(0);
  });

  it('spreads groups over every partition', () => {
    const hit = new Set(Array.from({ length: 200 }, (_, i) => coordinatorPartition(`group-${i}`, 8)));
    expect([...hit].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
