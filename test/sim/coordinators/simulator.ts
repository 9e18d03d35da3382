import {
  committedOffsets,
  coordinatorPartition,
  createCoordinator,
  describeGroup,
  stepCoordinator,
  type Assignment,
  type CoordinatorState,
  type GroupEffect,
  type GroupInput,
  type JoinReply,
  type OffsetCommit,
  type SyncReply,
} from '../../../src/group';
import { OFFSETS_PARTITIONS, OFFSETS_TOPIC } from '../../../src/node/offsets-topic';
import { leaderEpochRefusal } from '../../../src/node/routing';
import { coordinatorAction, type CoordinatorAction } from '../../../src/node';
import { Prng } from '../prng';
import { EventQueue } from '../simulator';
import { TraceLog } from '../trace';

// Routing and one consumer group across whole brokers under faults. Several brokers (tabs),
// each with a view of partition leadership that the controller's broadcasts bring up to date
// late, out of order or never (dropped); the controller moves leaders between brokers (a
// preferred-leader move, or away from a closed broker), bumping each move's leader epoch.
// The group's partition of the offsets topic is one of them: its leader is the group's
// coordinator, running the real pure coordinator (src/group), which loads the group's
// committed offsets from the partition's records when it becomes the leader and forgets
// them when it stops (`coordinatorAction`). Consumers in every tab join, sync, fetch their
// offsets, heartbeat and commit through their own broker, which serves a call when its view
// makes it the coordinator and forwards it otherwise; producers in every tab send records to
// each partition's leader as their broker's view has it, refused by the real leader-epoch
// check (`leaderEpochRefusal`). Partitions are modelled as replicated: an append succeeds
// only while its broker still leads at the epoch it appends with (as an acks=-1 write needs
// the in-sync replicas, which have followed the new leader), and the records outlive every
// broker. Messages between brokers are delayed, reordered and dropped; brokers close (their
// consumers with them) and reopen.
//
// Checkers:
// - one owner per generation: a coordinator's sync replies never give one partition of a
//   generation (of one coordinator run) to two members, and no two live consumers of one
//   generation hold one partition;
// - acknowledged commits are kept: while a broker leads the offsets partition at the epoch
//   it acts on, its committed offsets (what fetchOffsets answers) are at least every commit
//   any broker acknowledged (a deposed coordinator that has not heard of it yet may answer
//   older offsets, as in Kafka: a consumer then processes again, it loses nothing);
// - produce at the leader: a broker acknowledges a record only if it leads the partition
//   at the leader epoch the producer asked for, and the record is in the partition;
// - liveness: after the faults stop, the group settles with every live consumer within a bound.

const GROUP = 'orders-app';
const DATA_TOPIC = 'events';
/** The offsets-topic partition that holds GROUP (Kafka's rule, as the brokers find it). */
const GROUP_PARTITION = `${OFFSETS_TOPIC}/${coordinatorPartition(GROUP, OFFSETS_PARTITIONS)}`;
const TICK_MS = 100;
const BROADCAST_MS = 100;
const HEARTBEAT_MS = 200;
const PROCESS_MS = 50;
const PRODUCE_MS = 120;
/** The most a producer's metadata cache lags its broker's view. */
const METADATA_MAX_AGE_MS = 1_500;
const SESSION_TIMEOUT_MS = 1_500;
const REBALANCE_TIMEOUT_MS = 2_000;
/** A call unanswered this long is given up (its reply, if it comes, is ignored). */
const CALL_TIMEOUT_MS = 1_000;
/** Pause before a consumer whose join, sync or fetch failed joins again. */
const RETRY_BACKOFF_MS = 100;
/** A closed broker's partitions move once the controller notices (its session timeout). */
const CLOSE_NOTICED_MS = 300;
/** After the heal: views converge within a broadcast, a dead coordinator's members expire within a session and rejoin within a rebalance. */
export const SETTLE_BOUND_MS = 15_000;
const MAX_EVENTS = 400_000;
const TRACE_LINES = 80;

/** The wrong rule, for showing that the checkers catch it: a cache loaded once per partition and kept (as one keyed by the partition's log). */
function staleCoordinatorAction(heldEpoch: number | undefined, leadsHere: boolean): CoordinatorAction {
  return leadsHere && heldEpoch === undefined ? 'load' : 'keep';
}

export interface Leadership {
  readonly leader: number;
  readonly epoch: number;
}

export interface CoordinatorsCoverage {
  leaderMoves: number;
  /** Leadership of the offsets partition returning to a broker that led it before. */
  leadershipReturns: number;
  coordinatorLoads: number;
  brokersClosed: number;
  generations: number;
  commitsAcked: number;
  commitsFenced: number;
  notCoordinator: number;
  producesAcked: number;
  producesRefused: number;
  /** Produces refused by leaderEpochRefusal: asked at another epoch than the leader's. */
  epochRefusals: number;
  dropped: number;
}

export interface CoordinatorsSeedReport {
  seed: number;
  scenario: string;
  coverage: CoordinatorsCoverage;
  /** Milliseconds from the heal until the group settled with every live consumer. */
  settleMs: number;
  violation?: { checker: string; message: string; atMs: number };
  trace?: string[];
}

