import type { Cancel, Clock } from '../../../src/clock';
import {
  compareClusters,
  isActive,
  memberId,
  nextMembership,
  summaryOf,
  targetVoters,
  type BrokerIdentity,
  type ClusterHello,
  type ControllerReply,
  type ControllerRequest,
} from '../../../src/cluster';
import type { ClusterIdMismatchError, NotControllerError } from '../../../src/errors';
import { createGroupCommitter } from '../../../src/log';
import { ClusterRuntime, type ClusterEvents, type ClusterTiming, type GroupMessage } from '../../../src/node';
import { handOverLeadership } from '../../../src/node/hand-over';
import type { Effect, Input, RaftState } from '../../../src/raft';
import { LivenessChecker, SafetyChecker, type HistoryEvent, type Violation } from '../checker';
import { SimDisk } from '../disk';
import { fnv1a, Prng } from '../prng';
import { EventQueue } from '../simulator';
import { TraceLog } from '../trace';

// Whole brokers in one simulated origin: each tab's slot has storage (its metadata log on a
// simulated disk that loses unsynced writes when the tab closes) and runs, once it has a
// broker id, the node's executor with the metadata raft group and the controller machine
// on it. Brokers discover each other (hello), form clusters by the formation rule,
// register, heartbeat and send admin requests to the active controller, over a network
// that drops, delays, duplicates and partitions. Faults: tabs closing and reopening (the
// same member on its storage; tabs of one device learn it at once, as from a released
// slot lock), tabs leaving (a planned close: leaderships handed over, then fenced on its own
// request), a relay's late first list of members, storage lost (a new member), partitions,
// weather, simultaneous and partitioned bootstraps. Checkers: committed metadata never diverges (the raft safety
// checker, per cluster); at most one active controller per epoch; no controller proposes
// a record its image then refuses; acknowledged topics are never lost; after the heal
// every live broker's image converges within a bound; and two clusters under one name
// never stand without a reported ClusterIdMismatchError.

export const TICK_MS = 10;
const CLUSTER_NAME = 'origin';
const TIMING: ClusterTiming = {
  tickMs: TICK_MS,
  electionTicks: 10,
  heartbeatTicks: 2,
  sessionTickMs: 100,
  controllerTickMs: 50,
  sessionTimeoutMs: 800,
  reassignAfterMs: 2_000,
  requestTimeoutMs: 300,
  formationRounds: 3,
  formationRoundsMax: 10,
  peerFreshRounds: 3,
};
const SNAPSHOT_EVERY_RECORDS = 12;
/**
 * Bound, after the heal, for every live broker of each cluster to hold the same image,
 * with a probe topic created after the heal, every broker unfenced and a member, and the
 * voters at their target (the controller has no membership change left to make). A fenced broker is unfenced by its next heartbeat; a learner
 * catches up (maybe by snapshot) and is promoted one change at a time.
 */
export const CONVERGE_BOUND_TICKS = 600;
const MAX_EVENTS = 1_500_000;
const TRACE_LINES = 80;

export type Scenario = 'together' | 'staggered' | 'partitioned-bootstrap' | 'tab-churn' | 'faults' | 'storage-lost';
const SCENARIOS: readonly Scenario[] = ['together', 'staggered', 'partitioned-bootstrap', 'tab-churn', 'tab-churn', 'faults', 'faults', 'storage-lost'];

export interface ClusterCoverage {
  bootstraps: number;
  registrations: number;
  elections: number;
  tabsClosed: number;
  tabsReopened: number;
  /** Tabs that left (handed over, asked to be fenced), then closed. */
  tabsLeft: number;
  /** Of those, fenced by the controller on their own request before they closed (no other tab had reported them gone). */
  leaversFenced: number;
  /** Tabs opened while the relay had not listed the members yet. */
  openedUnlisted: number;
  storageLost: number;
  partitions: number;
  topicsAcked: number;
  fenced: number;
  unfenced: number;
  membershipChanges: number;
  snapshotsInstalled: number;
  compactions: number;
  mismatchesReported: number;
  /** Peer messages refused by checkPeerMessage (another cluster's raft traffic). */
  peerMessagesRefused: number;
  /** Requests refused by another cluster's controller (INCONSISTENT_CLUSTER_ID). */
  otherClusterRefused: number;
  /** Controller answers refused by checkControllerEpoch (stale controllers). */
  staleRepliesRefused: number;
  dropped: number;
  steps: number;
}

export interface ClusterSeedReport {
  seed: number;
  scenario: Scenario;
  brokers: number;
  clusters: number;
  coverage: ClusterCoverage;
  /** Ticks from the heal until every cluster converged. */
  convergeTicks: number;
  violation?: Violation & { atMs: number };
  trace?: string[];
}

