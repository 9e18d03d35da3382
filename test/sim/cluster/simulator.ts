import type { Cancel, Clock } from '../../../src/clock';
import {
  checkControllerEpoch,
  checkPeerMessage,
  clustersMet,
  compareClusters,
  createController,
  decideFormation,
  isActive,
  memberId,
  nextMembership,
  stepController,
  targetVoters,
  type ClusterSummary,
  type ControllerEffect,
  type ControllerInput,
  type ControllerReply,
  type ControllerRequest,
  type ControllerState,
  type FormationPeer,
  type MetadataImage,
} from '../../../src/cluster';
import { NotControllerError, type ClusterIdMismatchError } from '../../../src/errors';
import { createGroupCommitter } from '../../../src/log';
import { Executor, type GroupMessage } from '../../../src/node';
import { lastIndexOf, type Effect, type Input, type RaftState } from '../../../src/raft';
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
// slot lock), storage lost (a new member), partitions, weather, simultaneous and
// partitioned bootstraps. Checkers: committed metadata never diverges (the raft safety
// checker, per cluster); at most one active controller per epoch; no controller proposes
// a record its image then refuses; acknowledged topics are never lost; after the heal
// every live broker's image converges within a bound; and two clusters under one name
// never stand without a reported ClusterIdMismatchError.

export const TICK_MS = 10;
const GROUP = '__cluster_metadata';
const CLUSTER_NAME = 'origin';
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
const SESSION_TIMEOUT_MS = 800;
const BROKER_HEARTBEAT_MS = 100;
const CONTROLLER_TICK_MS = 50;
const HELLO_MS = 100;
/** Hello rounds a broker without a cluster listens before it decides. */
const FORMATION_ROUNDS = 3;
/** A peer not heard from in this many hello rounds is out of reach. */
const PEER_FRESH_ROUNDS = 3;
const SNAPSHOT_EVERY_RECORDS = 12;
/** A controller request unanswered this long was lost, or its target is gone: ask another. */
const REQUEST_TIMEOUT_MS = 300;
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
  | { kind: 'hello'; incarnation: string; cluster: ClusterSummary | undefined; controller: string | undefined; answer: boolean }
  | { kind: 'request'; requestId: number; request: ControllerRequest }
  | { kind: 'reply'; requestId: number; reply: ControllerReply; member: string };

/** What a broker asked, to read the answer. */
type RequestKind = { kind: 'register'; clusterId: string } | { kind: 'heartbeat' } | { kind: 'gone' } | { kind: 'client' };

type SimEvent =
  | { kind: 'timer'; slot: Slot; run: number; timer: { fn: () => void; cancelled: boolean } }
  | { kind: 'deliver'; from: string; to: string; wire: Wire }
  | { kind: 'sync'; slot: Slot; run: number; committed: () => void }
  | { kind: 'open'; slot: Slot }
  | { kind: 'fault' }
  | { kind: 'client' }
  | { kind: 'heal-links' };

/** One tab's slot: its storage (disk and what the node persists) and the broker running on it. */
interface Slot {
  readonly name: string;
  readonly deviceId: string;
  incarnation: string;
  disk: SimDisk;
  persisted: { clusterId?: string; brokerId?: number; bootstrap?: boolean };
  /** Bumped on every close: timers and syncs of an earlier run are void. */
  run: number;
  open: boolean;
  executor: Executor | undefined;
  controller: ControllerState | undefined;
  controllerInput: ((input: ControllerInput) => void) | undefined;
  raft: RaftState | undefined;
  helloRounds: number;
  peers: Map<string, FormationPeer & { round: number; controller: string | undefined }>;
  /** Where it sends controller requests: a slot name. */
  controllerSlot: string | undefined;
  nextRequestId: number;
  /** Requests unanswered, with when they went. */
  requests: Map<number, RequestKind & { sentMs: number }>;
  mismatch: ClusterIdMismatchError | undefined;
  wasLeaderOf: number;
}

