import type { Cancel, Clock } from '../../src/clock';
import { createGroupCommitter } from '../../src/log';
import { Executor, type GroupMessage } from '../../src/node';
import type { Effect, Input, Membership, Message, RaftConfig, RaftState } from '../../src/raft';
import { LivenessChecker, quorumsIntersect, SafetyChecker, type HistoryEvent, type Violation } from './checker';
import { chainsOf, SimDisk, snapshotData } from './disk';
import { fnv1a, Prng } from './prng';
import { TraceLog } from './trace';

// A deterministic simulation of one raft group: N nodes, each running the node's executor
// (src/node/executor.ts) with a simulated clock (whose rate drifts: clock skew), a
// simulated disk behind its group commit, and a network that drops, delays, duplicates,
// reorders and partitions its frames; disks lose unsynced writes on crash, and a fault
// schedule is drawn from the seed. Everything that happens is an event in one queue
// ordered by (time, sequence), so a seed replays exactly.

/** Nominal tick length; each node's own tick length drifts around it (clock skew). */
export const TICK_MS = 10;
/** The one raft group every node is in. */
const GROUP = 'g';
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
/**
 * Liveness bound after the heal for a leader to commit a new proposal: 30 election
 * timeouts. Over seeds 1..20000 it took p50 7, p99 52, at worst 111 ticks: the slow
 * cases are a leader whose uncommitted tail (up to maxUncommittedEntries) must first
 * reach a majority one entry per round trip (a seed's smallest message bounds).
 */
export const LIVENESS_BOUND_TICKS = 300;
/**
 * Bound for every node to catch up (apply every acknowledged proposal) after the heal.
 * A follower cut off for seconds may lack hundreds of entries and, with a seed's
 * smallest bounds (one entry per append, one append in flight), gets about one per
 * round trip; so this is generous and fails only on a stall.
 */
export const CATCH_UP_BOUND_TICKS = 2000;
const PROBE_INTERVAL_TICKS = 5;
/** A forced reconfiguration is retried at most this often while the dead are still voters. */
const FORCE_INTERVAL_TICKS = 40;
/** A node compacts only once this many applied entries follow its log's start. */
const COMPACT_MIN_ENTRIES = 8;
/** Stops a run that livelocks in the event loop itself. */
const MAX_EVENTS = 2_000_000;
const TRACE_LINES = 60;

/**
 * A seed's fault schedule. random: any fault below at random; leader-isolation: the
 * leader (with a minority) is cut off; leader-crash-loop: the leader crashes and
 * restarts; leader-churn: both, every 40-200 ms; crash-after-vote: power loss while
 * a vote is being written; crash-all: every node at once, losing unsynced writes;
 * flaky-network: loss, duplication and long delays (reordering); membership-churn:
 * members added as learners, promoted, demoted and removed (the leader too) amid
 * crashes and partitions; transfers: leader transfers amid crashes and partitions;
 * tab-close: voters close for good and the survivors force a reconfiguration when its
 * preconditions hold. Every scenario also compacts logs and reads through read-index.
 */
export type Scenario =
  | 'random'
  | 'leader-isolation'
  | 'leader-crash-loop'
  | 'leader-churn'
  | 'crash-after-vote'
  | 'crash-all'
  | 'flaky-network'
  | 'membership-churn'
  | 'transfers'
  | 'tab-close';
const SCENARIOS: readonly Scenario[] = [
  'random', 'random', 'leader-isolation', 'leader-crash-loop', 'leader-churn', 'leader-churn', 'crash-after-vote', 'crash-all',
  'flaky-network', 'membership-churn', 'membership-churn', 'transfers', 'tab-close', 'tab-close',
];

/** What one seed exercised. */
export interface Coverage {
  elections: number;
  preVotes: number;
  stepDowns: number;
  maxTerm: number;
  committed: number;
  proposals: number;
  acked: number;
  rejected: number;
  messages: number;
  dropped: number;
  duplicated: number;
  crashes: number;
  lostWrites: number;
  partitions: number;
  clockSkews: number;
  truncations: number;
  /** Configuration entries appended: learners added, promotions, demotions, removals. */
  membershipChanges: number;
  promotions: number;
  removals: number;
  /** Leaders that stepped down once their own removal committed. */
  removedLeaders: number;
  transfers: number;
  /** Transfers whose target became leader. */
  transfersDone: number;
  reads: number;
  readsServed: number;
  compactions: number;
  snapshotsInstalled: number;
  tabsClosed: number;
  /** Followers that campaigned at once on hearing their leader's lock released (memberGone). */
  goneCampaigns: number;
  forcedReconfigurations: number;
  steps: number;
}

export interface SeedReport {
  seed: number;
  scenario: Scenario;
  nodes: number;
  coverage: Coverage;
  /** Ticks from the heal to a new proposal applied on a majority (committed). */
  livenessTicks: number;
  violation?: Violation & { atMs: number };
  /** The last steps before the violation (only when run with `trace`). */
  trace?: string[];
}

export interface SimOptions {
  /** Record a readable trace (slower; used to replay a failing seed). */
  trace?: boolean;
}

interface SimNode {
  readonly id: string;
  readonly disk: SimDisk;
  /** The executor of the running incarnation (undefined while down). */
  executor: Executor | undefined;
  /** The member's state after its latest step (undefined while down). */
  state: RaftState | undefined;
  incarnation: number;
  /** How long this node's clock takes for a nominal TICK_MS: its timers run at TICK_MS / tickMs of real speed. */
  tickMs: number;
  /** When this node's disk finishes its last queued sync; syncs complete in order. */
  syncDoneMs: number;
  /** Proposals it accepted: index → (term, payload hash). */
  pending: Map<number, { term: number; payload: number }>;
  wasLeaderOf: number;
  /** Its tab closed: down until the heal, or for good once a forced reconfiguration left it out. */
  closed: boolean;
}