type Wire =
  | { kind: 'raft'; clusterId: string; messages: readonly GroupMessage[] }
  | { kind: 'hello'; hello: ClusterHello; answer: boolean }
  | { kind: 'request'; requestId: number; request: ControllerRequest }
  | { kind: 'reply'; requestId: number; reply: ControllerReply; member: string };

type SimEvent =
  | { kind: 'timer'; slot: Slot; run: number; timer: { fn: () => void; cancelled: boolean } }
  | { kind: 'deliver'; from: string; to: string; wire: Wire }
  | { kind: 'sync'; slot: Slot; run: number; committed: () => void }
  | { kind: 'open'; slot: Slot }
  | { kind: 'fault' }
  | { kind: 'client' }
  | { kind: 'heal-links' };

/** One tab's slot: its storage (disk and the identity the node persists) and the broker running on it. */
interface Slot {
  readonly name: string;
  readonly deviceId: string;
  incarnation: string;
  disk: SimDisk;
  persisted: BrokerIdentity | undefined;
  /** Bumped on every close: timers and syncs of an earlier run are void. */
  run: number;
  open: boolean;
  /** The node's cluster runtime (session, metadata member, controller), while the tab is open. */
  runtime: ClusterRuntime | undefined;
  /** Until then the relay has not listed the cluster's members to this tab (`'unlisted'`): its first list is late. */
  listedAtMs: number;
  mismatch: ClusterIdMismatchError | undefined;
  wasLeaderOf: number;
}

const emptyCoverage = (): ClusterCoverage => ({
  bootstraps: 0, registrations: 0, elections: 0, tabsClosed: 0, tabsReopened: 0, tabsLeft: 0, leaversFenced: 0, openedUnlisted: 0, storageLost: 0, partitions: 0, topicsAcked: 0,
  fenced: 0, unfenced: 0, membershipChanges: 0, snapshotsInstalled: 0, compactions: 0, mismatchesReported: 0,
  peerMessagesRefused: 0, otherClusterRefused: 0, staleRepliesRefused: 0, dropped: 0, steps: 0,
});

/** Adds `b` into `a`. @example addClusterCoverage(total, report.coverage) */
export function addClusterCoverage(a: ClusterCoverage, b: ClusterCoverage): void {
  for (const key of Object.keys(a) as Array<keyof ClusterCoverage>) a[key] += b[key];
}

/**
 * Runs one seed: formation and faults, the heal, then until every cluster converges or the bound passes.
 * @example const report = runClusterSeed(7); if (report.violation) console.log(report.trace);
 */
export function runClusterSeed(seed: number, options: { trace?: boolean } & Partial<ClusterFaults> = {}): ClusterSeedReport {
  return new ClusterSimulation(seed, options.trace === true, { plannedCloses: options.plannedCloses ?? true, lateMemberLists: options.lateMemberLists ?? true }).run();
}

/**
 * Faults added after seeds were kept as regressions: drawn from a stream of their own, so that
 * with both off a seed runs the schedule it had before they existed.
 */
export interface ClusterFaults {
  /** Some closes are planned (pagehide): the broker leaves first (Membership.leave). */
  plannedCloses: boolean;
  /** A tab's first list of members from the relay may come late (`'unlisted'` until then). */
  lateMemberLists: boolean;
}

/** Per cluster: the raft safety checker and the committed prefix's chain hashes (for snapshots). */
interface ClusterHistory {
  readonly safety: SafetyChecker;
  readonly committedChains: number[];
  /** Topics whose creation was acknowledged. */
  readonly acked: Set<string>;
}

class ClusterSimulation {
  private readonly prng: Prng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly slots: Slot[];
  private readonly scenario: Scenario;
  private readonly faultEndMs: number;
  private readonly coverage = emptyCoverage();
  private readonly histories = new Map<string, ClusterHistory>();
  /** (cluster, epoch) → the member active as controller in it. */
  private readonly activeOf = new Map<string, string>();
  private readonly converge = new LivenessChecker(CONVERGE_BOUND_TICKS, 'every live broker of each cluster holds the same image, with the probe');
  private readonly traceLog: TraceLog;
  private blocked = new Set<string>();
  private dropRate = 0;
  private duplicateRate = 0;
  private maxDelayMs = 6;
  private nowMs = 0;
  private healed = false;
  private finished = false;
  private convergeTicks = -1;
  private violation: (Violation & { atMs: number }) | undefined;
  private nextTopic = 1;
  private nextIncarnation = 1;
  private nextClusterId = 1;
  /** Per cluster: the probe topic asked for after the heal. */
  private readonly probes = new Map<string, string>();
  private storageLostDone = false;
  private nextConvergeCheckMs = 0;