const emptyCoverage = (): CoordinatorsCoverage => ({
  leaderMoves: 0, leadershipReturns: 0, coordinatorLoads: 0, brokersClosed: 0, generations: 0, commitsAcked: 0, commitsFenced: 0,
  notCoordinator: 0, producesAcked: 0, producesRefused: 0, epochRefusals: 0, dropped: 0,
});

/** Adds `b` into `a`. @example addCoordinatorsCoverage(total, report.coverage) */
export function addCoordinatorsCoverage(a: CoordinatorsCoverage, b: CoordinatorsCoverage): void {
  for (const key of Object.keys(a) as Array<keyof CoordinatorsCoverage>) a[key] += b[key];
}

/** A coordinator a broker holds: one run of the pure core, loaded at a leader epoch. */
interface HeldCoordinator {
  readonly epoch: number;
  readonly instanceId: string;
  state: CoordinatorState;
  /** Calls waiting for the core's reply, by its request id. */
  readonly waiting: Map<number, CallOrigin>;
}

interface Broker {
  readonly id: number;
  open: boolean;
  /** Bumped on every close: events of an earlier run are void. */
  run: number;
  readonly view: Map<string, Leadership>;
  coordinator: HeldCoordinator | undefined;
  /** When the broker's last queued offsets append completes: appends complete in order. */
  appendDoneMs: number;
  /** The tab's producer's metadata cache: a copy of the broker's view, refreshed now and then, so it lags behind it. */
  producerCache: Map<string, Leadership>;
  producerRefreshMs: number;
}

type Phase = 'joining' | 'syncing' | 'fetching' | 'stable' | 'dead';

interface Consumer {
  readonly name: string;
  readonly home: Broker;
  /** Bumped on every phase change and death: replies to calls of an older epoch are void. */
  epoch: number;
  phase: Phase;
  memberId: string | null;
  /** The coordinator run and generation of its membership ("instance#generation"). */
  generation: string;
  generationId: number;
  assignment: number[];
  /** Partitions held → next offset to process. */
  holding: Map<number, number>;
}

type CoordinatorCall =
  | { type: 'join'; memberId: string | null }
  | { type: 'sync' | 'heartbeat'; memberId: string; generationId: number }
  | { type: 'commit'; memberId: string; generationId: number; offsets: OffsetCommit[] }
  | { type: 'fetchOffsets' };

type CallAnswer = { ok: true; value?: JoinReply | SyncReply | OffsetCommit[]; instanceId: string } | { ok: false; error: string };

interface CallOrigin {
  readonly consumer: Consumer;
  readonly consumerEpoch: number;
  readonly call: CoordinatorCall;
}

interface OffsetsRecord {
  readonly offsets: OffsetCommit[];
}

type SimEvent =
  | { kind: 'tick'; broker: Broker; run: number }
  | { kind: 'broadcast' }
  | { kind: 'view'; broker: Broker; run: number; leadership: ReadonlyMap<string, Leadership> }
  | { kind: 'call'; to: Broker; origin: CallOrigin }
  | { kind: 'answer'; origin: CallOrigin; answer: CallAnswer }
  | { kind: 'callTimeout'; origin: CallOrigin }
  | { kind: 'appended'; broker: Broker; run: number; holder: HeldCoordinator; requestId: number; epoch: number; offsets: OffsetCommit[]; fails: boolean }
  | { kind: 'producer'; broker: Broker; run: number }
  | { kind: 'produce'; to: Broker; partition: number; askedEpoch: number }
  | { kind: 'heartbeat' | 'process' | 'commit' | 'retry'; consumer: Consumer; epoch: number }
  | { kind: 'fault' }
  | { kind: 'moveAway'; broker: Broker; run: number }
  | { kind: 'reopen'; broker: Broker };

export interface CoordinatorsOptions {
  trace?: boolean;
  /** Run the stale rule (a coordinator loaded once and kept) instead of `coordinatorAction`. */
  staleCoordinator?: boolean;
  /** Leaders serve a produce asked at any leader epoch (no leaderEpochRefusal), to show the produce checker catches it. */
  ignoreLeaderEpoch?: boolean;
}

/**
 * Runs one seed: faults until a seed-drawn time, then until the group settles or the bound passes.
 * @example const report = runCoordinatorsSeed(7); if (report.violation) console.log(report.trace);
 */
export function runCoordinatorsSeed(seed: number, options: CoordinatorsOptions = {}): CoordinatorsSeedReport {
  return new CoordinatorsSimulation(seed, options).run();
}

