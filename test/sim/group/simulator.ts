import type { Cancel, Clock } from '../../../src/clock';
import {
  committedOffsets,
  createCoordinator,
  describeGroup,
  type AssignorName,
  type CoordinatorState,
  type GroupDescription,
  type GroupEffect,
  type GroupInput,
  type JoinReply,
  type SyncReply,
} from '../../../src/group';
import { createGroupCommitter } from '../../../src/log';
import { Executor, GROUP_TICK_MS, GroupRuntime, storedOffsets, type GroupRequest } from '../../../src/node';
import type { StorageWrite } from '../../../src/storage';
import { Prng } from '../prng';

// A deterministic simulation of one consumer group: one coordinator core, run by the
// node's group runtime on the node's executor (src/node/groups.ts, executor.ts) with a
// simulated clock and a simulated store behind its group commit, N consumers
// with their own timers (heartbeat, processing, auto-commit; eager: a consumer told to
// rejoin commits and gives up all its partitions first), a network that delays messages
// (FIFO per consumer, as over a MessagePort, or fully reordering, as over separate
// streams), a store whose offset writes are slow and sometimes fail, and a fault
// schedule drawn from the seed: crashes, restarts, leaves, freezes (a frozen tab that
// outlives its session: a zombie), new partitions, admin offset resets and group deletes, tab reloads and
// worker restarts (the coordinator restarts from the store). Everything is one queue
// ordered by (time, sequence): a seed replays exactly.
//
// Invariants, checked after every step:
// - one owner per generation: a sync reply never gives a partition of a generation to two members;
// - exclusive ownership: among live consumers that are members of the group, no partition
//   is held by two at once (a zombie that lost its membership is exempt: it is fenced instead);
// - stable coverage: in a Stable group every subscribed partition has exactly one owner, subscribed to it;
// - fencing: offsets are written only for a commit of a current member in the current
//   generation, or an admin commit while the group has no members;
// - committed offsets never go back, except by an admin reset or a member's own commits
//   of one generation overtaking each other on a reordering network; they vanish only when
//   a delete of the group (while it has no members) is durable, and a deleted group does
//   not come back from the store;
// - liveness: within LIVENESS_BOUND_TICKS of the end of the faults, the group is Stable
//   with exactly the live consumers, each holding its share of the current generation.

const GROUP = 'g';
const TOPICS = ['a', 'b'] as const;
const COORDINATOR_TICK_MS = GROUP_TICK_MS;
const PROCESS_INTERVAL_MS = 50;
const PARTITIONS_MAX = 8;
/**
 * After the faults stop, the group must be Stable with exactly the live consumers, each
 * holding its assignment, within this many coordinator ticks: the longest session (3 s)
 * for the dead to expire, plus the longest rebalance timeout (6 s), plus slack.
 */
export const LIVENESS_BOUND_TICKS = 120;
const MAX_EVENTS = 200_000;
/** Accepted commits remembered per partition to attribute a committed value to its writer. */
const PROPOSED_HISTORY_MAX = 64;
/** How often a consumer told to rejoin is in the middle of a long batch (before the heal). */
const SLOW_BATCH_CHANCE = 0.2;
/**
 * A rebalance ends by the largest rebalance timeout (6 s here) after it began, plus one
 * tick to notice, plus the offset writes it waits for.
 */
const REBALANCE_BOUND_MS = 6_000 + COORDINATOR_TICK_MS + 500;
const TRACE_LINES = 80;

/** What one seed exercised. */
export interface GroupCoverage {
  consumers: number;
  generations: number;
  crashes: number;
  pauses: number;
  leaves: number;
  restarts: number;
  expired: number;
  commitsAcked: number;
  staleCommitsRefused: number;
  unknownMemberCommitsRefused: number;
  writeFailures: number;
  topicGrowths: number;
  reloads: number;
  workerRestarts: number;
  adminResets: number;
  adminRefused: number;
  /** Deletes of the group acknowledged, and refused because it had members. */
  groupDeletes: number;
  deletesRefused: number;
  reordered: number;
  slowBatches: number;
  slowMembersRemoved: number;
}

export interface GroupViolation {
  checker: string;
  message: string;
  atMs: number;
}

export interface GroupSeedReport {
  seed: number;
  coverage: GroupCoverage;
  /** Coordinator ticks from the end of the faults to a stable group of the live consumers. */
  livenessTicks: number;
  violation?: GroupViolation;
  trace?: string[];
}

const emptyCoverage = (): GroupCoverage => ({
  consumers: 0, generations: 0, crashes: 0, pauses: 0, leaves: 0, restarts: 0, expired: 0, commitsAcked: 0, staleCommitsRefused: 0,
  unknownMemberCommitsRefused: 0, writeFailures: 0, topicGrowths: 0, reloads: 0, workerRestarts: 0, adminResets: 0, adminRefused: 0, groupDeletes: 0, deletesRefused: 0, reordered: 0, slowBatches: 0, slowMembersRemoved: 0,
});

/** Adds `b` into `a`, field by field. @example addGroupCoverage(total, report.coverage) */
export function addGroupCoverage(a: GroupCoverage, b: GroupCoverage): void {
  for (const key of Object.keys(a) as Array<keyof GroupCoverage>) a[key] += b[key];
}