  /** Draws of the faults in ClusterFaults, apart from `prng`. */
  private readonly addedPrng: Prng;

  constructor(
    readonly seed: number,
    trace: boolean,
    private readonly faults: ClusterFaults,
  ) {
    this.prng = new Prng(seed);
    this.addedPrng = new Prng(seed ^ 0x5bd1e995);
    this.traceLog = new TraceLog(trace, TRACE_LINES);
    this.scenario = this.prng.pick(SCENARIOS);
    const count = this.prng.pick([1, 2, 2, 3, 3, 4, 5, 6]);
    const devices = this.prng.int(1, Math.min(3, count));
    this.faultEndMs = this.prng.int(1500, 3500);
    this.slots = Array.from({ length: count }, (_, i) => ({
      name: `s${i + 1}`,
      deviceId: `d${(i % devices) + 1}`,
      incarnation: this.incarnation(),
      disk: undefined as unknown as SimDisk,
      persisted: undefined,
      run: 0,
      open: false,
      runtime: undefined,
      listedAtMs: 0,
      mismatch: undefined,
      wasLeaderOf: 0,
    }));
    for (const slot of this.slots) slot.disk = this.newDisk(slot);
  }

  /** Incarnations sort in creation order, so formation's "smallest bootstraps" has a variety of winners through the prng. */
  private incarnation(): string {
    return `i${this.prng.int(100, 999)}-${this.nextIncarnation++}`;
  }

  private newDisk(slot: Slot): SimDisk {
    return new SimDisk((snapshot) => this.history(slot.persisted!.clusterId).committedChains.slice(0, snapshot.index));
  }

  private history(clusterId: string): ClusterHistory {
    let history = this.histories.get(clusterId);
    if (history === undefined) {
      history = { safety: new SafetyChecker(), committedChains: [], acked: new Set() };
      this.histories.set(clusterId, history);
    }
    return history;
  }