class CoordinatorsSimulation {
  private readonly prng: Prng;
  private readonly queue = new EventQueue<SimEvent>();
  private nowMs = 0;
  private readonly brokers: Broker[] = [];
  private readonly consumers: Consumer[] = [];
  /** The controller's truth: each partition's leader and epoch, and every epoch's leader. */
  private readonly leadership = new Map<string, Leadership>();
  private readonly leaderOfEpoch = new Map<string, number[]>();
  /** The offsets partition's records (the group's whole committed set per record); they outlive every broker. */
  private readonly offsetsRecords: OffsetsRecord[] = [];
  /** Records appended to each data partition, by the epoch they were appended at. */
  private readonly dataRecords = new Map<number, number[]>();
  /** The highest offset of each partition that some broker acknowledged a commit of. */
  private readonly acked = new Map<number, number>();
  /** Per generation ("instance#generation"), the member each partition went to. */
  private readonly owners = new Map<string, Map<number, string>>();
  /** Brokers that have led the offsets partition. */
  private readonly offsetsLeaders = new Set<number>();
  private readonly action: typeof coordinatorAction;
  private readonly checksLeaderEpoch: boolean;
  private readonly coverage = emptyCoverage();
  private readonly dataPartitions: number;
  private readonly faultEndMs: number;
  private readonly maxDelayMs: number;
  /** Zero after the heal. */
  private dropRate: number;
  private readonly appendFailRate: number;
  private healed = false;
  private settleMs = -1;
  private loads = 0;
  private nextRequestId = 1;
  /** When the last message on each link (from × brokers + to) arrives. */
  private readonly linkLastMs: number[] = [];
  private violation: CoordinatorsSeedReport['violation'];
  private readonly trace: TraceLog;

  constructor(readonly seed: number, options: CoordinatorsOptions) {
    this.prng = new Prng(seed);
    this.trace = new TraceLog(options.trace === true, TRACE_LINES);
    this.action = options.staleCoordinator === true ? staleCoordinatorAction : coordinatorAction;
    this.checksLeaderEpoch = options.ignoreLeaderEpoch !== true;
    this.faultEndMs = this.prng.int(3_000, 8_000);
    this.maxDelayMs = this.prng.pick([2, 20, 60]);
    this.dropRate = this.prng.pick([0, 0.02, 0.1]);
    this.appendFailRate = this.prng.pick([0, 0, 0.05]);
    this.dataPartitions = this.prng.int(2, 4);
    const brokers = this.prng.int(3, 4);
    for (let id = 0; id < brokers; id++) this.brokers.push({ id, open: true, run: 0, view: new Map(), coordinator: undefined, appendDoneMs: 0, producerCache: new Map(), producerRefreshMs: 0 });
    for (const key of [GROUP_PARTITION, ...this.dataKeys()]) this.setLeader(key, this.prng.pick(this.brokers).id);
    for (let i = 0; i < this.prng.int(2, 4); i++) this.consumers.push(this.newConsumer(`c${i}`, this.prng.pick(this.brokers)));
  }

  run(): CoordinatorsSeedReport {
    this.push(0, { kind: 'broadcast' });
    this.push(this.prng.int(100, 400), { kind: 'fault' });
    for (const broker of this.brokers) this.startBroker(broker);
    for (let n = 0; n < MAX_EVENTS && this.violation === undefined && this.settleMs < 0; n++) {
      const next = this.queue.pop();
      if (next === undefined) break;
      this.nowMs = next.atMs;
      if (!this.healed && this.nowMs >= this.faultEndMs) this.heal();
      try {
        this.handle(next.event);
      } catch (error) {
        this.fail('core assertion', error instanceof Error ? error.message : String(error));
      }
      this.checkAckedCommitsKept();
      if (this.healed && this.violation === undefined) this.checkSettled();
    }
    if (this.violation === undefined && this.settleMs < 0) this.fail('simulator', 'event budget exhausted');
    return {
      seed: this.seed,
      scenario: `${this.brokers.length} brokers`,
      coverage: this.coverage,
      settleMs: this.settleMs,
      ...(this.violation && { violation: this.violation }),
      ...(this.trace.last() && { trace: this.trace.last() }),
    };
  }

  private push(atMs: number, event: SimEvent): void {
    this.queue.push(atMs, event);
  }

  /**
   * Delivers `event` from one broker to another: delayed and sometimes dropped, in order per
   * link (one MessagePort or relay stream per peer), so a consumer's commits reach its
   * coordinator in the order it sent them.
   */
  private sendBetween(from: Broker, to: Broker, event: SimEvent): void {
    if (from === to) return this.push(this.nowMs, event);
    if (this.prng.chance(this.dropRate)) {
      this.coverage.dropped++;
      return;
    }
    const link = from.id * this.brokers.length + to.id;
    const atMs = Math.max(this.nowMs + this.prng.int(1, this.maxDelayMs), this.linkLastMs[link] ?? 0);
    this.linkLastMs[link] = atMs;
    this.push(atMs, event);
  }

  private fail(checker: string, message: string): void {
    this.violation ??= { checker, message, atMs: this.nowMs };
    this.trace.add(this.nowMs, () => `VIOLATION ${checker}: ${message}`);
  }

  private dataKeys(): string[] {
    return Array.from({ length: this.dataPartitions }, (_, p) => `${DATA_TOPIC}/${p}`);
  }

  // --- the controller -------------------------------------------------------------------

