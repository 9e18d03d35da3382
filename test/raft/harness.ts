import {
  createRaft,
  step,
  type Effect,
  type Entry,
  type HardState,
  type Input,
  type Message,
  type RaftConfig,
  type RaftLog,
  type RaftState,
  type Snapshot,
} from '../../src/raft';

// A hand-driven raft group for scenario tests: nothing moves unless the test ticks a
// member or delivers messages, and each test decides which messages are lost.

type PersistEffect = Extract<Effect, { type: 'persist' }>;

/** An in-memory log that applies writes as they come; `readOnly` is the core's view of it. `entries` follow the snapshot. */
export class MemLog {
  snapshot: Snapshot | undefined;
  constructor(
    public entries: Entry[] = [],
    public hardState: HardState = { term: 0, votedFor: undefined },
  ) {}
  get startIndex(): number {
    return this.snapshot?.index ?? 0;
  }
  write(effect: PersistEffect): void {
    if (effect.hardState !== undefined) this.hardState = effect.hardState;
    if (effect.snapshot !== undefined) {
      this.entries = this.entries.slice(effect.snapshot.index - this.startIndex);
      this.snapshot = effect.snapshot;
    }
    if (effect.entries === undefined) return;
    this.entries.length = effect.entries.firstIndex - 1 - this.startIndex;
    this.entries.push(...effect.entries.entries);
  }
}

/** Entries of the given terms, with one-byte payloads naming their position. */
export const entriesOfTerms = (terms: readonly number[]): Entry[] =>
  terms.map((term, i) => ({ term, data: new Uint8Array([i + 1]) }));

export interface Member {
  state: RaftState;
  readonly log: MemLog;
  /** When true, `persist` effects wait in `unsynced`, not even applied to the log, until `sync` is called. */
  manualDisk: boolean;
  unsynced: PersistEffect[];
  applied: number[];
  effects: Effect[];
  /** Set: the member is down; inputs to it are refused (see `crash`). */
  down: boolean;
}

export const testConfig = (id: string, voters: readonly string[], overrides: Partial<RaftConfig> = {}): RaftConfig => ({
  id,
  voters,
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflightAppends: 4,
  maxEntriesPerAppend: 16,
  maxBytesPerAppend: 1 << 20,
  maxUncommittedEntries: 1000,
  maxApplyBytesPerStep: 1 << 20,
  maxPendingReads: 16,
  seed: id.charCodeAt(id.length - 1),
  ...overrides,
});

export class TestCluster {
  readonly members = new Map<string, Member>();
  /** Messages sent and not yet delivered. */
  inbox: Message[] = [];

  constructor(
    readonly ids: readonly string[],
    options: { logs?: Record<string, readonly number[]>; hardStates?: Record<string, HardState>; config?: Partial<RaftConfig> } = {},
  ) {
    for (const id of ids) {
      const hardState = options.hardStates?.[id] ?? { term: Math.max(0, ...(options.logs?.[id] ?? [])), votedFor: undefined };
      this.add(id, new MemLog(entriesOfTerms(options.logs?.[id] ?? []), hardState), options.config);
    }
  }

  /** Starts member `id` from `log` (a new, empty one by default); its first voters are the group's. */
  add(id: string, log = new MemLog(), config: Partial<RaftConfig> = {}): void {
    const state = createRaft(testConfig(id, this.ids, config), readOnly(log), log.hardState);
    this.members.set(id, { state, log, manualDisk: false, unsynced: [], applied: [], effects: [], down: false });
  }

  /** Power loss: unsynced writes are lost and messages to it dropped until `restart`. */
  crash(id: string): void {
    const member = this.member(id);
    member.down = true;
    member.unsynced = [];
  }

  /** Starts a crashed member again from its log. */
  restart(id: string): void {
    this.add(id, this.member(id).log);
  }

  member(id: string): Member {
    return this.members.get(id)!;
  }
  state(id: string): RaftState {
    return this.member(id).state;
  }
  terms(id: string): number[] {
    return this.member(id).log.entries.map((e) => e.term);
  }

  /** Feeds one input and carries out the effects; returns them. */
  input(id: string, input: Input): readonly Effect[] {
    const member = this.member(id);
    if (member.down) return [];
    const { state, effects } = step(member.state, input);
    member.state = state;
    member.effects.push(...effects);
    for (const effect of effects) {
      if (effect.type === 'send') this.inbox.push(effect.message);
      if (effect.type === 'apply') member.applied.push(...effect.entries.map((e) => e.index));
      if (effect.type === 'persist') member.unsynced.push(effect);
    }
    if (!member.manualDisk) this.sync(id);
    return effects;
  }

  /** Makes the pending writes of `id` durable (all, or the first `count`): applies them, sends what waited, reports completion. */
  sync(id: string, count = Infinity): void {
    const member = this.member(id);
    for (let i = 0; i < count && member.unsynced.length > 0; i++) {
      const effect = member.unsynced.shift()!;
      member.log.write(effect);
      this.inbox.push(...effect.thenSend);
      this.input(id, { type: 'persisted', writeId: effect.writeId });
    }
  }

  tick(id: string, times = 1): void {
    for (let i = 0; i < times; i++) this.input(id, { type: 'tick' });
  }

  /** Ticks `id` until it starts a (pre-)campaign. */
  timeout(id: string): void {
    const before = this.state(id).role;
    for (let i = 0; i < 100 && this.state(id).role === before; i++) this.tick(id);
  }

  propose(id: string, ...payloads: number[]): readonly Effect[] {
    return this.input(id, { type: 'propose', payloads: payloads.map((p) => new Uint8Array([p])) });
  }

  /**
   * Delivers messages until none are left, dropping those `drop` picks and those to
   * or from an isolated member; returns what was delivered.
   */
  deliver(options: { drop?: (m: Message) => boolean; isolated?: readonly string[] } = {}, maxRounds = 100): Message[] {
    const delivered: Message[] = [];
    for (let round = 0; round < maxRounds && this.inbox.length > 0; round++) {
      const batch = this.inbox;
      this.inbox = [];
      for (const m of batch) {
        if (options.drop?.(m) || options.isolated?.includes(m.from) || options.isolated?.includes(m.to) || this.member(m.to).down) continue;
        delivered.push(m);
        this.input(m.to, { type: 'message', message: m });
      }
    }
    return delivered;
  }

  /** Elects `id`: it times out and the votes are delivered. */
  elect(id: string, options: Parameters<TestCluster['deliver']>[0] = {}): void {
    this.timeout(id);
    this.deliver(options);
  }
}

/** The core only reads the log; hide the test's write method from it. */
const readOnly = (log: MemLog): RaftLog => ({
  lastIndex: () => log.startIndex + log.entries.length,
  snapshot: () => log.snapshot,
  memberships: () =>
    log.entries.flatMap((e, i) => (e.membership === undefined ? [] : [{ index: log.startIndex + i + 1, membership: e.membership }])),
  term: (index) => log.entries[index - log.startIndex - 1]!.term,
  entries: (fromIndex, toIndex, maxBytes) => {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = fromIndex; i <= toIndex; i++) {
      const entry = log.entries[i - log.startIndex - 1]!;
      if (out.length > 0 && bytes + entry.data.length > maxBytes) break;
      bytes += entry.data.length;
      out.push(entry);
    }
    return out;
  },
});