  run(): ClusterSeedReport {
    if (this.scenario === 'partitioned-bootstrap' && this.slots.length >= 2) {
      // Two sides that cannot reach each other while they start: each bootstraps a cluster.
      const side = new Set(this.slots.filter((_, i) => i % 2 === 0).map((s) => s.name));
      for (const a of this.slots) for (const b of this.slots) if (side.has(a.name) !== side.has(b.name)) this.blocked.add(`${a.name}>${b.name}`);
      this.queue.push(this.prng.int(600, 1200), { kind: 'heal-links' });
    }
    for (const slot of this.slots) {
      const at = this.scenario === 'together' ? this.prng.int(0, 2) : this.scenario === 'staggered' ? this.prng.int(0, 800) : this.prng.int(0, 100);
      this.queue.push(at, { kind: 'open', slot });
    }
    this.queue.push(this.prng.int(300, 600), { kind: 'fault' });
    this.queue.push(this.prng.int(200, 400), { kind: 'client' });
    for (let events = 0; events < MAX_EVENTS && this.violation === undefined && !this.finished; events++) {
      const next = this.queue.pop();
      if (next === undefined) break;
      this.nowMs = next.atMs;
      if (!this.healed && this.nowMs >= this.faultEndMs) this.heal();
      this.handle(next.event);
      // Checked once per tick: images change by the tick, and comparing them is not cheap.
      if (this.healed && this.violation === undefined && !this.finished && this.nowMs >= this.nextConvergeCheckMs) {
        this.nextConvergeCheckMs = this.nowMs + TICK_MS;
        this.checkConverged();
      }
    }
    if (this.violation === undefined && !this.finished) this.fail({ checker: 'simulator', message: 'event budget exhausted' });
    return {
      seed: this.seed,
      scenario: this.scenario,
      brokers: this.slots.length,
      clusters: new Set(this.slots.map((s) => s.persisted?.clusterId).filter(Boolean)).size,
      coverage: this.coverage,
      convergeTicks: this.convergeTicks,
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
    for (const s of this.slots) this.trace(() => `  ${s.name} ${this.describeSlot(s)}`);
  }

  private describeSlot(s: Slot): string {
    if (!s.open) return 'closed';
    const r = s.runtime?.raft;
    const image = s.runtime?.controller?.image;
    return `${s.persisted?.clusterId ?? 'no cluster'} broker ${s.persisted?.brokerId ?? '-'} ${r ? `${r.role} t${r.term} commit=${r.commit} voters=${r.membership.voters.join(',')} learners=${r.membership.learners.join(',') || '-'}` : ''}` +
      ` image: ${image ? `${image.brokers().map((b) => `${b.brokerId}${b.fenced ? 'F' : ''}`).join(',')} topics ${image.topics().length} records ${image.recordsApplied}` : '-'}${s.mismatch ? ' MISMATCH' : ''}`;
  }

  private observe(clusterId: string, event: HistoryEvent): void {
    const violation = this.history(clusterId).safety.observe(event);
    if (violation !== undefined) this.fail({ ...violation, message: `cluster ${clusterId}: ${violation.message}` });
  }

  // --- slots' lifecycle ----------------------------------------------------------------

  private clockOf(slot: Slot): Clock {
    const run = slot.run;
    const schedule = (atMs: number, fn: () => void): Cancel => {
      const timer = { fn, cancelled: false };
      this.queue.push(atMs, { kind: 'timer', slot, run, timer });
      return () => void (timer.cancelled = true);
    };
    return { now: () => this.nowMs, monotonic: () => this.nowMs, after: (delayMs, fn) => schedule(this.nowMs + delayMs, fn), defer: (fn) => void schedule(this.nowMs, fn) };
  }

  /** The tab opens: the node's cluster runtime starts on the slot's storage, with the simulated network as its transport. */
  private openSlot(slot: Slot): void {
    if (slot.open) return;
    slot.open = true;
    const run = slot.run;
    const clock = this.clockOf(slot);
    // The relay's first list of members may come late (a slow relay): until then the tab must not bootstrap on what it heard.
    slot.listedAtMs = this.faults.lateMemberLists && this.addedPrng.chance(0.5) ? this.nowMs + this.addedPrng.int(1, 600) : this.nowMs;
    if (slot.listedAtMs > this.nowMs) this.coverage.openedUnlisted++;
    this.trace(() => `${slot.name} OPEN (${slot.incarnation}${slot.persisted ? `, broker ${slot.persisted.brokerId}` : ''})`);
    const send = (to: string, wire: Wire) => this.send(slot.name, to, wire);
    const runtime = new ClusterRuntime({
      clock,
      committer: createGroupCommitter({ write: (_writes, committed) => this.queue.push(this.nowMs + this.prng.int(0, 4), { kind: 'sync', slot, run, committed }) }, clock),
      store: slot.disk,
      transport: {
        hello: (hello) => {
          for (const other of this.slots) if (other !== slot) send(other.name, { kind: 'hello', hello, answer: false });
        },
        request: (to, requestId, request) => send(to, { kind: 'request', requestId, request }),
        reply: (to, requestId, reply, member) => send(to, { kind: 'reply', requestId, reply, member }),
        raft: (to, clusterId, messages) => (send(to, { kind: 'raft', clusterId, messages }), true),
        // As a relay lists them: the open tabs it can reach this one with (a partition hides the other side).
        members: () =>
          this.nowMs < slot.listedAtMs ? 'unlisted' : this.slots.filter((other) => other !== slot && other.open && !this.blocked.has(`${slot.name}>${other.name}`)).map((other) => other.name),
      },
      session: {
        clusterName: CLUSTER_NAME,
        incarnation: slot.incarnation,
        deviceId: slot.deviceId,
        self: slot.name,
        endpoints: [slot.name],
        ...(slot.persisted && { identity: slot.persisted }),
        newClusterId: `c${this.nextClusterId++}`,
      },
      timing: TIMING,
      controller: { maxReplicationFactor: 3, maxPartitions: 16, snapshotEveryRecords: SNAPSHOT_EVERY_RECORDS, validateConfigs: () => undefined },
      seed: this.prng.int(0, 0x7fffffff),
      persist: (identity) => void (slot.persisted = identity),
      events: this.eventsOf(slot),
    });
    slot.runtime = runtime;
    runtime.start();
  }

  /** What the simulator watches in a slot's runtime: the checkers' view and the coverage. */
  private eventsOf(slot: Slot): ClusterEvents {
    return {
      executor: { raftStepped: (_group, input, before, after, effects) => this.stepped(slot, input, before, after, effects) },
      memberStarted: (identity) => {
        const { clusterId } = identity;
        const self = memberId(identity.brokerId, slot.incarnation);
        this.observe(clusterId, { kind: 'start', node: self });
        // A restart: the state machine starts from the snapshot on disk.
        const snapshot = slot.disk.snapshot();
        if (snapshot !== undefined) this.observe(clusterId, { kind: 'restore', node: self, index: snapshot.index, chain: this.history(clusterId).committedChains[snapshot.index - 1]! });
      },
      controllerStepped: (controller) => {
        if (!isActive(controller)) return;
        const self = slot.runtime?.memberId ?? '?';
        const key = `${slot.persisted?.clusterId}/${controller.term}`;
        const active = this.activeOf.get(key);
        if (active === undefined) this.activeOf.set(key, self);
        else if (active !== self) this.fail({ checker: 'one active controller', message: `${active} and ${self} both active in epoch ${controller.term} of ${slot.persisted?.clusterId}` });
      },
      sessionStepped: (_state, effects) => {
        for (const effect of effects) {
          if (effect.type === 'request') this.trace(() => `${slot.name} → ${effect.to} ${effect.request.type}`);
          if (effect.type === 'registered') {
            this.coverage[effect.identity.bootstrap ? 'bootstraps' : 'registrations']++;
            this.trace(() => `${slot.name} ${effect.identity.bootstrap ? 'BOOTSTRAPS' : 'REGISTERED as broker ' + effect.identity.brokerId + ' of'} ${effect.identity.clusterId}`);
          }
          if (effect.type === 'replyRefused') this.coverage[effect.error.code === 'INCONSISTENT_CLUSTER_ID' ? 'otherClusterRefused' : 'staleRepliesRefused']++;
        }
      },
      mismatch: (error) => {
        slot.mismatch = error;
        this.coverage.mismatchesReported++;
        this.trace(() => `${slot.name} reports ${error.code}: ${error.clusterId} < ${error.otherClusterId}`);
      },
      brokerFenced: (_brokerId, fenced) => void this.coverage[fenced ? 'fenced' : 'unfenced']++,
      problem: (error) => this.fail({ checker: 'controller', message: `${slot.name}: ${(error as Error).message}` }),
    };
  }

  /** The tab closes (its unsynced writes may be lost); tabs of its device learn it at once (the slot lock). */
  private closeSlot(slot: Slot, storageLost: boolean): void {
    if (!slot.open) return;
    slot.runtime?.stop();
    slot.runtime = undefined;
    slot.open = false;
    slot.run++;
    const lost = slot.disk.crash(this.prng.int(0, slot.disk.unsyncedCount()));
    const identity = slot.persisted;
    if (identity !== undefined) this.observe(identity.clusterId, { kind: 'crash', node: memberId(identity.brokerId, slot.incarnation) });
    this.coverage.tabsClosed++;
    this.trace(() => `${slot.name} CLOSED (lost ${lost} unsynced writes)${storageLost ? ', storage lost' : ''}`);
    if (identity !== undefined) {
      for (const other of this.slots) {
        if (other.open && other.deviceId === slot.deviceId && other.persisted?.clusterId === identity.clusterId) other.runtime?.brokerGone(identity.brokerId, slot.incarnation);
      }
    }
    if (storageLost) {
      this.coverage.storageLost++;
      slot.incarnation = this.incarnation();
      slot.persisted = undefined;
      slot.disk = this.newDisk(slot);
    }
  }

  /**
   * A planned close (pagehide), as Membership.leave does it: the broker hands its leaderships
   * over, and once it leads nothing (or after an election timeout) asks to be fenced and stops
   * heartbeating; the tab closes a little later and reopens after a while.
   */
  private leave(slot: Slot): void {
    const runtime = slot.runtime;
    const executor = runtime?.executor;
    if (runtime === undefined || executor === undefined) return;
    const run = slot.run;
    const clock = this.clockOf(slot);
    this.trace(() => `${slot.name} LEAVES`);
    const handOver = handOverLeadership(executor, { clock, lagTicks: TIMING.electionTicks, checkEveryMs: TICK_MS, boundMs: TICK_MS * TIMING.electionTicks });
    const giveUpAt = this.nowMs + TICK_MS * TIMING.electionTicks;
    const settle = () => {
      if (slot.run !== run) return;
      if (this.nowMs < giveUpAt && executor.raftGroups().some((group) => executor.raftState(group)?.role === 'leader')) return void clock.after(TICK_MS, settle);
      runtime.leave();
      this.coverage.tabsLeft++;
      this.trace(() => `${slot.name} left`);
      clock.after(this.addedPrng.int(0, 300), () => {
        handOver.stop();
        const controller = this.slots.find((s) => s.open && isActiveIn(s));
        if (slot.persisted !== undefined && controller?.runtime?.controller?.image.broker(slot.persisted.brokerId)?.fenced === true) this.coverage.leaversFenced++;
        this.closeSlot(slot, false);
        this.queue.push(this.nowMs + this.addedPrng.int(50, 700), { kind: 'open', slot });
      });
    };
    settle();
  }

  /** Every raft step: the checkers' view. */
  private stepped(slot: Slot, input: Input, before: RaftState, after: RaftState, effects: readonly Effect[]): void {
    const clusterId = slot.persisted!.clusterId;
    const self = memberId(slot.persisted!.brokerId, slot.incarnation);
    this.coverage.steps++;
    if (input.type === 'changeMembership') this.coverage.membershipChanges++;
    if (input.type === 'compact') this.coverage.compactions++;
    const history = this.history(clusterId);
    for (const effect of effects) {
      if (effect.type === 'persist' && effect.entries !== undefined) {
        const { firstIndex, entries } = effect.entries;
        for (let i = 0; i < entries.length; i++) this.observe(clusterId, { kind: 'entry', node: self, index: firstIndex + i, term: entries[i]!.term, chain: slot.disk.chainAt(firstIndex + i) });
      }
      if (effect.type === 'apply') {
        for (const entry of effect.entries) this.observe(clusterId, { kind: 'apply', node: self, index: entry.index, term: entry.term, payload: fnv1a(entry.data) });
      }
      if (effect.type === 'restore') {
        this.coverage.snapshotsInstalled++;
        this.observe(clusterId, { kind: 'restore', node: self, index: effect.snapshot.index, chain: history.committedChains[effect.snapshot.index - 1]! });
      }
    }
    if (after.role === 'leader' && slot.wasLeaderOf !== after.term) {
      slot.wasLeaderOf = after.term;
      this.coverage.elections++;
      this.trace(() => `${slot.name} (${self}) leads term ${after.term} of ${clusterId}`);
      this.observe(clusterId, { kind: 'leader', node: self, term: after.term, chains: slot.disk.chains() });
    }
    if (after.commit > before.commit) {
      for (let i = history.committedChains.length; i < after.commit; i++) history.committedChains.push(slot.disk.chainAt(i + 1));
      this.observe(clusterId, { kind: 'commit', node: self, index: after.commit, chain: slot.disk.chainAt(after.commit), ...(after.role === 'leader' && { leaderTerm: after.term }) });
    }
  }

  private receive(slot: Slot, from: string, wire: Wire): void {
    const runtime = slot.runtime!;
    switch (wire.kind) {
      case 'raft':
        this.coverage.peerMessagesRefused += runtime.receiveRaft(wire.clusterId, wire.messages).length;
        return;
      case 'hello': {
        const answer = runtime.hello(from, wire.hello);
        if (!wire.answer) this.send(slot.name, from, { kind: 'hello', hello: answer, answer: true });
        return;
      }
      case 'request':
        return runtime.request(from, wire.requestId, wire.request);
      case 'reply':
        this.trace(() => `${slot.name} ← ${wire.member} ${wire.reply.type === 'error' ? `${wire.reply.error.code} ${(wire.reply.error as NotControllerError).leaderHint ?? ''}` : wire.reply.type} e${wire.reply.controllerEpoch}`);
        return runtime.answer(wire.requestId, wire.reply, wire.member);
    }
  }


  // --- the network, faults and the client ----------------------------------------------

  private send(from: string, to: string, wire: Wire): void {
    if (from === to) return void this.queue.push(this.nowMs, { kind: 'deliver', from, to, wire });
    if (this.blocked.has(`${from}>${to}`) || this.prng.chance(this.dropRate)) {
      this.coverage.dropped++;
      return;
    }
    const copies = this.prng.chance(this.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delayMs = this.prng.chance(0.05) ? this.prng.int(this.maxDelayMs, this.maxDelayMs * 5) : this.prng.int(1, this.maxDelayMs);
      this.queue.push(this.nowMs + delayMs, { kind: 'deliver', from, to, wire });
    }
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'timer':
        if (!event.timer.cancelled && event.slot.run === event.run) event.timer.fn();
        return;
      case 'sync':
        if (event.slot.run === event.run) event.committed();
        return;
      case 'deliver': {
        const slot = this.slots.find((s) => s.name === event.to)!;
        if (!slot.open || this.blocked.has(`${event.from}>${event.to}`)) return void this.coverage.dropped++;
        this.receive(slot, event.from, event.wire);
        return;
      }
      case 'open':
        if (!event.slot.open) this.openSlot(event.slot);
        if (event.slot.open && event.slot.run > 0) this.coverage.tabsReopened++;
        return;
      case 'fault':
        if (!this.healed) this.fault();
        return;
      case 'client':
        this.client();
        return;
      case 'heal-links':
        this.blocked.clear();
        this.trace(() => 'links healed');
        return;
    }
  }