type Phase = 'joining' | 'syncing' | 'stable' | 'dead' | 'left';

interface Consumer {
  readonly name: string;
  /** Bumped by a crash or a leave: timers and replies of an older life are void. */
  life: number;
  /** Bumped on every phase change: replies to requests of an older epoch are void. */
  epoch: number;
  phase: Phase;
  memberId: string | null;
  generationId: number;
  /** Partitions held ("a/0") → next offset to process. */
  holding: Map<string, number>;
  /** A frozen consumer does nothing until then (events wait for it). */
  frozenUntilMs: number;
  /** Told to rejoin in the middle of a long batch: it keeps heartbeating and rejoins when the batch ends. */
  finishingBatch: boolean;
  readonly topics: string[];
  readonly assignors: AssignorName[];
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly commitIntervalMs: number;
}

/** A request as a consumer builds it; the runtime adds its id and the clock at arrival. */
type RequestBody = GroupRequest;

type SimEvent =
  /** A timer (or deferred callback) of the coordinator's clock; void after a reload or once cancelled. */
  | { kind: 'timer'; incarnation: number; timer: { fn: () => void; cancelled: boolean } }
  | { kind: 'arrive'; requestId: number; request: RequestBody; sentAtMs: number; incarnation: number }
  | { kind: 'reply'; requestId: number; effect: Extract<GroupEffect, { type: 'reply' }> }
  | { kind: 'stored'; fails: boolean; incarnation: number; committed: () => void; failed: (error: unknown) => void }
  | { kind: 'heartbeat' | 'process' | 'autoCommit'; consumer: Consumer; life: number }
  | { kind: 'fault' }
  | { kind: 'adminReset' }
  | { kind: 'adminDelete' }
  | { kind: 'batchDone'; consumer: Consumer; life: number; epoch: number }
  | { kind: 'restart'; consumer: Consumer };

/** Where a request came from, to route its reply. */
interface Sent {
  consumer: Consumer | undefined;
  life: number;
  epoch: number;
  body: RequestBody;
}

/**
 * Runs one seed: faults until a seed-drawn time, then until the group is stable with
 * every live consumer or the liveness bound passes. Invariants are checked after every step.
 * @example const report = runGroupSeed(7); if (report.violation) console.log(report.trace);
 */
export function runGroupSeed(seed: number, options: { trace?: boolean } = {}): GroupSeedReport {
  return new GroupSimulation(seed, options.trace === true).run();
}

class GroupSimulation {
  private readonly prng: Prng;
  /** Pending events; few at a time, so a linear scan for the earliest is enough. */
  private readonly events: Array<{ atMs: number; seq: number; event: SimEvent }> = [];
  private seq = 0;
  private nowMs = 0;
  private executor!: Executor;
  private runtime!: GroupRuntime;
  /** The coordinator's state after its latest step (the runtime's, seen through its observer). */
  private coordinator: CoordinatorState = createCoordinator();
  private readonly partitions: Record<string, number> = {};
  private readonly consumers: Consumer[] = [];
  private readonly sent = new Map<number, Sent>();
  private nextRequestId = 1;
  private readonly coverage = emptyCoverage();
  private readonly faultEndMs: number;
  private readonly maxDelayMs: number;
  /**
   * FIFO: each consumer's requests and replies keep their order, as over a MessagePort
   * (Comlink) or one TCP connection; only different consumers' messages interleave.
   * Otherwise any message may overtake any other (requests relayed over separate streams).
   */
  private readonly fifo: boolean;
  /** One client id shared by every consumer (as KafkaJS apps often do), or each its own name. */
  private readonly clientId: string | undefined;
  /** FIFO mode: when the last message on each channel arrives. */
  private readonly channelLastMs = new Map<string, number>();
  private readonly writeFailRate: number;
  /** When the store finishes its last queued write: writes complete in order. */
  private storeDoneMs = 0;
  /** Bumped when a delete of the group is durable: a group created again restarts its generations. */
  private groupLife = 0;
  /** Generation (of a coordinator incarnation and group life) → partition → the member that a sync reply gave it to. */
  private readonly owners = new Map<string, Map<string, string>>();
  /** Bumped when the tab reloads: the coordinator restarts from the store. */
  private incarnation = 0;
  /** What the store holds: node-level values, as `Storage.readValue` reads them. */
  private readonly durable = new Map<string, unknown>();
  /** The transaction handed to the store and not yet completed (the group commit has one at a time). */
  private inFlight: StorageWrite[] | undefined;
  /** Committed offsets and who committed them ("member@generation" or "admin"). */
  private readonly committed = new Map<string, { offset: number; writer: string }>();
  /** Offsets of accepted commits, latest last (bounded), with their writer. */
  private readonly proposed = new Map<string, Array<{ offset: number; writer: string }>>();
  private lastSendAtMs = 0;
  private violation: GroupViolation | undefined;
  private livenessTicks = -1;
  /** A delete of the group is durable and no write of it since: the store must not bring it back. */
  private deletedDurably = false;
  /** Whether the coordinator held the group after the last step (the state is updated in place: there is no "before" to read). */
  private groupExists = false;
  private healed = false;
  private ticksSinceHeal = 0;
  /** When the group last entered PreparingRebalance. */
  private rebalanceSinceMs: number | undefined;
  private readonly traceLines: string[] | undefined;

