/** A batch at the end of the log, kept in memory. */
interface CachedBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Uint8Array;
}

/**
 * The most recently appended batches of one log, up to `maxBytes`, contiguous up to the log
 * end: a consumer waiting at the tail gets a new record without an IndexedDB read.
 * Reads hand out copies, since fetched buffers are transferred (and so detached) to the page.
 */
export class TailCache {
  readonly #batches: CachedBatch[] = [];
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** Adds batches just made durable at the log end. */
  push(batch: CachedBatch): void {
    if (batch.bytes.length > this.maxBytes) return this.clear();
    // Contiguous or nothing: a batch after a gap (a replaced suffix made durable out of turn) starts anew.
    if (this.#batches.length > 0 && this.#batches.at(-1)!.lastOffset + 1 !== batch.baseOffset) this.clear();
    this.#batches.push(batch);
    this.#bytes += batch.bytes.length;
    while (this.#bytes > this.maxBytes) this.#bytes -= this.#batches.shift()!.bytes.length;
  }

  /**
   * Copies of the cached batches holding `offset` onwards (wholly below `endOffset`, about `maxBytes`),
   * or undefined when `offset` lies before the cache.
   */
  read(offset: number, maxBytes: number, endOffset: number): Uint8Array[] | undefined {
    const first = this.#batches[0];
    if (first === undefined || offset < first.baseOffset) return undefined;
    const out: Uint8Array[] = [];
    let bytes = 0;
    for (const batch of this.#batches) {
      if (batch.lastOffset < offset) continue;
      if (batch.lastOffset >= endOffset || bytes >= maxBytes) break;
      out.push(batch.bytes.slice());
      bytes += batch.bytes.length;
    }
    return out;
  }

  /** Forgets batches holding offsets at or past `offset` (truncation). */
  truncateTo(offset: number): void {
    while (this.#batches.length > 0 && this.#batches.at(-1)!.lastOffset >= offset) this.#bytes -= this.#batches.pop()!.bytes.length;
  }

  clear(): void {
    this.#batches.length = 0;
    this.#bytes = 0;
  }
}
