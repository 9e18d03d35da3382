import { createRaft, step, type Effect, type Input, type Message, type RaftConfig, type RaftState, type StepResult } from '../../src/raft';
import { LivenessChecker, SafetyChecker, type HistoryEvent, type Violation } from './checker';
import { SimDisk } from './disk';
import { fnv1a, Prng } from './prng';

// A deterministic simulation of one raft group: N nodes, a simulated clock, a network
// that drops, delays, duplicates, reorders and partitions, disks that lose unsynced
// writes on crash, and a fault schedule drawn from the seed. Everything that happens
// is an event in one queue ordered by (time, sequence), so a seed replays exactly.

/** Nominal tick length; each node's own tick length drifts around it (clock skew). */
export const TICK_MS = 10;
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
/** Stops a run that livelocks in the event loop itself. */
const MAX_EVENTS = 2_000_000;
const TRACE_LINES = 60;

/**
 * A seed's fault schedule. random: any fault below at random; leader-isolation: the
 * leader (with a minority) is cut off; leader-crash-loop: the leader crashes and
 * restarts; leader-churn: both, every 40-200 ms; crash-after-vote: power loss while
 * a vote is being written; crash-all: every node at once, losing unsynced writes;
 * flaky-network: loss, duplication and long delays (reordering).
 */
export type Scenario =
  | 'random'
  | 'leader-isolation'
  | 'leader-crash-loop'
  | 'leader-churn'
  | 'crash-after-vote'
  | 'crash-all'
  | 'flaky-network';
const SCENARIOS: readonly Scenario[] = [
  'random', 'random', 'leader-isolation', 'leader-crash-loop', 'leader-churn', 'leader-churn', 'crash-after-vote', 'crash-all', 'flaky-network',
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
  state: RaftState | undefined;
  incarnation: number;
  tickMs: number;
  /** When this node's disk finishes its last queued sync; syncs complete in order. */
  syncDoneMs: number;
  /** Proposals it accepted: index → (term, payload hash). */
  pending: Map<number, { term: number; payload: number }>;
  wasLeaderOf: number;
}

type SimEvent =
  | { kind: 'tick'; node: SimNode; incarnation: number }
  | { kind: 'deliver'; message: Message }
  | { kind: 'sync'; node: SimNode; incarnation: number; effect: Extract<Effect, { type: 'persist' }> }
  | { kind: 'client' }
  | { kind: 'fault' }
  | { kind: 'crash'; node: SimNode; incarnation: number }
  | { kind: 'restart'; node: SimNode }
  | { kind: 'heal-links' }
  | { kind: 'weather-clears' };

interface Queued {
  atMs: number;
  seq: number;
  event: SimEvent;
}

/** A binary heap of events by (time, insertion order). */
class EventQueue {
  private heap: Queued[] = [];
  private seq = 0;

