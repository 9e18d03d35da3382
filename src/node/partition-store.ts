import { StorageError } from '../errors';
import { decodeProducerImage, encodeProducerImage, type PartitionLog, type ProducerImage, type StagedBatch } from '../log';
import { decodeControlBatch, encodeControlBatch, readBatchHeader } from '../protocol';
import type { Effect, Entry, HardState, Membership, Snapshot } from '../raft';
import type { Storage, StorageWrite } from '../storage';

// A replicated partition's raft log is its partition log (src/raft/index.ts, "How a partition
// maps onto it"): entry i is the i-th record batch, its term the batch's partitionLeaderEpoch.
// A leader's no-op and a configuration entry are control batches (FORMATS.md § Control
// batch); entries read back keep their stored bytes, so every replica stores the same ones.
// Offsets are numbered when an entry is staged, which on the leader is the step that
// proposes it. The hard state, the snapshot and the configuration entries after it are
// node values written in the same transaction as the batches.

type PersistEffect = Extract<Effect, { type: 'persist' }>;

/** A partition's raft snapshot image (FORMATS.md § Partition snapshot): where its offsets continue, and its idempotent producers' state. */
interface PartitionImage {
  nextOffset: number;
  producers?: ProducerImage;
}

/** The version `encodePartitionImage` writes: 1 added the producers (0, without them, is still read). */
const PARTITION_IMAGE_VERSION = 1;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * The image of a partition at a raft index: the offset after it and its idempotent producers' state there.
 * @example const data = encodePartitionImage({ nextOffset: log.places.at(index)!.lastOffset + 1, producers: log.producers.imageAt(index) });
 */
export const encodePartitionImage = (image: PartitionImage): Uint8Array =>
  utf8.encode(JSON.stringify({ version: PARTITION_IMAGE_VERSION, nextOffset: image.nextOffset, producers: encodeProducerImage(image.producers ?? []) }));

/** Reads a partition snapshot's image, version 0 or 1. @example decodePartitionImage(snapshot.data).producers */
export function decodePartitionImage(data: Uint8Array): Required<PartitionImage> {
  let image: { version?: unknown; nextOffset?: unknown; producers?: unknown } | null;
  try {
    image = JSON.parse(fromUtf8.decode(data)) as typeof image;
  } catch (error) {
    throw new StorageError('a partition snapshot is not JSON', { cause: error });
  }
  if ((image?.version !== 0 && image?.version !== 1) || typeof image.nextOffset !== 'number' || !Number.isSafeInteger(image.nextOffset) || image.nextOffset < 0) {
    throw new StorageError('a partition snapshot is not version 0 or 1 with a nextOffset');
  }
  const producers = image.version === 0 ? [] : decodeProducerImage(image.producers);
  if (producers === undefined) throw new StorageError('a partition snapshot of version 1 has malformed producers');
  return { nextOffset: image.nextOffset, producers };
}

/**
 * A control batch carries no time (Kafka's NO_TIMESTAMP, -1): every replica that encodes a
 * no-op it got without bytes (from the leader's memory) writes the same bytes as the leader.
 */
const CONTROL_TIMESTAMP = -1;

/** The batch an entry is stored as: its payload, or a control batch for a no-op or a configuration entry. */
function batchOf(entry: Entry): StagedBatch {
  if (entry.data.length > 0) return { bytes: entry.data, epoch: entry.term };
  const record =
    entry.membership === undefined
      ? { type: 'leaderChange' as const, value: new Uint8Array(0) }
      : { type: 'voters' as const, value: utf8.encode(JSON.stringify(entry.membership)) };
  return { bytes: encodeControlBatch(record, entry.term, CONTROL_TIMESTAMP), epoch: entry.term };
}

