import { StorageError } from '../errors';
import type { Effect, Entry, HardState, Membership, Snapshot } from '../raft';
import type { PartitionId, Storage, StorageWrite } from '../storage';
import type { RaftStore } from './executor';

// A raft group's log in a node's Storage (IndexedDB): each entry is one stored batch of a
// partition of its own, `__raft/<group>` (a name no topic can have), keyed by its raft
// index, so a truncation or a compaction is one range delete; the hard state and the
// snapshot are node-level values. The entry's encoding is FORMATS.md § Raft entry.
// Everything after the snapshot is kept in memory as well, for the core's synchronous
// reads: the application bounds it by compacting.

type PersistEffect = Extract<Effect, { type: 'persist' }>;

const ENTRY_VERSION = 1;
/** version (1) + term (8) + membership length (4). */
const ENTRY_HEADER_BYTES = 13;
const SUMMARY_CHUNK = 1024;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Encodes a raft entry for storage (FORMATS.md § Raft entry). @example encodeRaftEntry({ term: 3, data }) */
export function encodeRaftEntry(entry: Entry): Uint8Array {
  const membership = entry.membership === undefined ? new Uint8Array(0) : utf8.encode(JSON.stringify(entry.membership));
  const bytes = new Uint8Array(ENTRY_HEADER_BYTES + membership.length + entry.data.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, ENTRY_VERSION);
  view.setFloat64(1, entry.term);
  view.setUint32(9, membership.length);
  bytes.set(membership, ENTRY_HEADER_BYTES);
  bytes.set(entry.data, ENTRY_HEADER_BYTES + membership.length);
  return bytes;
}

/** Decodes a stored raft entry; throws StorageError for bytes that are not one. @example decodeRaftEntry(bytes).term */
export function decodeRaftEntry(bytes: Uint8Array): Entry {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < ENTRY_HEADER_BYTES || view.getUint8(0) !== ENTRY_VERSION) throw new StorageError('not a stored raft entry (version 1)');
  const term = view.getFloat64(1);
  const membershipBytes = view.getUint32(9);
  if (!Number.isSafeInteger(term) || term < 0 || ENTRY_HEADER_BYTES + membershipBytes > bytes.length) throw new StorageError('a stored raft entry is malformed');
  const data = bytes.slice(ENTRY_HEADER_BYTES + membershipBytes);
  if (membershipBytes === 0) return { term, data };
  const membership = JSON.parse(fromUtf8.decode(bytes.subarray(ENTRY_HEADER_BYTES, ENTRY_HEADER_BYTES + membershipBytes))) as Membership;
  return { term, data, membership };
}

/** Where a group's entries are stored: a partition of their own. */
const logPartitionOf = (group: string): PartitionId => ({ topic: `__raft/${group}`, partition: 0 });
const hardStateKeyOf = (group: string) => `raft/${group}/hardState`;
const snapshotKeyOf = (group: string) => `raft/${group}/snapshot`;

/**
 * A raft group's durable log over a {@link Storage}, for the executor: open it, then hand it to `addRaftGroup`.
 * @example const store = await StoredRaftLog.open(storage, 'orders-0'); executor.addRaftGroup('orders-0', { config, store });
 */
export class StoredRaftLog implements RaftStore {
  readonly #storage: Storage;
  readonly #partition: PartitionId;
  readonly #hardStateKey: string;
  readonly #snapshotKey: string;
  #hardState: HardState = { term: 0, votedFor: undefined };
  #snapshot: Snapshot | undefined;
  /** Entries after the snapshot, as staged (the core reads only those it knows are durable). */
  #entries: Entry[] = [];

  private constructor(storage: Storage, readonly group: string) {
    this.#storage = storage;
    this.#partition = logPartitionOf(group);
    this.#hardStateKey = hardStateKeyOf(group);
    this.#snapshotKey = snapshotKeyOf(group);
  }

