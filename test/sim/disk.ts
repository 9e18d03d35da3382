import type { RaftStore } from '../../src/node';
import type { Effect, Entry, HardState, Membership, Snapshot } from '../../src/raft';
import { chain, fnv1a } from './prng';

type PersistEffect = Extract<Effect, { type: 'persist' }>;

/**
 * The simulated state machine's image: the chain hashes of the applied prefix (an
 * append-only history is a state machine too), so a snapshot carries its own proof.
 * @example snapshotData(disk.chains().slice(0, applied))
 */
export const snapshotData = (chains: readonly number[]): Uint8Array => new Uint8Array(Uint32Array.from(chains).buffer);
/** The chain hashes a snapshot's image holds, 1..index. @example chainsOf(snapshot.data).at(-1) */
export const chainsOf = (data: Uint8Array): number[] => Array.from(new Uint32Array(data.slice().buffer));

/** The chain hashes of the prefix a snapshot covers, 1..index. */
export type SnapshotChains = (snapshot: Snapshot) => number[];

/** A log after its snapshot, plus the chain hash of each prefix from index 1 (see `chain`). */
class Log {
  constructor(readonly chainsOfSnapshot: SnapshotChains) {}

  snapshot: Snapshot | undefined;
  /** Entries after the snapshot. */
  entries: Entry[] = [];
  /** Prefix hashes of the whole history, 1..last, compacted or not. */
  chains: number[] = [];
  hardState: HardState = { term: 0, votedFor: undefined };

  get start(): number {
    return this.snapshot?.index ?? 0;
  }

  write(effect: PersistEffect): void {
    if (effect.hardState !== undefined) this.hardState = effect.hardState;
    if (effect.snapshot !== undefined) {
      const { index } = effect.snapshot;
      this.entries = this.entries.slice(Math.min(index - this.start, this.entries.length));
      this.chains = [...this.chainsOfSnapshot(effect.snapshot), ...this.chains.slice(index)];
      this.snapshot = effect.snapshot;
    }
    if (effect.entries === undefined) return;
    const { firstIndex, entries } = effect.entries;
    this.entries.length = firstIndex - 1 - this.start;
    this.chains.length = firstIndex - 1;
    for (const entry of entries) {
      this.chains.push(chain(this.chains.at(-1) ?? 0, entry.term, fnv1a(entry.data)));
      this.entries.push(entry);
    }
  }

  copy(): Log {
    const log = new Log(this.chainsOfSnapshot);
    log.snapshot = this.snapshot;
    log.entries = this.entries.slice();
    log.chains = this.chains.slice();
    log.hardState = this.hardState;
    return log;
  }
}

/**
 * One node's disk: writes become durable when synced, in order; a crash keeps the
 * synced writes and a random prefix of the rest, as an ordered store (IndexedDB
 * transactions) does. The core reads (`RaftLog`) only the durable log — the latest a
 * store may apply a write — while the checkers see every write at once (`visible`).
 */
export class SimDisk implements RaftStore {
  private visible: Log;
  private stored: Log;
  private unsynced: PersistEffect[] = [];
  /**
   * Reads from storage, as a partition log over IndexedDB does: only the last `hot` entries are
   * in memory, others after a `load` that takes `delayMs` of simulated time (`after`); a loaded
   * range serves one read. Absent: everything is in memory.
   */
  cold: { hot: number; delayMs: number; after(ms: number, fn: () => void): void } | undefined;
  private readonly loaded = new Map<number, number>();

  /** `chainsOfSnapshot`: how a snapshot's prefix hashes are known — by default its image is them (`snapshotData`). */
  constructor(chainsOfSnapshot: SnapshotChains = (snapshot) => chainsOf(snapshot.data)) {
    this.visible = new Log(chainsOfSnapshot);
    this.stored = new Log(chainsOfSnapshot);
  }

  lastIndex(): number {
    return this.stored.start + this.stored.entries.length;
  }
  snapshot(): Snapshot | undefined {
    return this.stored.snapshot;
  }
  memberships(): Array<{ index: number; membership: Membership }> {
    const { start, entries } = this.stored;
    return entries.flatMap((e, i) => (e.membership === undefined ? [] : [{ index: start + i + 1, membership: e.membership }]));
  }
  term(index: number): number {
    return this.stored.entries[index - this.stored.start - 1]!.term;
  }
  entries(fromIndex: number, toIndex: number, maxBytes: number): Entry[] | undefined {
    if (this.cold !== undefined && fromIndex <= this.lastIndex() - this.cold.hot) {
      const loadedTo = this.loaded.get(fromIndex);
      if (loadedTo === undefined) return undefined;
      this.loaded.delete(fromIndex);
      toIndex = Math.min(toIndex, loadedTo, this.lastIndex());
    }
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = fromIndex; i <= toIndex; i++) {
      const entry = this.stored.entries[i - this.stored.start - 1]!;
      if (out.length > 0 && bytes + entry.data.length > maxBytes) break;
      bytes += entry.data.length;
      out.push(entry);
    }
    return out;
  }

  load(fromIndex: number, toIndex: number, _maxBytes: number, done: (error?: unknown) => void): void {
    const cold = this.cold;
    if (cold === undefined) return done();
    cold.after(cold.delayMs, () => {
      this.loaded.set(fromIndex, toIndex);
      done();
    });
  }

  /** Chain hash of the visible log's prefix 1..index (0 for index 0). */
  chainAt(index: number): number {
    return index === 0 ? 0 : this.visible.chains[index - 1]!;
  }
  /** Chain hashes of the visible log, for the leader-completeness checker. */
  chains(): readonly number[] {
    return this.visible.chains.slice();
  }
  /** Last index and term of the visible log: what the member would campaign with. */
  last(): { index: number; term: number } {
    const { start, entries, snapshot } = this.visible;
    return { index: start + entries.length, term: entries.at(-1)?.term ?? snapshot?.term ?? 0 };
  }
  hardState(): HardState {
    return this.stored.hardState;
  }

  write(effect: PersistEffect): void {
    this.visible.write(effect);
    this.unsynced.push(effect);
  }

  /** The executor's way in: a staged write is visible at once; the simulated store needs no storage writes. */
  stage(effect: PersistEffect): [] {
    this.write(effect);
    return [];
  }
  durable(effect: PersistEffect): void {
    this.sync(effect.writeId);
  }
  /** After a failed write: what was not durable is gone (as `crash(0)`). */
  async recover(): Promise<void> {
    this.crash(0);
  }

  /** Makes writes up to `writeId` durable. */
  sync(writeId: number): void {
    while (this.unsynced.length > 0 && this.unsynced[0]!.writeId <= writeId) this.stored.write(this.unsynced.shift()!);
  }

  /** Crash: keeps the first `kept` unsynced writes, loses the rest; returns how many were lost. */
  crash(kept: number): number {
    const lost = Math.max(0, this.unsynced.length - kept);
    for (const effect of this.unsynced.slice(0, kept)) this.stored.write(effect);
    this.unsynced = [];
    this.visible = this.stored.copy();
    return lost;
  }

  unsyncedCount(): number {
    return this.unsynced.length;
  }
}