/** The entry a stored batch is: its bytes as the payload, with its membership when it is a configuration entry. */
function entryOf(bytes: Uint8Array): Entry {
  const header = readBatchHeader(bytes);
  if (!header.isControl) return { term: header.partitionLeaderEpoch, data: bytes };
  const control = decodeControlBatch(bytes);
  if (control.type !== 'voters') return { term: header.partitionLeaderEpoch, data: bytes };
  return { term: header.partitionLeaderEpoch, data: bytes, membership: JSON.parse(fromUtf8.decode(control.value)) as Membership };
}

/** Reads kept for the core at once (see `load`). */
const LOADED_MAX = 4;

const keysOf = (group: string) => ({ hardState: `raft/${group}/hardState`, snapshot: `raft/${group}/snapshot`, memberships: `raft/${group}/memberships` });

type Memberships = Array<{ index: number; membership: Membership }>;

/**
 * A replicated partition's raft log over its {@link PartitionLog}, for the executor.
 * @example const store = await PartitionRaftStore.open(log, storage, 'orders-0'); executor.addRaftGroup('orders-0', { config, store });
 */
export class PartitionRaftStore {
  readonly #log: PartitionLog;
  readonly #storage: Storage;
  readonly #keys: ReturnType<typeof keysOf>;
  #hardState: HardState = { term: 0, votedFor: undefined };
  #snapshot: Snapshot | undefined;
  /** Configuration entries after the snapshot, as staged. */
  #memberships: Memberships = [];
  /** What each staged write does once durable, in the order staged. */
  readonly #durables: Array<() => void> = [];
  #durableListener: () => void = () => undefined;
  /** Entries read from storage for the core (see `load`), by the index they start at. */
  readonly #loaded = new Map<number, Entry[]>();

  private constructor(log: PartitionLog, storage: Storage, group: string) {
    this.#log = log;
    this.#storage = storage;
    this.#keys = keysOf(group);
  }

  /**
   * Storage writes that erase the raft state of `group` (its batches go with the partition).
   * @example await storage.write(PartitionRaftStore.erase('orders-0'));
   */
  static erase(group: string): StorageWrite[] {
    return Object.values(keysOf(group)).map((key) => ({ kind: 'putValue' as const, key, value: undefined }));
  }

  /** Reads the raft state beside `log` (empty when new). */
  static async open(log: PartitionLog, storage: Storage, group: string): Promise<PartitionRaftStore> {
    const store = new PartitionRaftStore(log, storage, group);
    await store.#readValues();
    return store;
  }