  private setLeader(key: string, leader: number): void {
    const epoch = (this.leadership.get(key)?.epoch ?? -1) + 1;
    this.leadership.set(key, { leader, epoch });
    const history = this.leaderOfEpoch.get(key) ?? [];
    history.push(leader);
    this.leaderOfEpoch.set(key, history);
    if (key === GROUP_PARTITION) {
      if (this.offsetsLeaders.has(leader) && epoch > 0) this.coverage.leadershipReturns++;
      this.offsetsLeaders.add(leader);
    }
    this.trace.add(this.nowMs, () => `controller: ${key} led by b${leader} at epoch ${epoch}`);
  }

  /** Moves a partition to another open broker (none open: it stays until one is). */
  private moveLeader(key: string, awayFrom: number): void {
    const others = this.brokers.filter((b) => b.open && b.id !== awayFrom);
    if (others.length === 0) return;
    this.coverage.leaderMoves++;
    this.setLeader(key, this.prng.pick(others).id);
  }

  // --- brokers ----------------------------------------------------------------------------

  private startBroker(broker: Broker): void {
    this.push(this.nowMs + this.prng.int(0, TICK_MS), { kind: 'tick', broker, run: broker.run });
    for (const consumer of this.consumers) if (consumer.home === broker) this.rejoin(consumer, null);
    this.push(this.nowMs + this.prng.int(0, PRODUCE_MS), { kind: 'producer', broker, run: broker.run });
  }

  private closeBroker(broker: Broker): void {
    this.trace.add(this.nowMs, () => `b${broker.id} CLOSES`);
    this.coverage.brokersClosed++;
    broker.open = false;
    broker.run++;
    broker.view.clear();
    broker.coordinator = undefined;
    for (const consumer of this.consumers) if (consumer.home === broker) this.enter(consumer, 'dead');
    this.push(this.nowMs + CLOSE_NOTICED_MS, { kind: 'moveAway', broker, run: broker.run });
    this.push(this.nowMs + this.prng.int(300, 2_000), { kind: 'reopen', broker });
  }

  /** A view update: leadership only moves forward by epoch; the coordinator follows the rule. */
  private onView(broker: Broker, leadership: ReadonlyMap<string, Leadership>): void {
    for (const [key, incoming] of leadership) {
      const known = broker.view.get(key);
      if (known === undefined || incoming.epoch > known.epoch) broker.view.set(key, incoming);
    }
    const view = broker.view.get(GROUP_PARTITION);
    if (view === undefined) return;
    const action = this.action(broker.coordinator?.epoch, view.leader === broker.id, view.epoch);
    if (action === 'keep') return;
    this.refuseWaiting(broker);
    if (action === 'forget') {
      this.trace.add(this.nowMs, () => `b${broker.id} forgets its coordinator (epoch ${broker.coordinator?.epoch}): ${GROUP_PARTITION} led by b${view.leader} at ${view.epoch}`);
      broker.coordinator = undefined;
      return;
    }
    this.loadCoordinator(broker, view.epoch);
  }

  /** A new coordinator run: the group's offsets from the partition's last record, then the topics. */
  private loadCoordinator(broker: Broker, epoch: number): void {
    this.coverage.coordinatorLoads++;
    const instanceId = `b${broker.id}.${++this.loads}`;
    const offsets = this.offsetsRecords.at(-1)?.offsets ?? [];
    const holder: HeldCoordinator = { epoch, instanceId, state: createCoordinator({ instanceId }), waiting: new Map() };
    broker.coordinator = holder;
    this.trace.add(this.nowMs, () => `b${broker.id} loads coordinator ${instanceId} at epoch ${epoch}: ${describeOffsets(offsets)}`);
    this.step(broker, holder, { type: 'load', groupId: GROUP, offsets: offsets.map((o) => ({ ...o })) });
    this.step(broker, holder, { type: 'topics', now: this.nowMs, partitions: { [DATA_TOPIC]: this.dataPartitions } });
  }

  /** Calls waiting at a coordinator the broker drops are refused: their consumers look for the coordinator again. */
  private refuseWaiting(broker: Broker): void {
    for (const origin of broker.coordinator?.waiting.values() ?? []) this.answer(broker, origin, { ok: false, error: 'NOT_COORDINATOR' });
  }

  /** One step of a broker's coordinator; its effects carried out. */
  private step(broker: Broker, holder: HeldCoordinator, input: GroupInput): void {
    const { state, effects } = stepCoordinator(holder.state, input);
    holder.state = state;
    if (input.type !== 'tick' || effects.length > 0) this.trace.add(this.nowMs, () => `b${broker.id}/${holder.instanceId} ← ${describeInput(input)}`);
    for (const effect of effects) this.effect(broker, holder, effect);
  }