const emptyCoverage = (): ClusterCoverage => ({
  bootstraps: 0, registrations: 0, elections: 0, tabsClosed: 0, tabsReopened: 0, storageLost: 0, partitions: 0, topicsAcked: 0,
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
export function runClusterSeed(seed: number, options: { trace?: boolean } = {}): ClusterSeedReport {
  return new ClusterSimulation(seed, options.trace === true).run();
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
  /** Member id → slot name: the directory (endpoints in the image, the relay's peer ids). */
  private readonly memberSlot = new Map<string, string>();
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

  constructor(readonly seed: number, trace: boolean) {
    this.prng = new Prng(seed);
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
      persisted: {},
      run: 0,
      open: false,
      executor: undefined,
      controller: undefined,
      controllerInput: undefined,
      raft: undefined,
      helloRounds: 0,
      peers: new Map(),
      controllerSlot: undefined,
      nextRequestId: 1,
      requests: new Map(),
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
    return new SimDisk((snapshot) => this.history(slot.persisted.clusterId!).committedChains.slice(0, snapshot.index));
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
      clusters: new Set(this.slots.map((s) => s.persisted.clusterId).filter(Boolean)).size,
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
    const r = s.raft;
    const image = s.controller?.image;
    return `${s.persisted.clusterId ?? 'no cluster'} broker ${s.persisted.brokerId ?? '-'} ${r ? `${r.role} t${r.term} commit=${r.commit} voters=${r.membership.voters.join(',')} learners=${r.membership.learners.join(',') || '-'}` : ''}` +
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

  private every(slot: Slot, intervalMs: number, fn: () => void): void {
    const clock = this.clockOf(slot);
    const loop = () => {
      clock.after(intervalMs, loop);
      fn();
    };
    clock.after(this.prng.int(1, intervalMs), loop);
  }

  private openSlot(slot: Slot): void {
    if (slot.open) return;
    slot.open = true;
    slot.helloRounds = 0;
    slot.peers.clear();
    slot.requests.clear();
    slot.controllerSlot = undefined;
    this.trace(() => `${slot.name} OPEN (${slot.incarnation}${slot.persisted.brokerId ? `, broker ${slot.persisted.brokerId}` : ''})`);
    this.every(slot, HELLO_MS, () => this.hello(slot));
    this.every(slot, BROKER_HEARTBEAT_MS, () => this.heartbeat(slot));
    if (slot.persisted.brokerId !== undefined) this.startMember(slot);
  }

  /** The tab closes (its unsynced writes may be lost); tabs of its device learn it at once (the slot lock). */
  private closeSlot(slot: Slot, storageLost: boolean): void {
    if (!slot.open) return;
    slot.executor?.stop();
    slot.executor = undefined;
    slot.controller = undefined;
    slot.controllerInput = undefined;
    slot.raft = undefined;
    slot.open = false;
    slot.run++;
    const lost = slot.disk.crash(this.prng.int(0, slot.disk.unsyncedCount()));
    const { brokerId, clusterId } = slot.persisted;
    if (clusterId !== undefined && brokerId !== undefined) this.observe(clusterId, { kind: 'crash', node: memberId(brokerId, slot.incarnation) });
    this.coverage.tabsClosed++;
    this.trace(() => `${slot.name} CLOSED (lost ${lost} unsynced writes)${storageLost ? ', storage lost' : ''}`);
    if (brokerId !== undefined && clusterId !== undefined) {
      for (const other of this.slots) {
        if (other.open && other.deviceId === slot.deviceId && other.persisted.clusterId === clusterId) {
          this.request(other, { clusterId, type: 'brokerGone', brokerId, incarnation: slot.incarnation }, { kind: 'gone' });
        }
      }
    }
    if (storageLost) {
      this.coverage.storageLost++;
      slot.incarnation = this.incarnation();
      slot.persisted = {};
      slot.disk = this.newDisk(slot);
    }
  }

  /** Runs the broker's metadata group member and controller on an executor. */
  private startMember(slot: Slot): void {
    const { clusterId, brokerId, bootstrap } = slot.persisted;
    const self = memberId(brokerId!, slot.incarnation);
    this.memberSlot.set(self, slot.name);
    const run = slot.run;
    const clock = this.clockOf(slot);
    const committer = createGroupCommitter(
      {
        write: (_writes, committed) => this.queue.push(this.nowMs + this.prng.int(0, 4), { kind: 'sync', slot, run, committed }),
      },
      clock,
    );
    const proposals = new Map<Input, number>();
    const executor = new Executor({
      nodeId: self,
      clock,
      committer,
      sendFrame: (to, messages) => {
        const target = this.memberSlot.get(to);
        if (target !== undefined) this.send(slot.name, target, { kind: 'raft', clusterId: clusterId!, messages });
        return true;
      },
      tickMs: TICK_MS,
      heartbeatFlushTicks: HEARTBEAT_TICKS,
      observer: { raftStepped: (_group, input, before, after, effects) => this.stepped(slot, clusterId!, self, input, before, after, effects) },
    });
    slot.executor = executor;
    let controller = createController({
      self,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      maxReplicationFactor: 3,
      maxPartitions: 16,
      snapshotEveryRecords: SNAPSHOT_EVERY_RECORDS,
      validateConfigs: () => undefined,
      ...(bootstrap === true && { bootstrap: { clusterId: clusterId!, clusterName: CLUSTER_NAME, deviceId: slot.deviceId, endpoints: [slot.name] } }),
    });
    const carry = (effects: readonly ControllerEffect[]) => {
      for (const effect of effects) {
        switch (effect.type) {
          case 'propose':
          case 'changeMembership': {
            const input: Input = effect.type === 'propose' ? { type: 'propose', payloads: effect.payloads } : { type: 'changeMembership', membership: effect.membership };
            proposals.set(input, effect.proposalId);
            executor.input(GROUP, input);
            if (effect.type === 'changeMembership') this.coverage.membershipChanges++;
            break;
          }
          case 'compact':
            this.coverage.compactions++;
            executor.input(GROUP, { type: 'compact', index: effect.index, data: effect.data });
            break;
          case 'reply':
            this.send(slot.name, effect.to, { kind: 'reply', requestId: effect.requestId, reply: effect.reply, member: self });
            break;
          case 'brokerFenced':
            this.coverage.fenced++;
            break;
          case 'brokerUnfenced':
            this.coverage.unfenced++;
            break;
          case 'recordRefused':
            this.fail({ checker: 'controller', message: `${self} applied a committed record its image refused at ${effect.index}: ${effect.error.message}` });
            break;
        }
      }
    };
    const host = executor.addMachine<ControllerInput>({
      step: (input) => {
        const result = stepController(controller, input);
        controller = result.state;
        slot.controller = controller;
        carry(result.effects);
        if (isActive(controller)) {
          const key = `${clusterId}/${controller.term}`;
          const active = this.activeOf.get(key);
          if (active === undefined) this.activeOf.set(key, self);
          else if (active !== self) this.fail({ checker: 'one active controller', message: `${active} and ${self} both active in epoch ${controller.term} of ${clusterId}` });
        }
      },
      tick: (nowMs) => ({ type: 'tick', nowMs }),
      tickMs: CONTROLLER_TICK_MS,
    });
    slot.controller = controller;
    slot.controllerInput = (input) => host.input(input);
    executor.addRaftGroup(GROUP, {
      config: {
        id: self,
        voters: bootstrap === true ? [memberId(1, slot.incarnation)] : [],
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: HEARTBEAT_TICKS,
        maxInflightAppends: 4,
        maxEntriesPerAppend: 16,
        maxBytesPerAppend: 4096,
        maxUncommittedEntries: 256,
        maxApplyBytesPerStep: 1 << 16,
        maxPendingReads: 4,
        seed: this.prng.next(),
      },
      store: slot.disk,
      handler: {
        effect: (effect, input) => {
          switch (effect.type) {
            case 'apply':
              host.input({ type: 'apply', entries: effect.entries });
              return;
            case 'restore':
              host.input({ type: 'restore', index: effect.snapshot.index, data: effect.snapshot.data });
              return;
            case 'proposed':
            case 'proposalRejected': {
              const proposalId = proposals.get(input);
              proposals.delete(input);
              if (proposalId === undefined) return;
              host.input(effect.type === 'proposed' ? { type: 'proposed', proposalId, lastIndex: effect.lastIndex, term: effect.term } : { type: 'proposalRejected', proposalId, error: effect.error });
              return;
            }
            default:
              return;
          }
        },
        stopped: (error) => this.fail({ checker: 'core assertion', message: `${self}: ${(error as Error).message}` }),
      },
    });
    slot.raft = executor.raftState(GROUP);
    this.observe(clusterId!, { kind: 'start', node: self });
    // A restart: the state machine starts from the snapshot on disk.
    const snapshot = slot.disk.snapshot();
    if (snapshot !== undefined) {
      host.input({ type: 'restore', index: snapshot.index, data: snapshot.data });
      this.observe(clusterId!, { kind: 'restore', node: self, index: snapshot.index, chain: this.history(clusterId!).committedChains[snapshot.index - 1]! });
    }
    host.input(raftInput(slot.raft!));
    this.clockOf(slot).after(this.prng.int(1, TICK_MS), () => executor.start());
    // Back with its storage: it registers again under its id (same member), then heartbeats.
    this.register(slot);
  }

  /** Every raft step: the checkers' view, and the controller told of role and membership changes. */
  private stepped(slot: Slot, clusterId: string, self: string, input: Input, before: RaftState, after: RaftState, effects: readonly Effect[]): void {
    slot.raft = after;
    this.coverage.steps++;
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
    if (before.role !== after.role || before.term !== after.term || before.leader !== after.leader || before.membership !== after.membership || input.type === 'changeMembership') {
      slot.controllerInput?.(raftInput(after));
    }
  }

  // --- brokers' requests ---------------------------------------------------------------

  /** Sends a controller request from `slot` to where it believes the active controller is. */
  private request(slot: Slot, request: ControllerRequest, what: RequestKind, to?: string): void {
    const target = to ?? this.controllerTarget(slot);
    if (target === undefined) return;
    const requestId = slot.nextRequestId++;
    slot.requests.set(requestId, { ...what, sentMs: this.nowMs });
    this.trace(() => `${slot.name} → ${target} ${request.type}`);
    this.send(slot.name, target, { kind: 'request', requestId, request });
  }

  /**
   * Itself when it leads; else who answered last (or the hint it gave), else the raft
   * leader it knows, else a peer of its cluster. The hint comes before the raft leader: a
   * broker fenced and dropped from the group hears no leader, and its raft state names one
   * long gone. A target that does not answer within REQUEST_TIMEOUT_MS is forgotten.
   */
  private controllerTarget(slot: Slot): string | undefined {
    for (const [id, request] of slot.requests) {
      if (this.nowMs - request.sentMs < REQUEST_TIMEOUT_MS) continue;
      slot.requests.delete(id);
      slot.controllerSlot = undefined;
    }
    if (slot.raft?.role === 'leader') return slot.name;
    if (slot.controllerSlot !== undefined) return slot.controllerSlot;
    const leader = slot.raft?.leader;
    if (leader !== undefined && this.memberSlot.has(leader)) return this.memberSlot.get(leader);
    const peers = [...slot.peers].filter(([, p]) => p.cluster?.clusterId === slot.persisted.clusterId);
    return peers.length > 0 ? this.prng.pick(peers)[0] : undefined;
  }

  private register(slot: Slot): void {
    const clusterId = slot.persisted.clusterId!;
    this.request(
      slot,
      { type: 'register', clusterId, brokerId: slot.persisted.brokerId, incarnation: slot.incarnation, deviceId: slot.deviceId, endpoints: [slot.name] },
      { kind: 'register', clusterId },
    );
  }

  private heartbeat(slot: Slot): void {
    const { clusterId, brokerId } = slot.persisted;
    if (clusterId === undefined) return;
    if (brokerId === undefined) return this.register(slot);
    this.request(slot, { type: 'heartbeat', clusterId, brokerId, incarnation: slot.incarnation }, { kind: 'heartbeat' });
  }

  /** Discovery: every hello round it greets every slot; a broker without a cluster decides by the formation rule. */
  private hello(slot: Slot): void {
    slot.helloRounds++;
    for (const other of this.slots) if (other !== slot) this.send(slot.name, other.name, this.helloOf(slot, false));
    if (slot.persisted.clusterId !== undefined || slot.helloRounds < FORMATION_ROUNDS) return;
    const fresh = [...slot.peers.values()].filter((p) => p.round >= slot.helloRounds - PEER_FRESH_ROUNDS);
    const decision = decideFormation(slot.incarnation, fresh);
    if (decision.kind === 'bootstrap') {
      const clusterId = `c${this.nextClusterId++}`;
      slot.persisted = { clusterId, brokerId: 1, bootstrap: true };
      this.coverage.bootstraps++;
      this.trace(() => `${slot.name} BOOTSTRAPS ${clusterId}`);
      this.startMember(slot);
    } else if (decision.kind === 'join') {
      // Through a peer that names the controller, else any peer of that cluster (it hints).
      const { clusterId } = decision;
      const members = [...slot.peers].filter(([, p]) => p.round >= slot.helloRounds - PEER_FRESH_ROUNDS && p.cluster?.clusterId === clusterId);
      const naming = members.filter(([, p]) => p.controller !== undefined);
      const [name, peer] = this.prng.pick(naming.length > 0 ? naming : members);
      slot.controllerSlot = peer.controller ?? name;
      this.request(slot, { type: 'register', clusterId, brokerId: undefined, incarnation: slot.incarnation, deviceId: slot.deviceId, endpoints: [slot.name] }, { kind: 'register', clusterId });
    }
  }

  private helloOf(slot: Slot, answer: boolean): Wire {
    const image = slot.controller?.image;
    const leader = slot.raft?.leader;
    return { kind: 'hello', incarnation: slot.incarnation, cluster: image && summary(image), controller: leader && this.memberSlot.get(leader), answer };
  }

  private receive(slot: Slot, from: string, wire: Wire): void {
    switch (wire.kind) {
      case 'raft': {
        const executor = slot.executor;
        const image = slot.controller?.image;
        const clusterId = slot.persisted.clusterId;
        if (executor === undefined || image === undefined || clusterId === undefined) return;
        const admitted = wire.messages.filter(({ message }) => {
          const refused = checkPeerMessage(image, clusterId, wire.clusterId, message.from);
          if (refused !== undefined) this.coverage.peerMessagesRefused++;
          return refused === undefined;
        });
        if (admitted.length > 0) executor.receive(admitted[0]!.message.from, admitted);
        return;
      }
      case 'hello': {
        slot.peers.set(from, { incarnation: wire.incarnation, ...(wire.cluster && { cluster: wire.cluster }), round: slot.helloRounds, controller: wire.controller });
        if (!wire.answer) this.send(slot.name, from, this.helloOf(slot, true));
        const image = slot.controller?.image;
        const ours = image && summary(image);
        if (wire.cluster !== undefined && ours !== undefined) {
          const mismatch = clustersMet(ours, wire.cluster);
          if (mismatch !== undefined && slot.mismatch?.otherClusterId !== mismatch.otherClusterId) {
            slot.mismatch = mismatch;
            this.coverage.mismatchesReported++;
            this.trace(() => `${slot.name} reports ${mismatch.code}: ${mismatch.clusterId} < ${mismatch.otherClusterId}`);
          }
        }
        return;
      }
      case 'request': {
        if (slot.controllerInput === undefined) {
          // No broker here yet (a tab still forming, or its storage just lost): not the controller, no hint.
          const error = new NotControllerError(`${slot.name} runs no broker of a cluster`);
          return this.send(slot.name, from, { kind: 'reply', requestId: wire.requestId, reply: { type: 'error', controllerEpoch: 0, error }, member: '' });
        }
        slot.controllerInput({ type: 'request', requestId: wire.requestId, from, request: wire.request });
        return;
      }
      case 'reply':
        return this.answered(slot, wire);
    }
  }

  private answered(slot: Slot, wire: Extract<Wire, { kind: 'reply' }>): void {
    const what = slot.requests.get(wire.requestId);
    if (what === undefined) return;
    slot.requests.delete(wire.requestId);
    const reply = wire.reply;
    this.trace(() => `${slot.name} ← ${wire.member} ${reply.type === 'error' ? `${reply.error.code} ${(reply.error as NotControllerError).leaderHint ?? ''}` : reply.type} e${reply.controllerEpoch}`);
    if (reply.type === 'error' && reply.error instanceof NotControllerError) {
      // Not an answer of a controller (its epoch is only the sender's term): follow the hint.
      slot.controllerSlot = reply.error.leaderHint === undefined ? undefined : this.memberSlot.get(reply.error.leaderHint);
      return;
    }
    if (reply.type === 'error' && reply.error.code === 'INCONSISTENT_CLUSTER_ID') {
      // Another cluster's broker (the client asked any tab): it refused and applied nothing.
      this.coverage.otherClusterRefused++;
      slot.controllerSlot = undefined;
      return;
    }
    // The answer of an active controller: refused from a stale or forged epoch, and the
    // next request goes to the raft leader this broker knows.
    if (checkControllerEpoch(slot.raft ?? { term: 0, leader: undefined }, reply.controllerEpoch, wire.member) !== undefined) {
      this.coverage.staleRepliesRefused++;
      slot.controllerSlot = undefined;
      return;
    }
    if (reply.type === 'error') return;
    slot.controllerSlot = this.memberSlot.get(wire.member);
    if (reply.type === 'register' && what.kind === 'register' && slot.persisted.brokerId === undefined) {
      const { clusterId } = what;
      slot.persisted = { clusterId, brokerId: reply.brokerId };
      this.coverage.registrations++;
      this.trace(() => `${slot.name} REGISTERED as broker ${reply.brokerId} of ${clusterId}`);
      this.startMember(slot);
      return;
    }
    if (reply.type === 'topics' && what.kind === 'client') {
      for (const result of reply.results) {
        if (result.error === undefined && slot.persisted.clusterId !== undefined) {
          this.history(slot.persisted.clusterId).acked.add(result.topic);
          this.coverage.topicsAcked++;
        }
      }
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
    switch (kind) {
      case 'none':
        return;
      case 'close':
      case 'close-controller':
      case 'storage-lost': {
        const controller = open.find((s) => s.controller !== undefined && isActive(s.controller));
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
        const controller = open.find((s) => s.controller !== undefined && isActive(s.controller))?.name;
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
    const { brokerId, clusterId } = slot.persisted;
    if (brokerId === undefined) return true;
    const self = memberId(brokerId, slot.incarnation);
    const views = this.slots
      .filter((s) => s.persisted.clusterId === clusterId)
      .flatMap((s) => [s.raft?.membership, s.disk.memberships().at(-1)?.membership ?? s.disk.snapshot()?.membership])
      .filter((m) => m !== undefined && (m.voters.includes(self) || m.learners.includes(self)));
    return views.length > 0 && views.every((m) => m!.voters.includes(self) && m!.voters.length >= 3);
  }

  /** Admin requests now and then, from a random registered broker: topics with fresh names. */
  private client(): void {
    if (this.healed) return;
    this.queue.push(this.nowMs + this.prng.int(30, 150), { kind: 'client' });
    const ready = this.slots.filter((s) => s.open && s.persisted.brokerId !== undefined);
    if (ready.length === 0) return;
    const slot = this.prng.pick(ready);
    const topic = `t${this.nextTopic++}`;
    // Now and then to any tab: maybe not the controller, maybe another cluster's (which must refuse it).
    const to = this.prng.chance(0.15) ? this.prng.pick(this.slots).name : undefined;
    this.request(slot, { clusterId: slot.persisted.clusterId!, type: 'createTopics', topics: [{ name: topic, numPartitions: this.prng.int(1, 3) }] }, { kind: 'client' }, to);
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
      const clusterId = slot.persisted.clusterId;
      if (clusterId !== undefined) clusters.set(clusterId, [...(clusters.get(clusterId) ?? []), slot]);
    }
    let done = this.slots.every((s) => s.persisted.brokerId !== undefined && s.controller !== undefined);
    for (const [clusterId, slots] of clusters) {
      if (!done) break;
      const active = slots.find((s) => s.controller !== undefined && isActive(s.controller));
      if (active === undefined) {
        done = false;
        break;
      }
      const probe = this.probes.get(clusterId);
      if (probe === undefined || (!active.controller!.image.topicByName(probe) && this.prng.chance(0.05))) {
        const name = probe ?? `probe-${clusterId}`;
        this.probes.set(clusterId, name);
        active.controllerInput!({ type: 'request', requestId: 0, from: active.name, request: { clusterId, type: 'createTopics', topics: [{ name }] } });
      }
      const image = active.controller!.image;
      const membership = active.raft!.membership;
      const live = image.brokers().filter((b) => !b.fenced);
      const members = slots.map((s) => memberId(s.persisted.brokerId!, s.incarnation));
      // Cheap conditions first: this runs after every event once healed.
      done =
        image.topicByName(this.probes.get(clusterId)!) !== undefined &&
        slots.every((s) => s.controller!.image.recordsApplied === image.recordsApplied) &&
        members.every((id) => membership.voters.includes(id) || membership.learners.includes(id)) &&
        slots.every((s) => image.broker(s.persisted.brokerId!)?.fenced === false) &&
        // The voters at their target; a fenced voter may stay among three (membership.ts says why).
        membership.voters.filter((id) => members.includes(id)).length === targetVoters(live.length) &&
        nextMembership(image, membership, memberId(active.persisted.brokerId!, active.incarnation)) === undefined &&
        slots.every((s) => s.controller!.image.fingerprint() === image.fingerprint());
    }
    if (done) return this.finish(nowTicks, clusters);
    const violation = this.converge.check(nowTicks, false);
    if (violation !== undefined) this.fail(violation);
  }

  /** Converged: acknowledged topics are all there, and clusters sharing the name were reported. */
  private finish(nowTicks: number, clusters: Map<string, Slot[]>): void {
    this.convergeTicks = Math.ceil(nowTicks - this.faultEndMs / TICK_MS);
    for (const [clusterId, slots] of clusters) {
      const image = slots[0]!.controller!.image;
      for (const topic of this.history(clusterId).acked) {
        if (image.topicByName(topic) === undefined) return this.fail({ checker: 'acknowledged topic', message: `${topic}, acknowledged by ${clusterId}, is not in its image` });
      }
    }
    const summaries = [...clusters].map(([clusterId, slots]) => ({ clusterId, slots, summary: summary(slots[0]!.controller!.image)! }));
    summaries.sort((a, b) => compareClusters(a.summary, b.summary));
    for (const smaller of summaries.slice(0, -1)) {
      if (!smaller.slots.some((s) => s.mismatch !== undefined)) {
        // Hellos go every HELLO_MS: give them a few rounds after convergence before judging.
        if (this.nowMs - this.faultEndMs < (this.converge.boundTicks * TICK_MS) / 2) return;
        return this.fail({ checker: 'cluster id mismatch', message: `clusters ${summaries.map((s) => s.clusterId).join(', ')} share the name; ${smaller.clusterId} reported nothing` });
      }
    }
    this.finished = true;
  }
}

const summary = (image: MetadataImage): ClusterSummary | undefined =>
  image.clusterId === undefined ? undefined : { clusterName: image.clusterName!, clusterId: image.clusterId, brokers: image.brokers().length, records: image.recordsApplied };

const raftInput = (state: RaftState): ControllerInput => ({
  type: 'raft',
  role: state.role,
  term: state.term,
  leader: state.leader,
  membership: state.membership,
  lastIndex: lastIndexOf(state),
});