type SimEvent =
  /** A timer (or deferred callback) of a node's clock; void once the node crashed or the timer was cancelled. */
  | { kind: 'timer'; node: SimNode; incarnation: number; timer: { fn: () => void; cancelled: boolean } }
  | { kind: 'deliver'; from: string; to: string; messages: readonly GroupMessage[] }
  | { kind: 'sync'; node: SimNode; incarnation: number; committed: () => void }
  | { kind: 'client' }
  | { kind: 'fault' }
  | { kind: 'crash'; node: SimNode; incarnation: number }
  | { kind: 'restart'; node: SimNode }
  /** The others see `node`'s slot lock released (its tab crashed or closed): `memberGone` to each live one. */
  | { kind: 'lock-released'; node: SimNode; incarnation: number }
  | { kind: 'heal-links' }
  | { kind: 'weather-clears' };

interface Queued<Event = SimEvent> {
  atMs: number;
  seq: number;
  event: Event;
}

/** A binary heap of events by (time, insertion order). */
export class EventQueue<Event = SimEvent> {
  private heap: Array<Queued<Event>> = [];
  private seq = 0;

  push(atMs: number, event: Event): void {
    const heap = this.heap;
    heap.push({ atMs, seq: this.seq++, event });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** When the next event is due, if any: an asynchronous run lets promises settle before time moves on. */
  peekMs(): number | undefined {
    return this.heap[0]?.atMs;
  }

  pop(): Queued<Event> | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
    return top;
  }
}
const before = <E>(a: Queued<E>, b: Queued<E>) => a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);

const emptyCoverage = (): Coverage => ({
  elections: 0, preVotes: 0, stepDowns: 0, maxTerm: 0, committed: 0, proposals: 0, acked: 0, rejected: 0,
  messages: 0, dropped: 0, duplicated: 0, crashes: 0, lostWrites: 0, partitions: 0, clockSkews: 0, truncations: 0,
  membershipChanges: 0, promotions: 0, removals: 0, removedLeaders: 0, transfers: 0, transfersDone: 0, reads: 0,
  readsServed: 0, compactions: 0, snapshotsInstalled: 0, tabsClosed: 0, forcedReconfigurations: 0, goneCampaigns: 0, steps: 0,
});

/** Adds `b` into `a`, field by field (campaign totals). @example addCoverage(total, report.coverage) */
export function addCoverage(a: Coverage, b: Coverage): void {
  for (const key of Object.keys(a) as Array<keyof Coverage>) a[key] = key === 'maxTerm' ? Math.max(a[key], b[key]) : a[key] + b[key];
}

/**
 * Runs one seed to the end: faults, then the heal, then until liveness holds or its
 * bound passes. Checkers run after every step.
 * @example const report = runSeed(42); if (report.violation) console.log(report.trace);
 */
export function runSeed(seed: number, options: SimOptions = {}): SeedReport {
  return new Simulation(seed, options).run();
}

class Simulation {
  private readonly prng: Prng;
  private readonly queue = new EventQueue();
  private readonly nodes: SimNode[];
  /** The group's first voters; the other nodes start as spares, outside the group. */
  private readonly initialVoters: readonly string[];
  private readonly scenario: Scenario;
  private readonly faultEndMs: number;
  /** Per-seed message bounds: small ones split appends, which exposes commit-by-counting bugs. */
  private readonly limits: Pick<RaftConfig, 'maxInflightAppends' | 'maxEntriesPerAppend' | 'maxBytesPerAppend'>;
  private readonly coverage = emptyCoverage();
  private readonly safety = new SafetyChecker();
  private readonly liveness = new LivenessChecker(LIVENESS_BOUND_TICKS, 'a leader commits a new proposal');
  private readonly catchUp = new LivenessChecker(CATCH_UP_BOUND_TICKS, 'every node applies every acknowledged proposal');
  private finished = false;
  private readonly traceLog: TraceLog;
  private nowMs = 0;
  /** The input `stepNode` fed, and its step's effects once the executor ran it. */
  private capturing: { input: Input; effects: readonly Effect[] } | undefined;
  private violation: (Violation & { atMs: number }) | undefined;
  private healed = false;
  private livenessTicks = -1;
  private nextPayload = 1;
  /** The network: blocked directed links "a>b", and the weather. */
  private blocked = new Set<string>();
  private dropRate = 0;
  private duplicateRate = 0;
  private maxDelayMs = 8;
  /** Payload hashes of liveness probes proposed after the heal. */
  private readonly probes = new Set<number>();
  private readonly probeApplied = new Map<number, Set<string>>();
  private nextProbeMs = 0;
  /** Read-index requests in flight: id → the highest commit index any node knew when asked. */
  private readonly reads = new Map<number, number>();
  private nextReadId = 1;
  /** The target of the latest leader transfer and the term it was asked in. */
  private transfer: { to: string; term: number } | undefined;
  /** Voters a forced reconfiguration left out: they never return. */
  private readonly forcedOut = new Set<string>();
  private nextForceMs = 0;
  /** How this seed's disks read entries (SimDisk.cold), or undefined: all in memory. */
  private readonly coldReads: { hot: number; delayMs: number } | undefined;

