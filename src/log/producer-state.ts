// Idempotent producers' state on a partition (KIP-98), as pure logic: per producer id, the
// epoch and the last PRODUCER_BATCHES_KEPT batches' sequence and offset ranges, as Kafka's
// ProducerStateManager keeps them. The partition's leader asks `decide` where it numbers the
// offsets of a batch (a replicated partition: in the raft step that proposes it; a private
// one: in the flush that numbers it), so the answer is a function of the log prefix; every
// replica `record`s each batch it stages, so a new leader decides as the old one would have.
// The state is in the batches' headers (producerId, producerEpoch, baseSequence,
// lastOffsetDelta), so it is rebuilt from the log on open; a raft snapshot carries it (FORMATS.md §
// Partition snapshot) for a follower that restores one.

/** Batches kept per producer: a retry of any of them is recognised (Kafka's 5, the in-flight bound of an idempotent producer). */
export const PRODUCER_BATCHES_KEPT = 5;

/**
 * Producers remembered per partition at most: past it, the one whose last batch is oldest is
 * forgotten (Kafka expires them after producer.id.expiration.ms, a day; a bound by count keeps
 * the decision a function of the log). A forgotten producer is taken at any sequence again.
 */
export const PRODUCERS_MAX = 10_000;

/** Kafka's sequence numbers are int32 and wrap to 0 after 2^31 - 1. */
const SEQUENCE_MAX = 0x7fffffff;
const nextSequence = (sequence: number): number => (sequence === SEQUENCE_MAX ? 0 : sequence + 1);
const addSequence = (sequence: number, delta: number): number => (sequence + delta) % (SEQUENCE_MAX + 1);

/** One batch of a producer: its sequences, its offsets, its raft index and the producer epoch it was written with. */
export interface ProducerBatch {
  readonly epoch: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
  readonly baseOffset: number;
  readonly lastOffset: number;
  /** The batch's raft index (a private log numbers its batches alike). */
  readonly index: number;
}

/** What of a batch header the decision reads. */
export interface ProducerFields {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly lastOffsetDelta: number;
  readonly isControl?: boolean;
}

/** The leader's answer for a batch: write it; answer it with the batch it repeats; or refuse it, writing nothing. */
export type ProducerDecision =
  | { readonly kind: 'append' }
  | { readonly kind: 'duplicate'; readonly batch: ProducerBatch }
  /** A sequence that does not follow the producer's last one (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER). */
  | { readonly kind: 'outOfOrder'; readonly expected: number; readonly got: number }
  /** An epoch older than the producer's (Kafka's INVALID_PRODUCER_EPOCH): a fenced producer. */
  | { readonly kind: 'staleEpoch'; readonly current: number; readonly got: number }
  /** An idempotent batch without an epoch or sequence. */
  | { readonly kind: 'invalid'; readonly reason: string };

/** Whether a batch is an idempotent producer's (a producer id, not a control batch). */
export const isIdempotentBatch = (fields: ProducerFields): boolean => fields.producerId >= 0 && fields.isControl !== true;

/** A producer's state as a snapshot holds it: [producerId, its batches oldest first]. */
export type ProducerImage = Array<[number, ProducerBatch[]]>;

/**
 * The producers of one partition.
 * @example const table = new ProducerStateTable(); if (table.decide(header).kind === 'append') table.record(header, place);
 */
export class ProducerStateTable {
  /** Per producer id, its last batches, oldest first (never empty). */
  readonly #producers = new Map<number, ProducerBatch[]>();

  /** How many producers are known. */
  get size(): number {
    return this.#producers.size;
  }

  /** The producer's epoch and last sequence, if known. */
  get(producerId: number): { epoch: number; lastSequence: number; batches: readonly ProducerBatch[] } | undefined {
    const batches = this.#producers.get(producerId);
    const last = batches?.at(-1);
    return batches === undefined || last === undefined ? undefined : { epoch: last.epoch, lastSequence: last.lastSequence, batches };
  }

  /**
   * The decision for `batch`, following the batches recorded (and, in order, `before`: batches
   * of the same request decided to be appended ahead of it). A producer not known here is
   * taken at any sequence (KIP-360: its state may have gone with the log's head).
   * @example table.decide(readBatchHeader(bytes))
   */
  decide(batch: ProducerFields, before: readonly ProducerFields[] = []): ProducerDecision {
    if (!isIdempotentBatch(batch)) return { kind: 'append' };
    if (batch.producerEpoch < 0 || batch.baseSequence < 0 || batch.lastOffsetDelta < 0) {
      return { kind: 'invalid', reason: `producer ${batch.producerId}'s batch has epoch ${batch.producerEpoch} and base sequence ${batch.baseSequence}` };
    }
    const ahead = before.filter((b) => b.producerId === batch.producerId).at(-1);
    const known = this.get(batch.producerId);
    const current = ahead === undefined ? known : { epoch: ahead.producerEpoch, lastSequence: addSequence(ahead.baseSequence, ahead.lastOffsetDelta), batches: [] };
    if (current === undefined) return { kind: 'append' };
    if (batch.producerEpoch < current.epoch) return { kind: 'staleEpoch', current: current.epoch, got: batch.producerEpoch };
    if (batch.producerEpoch > current.epoch) {
      return batch.baseSequence === 0 ? { kind: 'append' } : { kind: 'outOfOrder', expected: 0, got: batch.baseSequence };
    }
    const lastSequence = addSequence(batch.baseSequence, batch.lastOffsetDelta);
    const repeated = current.batches.find((b) => b.epoch === batch.producerEpoch && b.firstSequence === batch.baseSequence && b.lastSequence === lastSequence);
    if (repeated !== undefined) return { kind: 'duplicate', batch: repeated };
    const expected = nextSequence(current.lastSequence);
    return batch.baseSequence === expected ? { kind: 'append' } : { kind: 'outOfOrder', expected, got: batch.baseSequence };
  }