  /**
   * Storage writes that erase group `group`'s log, hard state and snapshot (a slot leaving the group for good).
   * @example await storage.write(StoredRaftLog.erase('__cluster_metadata.origin'));
   */
  static erase(group: string): StorageWrite[] {
    return [
      { kind: 'deletePartition', id: logPartitionOf(group) },
      { kind: 'putValue', key: hardStateKeyOf(group), value: undefined },
      { kind: 'putValue', key: snapshotKeyOf(group), value: undefined },
    ];
  }

  /** Reads the group's log from storage (empty when new). */
  static async open(storage: Storage, group: string): Promise<StoredRaftLog> {
    const log = new StoredRaftLog(storage, group);
    await log.recover();
    return log;
  }

  get #start(): number {
    return this.#snapshot?.index ?? 0;
  }

  lastIndex(): number {
    return this.#start + this.#entries.length;
  }
  snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }
  memberships(): Array<{ index: number; membership: Membership }> {
    return this.#entries.flatMap((e, i) => (e.membership === undefined ? [] : [{ index: this.#start + i + 1, membership: e.membership }]));
  }
  term(index: number): number {
    return this.#entries[index - this.#start - 1]!.term;
  }
  entries(fromIndex: number, toIndex: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = fromIndex; i <= toIndex; i++) {
      const entry = this.#entries[i - this.#start - 1]!;
      if (out.length > 0 && bytes + entry.data.length > maxBytes) break;
      bytes += entry.data.length;
      out.push(entry);
    }
    return out;
  }
  hardState(): HardState {
    return this.#hardState;
  }

  stage(effect: PersistEffect): StorageWrite[] {
    const writes: StorageWrite[] = [];
    if (effect.hardState !== undefined) {
      this.#hardState = effect.hardState;
      writes.push({ kind: 'putValue', key: this.#hardStateKey, value: { ...effect.hardState } });
    }
    if (effect.snapshot !== undefined) {
      const { index } = effect.snapshot;
      this.#entries = this.#entries.slice(Math.min(Math.max(0, index - this.#start), this.#entries.length));
      this.#snapshot = effect.snapshot;
      writes.push({ kind: 'putValue', key: this.#snapshotKey, value: effect.snapshot });
      writes.push({ kind: 'deleteBatches', id: this.#partition, fromBaseOffset: 0, toBaseOffset: index + 1 });
    }
    if (effect.entries !== undefined) {
      const { firstIndex, entries } = effect.entries;
      if (firstIndex <= this.lastIndex()) writes.push({ kind: 'deleteBatches', id: this.#partition, fromBaseOffset: firstIndex, toBaseOffset: Infinity });
      this.#entries.length = firstIndex - 1 - this.#start;
      entries.forEach((entry, i) => {
        const index = firstIndex + i;
        const bytes = encodeRaftEntry(entry);
        writes.push({ kind: 'putBatch', id: this.#partition, summary: { baseOffset: index, lastOffset: index, maxTimestamp: 0, sizeBytes: bytes.length, raftIndex: index, epoch: entry.term }, bytes });
        this.#entries.push(entry);
      });
    }
    return writes;
  }

  durable(): void {
    // Staged writes are in memory already; storage has them now too.
  }

  /** Every entry after the snapshot is in memory: nothing to load. */
  load(_fromIndex: number, _toIndex: number, _maxBytes: number, done: () => void): void {
    done();
  }

  async recover(): Promise<void> {
    this.#hardState = ((await this.#storage.readValue(this.#hardStateKey)) as HardState | undefined) ?? { term: 0, votedFor: undefined };
    this.#snapshot = (await this.#storage.readValue(this.#snapshotKey)) as Snapshot | undefined;
    const entries: Entry[] = [];
    for (let next = this.#start + 1; ; ) {
      const summaries = await this.#storage.readSummaries(this.#partition, next, SUMMARY_CHUNK);
      const contiguous = summaries.filter((s, i) => s.baseOffset === next + i);
      if (contiguous.length === 0) break;
      const batches = await this.#storage.readBatches(this.#partition, next, contiguous.length);
      entries.push(...batches.map(decodeRaftEntry));
      next += contiguous.length;
      if (contiguous.length < SUMMARY_CHUNK) break;
    }
    this.#entries = entries;
  }
}