  private effect(broker: Broker, holder: HeldCoordinator, effect: GroupEffect): void {
    if (effect.type === 'persist') {
      // Appended to the offsets partition at the epoch the broker leads at now, completed in order.
      const epoch = broker.view.get(GROUP_PARTITION)?.epoch ?? -1;
      broker.appendDoneMs = Math.max(broker.appendDoneMs, this.nowMs) + this.prng.int(1, 30);
      this.push(broker.appendDoneMs, { kind: 'appended', broker, run: broker.run, holder, requestId: effect.requestId, epoch, offsets: effect.offsets, fails: this.prng.chance(this.appendFailRate) });
      return;
    }
    const origin = holder.waiting.get(effect.requestId);
    if (origin === undefined) return;
    holder.waiting.delete(effect.requestId);
    if (!effect.ok) return this.answer(broker, origin, { ok: false, error: effect.error });
    if (origin.call.type === 'commit') {
      // The broker acknowledges this commit: from now on, no coordinator may lose it.
      this.coverage.commitsAcked++;
      for (const o of origin.call.offsets) this.acked.set(o.partition, Math.max(this.acked.get(o.partition) ?? 0, o.offset));
    }
    if (origin.call.type === 'sync') this.checkSyncOwners(holder, origin, (effect.value as SyncReply).assignment);
    this.answer(broker, origin, { ok: true, ...(effect.value && { value: effect.value }), instanceId: holder.instanceId });
  }

  private onAppended(event: Extract<SimEvent, { kind: 'appended' }>): void {
    const { broker, holder, requestId, epoch, offsets } = event;
    if (broker.run !== event.run) return;
    const truth = this.leadership.get(GROUP_PARTITION)!;
    // Replicated: the append stands only while this broker leads at the epoch it appended with.
    const accepted = !event.fails && truth.leader === broker.id && truth.epoch === epoch;
    if (accepted) this.offsetsRecords.push({ offsets });
    else if (!event.fails) this.coverage.commitsFenced++;
    if (broker.coordinator !== holder) return; // dropped meanwhile: nobody waits for it
    this.step(broker, holder, accepted ? { type: 'persisted', requestId } : event.fails ? { type: 'persistFailed', requestId, message: 'append failed' } : { type: 'persistFailed', requestId, message: `not the leader of ${GROUP_PARTITION} at epoch ${epoch}`, notCoordinator: true });
  }

  /** A call at a broker: served if its view makes it the coordinator (with one loaded), else forwarded to the leader it knows of, once. */
  private onCall(to: Broker, origin: CallOrigin): void {
    if (!to.open) return; // lost with the closed tab: the consumer's call times out
    const view = to.view.get(GROUP_PARTITION);
    const holder = to.coordinator;
    if (view?.leader === to.id && holder !== undefined) return this.serve(to, holder, origin);
    const home = origin.consumer.home;
    if (to === home && view !== undefined && view.leader !== to.id) {
      const leader = this.brokers[view.leader]!;
      return this.sendBetween(home, leader, { kind: 'call', to: leader, origin });
    }
    this.coverage.notCoordinator++;
    this.answer(to, origin, { ok: false, error: 'NOT_COORDINATOR' });
  }

  private serve(broker: Broker, holder: HeldCoordinator, origin: CallOrigin): void {
    const { call } = origin;
    if (call.type === 'fetchOffsets') {
      return this.answer(broker, origin, { ok: true, value: committedOffsets(holder.state, GROUP), instanceId: holder.instanceId });
    }
    const requestId = this.nextRequestId++;
    holder.waiting.set(requestId, origin);
    const now = this.nowMs;
    const common = { requestId, now, groupId: GROUP };
    switch (call.type) {
      case 'join':
        return this.step(broker, holder, { type: 'join', ...common, memberId: call.memberId, clientId: origin.consumer.name, sessionTimeoutMs: SESSION_TIMEOUT_MS, rebalanceTimeoutMs: REBALANCE_TIMEOUT_MS, topics: [DATA_TOPIC], assignors: ['range'] });
      case 'sync':
      case 'heartbeat':
        return this.step(broker, holder, { type: call.type, ...common, memberId: call.memberId, generationId: call.generationId });
      case 'commit':
        return this.step(broker, holder, { type: 'commit', ...common, memberId: call.memberId, generationId: call.generationId, offsets: call.offsets });
    }
  }

  /** An answer goes back to the consumer's broker (over the network from another), then to the consumer. */
  private answer(from: Broker, origin: CallOrigin, answer: CallAnswer): void {
    this.sendBetween(from, origin.consumer.home, { kind: 'answer', origin, answer });
  }

  /**
   * A record a tab's producer sent to the partition's leader at the leader epoch its metadata
   * cache has. The broker serves it only if its own view makes it the leader and the epochs
   * agree (the node's leaderEpochRefusal); its append stands only while it still leads at
   * that epoch.
   */
  private onProduce(event: Extract<SimEvent, { kind: 'produce' }>): void {
    const { to } = event;
    if (!to.open) return;
    const key = `${DATA_TOPIC}/${event.partition}`;
    const view = to.view.get(key);
    if (view === undefined || view.leader !== to.id) return void this.coverage.producesRefused++;
    if (this.checksLeaderEpoch && leaderEpochRefusal(DATA_TOPIC, event.partition, event.askedEpoch, view.epoch) !== undefined) return void this.coverage.epochRefusals++;
    const truth = this.leadership.get(key)!;
    if (truth.leader !== to.id || truth.epoch !== view.epoch) return void this.coverage.producesRefused++;
    const records = this.dataRecords.get(event.partition) ?? [];
    records.push(view.epoch);
    this.dataRecords.set(event.partition, records);
    this.coverage.producesAcked++;
    this.checkProduceAck(to, event.partition, event.askedEpoch, records.length - 1);
  }