  constructor(readonly seed: number, trace: boolean) {
    this.prng = new Prng(seed);
    this.traceLines = trace ? [] : undefined;
    this.faultEndMs = this.prng.int(2_000, 6_000);
    this.maxDelayMs = this.prng.pick([1, 10, 40, 80]);
    this.fifo = this.prng.chance(0.5);
    this.clientId = this.prng.chance(0.5) ? 'app' : undefined;
    this.writeFailRate = this.prng.pick([0, 0, 0.05, 0.2]);
    for (const topic of TOPICS) this.partitions[topic] = this.prng.int(1, 4);
    const count = this.prng.int(1, 5);
    for (let i = 0; i < count; i++) this.addConsumer();
  }

  run(): GroupSeedReport {
    this.startCoordinator();
    this.push(this.prng.int(100, 400), { kind: 'fault' });
    for (const consumer of this.consumers) this.push(this.prng.int(0, 200), { kind: 'restart', consumer });
    for (let n = 0; n < MAX_EVENTS && this.violation === undefined && this.livenessTicks < 0; n++) {
      const next = this.pop();
      if (next === undefined) break;
      this.nowMs = next.atMs;
      try {
        this.handle(next.event);
      } catch (error) {
        // A core assertion is a violation like any other: reported with its seed and trace.
        this.fail('core assertion', error instanceof Error ? error.message : String(error));
      }
    }
    if (this.violation === undefined && this.livenessTicks < 0) this.fail('simulator', 'event budget exhausted');
    return {
      seed: this.seed,
      coverage: this.coverage,
      livenessTicks: this.livenessTicks,
      ...(this.violation && { violation: this.violation }),
      ...(this.traceLines && { trace: this.traceLines.slice(-TRACE_LINES) }),
    };
  }

  // --- the event loop -------------------------------------------------------------

  private push(atMs: number, event: SimEvent): void {
    this.events.push({ atMs, seq: this.seq++, event });
  }

