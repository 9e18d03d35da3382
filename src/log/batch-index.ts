import { InvalidOffsetError } from '../errors';

// Where each batch of a partition sits in its raft log, in memory: raft index → offsets and
// epoch for every batch after raft's compaction point (four numbers per batch), and the
// epochs' start offsets (Kafka's leader-epoch checkpoint). The raft core reads terms
// synchronously from here; a follower's truncation and OffsetsForLeaderEpoch read the epochs.

/** One batch's place: raft index `index` holds offsets baseOffset..lastOffset, appended in `epoch`, `sizeBytes` stored. */
export interface BatchPlace {
  readonly index: number;
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly epoch: number;
  readonly sizeBytes: number;
}

/**
 * The raft index ↔ offset map of one partition's batches after its compaction point.
 * @example const places = new BatchIndex({ index: 0, epoch: 0, nextOffset: 0 }); places.push({ index: 1, baseOffset: 0, lastOffset: 9, epoch: 1, sizeBytes: 200 });
 */
export class BatchIndex {
  /** Raft index and epoch of the compaction point (0, 0 for a log never compacted) and the offset after it. */
  #start: { index: number; epoch: number; nextOffset: number };
  #baseOffsets: number[] = [];
  #lastOffsets: number[] = [];
  #epochs: number[] = [];
  #sizes: number[] = [];
  /** Each epoch's first index after the start, ascending (Kafka's leader-epoch cache). */
  #epochStarts: Array<{ epoch: number; index: number }> = [];

  constructor(start: { index: number; epoch: number; nextOffset: number }) {
    this.#start = { ...start };
  }

  /** Raft index of the compaction point: batches after it are here. */
  get startIndex(): number {
    return this.#start.index;
  }
  get startEpoch(): number {
    return this.#start.epoch;
  }
  /** Raft index of the last batch (the start's when there is none). */
  get lastIndex(): number {
    return this.#start.index + this.#baseOffsets.length;
  }
  /** The offset the next batch starts at. */
  get nextOffset(): number {
    const last = this.#lastOffsets.at(-1);
    return last === undefined ? this.#start.nextOffset : last + 1;
  }

  /** Adds the batch after the last one; refuses one that does not continue (index or offsets). */
  push(place: BatchPlace): void {
    if (place.index !== this.lastIndex + 1 || place.baseOffset !== this.nextOffset || place.lastOffset < place.baseOffset) {
      throw new InvalidOffsetError(`batch ${place.index} at offsets ${place.baseOffset}..${place.lastOffset} does not continue raft index ${this.lastIndex}, offset ${this.nextOffset}`);
    }
    if (place.epoch !== (this.#epochStarts.at(-1)?.epoch ?? this.#start.epoch) || this.#epochStarts.length === 0) {
      this.#epochStarts.push({ epoch: place.epoch, index: place.index });
    }
    this.#baseOffsets.push(place.baseOffset);
    this.#lastOffsets.push(place.lastOffset);
    this.#epochs.push(place.epoch);
    this.#sizes.push(place.sizeBytes);
  }

  /** Drops the batches from raft index `index` on (a replaced suffix). */
  truncateFrom(index: number): void {
    const keep = Math.max(0, index - this.#start.index - 1);
    this.#baseOffsets.length = Math.min(keep, this.#baseOffsets.length);
    this.#lastOffsets.length = this.#baseOffsets.length;
    this.#epochs.length = this.#baseOffsets.length;
    this.#sizes.length = this.#baseOffsets.length;
    while ((this.#epochStarts.at(-1)?.index ?? -Infinity) > this.lastIndex) this.#epochStarts.pop();
  }

  /** Moves the compaction point to `index` (≤ lastIndex): the batches up to it are forgotten. */
  compactThrough(index: number): void {
    const count = Math.min(index - this.#start.index, this.#baseOffsets.length);
    if (count <= 0) return;
    this.#start = { index, epoch: this.#epochs[count - 1]!, nextOffset: this.#lastOffsets[count - 1]! + 1 };
    this.#baseOffsets.splice(0, count);
    this.#lastOffsets.splice(0, count);
    this.#epochs.splice(0, count);
    this.#sizes.splice(0, count);
    // An epoch that began at or before the start still covers the batches after it.
    const firstKept = this.#epochStarts.findLastIndex((e) => e.index <= index);
    if (firstKept > 0) this.#epochStarts.splice(0, firstKept);
  }

  /** The place of the batch at raft index `index`, undefined outside (start, lastIndex]. */
  at(index: number): BatchPlace | undefined {
    const i = index - this.#start.index - 1;
    const baseOffset = this.#baseOffsets[i];
    if (baseOffset === undefined || i < 0) return undefined;
    return { index, baseOffset, lastOffset: this.#lastOffsets[i]!, epoch: this.#epochs[i]!, sizeBytes: this.#sizes[i]! };
  }

  /** The batch at `index` was rewritten (compaction) to `sizeBytes`. */
  resize(index: number, sizeBytes: number): void {
    const i = index - this.#start.index - 1;
    if (i >= 0 && i < this.#sizes.length) this.#sizes[i] = sizeBytes;
  }

  /** Bytes stored for the batches from raft index `index` to the end. */
  bytesFrom(index: number): number {
    let bytes = 0;
    for (let i = Math.max(0, index - this.#start.index - 1); i < this.#sizes.length; i++) bytes += this.#sizes[i]!;
    return bytes;
  }

  /** Raft term of the batch at `index`; the start's term at the compaction point. */
  epochAt(index: number): number | undefined {
    return index === this.#start.index ? this.#start.epoch : this.#epochs[index - this.#start.index - 1];
  }

  /** Raft index of the batch holding `offset`, or of the first after it (lastIndex + 1 past the end). */
  indexOfOffset(offset: number): number {
    let low = 0;
    let high = this.#lastOffsets.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#lastOffsets[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    return this.#start.index + 1 + low;
  }

  /**
   * Kafka's OffsetsForLeaderEpoch: the largest epoch ≤ `epoch` this log holds and the offset
   * where it ends (the next epoch's start, or the log end). undefined when every batch after the
   * start is of a later epoch and the start's own is later too.
   * @example const { epoch, endOffset } = places.endOfEpoch(leaderEpoch)!;
   */
  endOfEpoch(epoch: number): { epoch: number; endOffset: number } | undefined {
    const at = this.#epochStarts.findLastIndex((e) => e.epoch <= epoch);
    const next = this.#epochStarts[at + 1];
    const endOffset = next === undefined ? this.nextOffset : this.at(next.index)!.baseOffset;
    if (at >= 0) return { epoch: this.#epochStarts[at]!.epoch, endOffset };
    return this.#start.epoch <= epoch ? { epoch: this.#start.epoch, endOffset } : undefined;
  }

  /** Each epoch in the log and the offset it starts at (the leader-epoch checkpoint), ascending. */
  epochs(): Array<{ epoch: number; startOffset: number }> {
    return this.#epochStarts.map((e) => ({ epoch: e.epoch, startOffset: this.at(e.index)?.baseOffset ?? this.#start.nextOffset }));
  }
}