  constructor(readonly seed: number, options: SimOptions) {
    this.prng = new Prng(seed);
    this.traceLog = new TraceLog(options.trace === true, TRACE_LINES);
    this.scenario = this.prng.pick(SCENARIOS);
    const count = this.scenario === 'tab-close' ? this.prng.pick([2, 2, 2, 3, 4]) : this.prng.pick([1, 2, 3, 3, 3, 3, 4, 5, 5, 5]);
    const spares = this.scenario === 'membership-churn' || this.scenario === 'random' ? this.prng.int(1, 2) : this.prng.int(0, 1);
    this.faultEndMs = this.prng.int(1500, 4000);
    // Half the seeds read the log as a partition over IndexedDB does: the last few entries in
    // memory, the rest loaded. Drawn from a stream of its own, so every seed's schedule (and a
    // kept regression seed's) is what it was before reads could wait.
    const reads = new Prng(seed ^ 0x5eed_c01d);
    this.coldReads = reads.chance(0.5) ? { hot: reads.int(0, 4), delayMs: reads.int(0, 10) } : undefined;
    this.limits = {
      maxInflightAppends: this.prng.int(1, 4),
      maxEntriesPerAppend: this.prng.int(1, 8),
      maxBytesPerAppend: this.prng.int(16, 256),
    };
    this.nodes = Array.from({ length: count + spares }, (_, i) => ({
      id: `n${i + 1}`,
      disk: new SimDisk(),
      executor: undefined,
      state: undefined,
      incarnation: 0,
      tickMs: TICK_MS,
      syncDoneMs: 0,
      pending: new Map(),
      wasLeaderOf: 0,
      closed: false,
    }));
    this.initialVoters = this.nodes.slice(0, count).map((n) => n.id);
  }

  run(): SeedReport {
    for (const node of this.nodes) this.start(node);
    this.queue.push(this.prng.int(0, 50), { kind: 'client' });
    this.queue.push(this.prng.int(50, 300), { kind: 'fault' });
    for (let events = 0; events < MAX_EVENTS && this.violation === undefined && !this.finished; events++) {
      const next = this.queue.pop();
      if (next === undefined) break;
      this.nowMs = next.atMs;
      if (!this.healed && this.nowMs >= this.faultEndMs) this.heal();
      this.handle(next.event);
      if (this.healed && this.violation === undefined) this.checkLiveness();
    }
    if (this.violation === undefined && !this.finished) this.fail({ checker: 'simulator', message: 'event budget exhausted' });
    if (this.violation === undefined) {
      const members = this.members();
      const end = this.safety.end(this.nodes.filter((n) => members.has(n.id)).map((n) => ({ node: n.id, applied: n.state?.applied ?? 0 })));
      if (end !== undefined) this.fail(end);
    }
    return {
      seed: this.seed,
      scenario: this.scenario,
      nodes: this.nodes.length,
      coverage: this.coverage,
      livenessTicks: this.livenessTicks,
      ...(this.violation && { violation: this.violation }),
      ...(this.traceLog.last() && { trace: this.traceLog.last()! }),
    };
  }

  private trace(line: () => string): void {
    this.traceLog.add(this.nowMs, line);
  }

  private fail(violation: Violation): void {
    this.violation ??= { ...violation, atMs: this.nowMs };
    this.trace(() => `VIOLATION ${violation.checker}: ${violation.message}`);
    for (const n of this.nodes) {
      const st = n.state;
      const last = n.disk.last();
      this.trace(() => st === undefined ? `  ${n.id} down${n.closed ? ' (tab closed)' : ''}` :
        `  ${n.id} ${st.role} t${st.term} leader=${st.leader ?? '-'} last=${last.index}@${last.term} commit=${st.commit} voters=${st.membership.voters.join(',')} learners=${st.membership.learners.join(',') || '-'}`);
    }
  }

  private observe(event: HistoryEvent): void {
    const violation = this.safety.observe(event);
    if (violation !== undefined) this.fail(violation);
  }

  private config(node: SimNode): RaftConfig {
    return {
      id: node.id,
      voters: this.initialVoters,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      ...this.limits,
      maxUncommittedEntries: 64,
      maxApplyBytesPerStep: 512,
      maxPendingReads: 8,
      seed: this.prng.next(),
    };
  }

  /** A node's clock: simulated time, its timers stretched by the node's skew, void after a crash. */
  private clockOf(node: SimNode): Clock {
    const incarnation = node.incarnation;
    const schedule = (atMs: number, fn: () => void): Cancel => {
      const timer = { fn, cancelled: false };
      this.queue.push(atMs, { kind: 'timer', node, incarnation, timer });
      return () => void (timer.cancelled = true);
    };
    return {
      now: () => this.nowMs,
      monotonic: () => this.nowMs,
      after: (delayMs, fn) => schedule(this.nowMs + Math.round((delayMs * node.tickMs) / TICK_MS), fn),
      defer: (fn) => void schedule(this.nowMs, fn),
    };
  }

  private start(node: SimNode): void {
    const clock = this.clockOf(node);
    const incarnation = node.incarnation;
    // Disks sync in order, a transaction at a time; a slow one now and then.
    const committer = createGroupCommitter(
      {
        write: (_writes, committed) => {
          node.syncDoneMs = Math.max(node.syncDoneMs, this.nowMs) + (this.prng.chance(0.02) ? this.prng.int(20, 80) : this.prng.int(0, 4));
          this.queue.push(node.syncDoneMs, { kind: 'sync', node, incarnation, committed });
        },
      },
      clock,
    );
    const executor = new Executor({
      nodeId: node.id,
      clock,
      committer,
      sendFrame: (to, messages) => {
        this.send(node.id, to, messages);
        return true;
      },
      tickMs: TICK_MS,
      heartbeatFlushTicks: HEARTBEAT_TICKS,
      observer: { raftStepped: (_group, input, before, after, effects) => this.stepped(node, input, before, after, effects) },
    });
    node.executor = executor;
    const { coldReads } = this;
    node.disk.cold = coldReads && { ...coldReads, after: (ms, fn) => void clock.after(ms, fn) };
    executor.addRaftGroup(GROUP, {
      config: this.config(node),
      store: node.disk,
      // The core's own assertions are checkers too; a failing one ends the run with its trace.
      handler: { stopped: (error) => this.fail({ checker: 'core assertion', message: `${node.id}: ${(error as Error).message}` }) },
    });
    node.state = executor.raftState(GROUP);
    node.wasLeaderOf = 0;
    node.closed = false;
    this.observe({ kind: 'start', node: node.id });
    const snapshot = node.disk.snapshot();
    if (snapshot !== undefined) this.observe({ kind: 'restore', node: node.id, index: snapshot.index, chain: chainsOf(snapshot.data).at(-1)! });
    // Its ticks start at a random phase.
    this.queue.push(this.nowMs + this.prng.int(1, node.tickMs), { kind: 'timer', node, incarnation, timer: { fn: () => executor.start(), cancelled: false } });
  }