  private pop() {
    let best = -1;
    for (let i = 0; i < this.events.length; i++) {
      const e = this.events[i]!;
      const b = this.events[best];
      if (b === undefined || e.atMs < b.atMs || (e.atMs === b.atMs && e.seq < b.seq)) best = i;
    }
    return best < 0 ? undefined : this.events.splice(best, 1)[0];
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'timer':
        if (event.incarnation === this.incarnation && !event.timer.cancelled) event.timer.fn();
        return;
      case 'arrive':
        if (event.incarnation !== this.incarnation) return; // sent to the coordinator before its tab reloaded
        if (event.sentAtMs < this.lastSendAtMs) this.coverage.reordered++;
        this.lastSendAtMs = Math.max(this.lastSendAtMs, event.sentAtMs);
        this.runtime.submit(event.request, (effect) => {
          const to = this.sent.get(event.requestId);
          this.push(this.arrivalMs(`${to?.consumer?.name ?? 'admin'}:${to?.life ?? 0}:down`), { kind: 'reply', requestId: event.requestId, effect });
          this.trace(() => `  reply #${event.requestId} ${effect.ok ? `ok ${effect.value === undefined ? '' : JSON.stringify(effect.value)}` : effect.error}`);
        });
        return;
      case 'stored':
        if (event.incarnation !== this.incarnation) return;
        if (event.fails) {
          this.coverage.writeFailures++;
          this.inFlight = undefined;
          return event.failed(new Error('simulated write error'));
        }
        this.apply(this.inFlight!);
        this.inFlight = undefined;
        return event.committed();
      case 'reply':
        this.onReply(event.requestId, event.effect);
        return;
      case 'heartbeat':
      case 'process':
      case 'autoCommit':
        this.onTimer(event);
        return;
      case 'fault':
        this.fault();
        return;
      case 'adminReset':
        this.adminReset();
        return;
      case 'adminDelete':
        this.send(undefined, { type: 'deleteGroup', groupId: GROUP });
        return;
      case 'batchDone': {
        const { consumer } = event;
        if (consumer.life !== event.life || consumer.epoch !== event.epoch || !consumer.finishingBatch) return;
        if (consumer.frozenUntilMs > this.nowMs) return this.push(consumer.frozenUntilMs, event);
        return this.rejoin(consumer, true);
      }
      case 'restart':
        this.start(event.consumer);
        return;
    }
  }

  private trace(line: () => string): void {
    if (this.traceLines === undefined) return;
    this.traceLines.push(`${String(this.nowMs).padStart(6)}ms ${line()}`);
    if (this.traceLines.length > TRACE_LINES * 4) this.traceLines.splice(0, this.traceLines.length - TRACE_LINES);
  }

  private fail(checker: string, message: string): void {
    this.violation ??= { checker, message, atMs: this.nowMs };
    this.trace(() => `VIOLATION ${checker}: ${message}`);
  }

  // --- the coordinator and its store ------------------------------------------------

  /**
   * A coordinator incarnation: the node's group runtime on a new executor, over what the
   * store holds, with the simulated clock and a store that completes each transaction
   * after a small delay, in order, and fails some.
   */
  private startCoordinator(): void {
    const incarnation = this.incarnation;
    const schedule = (atMs: number, fn: () => void): Cancel => {
      const timer = { fn, cancelled: false };
      this.push(atMs, { kind: 'timer', incarnation, timer });
      return () => void (timer.cancelled = true);
    };
    const clock: Clock = {
      now: () => this.nowMs,
      monotonic: () => this.nowMs,
      after: (delayMs, fn) => schedule(this.nowMs + delayMs, fn),
      defer: (fn) => void schedule(this.nowMs, fn),
    };
    const committer = createGroupCommitter(
      {
        write: (writes, committed, failed) => {
          this.inFlight = writes;
          this.storeDoneMs = Math.max(this.storeDoneMs, this.nowMs) + this.prng.int(1, 30);
          this.push(this.storeDoneMs, { kind: 'stored', fails: this.prng.chance(this.writeFailRate), incarnation, committed, failed });
        },
      },
      clock,
    );
    this.executor = new Executor({ nodeId: 'coordinator', clock, committer, sendFrame: () => false, tickMs: COORDINATOR_TICK_MS, heartbeatFlushTicks: 0 });
    const stored = storedOffsets((key) => structuredClone(this.durable.get(key)));
    this.runtime = new GroupRuntime(this.executor, `i${incarnation}`, stored, { ...this.partitions }, (input, before, after, effects) =>
      this.stepped(input, before, after, effects),
    );
    this.executor.start();
  }

  /** A store transaction becomes durable: its node-level values are what a restarted coordinator reads. */
  private apply(writes: readonly StorageWrite[]): void {
    for (const write of writes) if (write.kind === 'putValue') this.durable.set(write.key, structuredClone(write.value));
  }

  /** Every coordinator step: the checkers' view. */
  private stepped(input: GroupInput, beforeState: CoordinatorState, after: CoordinatorState, effects: readonly GroupEffect[]): void {
    const before = describeGroup(beforeState, GROUP);
    this.coordinator = after;
    if (input.type !== 'tick' || effects.length > 0) this.trace(() => `coordinator ← ${describeInput(input)}`);
    for (const effect of effects) {
      if (effect.type !== 'persist') continue;
      this.checkFencing(input, before);
      this.trace(() => `  persist #${effect.requestId} ${effect.offsets.map((o) => `${o.topic}/${o.partition}@${o.offset}`).join(' ')}`);
    }
    this.checkCommittedOffsets(input);
    this.checkStableCoverage();
    if (input.type === 'tick' && this.healed) this.checkLiveness();
  }

  /** When a message sent now on `channel` arrives. */
  private arrivalMs(channel: string): number {
    const atMs = this.nowMs + this.prng.int(0, this.maxDelayMs);
    if (!this.fifo) return atMs;
    const arrival = Math.max(atMs, this.channelLastMs.get(channel) ?? 0);
    this.channelLastMs.set(channel, arrival);
    return arrival;
  }

  private send(consumer: Consumer | undefined, body: RequestBody): void {
    const requestId = this.nextRequestId++;
    this.sent.set(requestId, { consumer, life: consumer?.life ?? 0, epoch: consumer?.epoch ?? 0, body });
    this.push(this.arrivalMs(`${consumer?.name ?? 'admin'}:${consumer?.life ?? 0}:up`), { kind: 'arrive', requestId, request: body, sentAtMs: this.nowMs, incarnation: this.incarnation });
  }

  // --- consumers --------------------------------------------------------------------

  private addConsumer(): Consumer {
    const topics = this.prng.chance(0.6) ? [...TOPICS] : [this.prng.pick(TOPICS)];
    const sessionTimeoutMs = this.prng.int(1_000, 3_000);
    const consumer: Consumer = {
      name: `c${this.consumers.length + 1}`,
      life: 0,
      epoch: 0,
      phase: 'dead',
      memberId: null,
      generationId: -1,
      holding: new Map(),
      frozenUntilMs: 0,
      finishingBatch: false,
      topics,
      assignors: this.prng.chance(0.5) ? ['range', 'roundrobin'] : ['roundrobin', 'range'],
      sessionTimeoutMs,
      rebalanceTimeoutMs: this.prng.int(sessionTimeoutMs, 2 * sessionTimeoutMs),
      commitIntervalMs: this.prng.int(50, 500),
    };
    this.consumers.push(consumer);
    this.coverage.consumers++;
    return consumer;
  }

  /** A fresh consumer process: no member id, joins. */
  private start(consumer: Consumer): void {
    if (consumer.phase !== 'dead' && consumer.phase !== 'left') return;
    consumer.life++;
    consumer.memberId = null;
    consumer.generationId = -1;
    consumer.frozenUntilMs = 0;
    this.trace(() => `${consumer.name} starts (life ${consumer.life})`);
    this.push(this.nowMs + PROCESS_INTERVAL_MS, { kind: 'process', consumer, life: consumer.life });
    this.push(this.nowMs + consumer.commitIntervalMs, { kind: 'autoCommit', consumer, life: consumer.life });
    this.rejoin(consumer);
  }

  private enter(consumer: Consumer, phase: Phase): void {
    consumer.phase = phase;
    consumer.finishingBatch = false;
    consumer.epoch++;
  }

  /** Eager rebalance: give up every partition (committing progress first), then join. */
  private rejoin(consumer: Consumer, commitFirst = false): void {
    if (commitFirst) this.commitHolding(consumer);
    consumer.holding.clear();
    this.enter(consumer, 'joining');
    this.send(consumer, {
      type: 'join', groupId: GROUP, memberId: consumer.memberId, clientId: this.clientId ?? consumer.name, sessionTimeoutMs: consumer.sessionTimeoutMs,
      rebalanceTimeoutMs: consumer.rebalanceTimeoutMs, topics: consumer.topics, assignors: consumer.assignors,
    });
  }

  private commitHolding(consumer: Consumer): void {
    if (consumer.holding.size === 0 || consumer.memberId === null) return;
    const offsets = [...consumer.holding].map(([key, offset]) => {
      const [topic, partition] = key.split('/');
      return { topic: topic!, partition: Number(partition), offset, metadata: null };
    });
    this.send(consumer, { type: 'commit', groupId: GROUP, memberId: consumer.memberId, generationId: consumer.generationId, offsets });
  }

  private alive(consumer: Consumer): boolean {
    return consumer.phase !== 'dead' && consumer.phase !== 'left';
  }

  private onTimer(event: Extract<SimEvent, { kind: 'heartbeat' | 'process' | 'autoCommit' }>): void {
    const { consumer } = event;
    if (consumer.life !== event.life || !this.alive(consumer)) return;
    if (consumer.frozenUntilMs > this.nowMs) return this.push(consumer.frozenUntilMs, event);
    switch (event.kind) {
      case 'heartbeat':
        if (consumer.phase !== 'stable') return; // a new heartbeat timer starts with the next stable phase
        this.send(consumer, { type: 'heartbeat', groupId: GROUP, memberId: consumer.memberId!, generationId: consumer.generationId });
        this.push(this.nowMs + Math.floor(consumer.sessionTimeoutMs / 4), event);
        return;
      case 'process':
        for (const [key, offset] of consumer.holding) consumer.holding.set(key, offset + this.prng.int(0, 3));
        this.push(this.nowMs + PROCESS_INTERVAL_MS, event);
        return;
      case 'autoCommit':
        if (consumer.phase === 'stable') this.commitHolding(consumer);
        this.push(this.nowMs + consumer.commitIntervalMs, event);
        return;
    }
  }

  private onReply(requestId: number, effect: Extract<GroupEffect, { type: 'reply' }>): void {
    const sent = this.sent.get(requestId);
    if (sent === undefined) return this.fail('simulator', `reply to unknown request ${requestId}`);
    const { consumer, body } = sent;
    // A frozen consumer reads its replies when it wakes.
    if (consumer !== undefined && consumer.life === sent.life && consumer.frozenUntilMs > this.nowMs) return this.push(consumer.frozenUntilMs, { kind: 'reply', requestId, effect });
    this.sent.delete(requestId);
    if (body.type === 'deleteGroup') {
      if (effect.ok) this.coverage.groupDeletes++;
      else if (effect.error === 'NON_EMPTY_GROUP') this.coverage.deletesRefused++;
      return;
    }
    if (body.type === 'commit') {
      if (effect.ok) this.coverage.commitsAcked++;
      else if (effect.error === 'ILLEGAL_GENERATION') this.coverage.staleCommitsRefused++;
      else if (effect.error === 'UNKNOWN_MEMBER_ID') this.coverage.unknownMemberCommitsRefused++;
      else if (effect.error === 'NON_EMPTY_GROUP') this.coverage.adminRefused++;
      if (consumer === undefined && effect.ok) this.coverage.adminResets++;
      return; // progress is committed again by the next auto-commit; the heartbeat says when to rejoin
    }
    if (consumer === undefined || consumer.life !== sent.life || consumer.epoch !== sent.epoch || !this.alive(consumer)) return;
    this.trace(() => `${consumer.name} ← ${body.type} ${effect.ok ? 'ok' : effect.error}`);
    if (!effect.ok) {
      if (effect.error === 'UNKNOWN_MEMBER_ID') {
        if (consumer.phase === 'stable') this.coverage.expired++;
        if (consumer.finishingBatch) this.coverage.slowMembersRemoved++;
        consumer.memberId = null;
        return this.rejoin(consumer);
      }
      if (body.type === 'heartbeat' && effect.error === 'REBALANCE_IN_PROGRESS') {
        if (consumer.finishingBatch) return;
        if (!this.healed && this.prng.chance(SLOW_BATCH_CHANCE)) {
          // Past its rebalance timeout the rebalance goes on without it (Kafka's max.poll.interval.ms).
          consumer.finishingBatch = true;
          this.coverage.slowBatches++;
          const doneAtMs = this.nowMs + this.prng.int(0, 2 * consumer.rebalanceTimeoutMs);
          this.trace(() => `${consumer.name} finishes its batch first, until ${doneAtMs}ms`);
          return this.push(doneAtMs, { kind: 'batchDone', consumer, life: consumer.life, epoch: consumer.epoch });
        }
      }
      // A join while the group is being deleted is refused retriably: it joins again.
      if (body.type === 'join' && effect.error !== 'REBALANCE_IN_PROGRESS' && effect.error !== 'COORDINATOR_NOT_AVAILABLE') return this.fail('consumer', `join refused: ${effect.error}: ${effect.message}`);
      return this.rejoin(consumer, effect.error === 'REBALANCE_IN_PROGRESS');
    }
    if (body.type === 'join') {
      const reply = effect.value as JoinReply;
      consumer.memberId = reply.memberId;
      consumer.generationId = reply.generationId;
      this.coverage.generations = Math.max(this.coverage.generations, reply.generationId);
      this.enter(consumer, 'syncing');
      this.send(consumer, { type: 'sync', groupId: GROUP, memberId: reply.memberId, generationId: reply.generationId });
    } else if (body.type === 'sync') {
      this.enter(consumer, 'stable');
      this.takeAssignment(consumer, (effect.value as SyncReply).assignment);
      this.push(this.nowMs + Math.floor(consumer.sessionTimeoutMs / 4), { kind: 'heartbeat', consumer, life: consumer.life });
    }
  }

  /** Starts processing each assigned partition at its committed offset (the consumer's offset fetch). */
  private takeAssignment(consumer: Consumer, assignment: Record<string, number[]>): void {
    const committed = new Map(committedOffsets(this.coordinator, GROUP).map((o) => [`${o.topic}/${o.partition}`, o.offset]));
    const generation = `${this.incarnation}:${this.groupLife}:${consumer.generationId}`;
    const owners = this.owners.get(generation) ?? new Map<string, string>();
    this.owners.set(generation, owners);
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const key = `${topic}/${partition}`;
        const owner = owners.get(key);
        if (owner !== undefined && owner !== consumer.memberId) {
          this.fail('one owner per generation', `${key} given to ${owner} and ${consumer.memberId} in generation ${consumer.generationId}`);
        }
        owners.set(key, consumer.memberId!);
        consumer.holding.set(key, committed.get(key) ?? 0);
      }
    }
    this.trace(() => `${consumer.name} holds ${[...consumer.holding].map(([k, o]) => `${k}@${o}`).join(' ') || 'nothing'} in generation ${consumer.generationId}`);
    this.checkExclusiveHolding();
  }

  // --- faults -----------------------------------------------------------------------

  private fault(): void {
    if (this.nowMs >= this.faultEndMs) return this.heal();
    this.push(this.nowMs + this.prng.int(100, 600), { kind: 'fault' });
    const live = this.consumers.filter((c) => this.alive(c));
    const gone = this.consumers.filter((c) => !this.alive(c));
    const roll = this.prng.int(1, 100);
    if (roll <= 20 && live.length > 0) {
      const consumer = this.prng.pick(live);
      this.trace(() => `${consumer.name} CRASH`);
      this.coverage.crashes++;
      this.stop(consumer, 'dead');
      if (this.prng.chance(0.7)) this.push(this.nowMs + this.prng.int(0, 2_000), { kind: 'restart', consumer });
    } else if (roll <= 30 && live.length > 0) {
      // A frozen tab: it keeps its partitions and its state, and sends nothing for a while,
      // sometimes past its session: when it wakes up it is a zombie until told otherwise.
      const consumer = this.prng.pick(live);
      consumer.frozenUntilMs = this.nowMs + this.prng.int(200, 2 * consumer.sessionTimeoutMs);
      this.trace(() => `${consumer.name} FREEZES until ${consumer.frozenUntilMs}ms`);
      this.coverage.pauses++;
    } else if (roll <= 40 && live.length > 0) {
      this.leave(this.prng.pick(live));
    } else if (roll <= 55 && gone.length > 0) {
      this.coverage.restarts++;
      this.start(this.prng.pick(gone));
    } else if (roll <= 60 && this.consumers.length < 8) {
      this.start(this.addConsumer());
    } else if (roll <= 70) {
      const topic = this.prng.pick(TOPICS);
      if (this.partitions[topic]! < PARTITIONS_MAX) {
        this.partitions[topic]! += 1;
        this.coverage.topicGrowths++;
        this.runtime.topicsChanged({ ...this.partitions });
      }
    } else if (roll <= 78) {
      if (this.prng.chance(0.2)) this.send(undefined, { type: 'deleteGroup', groupId: GROUP });
      else this.adminReset();
    } else if (roll <= 87) {
      this.reload(live, this.prng.chance(0.5));
    } else if (roll <= 92) {
      // Everyone stops (the page closes its consumers); an operator resets offsets, then they come back.
      for (const consumer of live) this.leave(consumer);
      this.push(this.nowMs + this.prng.int(50, 150), { kind: this.prng.chance(0.5) ? 'adminDelete' : 'adminReset' });
      for (const consumer of live) this.push(this.nowMs + this.prng.int(200, 1_000), { kind: 'restart', consumer });
    }
  }

  /**
   * The coordinator restarts from the store: the whole tab reloads (its consumers restart
   * too), or only the node's worker does and the consumers live on, unaware until a
   * request fails. Writes in flight may have reached the disk (a prefix of them, in
   * order) without being acknowledged.
   */
  private reload(live: Consumer[], consumersSurvive: boolean): void {
    this.trace(() => (consumersSurvive ? 'WORKER RESTART' : 'RELOAD'));
    this.coverage[consumersSurvive ? 'workerRestarts' : 'reloads']++;
    if (this.inFlight !== undefined && this.prng.chance(0.5)) this.apply(this.inFlight);
    this.inFlight = undefined;
    this.executor.stop();
    this.incarnation++;
    this.startCoordinator();
    for (const consumer of live) {
      if (!consumersSurvive) {
        this.stop(consumer, 'dead');
        this.push(this.nowMs + this.prng.int(50, 300), { kind: 'restart', consumer });
      } else if (consumer.phase !== 'stable') {
        // Its join or sync was lost with the worker (the call rejects): it joins again.
        // A stable consumer learns from its next heartbeat.
        this.rejoin(consumer);
      }
    }
  }

  /** An admin reset of one partition to its start: refused unless the group has no members. */
  private adminReset(): void {
    const topic = this.prng.pick(TOPICS);
    const partition = this.prng.int(0, this.partitions[topic]! - 1);
    this.send(undefined, { type: 'commit', groupId: GROUP, memberId: null, generationId: -1, offsets: [{ topic, partition, offset: 0, metadata: null }] });
  }

  private leave(consumer: Consumer): void {
    this.trace(() => `${consumer.name} LEAVES`);
    this.coverage.leaves++;
    if (consumer.phase === 'stable') this.commitHolding(consumer);
    if (consumer.memberId !== null) this.send(consumer, { type: 'leave', groupId: GROUP, memberId: consumer.memberId });
    this.stop(consumer, 'left');
  }

  private stop(consumer: Consumer, phase: 'dead' | 'left'): void {
    consumer.holding.clear();
    consumer.life++;
    this.enter(consumer, phase);
  }

  /** The faults stop: the store no longer fails, frozen consumers wake, and at least one consumer lives. */
  private heal(): void {
    this.healed = true;
    this.trace(() => 'HEAL');
    for (const consumer of this.consumers) consumer.frozenUntilMs = Math.min(consumer.frozenUntilMs, this.nowMs);
    if (!this.consumers.some((c) => this.alive(c))) this.start(this.consumers[0]!);
  }

  // --- invariants -------------------------------------------------------------------

  /** Among live consumers that are members of the group, no partition is held twice. */
  private checkExclusiveHolding(): void {
    const members = new Set(describeGroup(this.coordinator, GROUP)?.members.map((m) => m.memberId));
    const holder = new Map<string, string>();
    for (const consumer of this.consumers) {
      if (!this.alive(consumer) || consumer.memberId === null || !members.has(consumer.memberId)) continue;
      for (const key of consumer.holding.keys()) {
        const other = holder.get(key);
        if (other !== undefined) this.fail('exclusive ownership', `${key} held by members ${other} and ${consumer.name} at once`);
        holder.set(key, consumer.name);
      }
    }
  }

  /** In a Stable group every subscribed partition belongs to exactly one member subscribed to its topic. */
  private checkStableCoverage(): void {
    const group = describeGroup(this.coordinator, GROUP);
    this.checkRebalanceBound(group);
    if (group?.state !== 'Stable') return;
    for (const topic of new Set(group.members.flatMap((m) => m.topics))) {
      for (let partition = 0; partition < (this.partitions[topic] ?? 0); partition++) {
        const owners = group.members.filter((m) => m.assignment[topic]?.includes(partition));
        if (owners.length !== 1 || !owners[0]!.topics.includes(topic)) {
          this.fail('stable coverage', `${topic}/${partition} owned by [${owners.map((m) => m.memberId).join(', ')}] in generation ${group.generationId}`);
        }
      }
    }
  }

  /** A rebalance ends within REBALANCE_BOUND_MS, whoever fails to rejoin. */
  private checkRebalanceBound(group: GroupDescription | undefined): void {
    if (group?.state !== 'PreparingRebalance') {
      this.rebalanceSinceMs = undefined;
      return;
    }
    this.rebalanceSinceMs ??= this.nowMs;
    if (this.nowMs - this.rebalanceSinceMs > REBALANCE_BOUND_MS) {
      this.fail('bounded rebalance', `rebalancing since ${this.rebalanceSinceMs}ms with members [${group.members.map((m) => m.memberId).join(', ')}]`);
    }
  }

  /** A commit is written only for a member of the current generation, or by an admin while the group has no members. */
  private checkFencing(input: GroupInput, before: GroupDescription | undefined): void {
    if (input.type === 'deleteGroup') {
      if ((before?.members.length ?? 0) > 0) this.fail('fencing', `delete accepted with ${before!.members.length} members`);
      return;
    }
    if (input.type !== 'commit') return this.fail('fencing', `a ${input.type} wrote offsets`);
    const writer = input.memberId === null ? 'admin' : `${input.memberId}@${input.generationId}`;
    for (const o of input.offsets) {
      const key = `${o.topic}/${o.partition}`;
      const history = this.proposed.get(key) ?? [];
      history.push({ offset: o.offset, writer });
      if (history.length > PROPOSED_HISTORY_MAX) history.shift();
      this.proposed.set(key, history);
    }
    if (input.memberId === null) {
      if ((before?.members.length ?? 0) > 0) this.fail('fencing', `admin commit accepted with ${before!.members.length} members`);
      return;
    }
    if (before === undefined || !before.members.some((m) => m.memberId === input.memberId) || before.generationId !== input.generationId) {
      this.fail('fencing', `commit of ${input.memberId} for generation ${input.generationId} accepted in generation ${before?.generationId}`);
    }
  }

  /**
   * Committed offsets never go backwards, except by an admin reset or by a member's own
   * commits of one generation overtaking each other: so no member's progress is undone by
   * another's — a new owner starts from every commit its predecessors were told
   * succeeded, and a zombie (an older generation, or no longer a member) cannot commit.
   */
  private checkCommittedOffsets(input: GroupInput): void {
    const existed = this.groupExists;
    const exists = (this.groupExists = describeGroup(this.coordinator, GROUP) !== undefined);
    if (input.type === 'load' && input.groupId === GROUP && this.deletedDurably) return this.fail('committed offsets', `${GROUP} came back from the store after its delete was durable`);
    if (input.type === 'persisted') {
      if (existed && !exists) {
        this.deletedDurably = true;
        this.groupLife++;
        this.committed.clear();
      } else if (exists) this.deletedDurably = false;
    }
    const now = new Map(committedOffsets(this.coordinator, GROUP).map((o) => [`${o.topic}/${o.partition}`, o.offset]));
    for (const [key, offset] of now) {
      const before = this.committed.get(key);
      if (before?.offset === offset) continue;
      if (input.type !== 'persisted' && input.type !== 'load') return this.fail('committed offsets', `${key} changed from ${before?.offset} to ${offset} by a ${input.type}`);
      // A write holds the whole set, so it may carry an earlier commit's offsets: the
      // writer is the latest accepted commit of this value.
      const writer = this.proposed.get(key)?.findLast((p) => p.offset === offset)?.writer;
      if (writer === undefined) return this.fail('committed offsets', `${key} became ${offset}, which no accepted commit sent`);
      if (before !== undefined && offset < before.offset && writer !== 'admin' && writer !== before.writer) {
        this.fail('committed offsets', `${key} went back from ${before.offset} (by ${before.writer}) to ${offset} (by ${writer})`);
      }
      this.committed.set(key, { offset, writer });
    }
    for (const key of this.committed.keys()) if (!now.has(key)) this.fail('committed offsets', `${key} disappeared`);
  }

  /** After the heal: Stable, its members exactly the live consumers, each holding its share. */
  private checkLiveness(): void {
    this.ticksSinceHeal++;
    const group = describeGroup(this.coordinator, GROUP);
    const live = this.consumers.filter((c) => this.alive(c));
    const settled =
      group !== undefined &&
      group.state === 'Stable' &&
      group.members.length === live.length &&
      live.every((c) => c.phase === 'stable' && c.generationId === group.generationId && group.members.some((m) => m.memberId === c.memberId));
    if (settled) {
      this.livenessTicks = this.ticksSinceHeal;
      this.checkExclusiveHolding();
    } else if (this.ticksSinceHeal > LIVENESS_BOUND_TICKS) {
      this.fail(
        'liveness',
        `not stable with the live consumers ${LIVENESS_BOUND_TICKS} ticks after the heal: ${group?.state} gen ${group?.generationId} members [${group?.members.map((m) => m.memberId).join(', ')}], consumers ${live.map((c) => `${c.name}:${c.phase}:${c.memberId}:${c.generationId}`).join(' ')}`,
      );
    }
  }
}

function describeInput(input: GroupInput): string {
  switch (input.type) {
    case 'join':
      return `join #${input.requestId} ${input.memberId ?? `new ${input.clientId}`} [${input.topics.join(',')}]`;
    case 'sync':
    case 'heartbeat':
      return `${input.type} #${input.requestId} ${input.memberId} gen ${input.generationId}`;
    case 'leave':
      return `leave #${input.requestId} ${input.memberId}`;
    case 'commit':
      return `commit #${input.requestId} ${input.memberId ?? 'admin'} gen ${input.generationId} ${input.offsets.map((o) => `${o.topic}/${o.partition}@${o.offset}`).join(' ')}`;
    case 'persisted':
    case 'persistFailed':
      return `${input.type} #${input.requestId}`;
    case 'tick':
      return 'tick';
    case 'topics':
      return `topics ${JSON.stringify(input.partitions)}`;
    case 'load':
      return `load ${input.groupId}`;
    case 'dropTopic':
      return `dropTopic #${input.requestId} ${input.groupId} ${input.topic}${input.rewrite ? ' rewrite' : ''}`;
    case 'deleteGroup':
      return `deleteGroup #${input.requestId} ${input.groupId}`;
  }
}
