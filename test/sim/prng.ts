// The simulator's only source of randomness: one seeded stream per run, so a seed
// replays exactly (mulberry32: small, fast, good enough for schedules).

export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uint32. @example new Prng(1).next() */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [min, max]. @example prng.int(1, 6) */
  int(min: number, max: number): number {
    return min + (this.next() % (max - min + 1));
  }

  /** True with probability `p`. @example if (prng.chance(0.1)) drop(); */
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }

  /** One element of a non-empty array. @example prng.pick(nodes) */
  pick<T>(items: readonly T[]): T {
    return items[this.next() % items.length]!;
  }
}

/** 32-bit FNV-1a of bytes: identifies a payload in the checkers. @example fnv1a(new Uint8Array([1])) */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/**
 * Hash of a log prefix from the previous prefix's hash and one entry: two logs with
 * equal chain hashes at an index hold the same entries up to it (log matching).
 * @example chain(chain(0, 1, fnv1a(a)), 1, fnv1a(b))
 */
export function chain(previous: number, term: number, dataHash: number): number {
  let h = Math.imul(previous ^ term, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ dataHash, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