  /**
   * Records a batch written at `place` (on every replica, as it is staged); a batch of no
   * producer is ignored. Keeps the last PRODUCER_BATCHES_KEPT batches of its producer.
   * @example table.record(header, { baseOffset: 10, lastOffset: 14, index: 3 });
   */
  record(batch: ProducerFields, place: { baseOffset: number; lastOffset: number; index: number }): void {
    if (!isIdempotentBatch(batch) || batch.producerEpoch < 0 || batch.baseSequence < 0) return;
    const entry: ProducerBatch = {
      epoch: batch.producerEpoch,
      firstSequence: batch.baseSequence,
      lastSequence: addSequence(batch.baseSequence, Math.max(0, batch.lastOffsetDelta)),
      baseOffset: place.baseOffset,
      lastOffset: place.lastOffset,
      index: place.index,
    };
    const batches = this.#producers.get(batch.producerId) ?? [];
    batches.push(entry);
    if (batches.length > PRODUCER_BATCHES_KEPT) batches.splice(0, batches.length - PRODUCER_BATCHES_KEPT);
    // Most recently written last: the map's first entry is the producer written longest ago.
    this.#producers.delete(batch.producerId);
    this.#producers.set(batch.producerId, batches);
    if (this.#producers.size > PRODUCERS_MAX) this.#producers.delete(this.#producers.keys().next().value!);
  }

  /** Forgets the batches from raft index `index` on (a replaced suffix); a producer left with none is forgotten. */
  truncateFrom(index: number): void {
    for (const [id, batches] of this.#producers) {
      const kept = batches.filter((b) => b.index < index);
      if (kept.length === 0) this.#producers.delete(id);
      else this.#producers.set(id, kept);
    }
  }

  /** The state as of raft index `index` (the batches at or below it): a snapshot's image. */
  imageAt(index = Infinity): ProducerImage {
    // In the order written (oldest first), as `restore` keeps it.
    const image: ProducerImage = [];
    for (const [id, batches] of this.#producers) {
      const kept = batches.filter((b) => b.index <= index);
      if (kept.length > 0) image.push([id, kept.map((b) => ({ ...b }))]);
    }
    return image;
  }

  /** Replaces the state with a snapshot's (a follower restoring its leader's snapshot). */
  restore(image: ProducerImage): void {
    this.#producers.clear();
    const kept = image.filter(([, batches]) => batches.length > 0).sort((a, b) => a[1].at(-1)!.index - b[1].at(-1)!.index).slice(-PRODUCERS_MAX);
    for (const [id, batches] of kept) this.#producers.set(id, batches.slice(-PRODUCER_BATCHES_KEPT).map((b) => ({ ...b })));
  }

  /**
   * Puts a snapshot's state (as of raft index `index`) under what was rebuilt from the batches
   * after it: on open, when the log's head (with some producers' batches) may be gone.
   */
  mergeUnder(image: ProducerImage, index: number): void {
    const merged = new Map<number, ProducerBatch[]>(this.#producers);
    for (const [id, batches] of image) {
      const later = (this.#producers.get(id) ?? []).filter((b) => b.index > index);
      const both = [...batches.filter((b) => b.index <= index), ...later].slice(-PRODUCER_BATCHES_KEPT);
      if (both.length > 0) merged.set(id, both);
    }
    this.restore([...merged]);
  }

  clear(): void {
    this.#producers.clear();
  }
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * Reads a snapshot's producers (FORMATS.md § Partition snapshot): `[[producerId, [[epoch,
 * firstSequence, lastSequence, baseOffset, lastOffset, index], …]], …]`; undefined when malformed.
 */
export function decodeProducerImage(value: unknown): ProducerImage | undefined {
  if (!Array.isArray(value)) return undefined;
  const image: ProducerImage = [];
  for (const item of value as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2 || !isCount(item[0]) || !Array.isArray(item[1])) return undefined;
    const batches: ProducerBatch[] = [];
    for (const b of item[1] as unknown[]) {
      if (!Array.isArray(b) || b.length !== 6 || !b.every(isCount)) return undefined;
      const [epoch, firstSequence, lastSequence, baseOffset, lastOffset, index] = b as number[];
      batches.push({ epoch: epoch!, firstSequence: firstSequence!, lastSequence: lastSequence!, baseOffset: baseOffset!, lastOffset: lastOffset!, index: index! });
    }
    image.push([item[0], batches]);
  }
  return image;
}

/** The compact JSON form of a snapshot's producers (see decodeProducerImage). */
export const encodeProducerImage = (image: ProducerImage): unknown =>
  image.map(([id, batches]) => [id, batches.map((b) => [b.epoch, b.firstSequence, b.lastSequence, b.baseOffset, b.lastOffset, b.index])]);