  private fault(): void {
    this.queue.push(this.nowMs + this.prng.int(100, 400), { kind: 'fault' });
    const open = this.slots.filter((s) => s.open);
    const kind = ({
      together: this.prng.pick(['none', 'close', 'partition'] as const),
      staggered: this.prng.pick(['none', 'close', 'partition'] as const),
      'partitioned-bootstrap': this.prng.pick(['none', 'close'] as const),
      'tab-churn': this.prng.pick(['close', 'close', 'close-controller', 'partition'] as const),
      faults: this.prng.pick(['close', 'close-controller', 'partition', 'isolate-controller', 'weather'] as const),
      'storage-lost': this.prng.pick(['storage-lost', 'close', 'partition'] as const),
    } as const)[this.scenario];
    if (this.faults.plannedCloses && (this.scenario === 'tab-churn' || this.scenario === 'faults') && (kind === 'close' || kind === 'close-controller') && this.addedPrng.chance(0.4)) {
      const victim = kind === 'close-controller' ? open.find((s) => isActiveIn(s)) : open.length > 0 ? open[this.addedPrng.int(0, open.length - 1)] : undefined;
      if (victim !== undefined) this.leave(victim);
      return;
    }
    switch (kind) {
      case 'none':
        return;
      case 'close':
      case 'close-controller':
      case 'storage-lost': {
        const controller = open.find((s) => isActiveIn(s));
        const victim = kind === 'close-controller' ? controller : open.length > 0 ? this.prng.pick(open) : undefined;
        if (victim === undefined) return;
        const lose = kind === 'storage-lost' && !this.storageLostDone && this.mayLoseStorage(victim);
        if (lose) this.storageLostDone = true;
        this.closeSlot(victim, lose);
        this.queue.push(this.nowMs + this.prng.int(50, 700), { kind: 'open', slot: victim });
        return;
      }
      case 'partition':
      case 'isolate-controller': {
        const names = this.slots.map((s) => s.name);
        const controller = open.find((s) => isActiveIn(s))?.name;
        const isolated = kind === 'isolate-controller' ? new Set(controller ? [controller] : []) : new Set(names.filter(() => this.prng.chance(0.4)));
        this.blocked = new Set();
        for (const a of names) for (const b of names) if (isolated.has(a) !== isolated.has(b)) this.blocked.add(`${a}>${b}`);
        this.coverage.partitions++;
        this.trace(() => `PARTITION ${[...isolated].join(',')} | rest`);
        this.queue.push(this.nowMs + this.prng.int(100, 800), { kind: 'heal-links' });
        return;
      }
      case 'weather':
        this.dropRate = this.prng.int(0, 25) / 100;
        this.duplicateRate = this.prng.int(0, 10) / 100;
        this.maxDelayMs = this.prng.int(2, 40);
        return;
    }
  }