  private crash(node: SimNode): void {
    if (node.state === undefined) return;
    node.executor?.stop();
    node.executor = undefined;
    node.state = undefined;
    node.incarnation++;
    node.pending.clear();
    node.syncDoneMs = this.nowMs;
    const lost = node.disk.crash(this.prng.int(0, node.disk.unsyncedCount()));
    this.coverage.crashes++;
    this.coverage.lostWrites += lost;
    this.trace(() => `${node.id} CRASH (lost ${lost} unsynced writes)`);
    this.observe({ kind: 'crash', node: node.id });
    // A tab of one browser: the others see its slot lock released 5–150 ms later (not every
    // crash is one: a device's, or a frozen tab's, is seen only by timeouts).
    if (this.prng.chance(0.5)) this.queue.push(this.nowMs + this.prng.int(5, 150), { kind: 'lock-released', node, incarnation: node.incarnation });
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'timer': {
        if (event.timer.cancelled || event.node.incarnation !== event.incarnation) return;
        event.timer.fn();
        return;
      }
      case 'deliver': {
        const node = this.nodes.find((n) => n.id === event.to)!;
        if (node.executor === undefined || this.blocked.has(`${event.from}>${event.to}`)) {
          this.coverage.dropped += event.messages.length;
          return;
        }
        for (const { message } of event.messages) this.trace(() => `${message.to} ← ${describe(message)}`);
        node.executor.receive(event.from, event.messages);
        return;
      }
      case 'sync': {
        if (event.node.incarnation !== event.incarnation) return;
        event.committed();
        return;
      }
      case 'client':
        this.client();
        return;
      case 'fault':
        if (!this.healed) this.fault();
        return;
      case 'crash':
        if (event.node.incarnation !== event.incarnation) return;
        this.crash(event.node);
        this.queue.push(this.nowMs + this.prng.int(5, 100), { kind: 'restart', node: event.node });
        return;
      case 'restart':
        if (event.node.state === undefined && !event.node.closed) {
          this.trace(() => `${event.node.id} RESTART`);
          this.start(event.node);
        }
        return;
      case 'lock-released': {
        // Seen only while it is still down: a restarted tab holds its lock again.
        if (event.node.incarnation !== event.incarnation || event.node.state !== undefined) return;
        for (const node of this.nodes) {
          if (node.executor === undefined) continue;
          const wasCandidate = node.state?.role === 'candidate';
          this.stepNode(node, { type: 'memberGone', member: event.node.id });
          if (!wasCandidate && node.state?.role === 'candidate') this.coverage.goneCampaigns++;
        }
        this.trace(() => `${event.node.id} LOCK RELEASED`);
        return;
      }
      case 'heal-links':
        this.blocked.clear();
        this.trace(() => 'links healed');
        return;
      case 'weather-clears':
        this.dropRate = 0;
        this.duplicateRate = 0;
        this.maxDelayMs = 8;
        return;
    }
  }

  /** Feeds an input to a node's executor; returns that step's effects. */
  private stepNode(node: SimNode, input: Input): readonly Effect[] {
    const capturing = { input, effects: [] as readonly Effect[] };
    this.capturing = capturing;
    node.executor!.input(GROUP, input);
    this.capturing = undefined;
    return capturing.effects;
  }

  /** Every step of every node's executor: the checkers' view. */
  private stepped(node: SimNode, input: Input, before: RaftState, after: RaftState, effects: readonly Effect[]): void {
    node.state = after;
    this.coverage.steps++;
    if (this.capturing?.input === input) this.capturing.effects = effects;
    if (input.type !== 'message') this.trace(() => `${node.id} ${input.type}`);
    for (const effect of effects) this.observeEffect(node, effect);
    this.watch(node, before, after);
  }

  private observeEffect(node: SimNode, effect: Effect): void {
    switch (effect.type) {
      case 'persist': {
        // The executor has staged it: the disk's visible log holds it.
        if (effect.entries !== undefined) {
          const { firstIndex, entries } = effect.entries;
          if (firstIndex <= node.disk.lastIndex()) this.coverage.truncations++; // the durable log's end
          for (let i = 0; i < entries.length; i++) {
            const index = firstIndex + i;
            this.observe({ kind: 'entry', node: node.id, index, term: entries[i]!.term, chain: node.disk.chainAt(index) });
          }
        }
        this.trace(() => `${node.id} persist #${effect.writeId}${effect.hardState ? ` term=${effect.hardState.term} vote=${effect.hardState.votedFor ?? '-'}` : ''}${effect.entries ? ` entries ${effect.entries.firstIndex}..${effect.entries.firstIndex + effect.entries.entries.length - 1}` : ''}${effect.thenSend.length ? ` then send ${effect.thenSend.length}` : ''}`);
        // Power loss while a vote is being written: a vote sent before it is durable
        // would be cast again after the restart.
        const vote = effect.hardState?.votedFor;
        if (vote !== undefined && vote !== node.id && !this.healed && this.prng.chance(this.scenario === 'crash-after-vote' ? 0.3 : 0.01)) {
          this.queue.push(this.nowMs + this.prng.int(0, 3), { kind: 'crash', node, incarnation: node.incarnation });
        }
        return;
      }
      case 'send':
        return;
      case 'apply':
        for (const entry of effect.entries) {
          const payload = fnv1a(entry.data);
          this.observe({ kind: 'apply', node: node.id, index: entry.index, term: entry.term, payload });
          const pending = node.pending.get(entry.index);
          if (pending !== undefined) {
            node.pending.delete(entry.index);
            if (pending.term === entry.term) {
              this.coverage.acked++;
              this.observe({ kind: 'ack', index: entry.index, term: entry.term, payload: pending.payload });
            }
          }
          if (this.probes.has(payload)) {
            const applied = this.probeApplied.get(payload) ?? new Set();
            applied.add(node.id);
            this.probeApplied.set(payload, applied);
          }
        }
        return;
      case 'restore': {
        const { index, data } = effect.snapshot;
        this.coverage.snapshotsInstalled++;
        for (const pendingIndex of node.pending.keys()) if (pendingIndex <= index) node.pending.delete(pendingIndex);
        this.observe({ kind: 'restore', node: node.id, index, chain: chainsOf(data).at(-1)! });
        return;
      }
      case 'readReady': {
        const atLeast = this.reads.get(effect.id);
        this.reads.delete(effect.id);
        if (atLeast === undefined) return this.fail({ checker: 'simulator', message: `read ${effect.id} answered twice` });
        this.coverage.readsServed++;
        this.observe({ kind: 'read', node: node.id, index: effect.index, atLeast });
        return;
      }
      case 'readRejected':
        this.reads.delete(effect.id);
        return;
      case 'proposed':
        return;
      case 'proposalRejected':
        this.coverage.rejected++;
        return;
    }
  }

  /** Turns state changes into checker events. */
  private watch(node: SimNode, before: RaftState, after: RaftState): void {
    if (after.role === 'preCandidate' && before.role !== 'preCandidate') this.coverage.preVotes++;
    if (before.role === 'leader' && after.role !== 'leader' && after.term === before.term) {
      this.coverage.stepDowns++;
      if (!after.membership.voters.includes(node.id)) this.coverage.removedLeaders++;
    }
    if (after.role === 'leader' && this.transfer?.to === node.id && after.term > this.transfer.term) {
      this.coverage.transfersDone++;
      this.transfer = undefined;
    }
    if (after.role !== before.role || after.term !== before.term) {
      this.trace(() => `${node.id} is ${after.role} of term ${after.term}`);
    }
    if (after.role === 'leader' && node.wasLeaderOf !== after.term) {
      node.wasLeaderOf = after.term;
      this.coverage.elections++;
      this.coverage.maxTerm = Math.max(this.coverage.maxTerm, after.term);
      this.observe({ kind: 'leader', node: node.id, term: after.term, chains: node.disk.chains() });
    }
    if (after.commit > before.commit) {
      this.coverage.committed = Math.max(this.coverage.committed, after.commit);
      this.observe({
        kind: 'commit',
        node: node.id,
        index: after.commit,
        chain: node.disk.chainAt(after.commit),
        ...(after.role === 'leader' && { leaderTerm: after.term }),
      });
    }
  }

  /** One frame from `from` to `to` on the simulated network: lost, delayed, duplicated or cut off as a whole. */
  private send(from: string, to: string, messages: readonly GroupMessage[]): void {
    this.coverage.messages += messages.length;
    if (this.blocked.has(`${from}>${to}`) || this.prng.chance(this.dropRate)) {
      this.coverage.dropped += messages.length;
      return;
    }
    const copies = this.prng.chance(this.duplicateRate) ? 2 : 1;
    if (copies === 2) this.coverage.duplicated++;
    for (let i = 0; i < copies; i++) {
      // Mostly short delays; now and then a long one, which reorders.
      const delayMs = this.prng.chance(0.05) ? this.prng.int(this.maxDelayMs, this.maxDelayMs * 6) : this.prng.int(1, this.maxDelayMs);
      this.queue.push(this.nowMs + delayMs, { kind: 'deliver', from, to, messages });
    }
  }

  /** The client proposes now and then, mostly to whichever node it believes leads. */
  private client(): void {
    // After the heal only the liveness probe is proposed, so once it is applied
    // everywhere every acknowledged proposal (all below it) must be too.
    if (this.healed) return;
    this.queue.push(this.nowMs + this.prng.int(5, 40), { kind: 'client' });
    const up = this.nodes.filter((n) => n.state !== undefined);
    if (up.length === 0) return;
    const leader = this.currentLeader();
    const node = leader !== undefined && this.prng.chance(0.8) ? leader : this.prng.pick(up);
    const count = this.prng.int(1, 3);
    const payloads = Array.from({ length: count }, () => this.payload());
    this.propose(node, payloads);
    if (this.prng.chance(0.2)) this.read(leader !== undefined && this.prng.chance(0.9) ? leader : this.prng.pick(up));
    if (this.prng.chance(0.1)) this.compact(this.prng.pick(up));
  }

  /** A read-index read; its answer must cover every commit any node knew of now. */
  private read(node: SimNode): void {
    const id = this.nextReadId++;
    this.coverage.reads++;
    this.reads.set(id, this.safety.maxCommitIndex());
    this.stepNode(node, { type: 'readIndex', id });
  }

  /** The node snapshots its state machine (the applied prefix's hashes) and compacts its log below it. */
  private compact(node: SimNode): void {
    const applied = node.state!.applied;
    const start = node.disk.snapshot()?.index ?? 0;
    if (applied - start < COMPACT_MIN_ENTRIES) return;
    const data = snapshotData(node.disk.chains().slice(0, applied));
    if (this.stepNode(node, { type: 'compact', index: applied, data }).some((e) => e.type === 'persist' && e.snapshot !== undefined)) {
      this.coverage.compactions++;
    }
  }

  private payload(): Uint8Array {
    const bytes = new Uint8Array(4 + this.prng.int(0, 60));
    new DataView(bytes.buffer).setUint32(0, this.nextPayload++);
    return bytes;
  }

  private propose(node: SimNode, payloads: Uint8Array[]): number[] {
    this.coverage.proposals += payloads.length;
    const accepted: number[] = [];
    // A proposal cannot be applied in the step that appends it (commit needs a durable write).
    for (const effect of this.stepNode(node, { type: 'propose', payloads })) {
      if (effect.type !== 'proposed') continue;
      for (let index = effect.firstIndex; index <= effect.lastIndex; index++) {
        const payload = fnv1a(payloads[index - effect.firstIndex]!);
        node.pending.set(index, { term: effect.term, payload });
        accepted.push(payload);
      }
    }
    return accepted;
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes) {
      if (n.state?.role === 'leader' && (best === undefined || n.state.term > best.state!.term)) best = n;
    }
    return best;
  }

  private fault(): void {
    const gap =
      this.scenario === 'random' ? this.prng.int(60, 400) : this.scenario === 'leader-churn' ? this.prng.int(40, 200) : this.prng.int(150, 350);
    this.queue.push(this.nowMs + gap, { kind: 'fault' });
    const up = this.nodes.filter((n) => n.state !== undefined);
    const leader = this.currentLeader();
    this.maybeForce();
    const kind = this.scenario === 'random'
      ? this.prng.pick(['crash', 'crash-leader', 'partition', 'isolate-leader', 'one-way', 'weather', 'skew', 'heal', 'membership', 'transfer'] as const)
      : ({
          'leader-isolation': 'isolate-leader',
          'leader-crash-loop': 'crash-leader',
          'leader-churn': this.prng.pick(['isolate-leader', 'crash-leader'] as const),
          'crash-after-vote': this.prng.pick(['crash-leader', 'isolate-leader', 'skew'] as const),
          'crash-all': 'crash-all',
          'flaky-network': 'weather',
          'membership-churn': this.prng.pick(['membership', 'membership', 'membership', 'crash', 'crash-leader', 'partition', 'isolate-leader'] as const),
          transfers: this.prng.pick(['transfer', 'transfer', 'crash', 'isolate-leader', 'membership'] as const),
          'tab-close': this.prng.pick(['close', 'crash', 'isolate-leader', 'membership', 'transfer'] as const),
        } as const)[this.scenario];
    switch (kind) {
      case 'membership':
        return this.changeMembership(leader);
      case 'transfer': {
        const targets = leader?.state!.membership.voters.filter((id) => id !== leader.id) ?? [];
        if (leader === undefined || targets.length === 0) return;
        const to = this.prng.pick(targets);
        this.coverage.transfers++;
        this.transfer = { to, term: leader.state!.term };
        this.trace(() => `TRANSFER ${leader.id} → ${to}`);
        this.stepNode(leader, { type: 'transferLeadership', to });
        return;
      }
      case 'close': {
        // A tab closes for good; its slot lock is released, so the others know it is dead.
        const membership = leader?.state!.membership ?? up[0]?.state!.membership;
        const open = up.filter((n) => membership?.voters.includes(n.id));
        if (open.length < 2 || this.nodes.filter((n) => n.closed).length >= 2) return;
        const victim = this.prng.pick(open);
        this.crash(victim);
        victim.closed = true;
        this.coverage.tabsClosed++;
        this.trace(() => `${victim.id} TAB CLOSED`);
        return;
      }
      case 'crash':
      case 'crash-leader': {
        const victim = kind === 'crash-leader' ? leader : up.length > 0 ? this.prng.pick(up) : undefined;
        if (victim === undefined) return;
        this.crash(victim);
        this.queue.push(this.nowMs + this.prng.int(20, 600), { kind: 'restart', node: victim });
        return;
      }
      case 'crash-all':
        for (const node of up) {
          this.crash(node);
          this.queue.push(this.nowMs + this.prng.int(5, 80), { kind: 'restart', node });
        }
        return;
      case 'partition':
      case 'isolate-leader':
      case 'one-way':
        return this.partition(kind, leader?.id);
      case 'weather':
        this.dropRate = this.prng.int(0, 30) / 100;
        this.duplicateRate = this.prng.int(0, 15) / 100;
        this.maxDelayMs = this.prng.int(2, 60);
        this.trace(() => `WEATHER drop=${this.dropRate} dup=${this.duplicateRate} maxDelay=${this.maxDelayMs}ms`);
        this.queue.push(this.nowMs + this.prng.int(100, 1000), { kind: 'weather-clears' });
        return;
      case 'skew': {
        const node = this.prng.pick(this.nodes);
        node.tickMs = this.prng.int(TICK_MS / 2, TICK_MS * 2);
        this.coverage.clockSkews++;
        this.trace(() => `SKEW ${node.id} ticks every ${node.tickMs}ms`);
        return;
      }
      case 'heal':
        this.blocked.clear();
        return;
    }
  }

  /** Cuts the network: one link, a random split, or the leader (if any) with a minority. */
  private partition(kind: 'partition' | 'isolate-leader' | 'one-way', leader: string | undefined): void {
    this.blocked = new Set();
    const ids = this.nodes.map((n) => n.id);
    if (kind === 'one-way') {
      const from = this.prng.pick(ids);
      const to = this.prng.pick(ids);
      if (from !== to) this.blocked.add(`${from}>${to}`);
    } else {
      // The leader with a minority keeps appending (until check-quorum) entries of its
      // term that the majority side will overwrite: the raw material of figure 8.
      const minority = ids.filter((id) => id !== leader && this.prng.chance(0.3)).slice(0, Math.floor((ids.length - 1) / 2));
      const isolated = kind === 'isolate-leader'
        ? new Set(leader !== undefined ? [leader, ...minority] : [])
        : new Set(ids.filter(() => this.prng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (isolated.has(a) !== isolated.has(b)) this.blocked.add(`${a}>${b}`);
    }
    this.coverage.partitions++;
    this.trace(() => `PARTITION ${[...this.blocked].join(' ')}`);
    const healMs = this.scenario === 'leader-churn' ? this.prng.int(30, 300) : this.prng.int(50, 1000);
    this.queue.push(this.nowMs + healMs, { kind: 'heal-links' });
  }

  /**
   * Membership changes at the leader, now and then several at once (a controller that
   * retries; all but the first must wait for it) and now and then with the leader cut
   * off right after, so changes overlap with elections.
   */
  private changeMembership(leader: SimNode | undefined): void {
    if (leader === undefined) return;
    const burst = this.prng.chance(0.3) ? this.prng.int(2, 3) : 1;
    for (let i = 0; i < burst && leader.state?.role === 'leader'; i++) this.oneChange(leader);
    if (this.prng.chance(0.2)) this.partition('isolate-leader', leader.id);
  }

  /**
   * Add a spare as learner, promote a learner, demote or remove a voter (the leader
   * too), or remove a learner; but a member whose tab closed is known dead, and
   * removing it comes first (as the controller does: "membership follows the tabs").
   */
  private oneChange(leader: SimNode): void {
    const { voters, learners } = leader.state!.membership;
    const outsiders = this.nodes.filter((n) => !n.closed && !voters.includes(n.id) && !learners.includes(n.id)).map((n) => n.id);
    const without = (ids: readonly string[], id: string) => ids.filter((x) => x !== id);
    const closed = [...voters, ...learners].filter((id) => this.nodes.find((n) => n.id === id)!.closed);
    const choices: Array<() => Membership> = [];
    if (closed.length > 0) {
      const id = this.prng.pick(closed);
      if (voters.length > 1 || !voters.includes(id)) choices.push(() => ({ voters: without(voters, id), learners: without(learners, id) }));
    }
    if (outsiders.length > 0 && closed.length === 0) choices.push(() => ({ voters, learners: [...learners, this.prng.pick(outsiders)] }));
    if (learners.length > 0 && voters.length < 5 && closed.length === 0) {
      choices.push(() => {
        const id = this.prng.pick(learners);
        return { voters: [...voters, id], learners: without(learners, id) };
      });
    }
    if (voters.length > 1 && closed.length === 0) {
      choices.push(() => ({ voters: without(voters, this.prng.pick(voters)), learners }));
      choices.push(() => {
        const id = this.prng.pick(voters);
        return { voters: without(voters, id), learners: [...learners, id] };
      });
    }
    if (learners.length > 0 && closed.length === 0) choices.push(() => ({ voters, learners: without(learners, this.prng.pick(learners)) }));
    if (choices.length === 0) return;
    const next = this.prng.pick(choices)();
    this.trace(() => `MEMBERSHIP at ${leader.id}: voters ${next.voters.join(',')} learners ${next.learners.join(',') || '-'}`);
    if (!this.stepNode(leader, { type: 'changeMembership', membership: next }).some((e) => e.type === 'proposed')) return;
    this.coverage.membershipChanges++;
    if (next.voters.length > voters.length) this.coverage.promotions++;
    if (next.voters.length + next.learners.length < voters.length + learners.length) this.coverage.removals++;
  }

  /**
   * Forced reconfiguration, issued only when its preconditions hold (see src/raft/index.ts):
   * voters whose tabs closed are dead for good; the most up-to-date survivor — the one
   * forced — holds every committed entry; the new voters are its living voters and
   * itself, and their quorums meet every quorum the living could still form in any
   * survivor's configuration; the term is above every survivor's, and so above every term
   * a leader was elected in (checked, as precondition 3 is, against the history: the
   * survivors know this when the dead were fewer than a quorum, precondition 3's
   * condition; seed 709727 forced at a term two closed tabs had led). Otherwise nothing is
   * forced, and the closed tabs come back at the heal with their state (in a browser
   * the group would wait for them; here their close was a long crash).
   */
  private maybeForce(): void {
    if (this.nowMs < this.nextForceMs || !this.nodes.some((n) => n.closed)) return;
    const alive = this.nodes.filter((n) => !n.closed);
    // The survivors compare notes: all must be up to report their logs, terms and configurations.
    if (alive.some((n) => n.state === undefined)) return;
    const aliveIds = alive.map((n) => n.id);
    const configs = alive.map((n) => n.state!.membership.voters);
    const leftOut = [...new Set(configs.flat())].filter((id) => !aliveIds.includes(id));
    if (leftOut.length === 0) return;
    const best = alive.reduce((a, b) => {
      const [x, y] = [a.disk.last(), b.disk.last()];
      return y.term > x.term || (y.term === x.term && y.index > x.index) ? b : a;
    });
    const { voters, learners } = best.state!.membership;
    const membership = {
      voters: [...new Set([...voters.filter((id) => aliveIds.includes(id)), best.id])],
      learners: learners.filter((id) => aliveIds.includes(id) && id !== best.id),
    };
    if (!this.safety.holdsEveryCommitted(best.disk.chains())) return;
    if (!configs.every((config) => quorumsIntersect(membership.voters, config, aliveIds))) return;
    const term = 1 + Math.max(...alive.map((n) => n.state!.term));
    if (term <= this.safety.maxLeaderTerm()) return;
    this.nextForceMs = this.nowMs + FORCE_INTERVAL_TICKS * TICK_MS;
    for (const id of leftOut) this.forcedOut.add(id);
    this.coverage.forcedReconfigurations++;
    this.trace(() => `FORCE ${best.id}: voters ${membership.voters.join(',')} (${leftOut.join(',')} closed for good)`);
    this.observe({ kind: 'force', node: best.id, chains: best.disk.chains(), voters: membership.voters, configs, leftOut, alive: aliveIds });
    this.stepNode(best, { type: 'forceMembership', membership, term });
  }

  /** Members the run ends with: those of the latest leader's membership (or every node), but tabs closed for good. */
  private members(): Set<string> {
    const membership = this.currentLeader()?.state!.membership;
    const ids = membership === undefined ? this.nodes.map((n) => n.id) : [...membership.voters, ...membership.learners];
    return new Set(ids.filter((id) => !this.nodes.find((n) => n.id === id)!.closed));
  }

  /** The end of the fault phase: every node up, every link open, calm weather. Clock skew stays. */
  private heal(): void {
    this.healed = true;
    this.blocked.clear();
    this.dropRate = 0;
    this.duplicateRate = 0;
    this.maxDelayMs = 8;
    // A closed tab stays dead once forced out; else its close was but a crash.
    for (const node of this.nodes) {
      if (node.closed && !this.forcedOut.has(node.id)) node.closed = false;
      if (node.state === undefined && !node.closed) this.start(node);
    }
    this.liveness.healed(this.nowMs / TICK_MS);
    this.catchUp.healed(this.nowMs / TICK_MS);
    this.trace(() => 'HEAL: all nodes up, all links open');
  }

  /**
   * After the heal: keep proposing a probe to the leader until one is applied on a
   * majority (committed), then wait until every node has applied it and everything acknowledged.
   */
  private checkLiveness(): void {
    const nowTicks = this.nowMs / TICK_MS;
    this.maybeForce();
    const leader = this.currentLeader();
    const voters = leader?.state!.membership.voters ?? [];
    const appliedBy = (ids: Iterable<string>) => {
      let most = 0;
      for (const applied of this.probeApplied.values()) most = Math.max(most, [...ids].filter((id) => applied.has(id)).length);
      return most;
    };
    if (this.livenessTicks < 0 && leader !== undefined && appliedBy(voters) >= Math.floor(voters.length / 2) + 1) {
      this.livenessTicks = Math.ceil((this.nowMs - this.faultEndMs) / TICK_MS);
    }
    if (this.livenessTicks >= 0) {
      const acked = this.safety.maxAckedIndex();
      const members = this.members();
      this.finished = leader !== undefined && appliedBy(members) === members.size &&
        this.nodes.every((n) => !members.has(n.id) || (n.state?.applied ?? 0) >= acked);
      const violation = this.catchUp.check(nowTicks, this.finished);
      if (violation === undefined) return;
      const lagging = this.nodes.filter((n) => members.has(n.id) && (n.state?.applied ?? 0) < acked).map((n) => `${n.id} at ${n.state?.applied ?? 'down'}`);
      const membership = leader?.state!.membership;
      this.fail({ ...violation, message: `${violation.message} (acked ${acked}; lagging ${lagging.join(', ') || '-'}; voters ${membership?.voters.join(',') ?? '?'} learners ${membership?.learners.join(',') || '-'})` });
      return;
    }
    const violation = this.liveness.check(nowTicks, false);
    if (violation !== undefined) return this.fail(violation);
    if (leader !== undefined && this.nowMs >= this.nextProbeMs) {
      // Again every few ticks: a probe accepted by a leader that is then deposed may be lost.
      this.nextProbeMs = this.nowMs + PROBE_INTERVAL_TICKS * TICK_MS;
      for (const payload of this.propose(leader, [this.payload()])) this.probes.add(payload);
    }
  }
}

/** One line per message, for traces. @example describe(message) // 'append from n1 t3 prev=5@2 entries=3 commit=4' */
export function describe(m: Message): string {
  switch (m.type) {
    case 'append':
      return `append from ${m.from} t${m.term} prev=${m.prevIndex}@${m.prevTerm} entries=${m.entries.length} commit=${m.commit}`;
    case 'appendResponse':
      return `appendResponse from ${m.from} t${m.term} ${m.reject ? `reject ${m.index} hint=${m.hintIndex}@${m.hintTerm}` : `ok ${m.index}`}`;
    case 'preVote':
    case 'vote':
      return `${m.type} from ${m.from} t${m.term} last=${m.lastIndex}@${m.lastTerm}`;
    case 'preVoteResponse':
    case 'voteResponse':
      return `${m.type} from ${m.from} t${m.term} ${m.reject ? 'reject' : 'grant'}`;
    case 'heartbeat':
      return `heartbeat from ${m.from} t${m.term} commit=${m.commit} round=${m.readRound}`;
    case 'heartbeatResponse':
      return `heartbeatResponse from ${m.from} t${m.term} round=${m.readRound}`;
    case 'snapshot':
      return `snapshot from ${m.from} t${m.term} at ${m.snapshot.index}@${m.snapshot.term} voters=${m.snapshot.membership.voters.join(',')}`;
    case 'timeoutNow':
      return `timeoutNow from ${m.from} t${m.term}`;
  }
}