  lastIndex(): number {
    return this.#log.places.lastIndex;
  }
  snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }
  memberships(): Memberships {
    return this.#memberships;
  }
  term(index: number): number {
    return this.#log.places.epochAt(index)!;
  }
  /** From memory (the log's tail, or what `load` read), else undefined: the core asks `load` for them. */
  entries(fromIndex: number, toIndex: number, maxBytes: number): Entry[] | undefined {
    const cached = this.#log.cachedEntries(fromIndex, toIndex, maxBytes);
    if (cached !== undefined) return cached.map(entryOf);
    const loaded = this.#loaded.get(fromIndex);
    if (loaded === undefined) return undefined;
    this.#loaded.delete(fromIndex);
    return loaded.slice(0, toIndex - fromIndex + 1);
  }

  /** Reads entries the core could not have from memory; its next `entries` call for them answers. */
  load(fromIndex: number, toIndex: number, maxBytes: number, done: (error?: unknown) => void): void {
    this.#log.readEntries(fromIndex, toIndex, maxBytes).then((batches) => {
      // A few reads stay for their asker (an apply and a follower's append may wait at once).
      if (this.#loaded.size >= LOADED_MAX) this.#loaded.delete(this.#loaded.keys().next().value!);
      this.#loaded.set(fromIndex, batches.map(entryOf));
      done();
    }, done);
  }

  hardState(): HardState {
    return this.#hardState;
  }

  stage(effect: PersistEffect): StorageWrite[] {
    const writes: StorageWrite[] = [];
    const durables: Array<() => void> = [];
    if (effect.hardState !== undefined) {
      this.#hardState = effect.hardState;
      writes.push({ kind: 'putValue', key: this.#keys.hardState, value: { ...effect.hardState } });
    }
    let membershipsChanged = false;
    if (effect.snapshot !== undefined) {
      const snapshot = effect.snapshot;
      if (effect.entries !== undefined) {
        // A leader's snapshot: the log starts again after it.
        const image = decodePartitionImage(snapshot.data);
        const restored = this.#log.stageRestore({ index: snapshot.index, epoch: snapshot.term, nextOffset: image.nextOffset }, image.producers);
        writes.push(...restored.writes);
        durables.push(restored.durable);
      } else {
        // Our own compaction: retention may now delete the batches up to it.
        durables.push(() => this.#log.setRemovableThrough(snapshot.index));
      }
      this.#snapshot = snapshot;
      this.#memberships = this.#memberships.filter((m) => m.index > snapshot.index);
      membershipsChanged = true;
      writes.push({ kind: 'putValue', key: this.#keys.snapshot, value: snapshot });
    }
    if (effect.entries !== undefined) {
      const { firstIndex, entries } = effect.entries;
      const staged = this.#log.stageEntries(firstIndex, entries.map(batchOf));
      writes.push(...staged.writes);
      durables.push(staged.durable);
      const added = entries.flatMap((e, i) => (e.membership === undefined ? [] : [{ index: firstIndex + i, membership: e.membership }]));
      const kept = this.#memberships.filter((m) => m.index < firstIndex);
      membershipsChanged ||= added.length > 0 || kept.length < this.#memberships.length;
      this.#memberships = [...kept, ...added];
    }
    if (membershipsChanged) writes.push({ kind: 'putValue', key: this.#keys.memberships, value: this.#memberships });
    // Reads of entries this write replaces are stale; others stay (a leader appending live
    // traffic must not throw away what a lagging follower's append waits for).
    if (effect.snapshot !== undefined) this.#loaded.clear();
    else if (effect.entries !== undefined) this.#forgetLoadedFrom(effect.entries.firstIndex);
    this.#durables.push(() => durables.forEach((durable) => durable()));
    return writes;
  }

  /** Drops loaded entries from raft index `index` on (a follower's replaced suffix). */
  #forgetLoadedFrom(index: number): void {
    for (const [from, entries] of this.#loaded) {
      if (from >= index) this.#loaded.delete(from);
      else if (from + entries.length > index) this.#loaded.set(from, entries.slice(0, index - from));
    }
  }

  durable(): void {
    this.#durables.shift()?.();
    this.#durableListener();
  }

  /**
   * Calls `listener` after each write of this log became durable (the leader's acks 1).
   * @example store.onDurable(() => answerAcksOne());
   */
  onDurable(listener: () => void): void {
    this.#durableListener = listener;
  }

  async recover(): Promise<void> {
    this.#durables.length = 0;
    this.#loaded.clear();
    await this.#log.reload();
    await this.#readValues();
  }

  async #readValues(): Promise<void> {
    this.#hardState = ((await this.#storage.readValue(this.#keys.hardState)) as HardState | undefined) ?? { term: 0, votedFor: undefined };
    this.#snapshot = (await this.#storage.readValue(this.#keys.snapshot)) as Snapshot | undefined;
    this.#memberships = ((await this.#storage.readValue(this.#keys.memberships)) as Memberships | undefined) ?? [];
    if (this.#snapshot !== undefined) this.#log.setRemovableThrough(this.#snapshot.index);
    else this.#log.setRemovableThrough(0);
    // The producers the log's head took with it (retention) are in the snapshot.
    if (this.#snapshot !== undefined) this.#log.producers.mergeUnder(decodePartitionImage(this.#snapshot.data).producers, this.#snapshot.index);
  }
}