  /**
   * Storage is lost (a new member) only where a quorum survives without it for good: it is
   * a voter of at least 3 in every view of its cluster's membership that names it (each
   * member's latest, on disk or in memory), or it never registered. A voter of one or two,
   * or a learner (the controller may promote it just as it dies), would leave a group that
   * only adoption of the slot or a forced reconfiguration can save (ARCHITECTURE.md), which
   * the raft simulation covers and this one does not model.
   */
  private mayLoseStorage(slot: Slot): boolean {
    if (slot.persisted === undefined) return true;
    const { brokerId, clusterId } = slot.persisted;
    const self = memberId(brokerId, slot.incarnation);
    const views = this.slots
      .filter((s) => s.persisted?.clusterId === clusterId)
      .flatMap((s) => [s.runtime?.raft?.membership, s.disk.memberships().at(-1)?.membership ?? s.disk.snapshot()?.membership])
      .filter((m) => m !== undefined && (m.voters.includes(self) || m.learners.includes(self)));
    return views.length > 0 && views.every((m) => m!.voters.includes(self) && m!.voters.length >= 3);
  }

  /** Admin requests now and then, from a random registered broker: topics with fresh names. */
  private client(): void {
    if (this.healed) return;
    this.queue.push(this.nowMs + this.prng.int(30, 150), { kind: 'client' });
    const ready = this.slots.filter((s) => s.open && s.persisted !== undefined);
    if (ready.length === 0) return;
    const slot = this.prng.pick(ready);
    const topic = `t${this.nextTopic++}`;
    // Now and then to any tab: maybe not the controller, maybe another cluster's (which must refuse it).
    const to = this.prng.chance(0.15) ? this.prng.pick(this.slots).name : undefined;
    const clusterId = slot.persisted!.clusterId;
    slot.runtime!.client(
      { type: 'createTopics', topics: [{ name: topic, numPartitions: this.prng.int(1, 3) }] },
      (reply) => {
        if (reply.type !== 'topics') return;
        for (const result of reply.results) {
          if (result.error !== undefined) continue;
          this.history(clusterId).acked.add(result.topic);
          this.coverage.topicsAcked++;
        }
      },
      to,
    );
  }

