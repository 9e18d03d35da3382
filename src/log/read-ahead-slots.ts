/**
 * Which logs may keep a read-ahead: the `max` most recently read. A read-ahead holds up to
 * about twice READ_AHEAD_BYTES, so a node whose readers catch up on many partitions at once
 * would otherwise hold that much for each of them; the least recently read drops its own.
 * @example const slots = new ReadAheadSlots(8); slots.hold(log, () => log.dropReadAhead());
 */
export class ReadAheadSlots {
  /** Holders and how each drops its read-ahead, least recently read first (a Map keeps insertion order). */
  readonly #holders = new Map<object, () => void>();

  constructor(readonly max: number) {}

  /** `holder` keeps a read-ahead now: it becomes the most recent, and the least recent beyond `max` drops its own. */
  hold(holder: object, drop: () => void): void {
    this.#holders.delete(holder);
    this.#holders.set(holder, drop);
    for (const [oldest, dropOldest] of this.#holders) {
      if (this.#holders.size <= this.max) break;
      this.#holders.delete(oldest);
      dropOldest();
    }
  }

  /** `holder` keeps no read-ahead any more. */
  release(holder: object): void {
    this.#holders.delete(holder);
  }

  /** Logs holding a read-ahead now. */
  get size(): number {
    return this.#holders.size;
  }
}