  /** A tab's producer: the next record, to a partition's leader as its metadata cache has it. */
  private onProducer(event: Extract<SimEvent, { kind: 'producer' }>): void {
    const { broker } = event;
    if (event.run !== broker.run) return;
    this.push(this.nowMs + PRODUCE_MS, event);
    if (this.nowMs >= broker.producerRefreshMs) {
      broker.producerCache = new Map(broker.view);
      broker.producerRefreshMs = this.nowMs + this.prng.int(200, METADATA_MAX_AGE_MS);
    }
    const partition = this.prng.int(0, this.dataPartitions - 1);
    const view = broker.producerCache.get(`${DATA_TOPIC}/${partition}`);
    if (view === undefined) return;
    const leader = this.brokers[view.leader]!;
    this.sendBetween(broker, leader, { kind: 'produce', to: leader, partition, askedEpoch: view.epoch });
  }

  // --- consumers ----------------------------------------------------------------------------

  private newConsumer(name: string, home: Broker): Consumer {
    return { name, home, epoch: 0, phase: 'dead', memberId: null, generation: '', generationId: -1, assignment: [], holding: new Map() };
  }

  private enter(consumer: Consumer, phase: Phase): void {
    consumer.phase = phase;
    consumer.epoch++;
    if (phase !== 'stable') consumer.holding.clear();
  }

  private call(consumer: Consumer, call: CoordinatorCall): void {
    const origin: CallOrigin = { consumer, consumerEpoch: consumer.epoch, call };
    this.push(this.nowMs, { kind: 'call', to: consumer.home, origin });
    this.push(this.nowMs + CALL_TIMEOUT_MS + (call.type === 'join' ? REBALANCE_TIMEOUT_MS : 0), { kind: 'callTimeout', origin });
  }

  /** (Re)joins, giving up every partition first (the eager protocol); memberId null joins as a new member. */
  private rejoin(consumer: Consumer, memberId: string | null): void {
    if (!consumer.home.open) return;
    if (consumer.phase === 'stable' && consumer.memberId !== null) this.commitHolding(consumer);
    consumer.memberId = memberId;
    this.enter(consumer, 'joining');
    this.call(consumer, { type: 'join', memberId });
  }

  private commitHolding(consumer: Consumer): void {
    if (consumer.holding.size === 0 || consumer.memberId === null) return;
    const offsets = [...consumer.holding].map(([partition, offset]) => ({ topic: DATA_TOPIC, partition, offset, metadata: null }));
    this.call(consumer, { type: 'commit', memberId: consumer.memberId, generationId: consumer.generationId, offsets });
  }

  private onAnswer({ consumer, consumerEpoch, call }: CallOrigin, answer: CallAnswer): void {
    if (!consumer.home.open) return;
    if (!answer.ok) return this.onRefusal(consumer, consumerEpoch, answer.error);
    if (consumer.epoch !== consumerEpoch) return;
    switch (call.type) {
      case 'join': {
        const reply = answer.value as JoinReply;
        consumer.memberId = reply.memberId;
        consumer.generationId = reply.generationId;
        consumer.generation = `${answer.instanceId}#${reply.generationId}`;
        this.enter(consumer, 'syncing');
        return this.call(consumer, { type: 'sync', memberId: reply.memberId, generationId: reply.generationId });
      }
      case 'sync':
        consumer.assignment = (answer.value as SyncReply).assignment[DATA_TOPIC] ?? [];
        this.enter(consumer, 'fetching');
        return this.call(consumer, { type: 'fetchOffsets' });
      case 'fetchOffsets': {
        const committed = answer.value as OffsetCommit[];
        this.enter(consumer, 'stable');
        for (const partition of consumer.assignment) consumer.holding.set(partition, committed.find((o) => o.partition === partition)?.offset ?? 0);
        this.checkHolding();
        for (const kind of ['heartbeat', 'process', 'commit'] as const) this.push(this.nowMs + this.prng.int(1, HEARTBEAT_MS), { kind, consumer, epoch: consumer.epoch });
        return;
      }
      case 'heartbeat':
      case 'commit':
        return;
    }
  }

  private onRefusal(consumer: Consumer, consumerEpoch: number, error: string): void {
    if (consumer.epoch !== consumerEpoch) return;
    if (consumer.phase === 'stable') {
      // Not a member (its coordinator moved, or it expired): it joins as a new one; told of a
      // rebalance or a newer generation, it rejoins as itself. Otherwise it keeps going.
      if (error === 'UNKNOWN_MEMBER_ID') this.rejoin(consumer, null);
      else if (error === 'REBALANCE_IN_PROGRESS' || error === 'ILLEGAL_GENERATION') this.rejoin(consumer, consumer.memberId);
      return;
    }
    if (error === 'UNKNOWN_MEMBER_ID') consumer.memberId = null;
    this.retryLater(consumer);
  }