  private heal(): void {
    this.healed = true;
    this.blocked.clear();
    this.dropRate = 0;
    this.duplicateRate = 0;
    this.maxDelayMs = 6;
    for (const slot of this.slots) if (!slot.open) this.openSlot(slot);
    this.converge.healed(this.nowMs / TICK_MS);
    this.trace(() => 'HEAL: every tab open, every link up');
  }

  /**
   * After the heal: per cluster, a probe topic is created through the active controller,
   * and every live broker's image must become the same, holding the probe and every
   * acknowledged topic, with every broker unfenced and a member and the voters at their target.
   */
  private checkConverged(): void {
    const nowTicks = this.nowMs / TICK_MS;
    const clusters = new Map<string, Slot[]>();
    for (const slot of this.slots) {
      const clusterId = slot.persisted?.clusterId;
      if (clusterId !== undefined) clusters.set(clusterId, [...(clusters.get(clusterId) ?? []), slot]);
    }
    let done = this.slots.every((s) => s.persisted !== undefined && s.runtime?.controller !== undefined);
    for (const [clusterId, slots] of clusters) {
      if (!done) break;
      const active = slots.find((s) => isActiveIn(s));
      if (active === undefined) {
        done = false;
        break;
      }
      const probe = this.probes.get(clusterId);
      const controller = active.runtime!.controller!;
      if (probe === undefined || (!controller.image.topicByName(probe) && this.prng.chance(0.05))) {
        const name = probe ?? `probe-${clusterId}`;
        this.probes.set(clusterId, name);
        active.runtime!.request(active.name, 0, { clusterId, type: 'createTopics', topics: [{ name }] });
      }
      const image = controller.image;
      const membership = active.runtime!.raft!.membership;
      const live = image.brokers().filter((b) => !b.fenced);
      const members = slots.map((s) => memberId(s.persisted!.brokerId, s.incarnation));
      // Cheap conditions first: this runs after every event once healed.
      done =
        image.topicByName(this.probes.get(clusterId)!) !== undefined &&
        slots.every((s) => s.runtime!.controller!.image.recordsApplied === image.recordsApplied) &&
        members.every((id) => membership.voters.includes(id) || membership.learners.includes(id)) &&
        slots.every((s) => image.broker(s.persisted!.brokerId)?.fenced === false) &&
        // The voters at their target; a fenced voter may stay among three (membership.ts says why).
        membership.voters.filter((id) => members.includes(id)).length === targetVoters(live.length) &&
        nextMembership(image, membership, active.runtime!.memberId!) === undefined &&
        slots.every((s) => s.runtime!.controller!.image.fingerprint() === image.fingerprint());
    }
    if (done) return this.finish(nowTicks, clusters);
    const violation = this.converge.check(nowTicks, false);
    if (violation !== undefined) this.fail(violation);
  }

