import { ManualClock } from '../../src/clock';
import { createGroupCommitter } from '../../src/log';
import { Executor, type RaftStore } from '../../src/node';
import {
  type Effect,
  type Entry,
  type HardState,
  type Input,
  type Message,
  type RaftConfig,
  type RaftState,
  type Snapshot,
} from '../../src/raft';

// A hand-driven raft group for scenario tests, each member on its own executor (the
// node's runtime) with a clock that never moves by itself: nothing happens unless the
// test ticks a member or delivers messages, and each test decides which messages are lost.

type PersistEffect = Extract<Effect, { type: 'persist' }>;
const GROUP = 'g';

/**
 * An in-memory log that applies writes once they are durable; `entries` follow the
 * snapshot. Entries below `inMemoryFrom` count as not in memory (as a store keeping a
 * bounded tail) until a load brings them in.
 */
export class MemLog {
  snapshot: Snapshot | undefined;
  inMemoryFrom = 1;
  /** Indices below `inMemoryFrom` brought into memory by loads. */
  loaded = new Set<number>();
  constructor(
    public entries: Entry[] = [],
    public hardState: HardState = { term: 0, votedFor: undefined },
  ) {}
  get startIndex(): number {
    return this.snapshot?.index ?? 0;
  }
  inMemory(index: number): boolean {
    return index >= this.inMemoryFrom || this.loaded.has(index);
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
  readonly executor: Executor;
  readonly log: MemLog;
  /** When true, writes wait (not even applied to the log) until `sync` is called. */
  manualDisk: boolean;
  /** Group-commit transactions handed to the disk and not yet durable, oldest first. */
  held: Array<() => void>;
  applied: number[];
  effects: Effect[];
  /** Set: the member is down; inputs to it are refused (see `crash`). */
  down: boolean;
  /** `RaftStore.load` calls waiting for `finishLoads`, oldest first. */
  loads: Array<{ fromIndex: number; toIndex: number; loaded: () => void; failed: (error: unknown) => void }>;
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
  /** The one clock of every member's executor; it never advances: the test ticks. */
  readonly clock = new ManualClock();
  /** The input whose step's effects `input` returns, and those effects. */
  #capturing: { input: Input; effects: readonly Effect[]; error?: unknown } | undefined;

  constructor(
    readonly ids: readonly string[],
    options: { logs?: Record<string, readonly number[]>; hardStates?: Record<string, HardState>; config?: Partial<RaftConfig> } = {},
  ) {
    for (const id of ids) {
      const hardState = options.hardStates?.[id] ?? { term: Math.max(0, ...(options.logs?.[id] ?? [])), votedFor: undefined };
      this.add(id, new MemLog(entriesOfTerms(options.logs?.[id] ?? []), hardState), options.config);
    }
  }

  /** Starts member `id` from `log` (a new, empty one by default) on a new executor; its first voters are the group's. */
  add(id: string, log = new MemLog(), config: Partial<RaftConfig> = {}): void {
    this.members.get(id)?.executor.stop();
    const member: Member = {
      executor: undefined as unknown as Executor,
      log,
      manualDisk: this.members.get(id)?.manualDisk ?? false,
      held: [],
      applied: [],
      effects: [],
      down: false,
      loads: [],
    };
    const committer = createGroupCommitter(
      {
        write: (_writes, committed) => {
          if (member.manualDisk) member.held.push(committed);
          else committed();
        },
      },
      this.clock,
    );
    const executor = new Executor({
      nodeId: id,
      clock: this.clock,
      committer,
      sendFrame: (_peer, messages) => {
        this.inbox.push(...messages.map((m) => m.message));
        return true;
      },
      tickMs: 1,
      heartbeatFlushTicks: 0,
      observer: {
        raftStepped: (_group, input, _before, _after, effects) => {
          if (member.down) return;
          member.effects.push(...effects);
          for (const effect of effects) if (effect.type === 'apply') member.applied.push(...effect.entries.map((e) => e.index));
          if (this.#capturing?.input === input) this.#capturing.effects = effects;
        },
      },
    });
    (member as { executor: Executor }).executor = executor;
    // A core assertion fail-stops the group on the executor; the test sees it thrown from `input`.
    const handler = { stopped: (error: unknown) => void (this.#capturing !== undefined && (this.#capturing.error = error)) };
    executor.addRaftGroup(GROUP, { config: testConfig(id, this.ids, config), store: storeOf(log, member.loads), handler });
    this.members.set(id, member);
  }

  /** Power loss: writes not yet durable are lost and messages to it dropped until `restart`. */
  crash(id: string): void {
    const member = this.member(id);
    member.down = true;
    member.held = [];
    member.executor.stop();
  }

  /** Starts a crashed member again from its log. */
  restart(id: string): void {
    this.add(id, this.member(id).log);
  }

  member(id: string): Member {
    return this.members.get(id)!;
  }
  state(id: string): RaftState {
    return this.member(id).executor.raftState(GROUP)!;
  }
  terms(id: string): number[] {
    return this.member(id).log.entries.map((e) => e.term);
  }

  /** Feeds one input through the member's executor and lets it carry out the effects; returns that step's effects. */
  input(id: string, input: Input): readonly Effect[] {
    const member = this.member(id);
    if (member.down) return [];
    const capturing: { input: Input; effects: readonly Effect[]; error?: unknown } = { input, effects: [] };
    this.#capturing = capturing;
    member.executor.input(GROUP, input);
    this.clock.runDeferred();
    this.#capturing = undefined;
    if (capturing.error !== undefined) {
      // The executor stopped the group and would restart it from its disk after a backoff: at once, here.
      this.restart(id);
      throw capturing.error;
    }
    return capturing.effects;
  }

  /** Makes the member's pending writes durable (all, or the first `count` transactions): sends what waited, reports completion. */
  sync(id: string, count = Infinity): void {
    const member = this.member(id);
    for (let i = 0; i < count && member.held.length > 0; i++) {
      member.held.shift()!();
      this.clock.runDeferred();
    }
  }

  /**
   * Finishes the member's waiting loads: their entries come into memory; `evicted`: they
   * are reported loaded but gone from memory again by the time the core reads; an error: the loads fail.
   */
  finishLoads(id: string, outcome: 'loaded' | 'evicted' | Error = 'loaded'): void {
    const member = this.member(id);
    for (const load of member.loads.splice(0)) {
      if (outcome instanceof Error) {
        load.failed(outcome);
      } else {
        if (outcome === 'loaded') for (let i = load.fromIndex; i <= load.toIndex; i++) member.log.loaded.add(i);
        load.loaded();
      }
      this.clock.runDeferred();
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
        this.member(m.to).executor.receive(m.from, [{ group: GROUP, message: m }]);
        this.clock.runDeferred();
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

/** The log as the executor sees it: the core reads it; writes reach it once durable (held by `manualDisk` until `sync`). */
const storeOf = (log: MemLog, loads: Member['loads']): RaftStore => ({
  lastIndex: () => log.startIndex + log.entries.length,
  snapshot: () => log.snapshot,
  memberships: () =>
    log.entries.flatMap((e, i) => (e.membership === undefined ? [] : [{ index: log.startIndex + i + 1, membership: e.membership }])),
  term: (index) => log.entries[index - log.startIndex - 1]!.term,
  entries: (fromIndex, toIndex, maxBytes) => {
    if (!log.inMemory(fromIndex)) return undefined;
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = fromIndex; i <= toIndex && log.inMemory(i); i++) {
      const entry = log.entries[i - log.startIndex - 1]!;
      if (out.length > 0 && bytes + entry.data.length > maxBytes) break;
      bytes += entry.data.length;
      out.push(entry);
    }
    return out;
  },
  hardState: () => log.hardState,
  stage: () => [], // this log is the disk itself: nothing to hand to a real store
  durable: (effect) => log.write(effect),
  recover: async () => undefined,
  load: (fromIndex, toIndex, _maxBytes, done) => void loads.push({ fromIndex, toIndex, loaded: () => done(), failed: (error) => done(error) }),
});