  push(atMs: number, event: SimEvent): void {
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

  pop(): Queued | undefined {
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
const before = (a: Queued, b: Queued) => a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);

const emptyCoverage = (): Coverage => ({
  elections: 0, preVotes: 0, stepDowns: 0, maxTerm: 0, committed: 0, proposals: 0, acked: 0, rejected: 0,
  messages: 0, dropped: 0, duplicated: 0, crashes: 0, lostWrites: 0, partitions: 0, clockSkews: 0, truncations: 0, steps: 0,
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
  private readonly scenario: Scenario;
  private readonly faultEndMs: number;
  /** Per-seed message bounds: small ones split appends, which exposes commit-by-counting bugs. */
  private readonly limits: Pick<RaftConfig, 'maxInflightAppends' | 'maxEntriesPerAppend' | 'maxBytesPerAppend'>;
  private readonly coverage = emptyCoverage();
  private readonly safety = new SafetyChecker();
  private readonly liveness = new LivenessChecker(LIVENESS_BOUND_TICKS, 'a leader commits a new proposal');
  private readonly catchUp = new LivenessChecker(CATCH_UP_BOUND_TICKS, 'every node applies every acknowledged proposal');
  private finished = false;
  private readonly traceLines: string[] | undefined;
  private nowMs = 0;
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

  constructor(readonly seed: number, options: SimOptions) {
    this.prng = new Prng(seed);
    this.traceLines = options.trace ? [] : undefined;
    this.scenario = this.prng.pick(SCENARIOS);
    const count = this.prng.pick([1, 2, 3, 3, 3, 3, 4, 5, 5, 5]);
    this.faultEndMs = this.prng.int(1500, 4000);
    this.limits = {
      maxInflightAppends: this.prng.int(1, 4),
      maxEntriesPerAppend: this.prng.int(1, 8),
      maxBytesPerAppend: this.prng.int(16, 256),
    };
    this.nodes = Array.from({ length: count }, (_, i) => ({
      id: `n${i + 1}`,
      disk: new SimDisk(),
      state: undefined,
      incarnation: 0,
      tickMs: TICK_MS,
      syncDoneMs: 0,
      pending: new Map(),
      wasLeaderOf: 0,
    }));
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
      const end = this.safety.end(this.nodes.map((n) => ({ node: n.id, applied: n.state?.applied ?? 0 })));
      if (end !== undefined) this.fail(end);
    }
    return {
      seed: this.seed,
      scenario: this.scenario,
      nodes: this.nodes.length,
      coverage: this.coverage,
      livenessTicks: this.livenessTicks,
      ...(this.violation && { violation: this.violation }),
      ...(this.traceLines && { trace: this.traceLines.slice(-TRACE_LINES) }),
    };
  }

  private trace(line: () => string): void {
    if (this.traceLines === undefined) return;
    this.traceLines.push(`${String(this.nowMs).padStart(6)}ms ${line()}`);
    if (this.traceLines.length > TRACE_LINES * 4) this.traceLines.splice(0, this.traceLines.length - TRACE_LINES);
  }

  private fail(violation: Violation): void {
    this.violation ??= { ...violation, atMs: this.nowMs };
    this.trace(() => `VIOLATION ${violation.checker}: ${violation.message}`);
  }

  private observe(event: HistoryEvent): void {
    const violation = this.safety.observe(event);
    if (violation !== undefined) this.fail(violation);
  }

  private config(node: SimNode): RaftConfig {
    return {
      id: node.id,
      voters: this.nodes.map((n) => n.id),
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      ...this.limits,
      maxUncommittedEntries: 64,
      maxApplyBytesPerStep: 512,
      seed: this.prng.next(),
    };
  }

  private start(node: SimNode): void {
    node.state = createRaft(this.config(node), node.disk, node.disk.hardState());
    node.wasLeaderOf = 0;
    this.queue.push(this.nowMs + this.prng.int(1, node.tickMs), { kind: 'tick', node, incarnation: node.incarnation });
  }

  private crash(node: SimNode): void {
    if (node.state === undefined) return;
    node.state = undefined;
    node.incarnation++;
    node.pending.clear();
    node.syncDoneMs = this.nowMs;
    const lost = node.disk.crash(this.prng.int(0, node.disk.unsyncedCount()));
    this.coverage.crashes++;
    this.coverage.lostWrites += lost;
    this.trace(() => `${node.id} CRASH (lost ${lost} unsynced writes)`);
    this.observe({ kind: 'crash', node: node.id });
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'tick': {
        const { node } = event;
        if (node.state === undefined || node.incarnation !== event.incarnation) return;
        this.queue.push(this.nowMs + node.tickMs, event);
        this.stepNode(node, { type: 'tick' });
        return;
      }
      case 'deliver': {
        const { message } = event;
        const node = this.nodes.find((n) => n.id === message.to)!;
        if (node.state === undefined || this.blocked.has(`${message.from}>${message.to}`)) {
          this.coverage.dropped++;
          return;
        }
        this.trace(() => `${message.to} ← ${describe(message)}`);
        this.stepNode(node, { type: 'message', message });
        return;
      }
      case 'sync': {
        const { node, effect } = event;
        if (node.state === undefined || node.incarnation !== event.incarnation) return;
        node.disk.sync(effect.writeId);
        for (const message of effect.thenSend) this.send(message);
        this.stepNode(node, { type: 'persisted', writeId: effect.writeId });
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
        if (event.node.state === undefined) {
          this.trace(() => `${event.node.id} RESTART`);
          this.start(event.node);
        }
        return;
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

  private stepNode(node: SimNode, input: Input): readonly Effect[] {
    const before = node.state!;
    let result: StepResult;
    try {
      result = step(before, input);
    } catch (error) {
      // The core's own assertions are checkers too; a failing one ends the run with its trace.
      this.fail({ checker: 'core assertion', message: `${node.id}: ${(error as Error).message}` });
      return [];
    }
    node.state = result.state;
    this.coverage.steps++;
    if (input.type !== 'message') this.trace(() => `${node.id} ${input.type}`);
    for (const effect of result.effects) this.execute(node, effect);
    this.watch(node, before, result.state);
    return result.effects;
  }

  private execute(node: SimNode, effect: Effect): void {
    switch (effect.type) {
      case 'persist': {
        if (effect.entries !== undefined) {
          const { firstIndex, entries } = effect.entries;
          if (firstIndex <= node.disk.lastIndex()) this.coverage.truncations++;
          node.disk.write(effect);
          for (let i = 0; i < entries.length; i++) {
            const index = firstIndex + i;
            this.observe({ kind: 'entry', node: node.id, index, term: entries[i]!.term, chain: node.disk.chainAt(index) });
          }
        } else {
          node.disk.write(effect);
        }
        this.trace(() => `${node.id} persist #${effect.writeId}${effect.hardState ? ` term=${effect.hardState.term} vote=${effect.hardState.votedFor ?? '-'}` : ''}${effect.entries ? ` entries ${effect.entries.firstIndex}..${effect.entries.firstIndex + effect.entries.entries.length - 1}` : ''}${effect.thenSend.length ? ` then send ${effect.thenSend.length}` : ''}`);
        // Power loss while a vote is being written: a vote sent before it is durable
        // would be cast again after the restart.
        const vote = effect.hardState?.votedFor;
        if (vote !== undefined && vote !== node.id && !this.healed && this.prng.chance(this.scenario === 'crash-after-vote' ? 0.3 : 0.01)) {
          this.queue.push(this.nowMs + this.prng.int(0, 3), { kind: 'crash', node, incarnation: node.incarnation });
        }
        // Disks sync in order; a slow one now and then.
        node.syncDoneMs = Math.max(node.syncDoneMs, this.nowMs) + (this.prng.chance(0.02) ? this.prng.int(20, 80) : this.prng.int(0, 4));
        this.queue.push(node.syncDoneMs, { kind: 'sync', node, incarnation: node.incarnation, effect });
        return;
      }
      case 'send':
        this.send(effect.message);
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
    if (before.role === 'leader' && after.role !== 'leader' && after.term === before.term) this.coverage.stepDowns++;
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

  private send(message: Message): void {
    this.coverage.messages++;
    if (this.blocked.has(`${message.from}>${message.to}`) || this.prng.chance(this.dropRate)) {
      this.coverage.dropped++;
      return;
    }
    const copies = this.prng.chance(this.duplicateRate) ? 2 : 1;
    if (copies === 2) this.coverage.duplicated++;
    for (let i = 0; i < copies; i++) {
      // Mostly short delays; now and then a long one, which reorders.
      const delayMs = this.prng.chance(0.05) ? this.prng.int(this.maxDelayMs, this.maxDelayMs * 6) : this.prng.int(1, this.maxDelayMs);
      this.queue.push(this.nowMs + delayMs, { kind: 'deliver', message });
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
    const kind = this.scenario === 'random'
      ? this.prng.pick(['crash', 'crash-leader', 'partition', 'isolate-leader', 'one-way', 'weather', 'skew', 'heal'] as const)
      : ({
          'leader-isolation': 'isolate-leader',
          'leader-crash-loop': 'crash-leader',
          'leader-churn': this.prng.pick(['isolate-leader', 'crash-leader'] as const),
          'crash-after-vote': this.prng.pick(['crash-leader', 'isolate-leader', 'skew'] as const),
          'crash-all': 'crash-all',
          'flaky-network': 'weather',
        } as const)[this.scenario];
    switch (kind) {
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
      case 'one-way': {
        this.blocked = new Set();
        const ids = this.nodes.map((n) => n.id);
        if (kind === 'one-way') {
          const from = this.prng.pick(ids);
          const to = this.prng.pick(ids);
          if (from !== to) this.blocked.add(`${from}>${to}`);
        } else {
          // The leader with a minority keeps appending (until check-quorum) entries of its
          // term that the majority side will overwrite: the raw material of figure 8.
          const minority = ids.filter((id) => id !== leader?.id && this.prng.chance(0.3)).slice(0, Math.floor((ids.length - 1) / 2));
          const isolated = kind === 'isolate-leader'
            ? new Set(leader ? [leader.id, ...minority] : [])
            : new Set(ids.filter(() => this.prng.chance(0.5)));
          for (const a of ids) for (const b of ids) if (isolated.has(a) !== isolated.has(b)) this.blocked.add(`${a}>${b}`);
        }
        this.coverage.partitions++;
        this.trace(() => `PARTITION ${[...this.blocked].join(' ')}`);
        const healMs = this.scenario === 'leader-churn' ? this.prng.int(30, 300) : this.prng.int(50, 1000);
        this.queue.push(this.nowMs + healMs, { kind: 'heal-links' });
        return;
      }
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

  /** The end of the fault phase: every node up, every link open, calm weather. Clock skew stays. */
  private heal(): void {
    this.healed = true;
    this.blocked.clear();
    this.dropRate = 0;
    this.duplicateRate = 0;
    this.maxDelayMs = 8;
    for (const node of this.nodes) if (node.state === undefined) this.start(node);
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
    const appliedBy = [...this.probeApplied.values()].reduce((max, nodes) => Math.max(max, nodes.size), 0);
    if (this.livenessTicks < 0 && appliedBy >= Math.floor(this.nodes.length / 2) + 1) {
      this.livenessTicks = Math.ceil((this.nowMs - this.faultEndMs) / TICK_MS);
    }
    if (this.livenessTicks >= 0) {
      const acked = this.safety.maxAckedIndex();
      this.finished = appliedBy === this.nodes.length && this.nodes.every((n) => (n.state?.applied ?? 0) >= acked);
      const violation = this.catchUp.check(nowTicks, this.finished);
      if (violation !== undefined) this.fail(violation);
      return;
    }
    const violation = this.liveness.check(nowTicks, false);
    if (violation !== undefined) return this.fail(violation);
    const leader = this.currentLeader();
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
      return `heartbeat from ${m.from} t${m.term} commit=${m.commit}`;
    case 'heartbeatResponse':
      return `heartbeatResponse from ${m.from} t${m.term}`;
  }
}