  /** Converged: acknowledged topics are all there, and clusters sharing the name were reported. */
  private finish(nowTicks: number, clusters: Map<string, Slot[]>): void {
    this.convergeTicks = Math.ceil(nowTicks - this.faultEndMs / TICK_MS);
    for (const [clusterId, slots] of clusters) {
      const image = slots[0]!.runtime!.controller!.image;
      for (const topic of this.history(clusterId).acked) {
        if (image.topicByName(topic) === undefined) return this.fail({ checker: 'acknowledged topic', message: `${topic}, acknowledged by ${clusterId}, is not in its image` });
      }
    }
    const summaries = [...clusters].map(([clusterId, slots]) => ({ clusterId, slots, summary: summaryOf(slots[0]!.runtime!.controller!.image)! }));
    summaries.sort((a, b) => compareClusters(a.summary, b.summary));
    for (const smaller of summaries.slice(0, -1)) {
      if (!smaller.slots.some((s) => s.mismatch !== undefined)) {
        // Hellos go every session tick: give them a few rounds after convergence before judging.
        if (this.nowMs - this.faultEndMs < (this.converge.boundTicks * TICK_MS) / 2) return;
        return this.fail({ checker: 'cluster id mismatch', message: `clusters ${summaries.map((s) => s.clusterId).join(', ')} share the name; ${smaller.clusterId} reported nothing` });
      }
    }
    this.finished = true;
  }
}

/** Whether the slot's broker is its cluster's active controller. */
const isActiveIn = (slot: Slot): boolean => slot.runtime?.controller !== undefined && isActive(slot.runtime.controller);