  /** A join, sync or fetch that failed (not the coordinator, lost, timed out): join again after a pause. */
  private retryLater(consumer: Consumer): void {
    this.enter(consumer, 'joining');
    this.push(this.nowMs + RETRY_BACKOFF_MS, { kind: 'retry', consumer, epoch: consumer.epoch });
  }

  private onConsumerTimer(event: Extract<SimEvent, { kind: 'heartbeat' | 'process' | 'commit' | 'retry' }>): void {
    const { consumer } = event;
    if (consumer.epoch !== event.epoch || !consumer.home.open) return;
    if (event.kind === 'retry') return this.rejoin(consumer, consumer.memberId);
    if (consumer.phase !== 'stable' || consumer.memberId === null) return;
    if (event.kind === 'heartbeat') {
      this.call(consumer, { type: 'heartbeat', memberId: consumer.memberId, generationId: consumer.generationId });
      return this.push(this.nowMs + HEARTBEAT_MS, event);
    }
    if (event.kind === 'process') {
      for (const [partition, offset] of consumer.holding) consumer.holding.set(partition, offset + 1);
      return this.push(this.nowMs + PROCESS_MS, event);
    }
    this.commitHolding(consumer);
    this.push(this.nowMs + this.prng.int(200, 400), event);
  }

  private onCallTimeout({ consumer, consumerEpoch, call }: CallOrigin): void {
    if (consumer.epoch !== consumerEpoch || !consumer.home.open || call.type === 'heartbeat' || call.type === 'commit') return;
    this.retryLater(consumer);
  }

