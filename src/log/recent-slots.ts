/**
 * Which of a node's logs may keep something in memory (a read-ahead, a tail cache): the `max`
 * most recently used. Each holds a bounded amount, but a node may have many partitions: the
 * least recently used drops its own when another takes a slot, so the node's total is bounded.
 * @example const slots = new RecentSlots(8); slots.hold(log, () => log.dropReadAhead());
 */
export class RecentSlots {
  /** Holders and how each drops what it holds, least recently used first (a Map keeps insertion order). */
  readonly #holders = new Map<object, () => void>();

  constructor(readonly max: number) {}

  /** `holder` keeps its thing now: it becomes the most recent, and the least recent beyond `max` drops its own. */
  hold(holder: object, drop: () => void): void {
    this.#holders.delete(holder);
    this.#holders.set(holder, drop);
    for (const [oldest, dropOldest] of this.#holders) {
      if (this.#holders.size <= this.max) break;
      this.#holders.delete(oldest);
      dropOldest();
    }
  }

  /** `holder` keeps nothing any more. */
  release(holder: object): void {
    this.#holders.delete(holder);
  }

  /** Holders now. */
  get size(): number {
    return this.#holders.size;
  }
}