  // --- faults -------------------------------------------------------------------------------

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'tick':
        if (event.run !== event.broker.run) return;
        this.push(this.nowMs + TICK_MS, event);
        if (event.broker.coordinator !== undefined) this.step(event.broker, event.broker.coordinator, { type: 'tick', now: this.nowMs });
        return;
      case 'broadcast':
        this.push(this.nowMs + BROADCAST_MS, event);
        for (const broker of this.brokers) {
          if (!broker.open) continue;
          const snapshot = new Map(this.leadership);
          if (this.prng.chance(this.dropRate)) this.coverage.dropped++;
          else this.push(this.nowMs + this.prng.int(1, this.maxDelayMs * 3), { kind: 'view', broker, run: broker.run, leadership: snapshot });
        }
        return;
      case 'view':
        if (event.run === event.broker.run && event.broker.open) this.onView(event.broker, event.leadership);
        return;
      case 'call':
        return this.onCall(event.to, event.origin);
      case 'answer':
        return this.onAnswer(event.origin, event.answer);
      case 'callTimeout':
        return this.onCallTimeout(event.origin);
      case 'appended':
        return this.onAppended(event);
      case 'producer':
        return this.onProducer(event);
      case 'produce':
        return this.onProduce(event);
      case 'heartbeat':
      case 'process':
      case 'commit':
      case 'retry':
        return this.onConsumerTimer(event);
      case 'fault':
        return this.fault();
      case 'moveAway':
        if (event.run !== event.broker.run || event.broker.open) return;
        for (const [key, { leader }] of this.leadership) if (leader === event.broker.id) this.moveLeader(key, leader);
        return;
      case 'reopen':
        if (event.broker.open) return;
        this.trace.add(this.nowMs, () => `b${event.broker.id} REOPENS`);
        event.broker.open = true;
        return this.startBroker(event.broker);
    }
  }

  private fault(): void {
    if (this.healed) return;
    this.push(this.nowMs + this.prng.int(100, 500), { kind: 'fault' });
    const roll = this.prng.int(1, 100);
    const open = this.brokers.filter((b) => b.open);
    if (roll <= 45) {
      // Mostly the offsets partition: its leadership moving is what the coordinator must follow.
      const key = this.prng.chance(0.6) ? GROUP_PARTITION : this.prng.pick(this.dataKeys());
      this.moveLeader(key, this.leadership.get(key)!.leader);
    } else if (roll <= 65 && open.length > 1) {
      this.closeBroker(this.prng.pick(open));
    } else if (roll <= 80) {
      const running = this.consumers.filter((c) => c.home.open);
      if (running.length === 0) return;
      const consumer = this.prng.pick(running);
      this.trace.add(this.nowMs, () => `${consumer.name} restarts`);
      this.enter(consumer, 'dead');
      this.rejoin(consumer, null);
    } else if (this.consumers.length < 6) {
      this.consumers.push(this.newConsumer(`c${this.consumers.length}`, this.prng.pick(this.brokers)));
      this.rejoin(this.consumers.at(-1)!, null);
    }
  }

  /** The faults stop: no more drops, every broker reopens soon. */
  private heal(): void {
    this.healed = true;
    this.trace.add(this.nowMs, () => 'HEAL');
    this.dropRate = 0;
    for (const broker of this.brokers) if (!broker.open) this.push(this.nowMs + this.prng.int(0, 300), { kind: 'reopen', broker });
  }

  // --- checkers -----------------------------------------------------------------------------

  /** A sync reply gives each partition of a generation to one member only. */
  private checkSyncOwners(holder: HeldCoordinator, origin: CallOrigin, assignment: Assignment): void {
    if (origin.call.type !== 'sync') return;
    const generation = `${holder.instanceId}#${origin.call.generationId}`;
    const owners = this.owners.get(generation) ?? new Map<number, string>();
    if (!this.owners.has(generation)) this.coverage.generations++;
    this.owners.set(generation, owners);
    for (const partition of assignment[DATA_TOPIC] ?? []) {
      const owner = owners.get(partition);
      if (owner !== undefined && owner !== origin.call.memberId) this.fail('one owner per generation', `${DATA_TOPIC}/${partition} of generation ${generation} given to ${owner} and ${origin.call.memberId}`);
      owners.set(partition, origin.call.memberId);
    }
  }

  /** No two live consumers of one generation hold one partition. */
  private checkHolding(): void {
    const holders = new Map<string, string>();
    for (const consumer of this.consumers) {
      if (consumer.phase !== 'stable' || !consumer.home.open) continue;
      for (const partition of consumer.holding.keys()) {
        const key = `${consumer.generation}/${partition}`;
        const other = holders.get(key);
        if (other !== undefined) this.fail('one owner per generation', `${DATA_TOPIC}/${partition} held by ${other} and ${consumer.name} in generation ${consumer.generation}`);
        holders.set(key, consumer.name);
      }
    }
  }

  /** The broker that truly leads the offsets partition, at the epoch it acts on, has every acknowledged commit. */
  private checkAckedCommitsKept(): void {
    const truth = this.leadership.get(GROUP_PARTITION)!;
    const broker = this.brokers[truth.leader]!;
    if (!broker.open || broker.coordinator === undefined || broker.view.get(GROUP_PARTITION)?.epoch !== truth.epoch) return;
    const committed = new Map(committedOffsets(broker.coordinator.state, GROUP).map((o) => [o.partition, o.offset]));
    for (const [partition, offset] of this.acked) {
      const now = committed.get(partition);
      if (now === undefined || now < offset) {
        this.fail('acknowledged commit kept', `${DATA_TOPIC}/${partition} was acknowledged at ${offset}; coordinator ${broker.coordinator.instanceId} of b${broker.id} (leader at epoch ${truth.epoch}) has ${now}`);
      }
    }
  }

  /** A produce acknowledged by `broker`: it led the partition at the epoch asked for, and the record is in the partition at that epoch. */
  private checkProduceAck(broker: Broker, partition: number, askedEpoch: number, offset: number): void {
    const leaderThen = this.leaderOfEpoch.get(`${DATA_TOPIC}/${partition}`)?.[askedEpoch];
    const appendedEpoch = this.dataRecords.get(partition)?.[offset];
    if (leaderThen !== broker.id || appendedEpoch !== askedEpoch) {
      this.fail('produce at the leader', `b${broker.id} acknowledged ${DATA_TOPIC}/${partition}@${offset}, appended at epoch ${appendedEpoch}, for a produce asked at epoch ${askedEpoch} (led by b${leaderThen})`);
    }
  }

  /** Settled: every broker open, and the true coordinator's group Stable with exactly the consumers, all stable in its generation. */
  private checkSettled(): void {
    const truth = this.leadership.get(GROUP_PARTITION)!;
    const holder = this.brokers[truth.leader]!.coordinator;
    const group = holder === undefined ? undefined : describeGroup(holder.state, GROUP);
    const settled =
      this.brokers.every((b) => b.open) &&
      group?.state === 'Stable' &&
      group.members.length === this.consumers.length &&
      this.consumers.every((c) => c.phase === 'stable' && c.generation === `${holder!.instanceId}#${group.generationId}`);
    if (settled) this.settleMs = this.nowMs - this.faultEndMs;
    else if (this.nowMs - this.faultEndMs > SETTLE_BOUND_MS) {
      this.fail('liveness', `not settled ${SETTLE_BOUND_MS} ms after the heal: group ${group?.state} gen ${group?.generationId} at ${holder?.instanceId}; ${this.consumers.map((c) => `${c.name}:${c.phase}:${c.generation}`).join(' ')}`);
    }
  }
}

function describeInput(input: GroupInput): string {
  switch (input.type) {
    case 'join':
      return `join #${input.requestId} ${input.memberId ?? `new ${input.clientId}`}`;
    case 'sync':
    case 'heartbeat':
      return `${input.type} #${input.requestId} ${input.memberId} gen ${input.generationId}`;
    case 'commit':
      return `commit #${input.requestId} ${input.memberId ?? 'admin'} gen ${input.generationId} ${describeOffsets(input.offsets)}`;
    case 'persisted':
    case 'persistFailed':
      return `${input.type} #${input.requestId}`;
    case 'load':
      return `load ${describeOffsets(input.offsets)}`;
    default:
      return input.type;
  }
}

const describeOffsets = (offsets: readonly OffsetCommit[]) => offsets.map((o) => `${o.topic}/${o.partition}@${o.offset}`).join(' ') || '(none)';
