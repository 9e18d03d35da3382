import type { Cancel, Clock } from '../../../src/clock';
import { LetterboxError, NotEnoughReplicasError, NotLeaderOrFollowerError } from '../../../src/errors';
import { createLogManager } from '../../../src/log';
import { Executor, PartitionRaftStore, PartitionReplica, type GroupMessage } from '../../../src/node';
import { handOverLeadership } from '../../../src/node/hand-over';
import { decodeBatch, encodeBatch } from '../../../src/protocol';
import { raftType } from '../../../src/protocol/cluster-messages';
import { initialVoters, reassignmentDone, targetReplicas, type PartitionInfo, type Reassignment } from '../../../src/cluster';
import type { RaftConfig } from '../../../src/raft';
import { createMemoryStorage, type MemoryStorage } from '../../../src/storage';
import { Prng } from '../prng';
import { EventQueue } from '../simulator';
import { TraceLog } from '../trace';
import { checkHistory, type Anomaly, type History, type LogRecord, type Op } from '../history';
import { SimStorage } from './storage';

// Replicated partitions on whole brokers, judged by their clients' history. Each broker has
// its storage (the in-memory store behind a simulated disk, test/sim/partitions/storage.ts),
// its LogManager and Executor on a simulated clock, and a PartitionReplica (src/node/replica.ts)
// for each partition it holds; every partition has three replicas. Producers send keyed
// records with unique values, acks -1, to the broker they believe leads, following
// NotLeaderOrFollowerError's leader hint and retrying with their own bounded attempts and
// timeouts; consumers poll the leader's log below its high watermark from their position.
// Every send (invoke, then ok at an offset, a definite failure, or unknown) and every poll
// goes into the history. Faults, drawn from the seed: frames lost, delayed (so reordered)
// and duplicated; network partitions (often a leader cut off); brokers crashing — what the
// disk had not landed is lost — and restarting from their storage; disks full for a while
// (writes refused: raft groups stop and restart from the disk); in some seeds retention
// deletes the logs' heads as raft compacts, so a follower far behind restores a snapshot; in
// some seeds of four or five brokers one broker is lost for good, and after a delay (the
// controller's reassignAfterMs) its replicas are moved as the node moves them
// (src/cluster/reassignment.ts, ReplicaManager): a live broker's replica joins as a learner,
// its leader promotes it and removes the lost one, and the reassignment ends once the leader
// has it in sync.
// Then the heal: every broker up, no loss; once every partition has settled (one leader,
// every replica at its high watermark, every send finished), the final read of each
// partition from its leader.
// Checkers: the history (history-checks.ts), every replica's log below the high watermark
// byte for byte the leader's, and liveness (settled within a bound after the heal: with every
// reassignment done and each partition's raft voters its replicas, none on a lost broker).

const TICK_MS = 10;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
const TOPIC = 'events';
const CLUSTER_ID = 'sim';
const REPLICATION_FACTOR = 3;
/** A producer gives up an attempt unanswered this long, and retries. */
const REQUEST_TIMEOUT_MS = 400;
/** Attempts per send, the first included, before it is given up (failed or unknown). */
const SEND_ATTEMPTS_MAX = 5;
const POLL_TIMEOUT_MS = 300;
const POLL_MAX_BYTES = 2_048;
/** After the heal, every partition settles within this (else a liveness violation). */
const SETTLE_BOUND_MS = 8_000;
const SETTLE_CHECK_MS = 20;
/** How often a broker compacts its replicas' raft logs where retention would delete, then deletes (the node does it every minute). */
const MAINTAIN_MS = 150;
const RESTART_BACKOFF_MS = 100;
/** How long after a broker is lost for good its replicas are moved (the controller's reassignAfterMs, scaled to the simulation). */
const REASSIGN_AFTER_MS = 300;
/** How often leaders take their next membership step and the controller looks for finished reassignments (ReplicaManager's check). */
const REASSIGN_CHECK_MS = 20;
const MAX_EVENTS = 400_000;
const TRACE_LINES = 80;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export interface PartitionsCoverage {
  crashes: number;
  /** Writes in flight on a crashed broker's disk that were lost. */
  lostWrites: number;
  /** Disks out of quota for a while. */
  disksFull: number;
  /** Writes a full disk refused: the raft groups in them stop and restart from the disk. */
  writesRefused: number;
  partitions: number;
  /** Partitions that cut off a broker leading some partition. */
  leaderCutOff: number;
  leaderChanges: number;
  dropped: number;
  duplicated: number;
  sends: number;
  acked: number;
  failed: number;
  unknown: number;
  redirects: number;
  /** acks -1 sends refused by a leader with fewer replicas in sync than min.insync.replicas. */
  notEnoughReplicas: number;
  retries: number;
  polls: number;
  polledRecords: number;
  /** Consumers that found their position deleted by retention and started again from the log start. */
  offsetResets: number;
  /** Snapshots restored by followers behind their leader's log start. */
  snapshotsRestored: number;
  /** Producers' requests and answers delivered twice. */
  clientDuplicated: number;
  /** Retries a leader answered with the offsets of the batch an earlier attempt wrote (idempotence: not appended again). */
  deduplicated: number;
  /** Producers that took a new producer id after giving a send up (its sequence may be missing on the partition). */
  producerResets: number;
  /** A crashed broker's lock seen released by the others while it was down (memberGone to their groups). */
  lockReleases: number;
  /** Planned closes: a broker handed its leaderships over (handOverLeadership), then stopped. */
  handOvers: number;
  /** Leaderships moved by those hand-overs. */
  handedOver: number;
  /** Leaders asked to hand a partition to another replica (the preferred-leader rebalance's step). */
  transfers: number;
  /** Brokers lost for good (never back): their replicas are moved. */
  brokersLost: number;
  /** Replicas moved off a lost broker (reassignments started) and reassignments finished. */
  reassigned: number;
  reassignmentsDone: number;
}

const emptyCoverage = (): PartitionsCoverage => ({
  crashes: 0, lostWrites: 0, disksFull: 0, writesRefused: 0, partitions: 0, leaderCutOff: 0, leaderChanges: 0, dropped: 0, duplicated: 0, sends: 0, acked: 0,
  failed: 0, unknown: 0, redirects: 0, notEnoughReplicas: 0, retries: 0, polls: 0, polledRecords: 0, offsetResets: 0, snapshotsRestored: 0, deduplicated: 0,
  producerResets: 0, clientDuplicated: 0, lockReleases: 0, handOvers: 0, handedOver: 0, transfers: 0, brokersLost: 0, reassigned: 0, reassignmentsDone: 0,
});

/** Adds `b` into `a`. @example addPartitionsCoverage(total, report.coverage) */
export function addPartitionsCoverage(a: PartitionsCoverage, b: PartitionsCoverage): void {
  for (const key of Object.keys(a) as Array<keyof PartitionsCoverage>) a[key] += b[key];
}

/**
 * What the clients did and saw, in the order it happened (the history checker's ops), each
 * partition's records as its leader holds them at the end, and where each leader's log starts
 * then (retention deleted what was before it).
 */
export interface PartitionsHistory extends History {
  readonly ops: Op[];
  readonly final: LogRecord[];
  readonly logStarts: Map<number, number>;
}

export interface PartitionsSeedReport {
  seed: number;
  scenario: string;
  coverage: PartitionsCoverage;
  /** Milliseconds from the heal until every partition settled. */
  settleMs: number;
  violation?: { checker: string; message: string; atMs: number };
  history: PartitionsHistory;
  trace?: string[];
}

export interface PartitionsOptions {
  trace?: boolean;
  /**
   * Whether a seed may lose a broker for good (default true; drawn from a PRNG of its own, so
   * the other faults of a seed are the same either way). The regression seeds run without, as
   * they were found.
   */
  loseBrokers?: boolean;
}

interface Broker {
  readonly id: number;
  readonly member: string;
  /** The partitions it holds a replica of (one more when a reassignment moves one here). */
  readonly partitions: number[];
  /** Lost for good: never restarts. */
  lost: boolean;
  /** Its log manager while up: a replica moved here opens in it. */
  logs: ReturnType<typeof createLogManager> | undefined;
  /** Partitions moved here whose replica is opening. */
  readonly opening: Set<number>;
  /** Its durable contents: what survives a crash. */
  readonly disk: MemoryStorage;
  /** Bumped on every crash and start: timers, syncs and answers of an earlier run are void. */
  incarnation: number;
  state: 'up' | 'starting' | 'down';
  storage: SimStorage | undefined;
  executor: Executor | undefined;
  replicas: Map<number, PartitionReplica>;
  /** When the disk's last write lands: writes land in order. */
  syncDoneMs: number;
  /** Crash as soon as the next write is issued, before it lands (power lost mid-write). */
  crashOnWrite: boolean;
  /** A maintenance round is running (rounds never overlap). */
  maintaining: boolean;
}

interface Producer {
  readonly name: string;
  /** Per partition, the broker it believes leads. */
  readonly leaderOf: Map<number, number>;
  seq: number;
  /** Idempotence (KIP-98): this producer's id (a new one after a send given up) and the next sequence per partition. */
  producerId: number;
  /** Bumped when a send is given up (KIP-360): the leaders then fence a late attempt of it, which could land after later sends. */
  producerEpoch: number;
  readonly sequences: Map<number, number>;
}

interface SendOp {
  readonly producer: Producer;
  readonly partition: number;
  readonly value: string;
  readonly batch: Uint8Array;
  done: boolean;
  attempts: number;
  /** The attempt whose answer or timeout is awaited; undefined between attempts. */
  awaiting: number | undefined;
  /** An attempt may have been written (it timed out, or failed after its proposal). */
  maybeWritten: boolean;
}

interface Consumer {
  readonly name: string;
  readonly partition: number;
  position: number;
  leader: number;
  /** Bumped for each poll: answers to an older one are void. */
  pollSeq: number;
  polling: boolean;
}

type ProduceAnswer = { ok: true; baseOffset: number } | { ok: false; error: unknown };
/** A refused poll: not the leader (with its hint), or below the log start (retention deleted the records). */
type PollAnswer = { ok: true; records: Array<{ offset: number; value: string }>; next: number } | { ok: false; leader: number; logStartOffset?: number };

type SimEvent =
  | { kind: 'timer'; broker: Broker; incarnation: number; timer: { fn: () => void; cancelled: boolean } }
  | { kind: 'sync'; broker: Broker; incarnation: number }
  /** A frame of raft messages, encoded as the peer transport sends it (nothing shared between brokers). */
  | { kind: 'frame'; from: Broker; to: Broker; bytes: Uint8Array }
  /** A client's request arriving at a broker, a broker's answer arriving at a client, or a client's timer; `produce` for a producer's. */
  | { kind: 'client'; run: () => void; produce: boolean }
  | { kind: 'fault' }
  | { kind: 'crash'; broker: Broker; incarnation: number }
  | { kind: 'diskFreed'; broker: Broker }
  | { kind: 'restart'; broker: Broker }
  /** The others see `broker`'s slot lock released (a tab of one browser crashed or closed): `memberGone` to their raft groups. */
  | { kind: 'lockReleased'; broker: Broker; incarnation: number }
  | { kind: 'healLinks'; cut: Set<number> }
  | { kind: 'lose' }
  | { kind: 'reassign'; broker: Broker }
  | { kind: 'reassignCheck' }
  | { kind: 'produceNext'; producer: Producer }
  | { kind: 'produceTimeout'; op: SendOp; attempt: number }
  | { kind: 'poll'; consumer: Consumer }
  | { kind: 'settleCheck' };

/** Codes of refusals that mean the record was not written (refused before its proposal, or its entry replaced). */
const DEFINITE_FAILURES = new Set(['NOT_LEADER_OR_FOLLOWER', 'RAFT_BACKLOG_FULL', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH', 'NOT_ENOUGH_REPLICAS']);

/**
 * Runs one seed: faults until a seed-drawn time, the heal, the settle, the final reads and the checkers.
 * @example const report = await runPartitionsSeed(7); if (report.violation) console.log(report.trace);
 */
export function runPartitionsSeed(seed: number, options: PartitionsOptions = {}): Promise<PartitionsSeedReport> {
  return new PartitionsSimulation(seed, options).run();
}

class PartitionsSimulation {
  private readonly prng: Prng;
  private readonly queue = new EventQueue<SimEvent>();
  private nowMs = 0;
  private readonly brokers: Broker[] = [];
  private readonly partitionCount: number;
  /** Each partition's replicas (broker ids): the old set and the new while a reassignment runs. */
  private readonly replicasOf = new Map<number, number[]>();
  /** Reassignments in progress, by partition. */
  private readonly reassigning = new Map<number, Reassignment>();
  /** The loss-for-good fault's own draws, so that the other faults of a seed do not change with it. */
  private readonly lossPrng: Prng;
  /** When a broker is lost for good, if this seed loses one. */
  private readonly loseAtMs: number | undefined;
  private readonly producers: Producer[] = [];
  private readonly consumers: Consumer[] = [];
  private readonly inFlight = new Set<SendOp>();
  private readonly history: PartitionsHistory = { ops: [], final: [], logStarts: new Map() };
  /** Links cut by network partitions, as "from>to" broker ids; clients' links to a broker as "c>to". */
  private readonly blocked = new Set<string>();
  private readonly coverage = emptyCoverage();
  private readonly faultEndMs: number;
  private readonly maxDelayMs: number;
  private dropRate: number;
  private readonly duplicateRate: number;
  /** Producer ids handed to the simulated producers (the brokers' blocks are not simulated here). */
  private nextProducerId = 1;
  /** The topic's min.insync.replicas: with 2, a leader with no follower in sync refuses acks -1 writes. */
  private readonly minInsyncReplicas: number;
  /** The topic's retention.bytes (-1: none): retention deletes, so raft compacts and lagging followers restore snapshots. */
  private readonly retentionBytes: number;
  private healed = false;
  private settleMs = -1;
  /** Producers' messages and timers pending: a late request of a given-up attempt still writes. */
  private produceEvents = 0;
  private events = 0;
  private valueSeq = 0;
  /** Per partition, the last leader (member id and term) seen: for counting leader changes. */
  private readonly leaders = new Map<number, string>();
  private violation: PartitionsSeedReport['violation'];
  private readonly trace: TraceLog;

  constructor(readonly seed: number, options: PartitionsOptions) {
    this.prng = new Prng(seed);
    this.trace = new TraceLog(options.trace === true, TRACE_LINES);
    this.faultEndMs = this.prng.int(1_500, 4_000);
    this.maxDelayMs = this.prng.pick([2, 10, 30]);
    this.dropRate = this.prng.pick([0, 0.02, 0.1]);
    this.duplicateRate = this.prng.pick([0, 0.02, 0.05]);
    this.minInsyncReplicas = this.prng.pick([1, 2]);
    this.retentionBytes = this.prng.pick([-1, 400, 1_200]);
    const brokerCount = this.prng.int(3, 5);
    for (let id = 1; id <= brokerCount; id++) {
      this.brokers.push({
        id, member: `${id}.${'abcde'[id - 1]!}`, partitions: [], lost: false, logs: undefined, opening: new Set(), disk: createMemoryStorage(), incarnation: 0, state: 'down',
        storage: undefined, executor: undefined, replicas: new Map(), syncDoneMs: 0, crashOnWrite: false, maintaining: false,
      });
    }
    this.partitionCount = this.prng.int(1, 3);
    for (let p = 0; p < this.partitionCount; p++) {
      const ids = this.brokers.map((b) => b.id);
      const replicas: number[] = [];
      while (replicas.length < REPLICATION_FACTOR) replicas.push(ids.splice(this.prng.int(0, ids.length - 1), 1)[0]!);
      this.replicasOf.set(p, replicas);
      for (const id of replicas) this.broker(id).partitions.push(p);
    }
    for (let i = 0; i < this.prng.int(1, 3); i++) {
      this.producers.push({ name: `p${i}`, leaderOf: new Map(), seq: 0, producerId: this.nextProducerId++, producerEpoch: 0, sequences: new Map() });
    }
    for (let p = 0; p < this.partitionCount; p++) {
      this.consumers.push({ name: `c${p}`, partition: p, position: 0, leader: this.prng.pick(this.replicasOf.get(p)!), pollSeq: 0, polling: false });
    }
    this.lossPrng = new Prng(seed ^ 0x2b1d_7c4e);
    // A broker lost with enough left to move its replicas to (one outside each replica set).
    const loses = options.loseBrokers !== false && brokerCount >= 4 && this.lossPrng.chance(0.5);
    this.loseAtMs = loses ? this.lossPrng.int(300, this.faultEndMs - 100) : undefined;
  }

  async run(): Promise<PartitionsSeedReport> {
    for (const broker of this.brokers) this.start(broker);
    this.queue.push(this.prng.int(200, 500), { kind: 'fault' });
    for (const producer of this.producers) this.queue.push(this.prng.int(100, 300), { kind: 'produceNext', producer });
    for (const consumer of this.consumers) this.queue.push(this.prng.int(100, 300), { kind: 'poll', consumer });
    this.queue.push(this.faultEndMs, { kind: 'settleCheck' });
    if (this.loseAtMs !== undefined) this.queue.push(this.loseAtMs, { kind: 'lose' });
    this.queue.push(REASSIGN_CHECK_MS, { kind: 'reassignCheck' });
    await this.runEvents(() => this.violation !== undefined || this.settleMs >= 0);
    if (this.violation === undefined && this.settleMs < 0) this.fail('simulator', 'the event queue ran dry before the partitions settled');
    if (this.violation === undefined) await this.finish();
    for (const broker of this.brokers) broker.executor?.stop();
    return {
      seed: this.seed,
      scenario: `${this.brokers.length} brokers, ${this.partitionCount} partitions${this.retentionBytes >= 0 ? ', retention' : ''}`,
      coverage: this.coverage,
      settleMs: this.settleMs,
      history: this.history,
      ...(this.violation && { violation: this.violation }),
      ...(this.trace.last() && { trace: this.trace.last() }),
    };
  }

  /** Runs events in time order until `stop` says so, letting every promise settle before time moves on. */
  private async runEvents(stop: () => boolean): Promise<void> {
    while (!stop()) {
      if (this.events++ >= MAX_EVENTS) return this.fail('simulator', `more than ${MAX_EVENTS} events`);
      const atMs = this.queue.peekMs();
      if (atMs === undefined) return;
      if (atMs > this.nowMs) {
        // The simulation waits on nothing but its own queue (storage answers and log reads
        // are promises settled here), so a seed replays exactly.
        await new Promise((resolve) => setImmediate(resolve));
        if (stop() || this.queue.peekMs() !== atMs) continue;
      }
      const next = this.queue.pop()!;
      this.nowMs = next.atMs;
      if (!this.healed && this.nowMs >= this.faultEndMs) this.heal();
      try {
        this.handle(next.event);
      } catch (error) {
        this.fail('simulator', error instanceof Error ? `${error.message}\n${error.stack}` : String(error));
      }
    }
  }

  /** `promise`'s value, with the simulation running meanwhile (a read may wait for a write to land). */
  private async during<T>(promise: Promise<T>): Promise<T> {
    let settled = false;
    const done = () => void (settled = true);
    promise.then(done, done);
    await this.runEvents(() => settled);
    if (!settled) throw new Error('the simulation ran out of events while waiting');
    return promise;
  }

  private broker(id: number): Broker {
    return this.brokers[id - 1]!;
  }

  private fail(checker: string, message: string): void {
    this.violation ??= { checker, message, atMs: this.nowMs };
    this.trace.add(this.nowMs, () => `VIOLATION ${checker}: ${message}`);
  }

  private push(atMs: number, event: SimEvent): void {
    this.queue.push(atMs, event);
  }

  // --- brokers ----------------------------------------------------------------------------

  /** A broker's clock: simulated time; its timers are void once it crashed. */
  private clockOf(broker: Broker): Clock {
    const incarnation = broker.incarnation;
    const schedule = (atMs: number, fn: () => void): Cancel => {
      const timer = { fn, cancelled: false };
      this.push(atMs, { kind: 'timer', broker, incarnation, timer });
      return () => void (timer.cancelled = true);
    };
    return {
      now: () => this.nowMs,
      monotonic: () => this.nowMs,
      after: (delayMs, fn) => schedule(this.nowMs + Math.max(0, delayMs), fn),
      defer: (fn) => void schedule(this.nowMs, fn),
    };
  }

  /** The partition as the metadata has it: its replicas and the reassignment in progress. */
  private placement(partition: number): PartitionInfo {
    const reassignment = this.reassigning.get(partition);
    return { partition, replicas: this.replicasOf.get(partition)!, isr: [], leader: -1, leaderEpoch: 0, ...(reassignment && { reassignment }) };
  }

  private membersOf(ids: readonly number[]): string[] {
    return ids.map((id) => this.broker(id).member);
  }

  private config(broker: Broker, partition: number, prng = this.prng): RaftConfig {
    return {
      id: broker.member,
      // As ReplicaManager: a joining replica's log holds no membership, and it is no voter until the log says so.
      voters: this.membersOf(initialVoters(this.placement(partition))),
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      maxInflightAppends: prng.pick([1, 4]),
      maxEntriesPerAppend: prng.pick([1, 16]),
      maxBytesPerAppend: 64 * 1024,
      maxUncommittedEntries: 64,
      maxApplyBytesPerStep: 4 * 1024,
      maxPendingReads: 4,
      seed: prng.next(),
    };
  }

  /** A replica of `partition` on `broker`, on its executor: frames come from the partition's replicas or the group's own members. */
  private replicaOf(broker: Broker, executor: Executor, partition: number, log: PartitionReplica['log'], store: PartitionRaftStore, prng = this.prng): PartitionReplica {
    return new PartitionReplica({ executor, group: groupOf(partition), log, store, config: this.config(broker, partition, prng), replicas: () => this.membersOf(this.replicasOf.get(partition)!) });
  }

  /** Opens the broker's logs and raft state from its storage, then runs its replicas on a new executor. */
  private start(broker: Broker): void {
    broker.incarnation++;
    broker.state = 'starting';
    const incarnation = broker.incarnation;
    const storage = new SimStorage(broker.disk.reopen(), () => {
      // The disk lands one write at a time; now and then one is slow.
      broker.syncDoneMs = Math.max(broker.syncDoneMs, this.nowMs) + (this.prng.chance(0.03) ? this.prng.int(20, 80) : this.prng.int(1, 4));
      this.push(broker.syncDoneMs, { kind: 'sync', broker, incarnation });
      if (broker.crashOnWrite) {
        broker.crashOnWrite = false;
        this.push(this.nowMs, { kind: 'crash', broker, incarnation });
      }
    });
    broker.storage = storage;
    const clock = this.clockOf(broker);
    const logs = createLogManager(storage, { clock });
    broker.logs = logs;
    const opening = broker.partitions.map(async (partition) => {
      const log = await logs.open({ topic: TOPIC, partition }, { minInsyncReplicas: this.minInsyncReplicas, retentionBytes: this.retentionBytes }, { highWatermark: 'replicated' });
      return { partition, log, store: await PartitionRaftStore.open(log, storage, groupOf(partition)) };
    });
    Promise.all(opening).then(
      (opened) => {
        if (broker.incarnation !== incarnation) return;
        const executor = new Executor({
          nodeId: broker.member,
          clock,
          committer: logs.committer,
          sendFrame: (to, messages) => {
            this.sendFrame(broker, to, messages);
            return true;
          },
          tickMs: TICK_MS,
          heartbeatFlushTicks: HEARTBEAT_TICKS,
          // A group stopped by a full disk retries soon, as the simulated time is short.
          restartBackoffMs: RESTART_BACKOFF_MS,
          restartBackoffMaxMs: 4 * RESTART_BACKOFF_MS,
          observer: {
            raftStepped: (_group, _input, _before, _after, effects) => {
              if (effects.some((e) => e.type === 'restore')) this.coverage.snapshotsRestored++;
            },
          },
        });
        broker.replicas = new Map(
          opened.map(({ partition, log, store }) => [partition, this.replicaOf(broker, executor, partition, log, store)]),
        );
        broker.executor = executor;
        broker.state = 'up';
        executor.start();
        if (this.retentionBytes >= 0) clock.after(this.prng.int(1, MAINTAIN_MS), () => this.maintain(broker, clock));
        this.trace.add(this.nowMs, () => `b${broker.id} up: ${[...broker.replicas].map(([p, r]) => `p${p} end ${r.log.logEndOffset} hw ${r.log.highWatermark}`).join(', ')}`);
      },
      (error: unknown) => this.fail('restart', `b${broker.id} could not open its storage: ${String(error)}`),
    );
  }

  /** A maintenance round: each replica's raft log compacted where retention would delete, then retention. */
  private maintain(broker: Broker, clock: Clock): void {
    // Once settled, the logs hold still for the final reads.
    if (this.settleMs >= 0) return;
    clock.after(MAINTAIN_MS, () => this.maintain(broker, clock));
    if (broker.maintaining) return;
    broker.maintaining = true;
    const incarnation = broker.incarnation;
    const replicas = [...broker.replicas.values()];
    (async () => {
      for (const replica of replicas) {
        await replica.compactForRetention(this.nowMs);
        await replica.log.enforceRetention(this.nowMs);
      }
    })().then(
      () => void (broker.maintaining = false),
      (error: unknown) => {
        broker.maintaining = false;
        if (broker.incarnation === incarnation) this.fail('maintenance', `b${broker.id}: ${error instanceof Error ? error.message : String(error)}`);
      },
    );
  }

  private crash(broker: Broker): void {
    if (broker.state !== 'up') return;
    broker.executor!.stop();
    broker.executor = undefined;
    broker.logs = undefined;
    broker.opening.clear();
    broker.replicas = new Map();
    broker.state = 'down';
    broker.maintaining = false;
    broker.incarnation++;
    const storage = broker.storage!;
    const lost = storage.crash(this.prng.int(0, storage.inFlight));
    broker.syncDoneMs = this.nowMs;
    this.coverage.crashes++;
    this.coverage.lostWrites += lost;
    this.trace.add(this.nowMs, () => `b${broker.id} CRASH (lost ${lost} writes in flight)`);
    // A tab of one browser: the others see its slot lock released 5–150 ms later (not every crash
    // is one: another device's, or a frozen tab's, is seen only by timeouts).
    if (this.prng.chance(0.5)) this.push(this.nowMs + this.prng.int(5, 150), { kind: 'lockReleased', broker, incarnation: broker.incarnation });
  }

  private sendFrame(from: Broker, toMember: string, messages: readonly GroupMessage[]): void {
    const to = this.brokers.find((b) => b.member === toMember);
    if (to === undefined) return;
    if (this.blocked.has(`${from.id}>${to.id}`) || this.prng.chance(this.dropRate)) {
      this.coverage.dropped++;
      return;
    }
    const bytes = raftType.encode({ clusterId: CLUSTER_ID, messages }, 0);
    this.push(this.nowMs + this.delayMs(), { kind: 'frame', from, to, bytes });
    if (this.prng.chance(this.duplicateRate)) {
      this.coverage.duplicated++;
      this.push(this.nowMs + this.delayMs(), { kind: 'frame', from, to, bytes });
    }
  }

  /** A link's delay: independent per message, so messages overtake each other; now and then a long one. */
  private delayMs(): number {
    return this.prng.chance(0.02) ? this.prng.int(50, 250) : this.prng.int(1, this.maxDelayMs);
  }

  /**
   * A client's message to or from broker `to`: lost or delayed like a frame, cut off with it; a
   * producer's request or answer is also duplicated like a frame (the leader then sees the same
   * batch twice, the producer the same answer twice).
   */
  private clientMessage(broker: Broker, produce: boolean, run: () => void): void {
    if (this.blocked.has(`c>${broker.id}`) || this.prng.chance(this.dropRate)) {
      this.coverage.dropped++;
      return;
    }
    this.clientEvent(this.nowMs + this.delayMs(), produce, run);
    if (produce && this.prng.chance(this.duplicateRate)) {
      this.coverage.clientDuplicated++;
      this.clientEvent(this.nowMs + this.delayMs(), produce, run);
    }
  }

  private clientEvent(atMs: number, produce: boolean, run: () => void): void {
    if (produce) this.produceEvents++;
    this.push(atMs, { kind: 'client', run, produce });
  }

  // --- producers ----------------------------------------------------------------------------

  private produceNext(producer: Producer): void {
    if (this.healed) return;
    const partition = this.prng.int(0, this.partitionCount - 1);
    const n = producer.seq++;
    const value = `${producer.name}-${n}-${this.valueSeq++}`;
    const key = `k${this.prng.int(0, 9)}`;
    this.history.ops.push({ kind: 'send', partition, value });
    this.coverage.sends++;
    // Idempotent (KIP-98): the producer's id and epoch, the partition's next sequence; every attempt sends these same bytes.
    const baseSequence = producer.sequences.get(partition) ?? 0;
    producer.sequences.set(partition, baseSequence + 1);
    const batch = encodeBatch({ baseTimestamp: this.nowMs, producerId: producer.producerId, producerEpoch: producer.producerEpoch, baseSequence, records: [{ key: utf8.encode(key), value: utf8.encode(value) }] });
    const op: SendOp = { producer, partition, value, batch, done: false, attempts: 0, awaiting: undefined, maybeWritten: false };
    this.inFlight.add(op);
    this.attempt(op);
  }

  private attempt(op: SendOp): void {
    const attempt = ++op.attempts;
    op.awaiting = attempt;
    const { partition } = op;
    const leader = op.producer.leaderOf.get(partition) ?? this.prng.pick(this.replicasOf.get(partition)!);
    const broker = this.broker(leader);
    this.trace.add(this.nowMs, () => `${op.producer.name} send ${op.value} to p${partition} at b${leader} (attempt ${attempt})`);
    this.clientMessage(broker, true, () => this.serveProduce(broker, op, attempt));
    this.push(this.nowMs + REQUEST_TIMEOUT_MS, { kind: 'produceTimeout', op, attempt });
  }

  /** At the broker: its replica takes the produce (acks -1); the answer goes back when it settles. */
  private serveProduce(broker: Broker, op: SendOp, attempt: number): void {
    if (broker.state !== 'up') return;
    const incarnation = broker.incarnation;
    const answer = (result: ProduceAnswer) => {
      if (broker.incarnation === incarnation) this.clientMessage(broker, true, () => this.onProduceAnswer(op, attempt, result));
    };
    const replica = broker.replicas.get(op.partition);
    if (replica === undefined) return answer({ ok: false, error: new NotLeaderOrFollowerError(TOPIC, op.partition, -1) });
    // The request's own bytes, as decoded from the wire: the leader numbers them in place.
    replica.produce([op.batch.slice()], -1).then(
      ({ baseOffset, duplicate }) => {
        if (duplicate === true) this.coverage.deduplicated++;
        answer({ ok: true, baseOffset });
      },
      (error: unknown) => answer({ ok: false, error }),
    );
  }

  private onProduceAnswer(op: SendOp, attempt: number, result: ProduceAnswer): void {
    if (op.done) return;
    const { partition } = op;
    if (result.ok) {
      // Any attempt's acknowledgement is the send's: the record is at that offset.
      this.trace.add(this.nowMs, () => `${op.producer.name} ack ${op.value} at p${partition}@${result.baseOffset}`);
      return this.complete(op, { kind: 'ack', value: op.value, offset: result.baseOffset });
    }
    if (attempt !== op.awaiting) return; // an older attempt's refusal: its timeout already counted it
    const { error } = result;
    const definite = error instanceof LetterboxError && DEFINITE_FAILURES.has(error.code);
    if (!definite) op.maybeWritten = true;
    if (error instanceof NotEnoughReplicasError) this.coverage.notEnoughReplicas++;
    this.trace.add(this.nowMs, () => `${op.producer.name} refused ${op.value}: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof NotLeaderOrFollowerError && error.leader > 0) {
      this.coverage.redirects++;
      op.producer.leaderOf.set(partition, error.leader);
    } else {
      op.producer.leaderOf.delete(partition);
    }
    this.retryOrGiveUp(op);
  }

  private onProduceTimeout(op: SendOp, attempt: number): void {
    if (op.done || attempt !== op.awaiting) return;
    op.maybeWritten = true;
    op.producer.leaderOf.delete(op.partition);
    this.retryOrGiveUp(op);
  }

  private retryOrGiveUp(op: SendOp): void {
    if (op.attempts >= SEND_ATTEMPTS_MAX) {
      // Its sequence may be missing on the partition, so the next would be out of order: a new
      // epoch, its sequences from 0, which also fences a late attempt of this one (KIP-360's bump).
      op.producer.producerEpoch++;
      op.producer.sequences.clear();
      this.coverage.producerResets++;
      return this.complete(op, { kind: op.maybeWritten ? 'unknown' : 'fail', value: op.value });
    }
    this.coverage.retries++;
    // Until the retry, this attempt's late refusal or timeout changes nothing (an acknowledgement still counts).
    op.awaiting = undefined;
    this.clientEvent(this.nowMs + this.prng.int(10, 60), true, () => {
      if (!op.done) this.attempt(op);
    });
  }

  private complete(op: SendOp, outcome: Extract<Op, { kind: 'ack' | 'fail' | 'unknown' }>): void {
    op.done = true;
    this.history.ops.push(outcome);
    this.inFlight.delete(op);
    if (outcome.kind === 'ack') this.coverage.acked++;
    else if (outcome.kind === 'fail') this.coverage.failed++;
    else this.coverage.unknown++;
    this.push(this.nowMs + this.prng.int(5, 40), { kind: 'produceNext', producer: op.producer });
  }

  // --- consumers ----------------------------------------------------------------------------

  private poll(consumer: Consumer): void {
    this.push(this.nowMs + this.prng.int(20, 80), { kind: 'poll', consumer });
    if (consumer.polling) return;
    consumer.polling = true;
    const seq = ++consumer.pollSeq;
    const broker = this.broker(consumer.leader);
    const position = consumer.position;
    this.clientMessage(broker, false, () => this.servePoll(broker, consumer, seq, position));
    this.clientEvent(this.nowMs + POLL_TIMEOUT_MS, false, () => {
      if (consumer.pollSeq !== seq || !consumer.polling) return;
      consumer.polling = false;
      consumer.leader = this.prng.pick(this.replicasOf.get(consumer.partition)!);
    });
  }

  /** At the broker: the leader's records below its high watermark from `position`. */
  private servePoll(broker: Broker, consumer: Consumer, seq: number, position: number): void {
    if (broker.state !== 'up') return;
    const incarnation = broker.incarnation;
    const answer = (result: PollAnswer) => {
      if (broker.incarnation === incarnation) this.clientMessage(broker, false, () => this.onPollAnswer(consumer, seq, position, result));
    };
    const replica = broker.replicas.get(consumer.partition);
    if (replica === undefined || !replica.isLeader) {
      const leader = replica?.leader;
      return answer({ ok: false, leader: leader === undefined ? -1 : Number(leader.split('.')[0]) });
    }
    replica.log.read(position, { maxBytes: POLL_MAX_BYTES }).then(
      (batches) => {
        const records: Array<{ offset: number; value: string }> = [];
        let next = position;
        for (const bytes of batches) {
          const batch = decodeBatch(bytes);
          next = Math.max(next, batch.baseOffset + batch.lastOffsetDelta + 1);
          if (batch.isControl) continue;
          for (const r of batch.records) {
            const offset = batch.baseOffset + r.offsetDelta;
            if (offset >= position) records.push({ offset, value: fromUtf8.decode(r.value ?? new Uint8Array(0)) });
          }
        }
        answer({ ok: true, records, next });
      },
      // Below the log start: retention deleted the records (the consumer starts again from the log start).
      () => answer({ ok: false, leader: -1, logStartOffset: replica.log.logStartOffset }),
    );
  }

  private onPollAnswer(consumer: Consumer, seq: number, position: number, result: PollAnswer): void {
    if (consumer.pollSeq !== seq || !consumer.polling) return;
    consumer.polling = false;
    if (!result.ok && result.logStartOffset !== undefined && position < result.logStartOffset) {
      // Kafka's auto.offset.reset=earliest: what retention deleted is skipped.
      this.trace.add(this.nowMs, () => `${consumer.name} reset from p${consumer.partition}@${position} to the log start ${result.logStartOffset}`);
      consumer.position = result.logStartOffset;
      this.history.ops.push({ kind: 'seek', consumer: consumer.name, partition: consumer.partition, offset: result.logStartOffset });
      this.coverage.offsetResets++;
      return;
    }
    if (!result.ok) {
      consumer.leader = result.leader > 0 ? result.leader : this.prng.pick(this.replicasOf.get(consumer.partition)!);
      return;
    }
    this.coverage.polls++;
    const { partition } = consumer;
    this.history.ops.push({ kind: 'poll', consumer: consumer.name, records: result.records.map((r) => ({ partition, ...r })), positions: [{ partition, offset: position }] });
    if (result.records.length > 0) {
      this.coverage.polledRecords += result.records.length;
      this.trace.add(this.nowMs, () => `${consumer.name} polled p${consumer.partition}@${position}: ${result.records.map((r) => `${r.offset}=${r.value}`).join(' ')}`);
    }
    consumer.position = result.next;
  }

  // --- faults -------------------------------------------------------------------------------

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'timer':
        if (event.timer.cancelled || event.broker.incarnation !== event.incarnation) return;
        event.timer.fn();
        return this.observeLeaders();
      case 'sync':
        if (event.broker.incarnation === event.incarnation) event.broker.storage!.land()?.catch(() => this.coverage.writesRefused++);
        return;
      case 'frame':
        if (event.to.state !== 'up' || this.blocked.has(`${event.from.id}>${event.to.id}`)) {
          this.coverage.dropped++;
          return;
        }
        event.to.executor!.receive(event.from.member, raftType.decode(event.bytes, 0).messages);
        return this.observeLeaders();
      case 'client':
        if (event.produce) this.produceEvents--;
        return event.run();
      case 'fault':
        return this.fault();
      case 'diskFreed':
        event.broker.storage?.setFull(false);
        this.trace.add(this.nowMs, () => `b${event.broker.id} disk freed`);
        return;
      case 'crash':
        if (event.broker.incarnation !== event.incarnation) return;
        this.crash(event.broker);
        this.push(this.nowMs + this.prng.int(50, 1_000), { kind: 'restart', broker: event.broker });
        return;
      case 'lose':
        return this.lose();
      case 'reassign':
        return this.reassign(event.broker);
      case 'reassignCheck':
        this.push(this.nowMs + REASSIGN_CHECK_MS, { kind: 'reassignCheck' });
        return this.stepReassignments();
      case 'restart':
        if (event.broker.state === 'down' && !event.broker.lost) {
          this.trace.add(this.nowMs, () => `b${event.broker.id} RESTART`);
          this.start(event.broker);
        }
        return;
      case 'lockReleased': {
        // Seen only while it is down: a restarted tab holds its lock again.
        if (event.broker.incarnation !== event.incarnation || event.broker.state !== 'down') return;
        this.coverage.lockReleases++;
        this.trace.add(this.nowMs, () => `b${event.broker.id} LOCK RELEASED`);
        for (const { executor } of this.brokers) for (const group of executor?.raftGroups() ?? []) executor!.input(group, { type: 'memberGone', member: event.broker.member });
        return;
      }
      case 'healLinks':
        for (const id of event.cut) for (const other of this.brokers) this.unblock(id, other.id);
        this.trace.add(this.nowMs, () => `links of ${[...event.cut].map((id) => `b${id}`).join(' ')} healed`);
        return;
      case 'produceNext':
        return this.produceNext(event.producer);
      case 'produceTimeout':
        return this.onProduceTimeout(event.op, event.attempt);
      case 'poll':
        if (this.settleMs < 0) this.poll(event.consumer);
        return;
      case 'settleCheck':
        return this.checkSettled();
    }
  }

  private unblock(a: number, b: number): void {
    this.blocked.delete(`${a}>${b}`);
    this.blocked.delete(`${b}>${a}`);
    this.blocked.delete(`c>${a}`);
  }

  private fault(): void {
    if (this.healed) return;
    this.push(this.nowMs + this.prng.int(150, 600), { kind: 'fault' });
    const up = this.brokers.filter((b) => b.state === 'up');
    const leaders = up.filter((b) => [...b.replicas.values()].some((r) => r.isLeader));
    const roll = this.prng.int(1, 100);
    if (roll <= 40) {
      // A partition: one broker (most often a leader) or two cut off from the rest.
      const cut = new Set<number>();
      cut.add((leaders.length > 0 && this.prng.chance(0.7) ? this.prng.pick(leaders) : this.prng.pick(this.brokers)).id);
      if (this.brokers.length >= 5 && this.prng.chance(0.3)) cut.add(this.prng.pick(this.brokers).id);
      // Its clients may still reach it: a leader cut off from its peers but not from producers.
      const clientsCut = this.prng.chance(0.5);
      for (const id of cut) {
        for (const other of this.brokers) {
          if (cut.has(other.id)) continue;
          this.blocked.add(`${id}>${other.id}`);
          this.blocked.add(`${other.id}>${id}`);
        }
        if (clientsCut) this.blocked.add(`c>${id}`);
      }
      this.coverage.partitions++;
      if ([...cut].some((id) => leaders.some((b) => b.id === id))) this.coverage.leaderCutOff++;
      this.trace.add(this.nowMs, () => `PARTITION ${[...cut].map((id) => `b${id}`).join(' ')} cut off${clientsCut ? ', clients too' : ''}`);
      this.push(this.nowMs + this.prng.int(200, 1_500), { kind: 'healLinks', cut });
    } else if (roll <= 72) {
      if (up.length === 0) return;
      this.crashSoon(leaders.length > 0 && this.prng.chance(0.6) ? this.prng.pick(leaders) : this.prng.pick(up));
    } else if (roll <= 77) {
      // Power lost everywhere: only what landed on each disk survives.
      this.trace.add(this.nowMs, () => 'CRASH ALL');
      for (const broker of up) this.crashSoon(broker);
    } else if (roll <= 85 && up.length > 0) {
      // Out of quota for a while: its writes fail, its raft groups stop and restart from the disk.
      const broker = this.prng.pick(up);
      broker.storage!.setFull(true);
      this.coverage.disksFull++;
      this.trace.add(this.nowMs, () => `b${broker.id} DISK FULL`);
      this.push(this.nowMs + this.prng.int(50, 800), { kind: 'diskFreed', broker });
    } else if (roll <= 90 && leaders.length > 0) {
      this.plannedClose(this.prng.pick(leaders));
    } else if (roll <= 94 && leaders.length > 0) {
      // The preferred-leader rebalance's step: a leader hands a partition to another of its replicas.
      const broker = this.prng.pick(leaders);
      const [partition, replica] = this.prng.pick([...broker.replicas].filter(([, r]) => r.isLeader));
      const to = this.prng.pick(this.brokers.filter((b) => b !== broker && b.partitions.includes(partition)));
      this.coverage.transfers++;
      this.trace.add(this.nowMs, () => `b${broker.id} hands p${partition} to b${to.id}`);
      replica.handTo(to.id);
    }
    // Otherwise a calm spell.
  }

  /** A planned close: `broker` hands its leaderships to in-sync followers, then stops (and restarts later, as a reopened tab). */
  private plannedClose(broker: Broker): void {
    const incarnation = broker.incarnation;
    this.coverage.handOvers++;
    this.trace.add(this.nowMs, () => `b${broker.id} HANDS OVER`);
    const bound = { clock: this.clockOf(broker), lagTicks: ELECTION_TICKS, checkEveryMs: TICK_MS, boundMs: ELECTION_TICKS * TICK_MS };
    const handOver = handOverLeadership(broker.executor!, bound);
    void handOver.settled.then(({ handedOver, kept }) => {
      handOver.stop();
      if (broker.incarnation !== incarnation) return;
      this.coverage.handedOver += handedOver;
      this.trace.add(this.nowMs, () => `b${broker.id} handed over ${handedOver}, kept ${kept}: closes`);
      this.crash(broker);
      this.push(this.nowMs + this.prng.int(50, 1_000), { kind: 'restart', broker });
    });
  }

  /** Crashes `broker` now, or while its next write is in flight (that write, and any after it, lost). */
  private crashSoon(broker: Broker): void {
    if (this.prng.chance(0.5)) broker.crashOnWrite = true;
    else this.push(this.nowMs, { kind: 'crash', broker, incarnation: broker.incarnation });
  }

  /** The faults stop: links heal, no more loss, every broker restarts, producers send no more. */
  private heal(): void {
    this.healed = true;
    this.trace.add(this.nowMs, () => 'HEAL');
    this.dropRate = 0;
    this.blocked.clear();
    for (const broker of this.brokers) {
      broker.crashOnWrite = false;
      broker.storage?.setFull(false);
    }
    for (const broker of this.brokers) if (broker.state === 'down') this.push(this.nowMs + this.prng.int(0, 100), { kind: 'restart', broker });
  }

  // --- a broker lost for good, its replicas moved -------------------------------------------

  /** A broker is lost for good (its device gone): it crashes and never comes back. */
  private lose(): void {
    const broker = this.lossPrng.pick(this.brokers);
    broker.lost = true;
    this.coverage.brokersLost++;
    this.trace.add(this.nowMs, () => `b${broker.id} LOST FOR GOOD`);
    if (broker.state === 'up') this.crash(broker);
    broker.crashOnWrite = false;
    this.push(this.nowMs + REASSIGN_AFTER_MS, { kind: 'reassign', broker });
  }

  /**
   * The controller's move (src/cluster/reassignment.ts): each replica of the lost broker to a
   * broker holding none of the partition, which opens its replica now if it is up (else when
   * it starts); as a learner to be, its log holds no membership.
   */
  private reassign(lost: Broker): void {
    for (const [partition, replicas] of this.replicasOf) {
      if (!replicas.includes(lost.id) || this.reassigning.has(partition)) continue;
      const to = this.brokers.find((b) => !b.lost && !replicas.includes(b.id));
      if (to === undefined) continue;
      this.replicasOf.set(partition, [...replicas, to.id]);
      this.reassigning.set(partition, { adding: [to.id], removing: [lost.id] });
      to.partitions.push(partition);
      this.coverage.reassigned++;
      this.trace.add(this.nowMs, () => `p${partition} REASSIGNED: b${to.id} joins, b${lost.id} leaves`);
    }
  }

  /** Opens on running `broker` the replica of `partition` just moved there. */
  private openMoved(broker: Broker, partition: number): void {
    const { incarnation, logs, storage, executor } = broker;
    broker.opening.add(partition);
    (async () => {
      const log = await logs!.open({ topic: TOPIC, partition }, { minInsyncReplicas: this.minInsyncReplicas, retentionBytes: this.retentionBytes }, { highWatermark: 'replicated' });
      return { log, store: await PartitionRaftStore.open(log, storage!, groupOf(partition)) };
    })().then(
      ({ log, store }) => {
        if (broker.incarnation !== incarnation || broker.replicas.has(partition)) return;
        broker.opening.delete(partition);
        broker.replicas.set(partition, this.replicaOf(broker, executor!, partition, log, store, this.lossPrng));
        this.trace.add(this.nowMs, () => `b${broker.id} opens p${partition} (moved here)`);
      },
      (error: unknown) => {
        if (broker.incarnation !== incarnation) return;
        // A full disk refuses the new log's first write: the next check opens it again.
        broker.opening.delete(partition);
        this.coverage.writesRefused++;
        this.trace.add(this.nowMs, () => `b${broker.id} could not open moved p${partition}: ${String(error)}`);
      },
    );
  }

  /**
   * Each leader's next membership step toward its partition's target replicas (ReplicaManager's
   * check), and the controller ending a reassignment once the leader has the new replica in sync.
   */
  private stepReassignments(): void {
    for (const broker of this.brokers) {
      // A partition moved here while it ran (or started) opens now; one moved while it was down opened with the others.
      if (broker.state === 'up') for (const partition of broker.partitions) if (!broker.replicas.has(partition) && !broker.opening.has(partition)) this.openMoved(broker, partition);
      for (const [partition, replica] of broker.replicas) {
        if (!replica.isLeader) continue;
        const placement = this.placement(partition);
        replica.moveTo(this.membersOf(targetReplicas(placement)));
        const done = reassignmentDone(placement, replica.inSyncBrokers());
        if (done === undefined) continue;
        this.replicasOf.set(partition, [...done.replicas]);
        this.reassigning.delete(partition);
        this.coverage.reassignmentsDone++;
        this.trace.add(this.nowMs, () => `p${partition} reassignment done: replicas ${done.replicas.map((id) => `b${id}`).join(' ')}`);
      }
    }
  }

  private observeLeaders(): void {
    for (const broker of this.brokers) {
      for (const [partition, replica] of broker.replicas) {
        if (!replica.isLeader) continue;
        const leader = `${broker.member}@${replica.leaderEpoch}`;
        if (this.leaders.get(partition) === leader) continue;
        this.leaders.set(partition, leader);
        this.coverage.leaderChanges++;
        this.trace.add(this.nowMs, () => `p${partition} LEADER b${broker.id} at epoch ${replica.leaderEpoch}`);
      }
    }
  }

  // --- the end --------------------------------------------------------------------------------

  /** The leader of `partition` that every replica follows, if they all agree. */
  private settledLeader(partition: number): PartitionReplica | undefined {
    const replicas = this.replicasOf.get(partition)!.map((id) => this.broker(id).replicas.get(partition));
    const leader = replicas.find((r) => r?.isLeader === true);
    if (leader === undefined) return undefined;
    const { highWatermark, logEndOffset } = leader.log;
    if (highWatermark !== logEndOffset) return undefined;
    for (const replica of replicas) {
      if (replica === undefined || replica.leaderEpoch !== leader.leaderEpoch || replica.leader !== leader.leader) return undefined;
      if (replica.log.highWatermark !== highWatermark || replica.log.logEndOffset !== logEndOffset) return undefined;
    }
    // Its raft voters are its replicas (a moved replica promoted, the lost one removed), none lost.
    const { voters, learners } = leader.membership;
    const wanted = this.membersOf(this.replicasOf.get(partition)!);
    if (learners.length > 0 || voters.length !== wanted.length || wanted.some((id) => !voters.includes(id))) return undefined;
    return leader;
  }

  /** After the heal: settled once every broker is up, every send finished and every partition has caught up. */
  private checkSettled(): void {
    const settled = this.brokers.every((b) => b.state === 'up' || b.lost) && this.reassigning.size === 0 && this.inFlight.size === 0 && this.produceEvents === 0 && this.replicasOf.size === [...this.replicasOf.keys()].filter((p) => this.settledLeader(p) !== undefined).length;
    if (settled) {
      this.settleMs = this.nowMs - this.faultEndMs;
      this.trace.add(this.nowMs, () => 'SETTLED');
    } else if (this.nowMs - this.faultEndMs > SETTLE_BOUND_MS) {
      const states = [...this.replicasOf].map(([p, ids]) => `p${p}: ${ids.map((id) => {
        const r = this.broker(id).replicas.get(p);
        return r === undefined ? `b${id} ${this.broker(id).state}` : `b${id} ${r.isLeader ? 'leader' : 'follower'}@${r.leaderEpoch} end ${r.log.logEndOffset} hw ${r.log.highWatermark}`;
      }).join(', ')}`);
      this.fail('liveness', `not settled ${SETTLE_BOUND_MS} ms after the heal (${this.inFlight.size} sends in flight): ${states.join('; ')}`);
    } else {
      this.push(this.nowMs + SETTLE_CHECK_MS, { kind: 'settleCheck' });
    }
  }

  /** The final reads, the replicas' logs against the leader's, and the history checker; returns the duplicates counted. */
  private async finish(): Promise<void> {
    await this.runEvents(() => this.brokers.every((b) => !b.maintaining));
    // Taken at once: the reads below let time pass (a read waits for writes in flight to land).
    const unsettled = [...this.replicasOf.keys()].filter((partition) => this.settledLeader(partition) === undefined);
    if (unsettled.length > 0) return this.fail('liveness', `settled, then p${unsettled.join(', p')} no longer (while maintenance ended): replicas ${unsettled.map((p) => this.replicasOf.get(p)!.join(' ')).join('; ')}`);
    const settled = [...this.replicasOf.keys()].map((partition) => {
      const leader = this.settledLeader(partition)!;
      return { partition, leader, start: leader.log.logStartOffset, end: leader.log.highWatermark, replicas: this.replicasOf.get(partition)!.map((id) => ({ id, replica: this.broker(id).replicas.get(partition)! })) };
    });
    for (const { partition, leader, start, end, replicas } of settled) {
      const leaderBatches = await this.during(readAll(leader, start, end));
      this.history.final.push(...recordsOf(leaderBatches).map((r) => ({ partition, ...r })));
      this.history.logStarts.set(partition, start);
      for (const { id, replica } of replicas) {
        if (replica === leader) continue;
        // Each replica's retention deleted its own head: the logs are compared where both have batches.
        const from = Math.max(start, replica.log.logStartOffset);
        const [ours, other] = [await this.during(readAll(leader, from, end)), await this.during(readAll(replica, from, end))];
        const index = firstMismatch(ours, other);
        const mismatch = index === undefined ? undefined : { index, other };
        if (mismatch !== undefined) {
          const describe = (batches: readonly Uint8Array[]) => batches.slice(Math.max(0, mismatch.index - 1), mismatch.index + 2).map(describeBatch).join(' | ');
          this.fail('replicas agree', `p${partition}: b${id}'s log below the high watermark differs from the leader's (${leader.leader}) at batch ${mismatch.index} from @${from}: leader (log start ${start}) ${describe(ours)}; b${id} (log start ${replica.log.logStartOffset}) ${describe(mismatch.other)}`);
        }
      }
    }
    // The producers are idempotent: a value at two offsets is an anomaly.
    const history = { ...judgeable(this.history), idempotent: true };
    const { anomalies } = checkHistory(history);
    const [first] = anomalies;
    if (first !== undefined) this.fail(first.kind, `${describeAnomaly(first, history)}${anomalies.length > 1 ? ` (and ${anomalies.length - 1} more anomalies)` : ''}`);
    this.checkProducerOrder();
  }

  /** Each producer's records lie in each partition's final log in the order it sent them (a retry never lands after a later send). */
  private checkProducerOrder(): void {
    const last = new Map<string, { n: number; offset: number }>();
    for (const { partition, offset, value } of this.history.final) {
      const [name, n] = value.split('-');
      const key = `${partition}/${name}`;
      const previous = last.get(key);
      if (previous !== undefined && Number(n) <= previous.n) {
        return this.fail('producer order', `p${partition}: ${value} at ${offset} follows send ${name}-${previous.n} at ${previous.offset}`);
      }
      last.set(key, { n: Number(n), offset });
    }
  }
}

/**
 * The history as the checker can judge it: what retention deleted before a partition's final
 * log start cannot be read back, so an acknowledgement there ends unknown and polled records
 * there are left out (the checker's final read is everything from offset 0).
 * @example const report = checkHistory(judgeable(seedReport.history));
 */
export function judgeable(history: PartitionsHistory): History {
  const deleted = (partition: number, offset: number) => offset < (history.logStarts.get(partition) ?? 0);
  const partitionOf = new Map<string, number>();
  const ops = history.ops.map((op): Op => {
    switch (op.kind) {
      case 'send':
        partitionOf.set(op.value, op.partition);
        return op;
      case 'ack':
        return deleted(partitionOf.get(op.value)!, op.offset) ? { kind: 'unknown', value: op.value } : op;
      case 'poll':
        return { ...op, records: op.records.filter((r) => !deleted(r.partition, r.offset)) };
      default:
        return op;
    }
  });
  return { ops, final: history.final };
}

/** An anomaly with the ops it names. */
function describeAnomaly(anomaly: Anomaly, history: History): string {
  const ops = Object.entries(anomaly).flatMap(([key, index]) => (key === 'op' || key === 'previousOp') && typeof index === 'number' ? [`${key} ${index}: ${JSON.stringify(history.ops[index])}`] : []);
  return [JSON.stringify(anomaly), ...ops].join('; ');
}

const groupOf = (partition: number) => `${TOPIC}-${partition}`;

/** A replica's batches from the one holding `fromOffset` to `endOffset` (at most its high watermark). */
async function readAll(replica: PartitionReplica, fromOffset: number, endOffset: number): Promise<Uint8Array[]> {
  if (endOffset <= fromOffset) return [];
  return replica.log.read(fromOffset, { maxBytes: Infinity, endOffset });
}

function recordsOf(batches: readonly Uint8Array[]): Array<{ offset: number; value: string }> {
  return batches.flatMap((bytes) => {
    const batch = decodeBatch(bytes);
    return batch.isControl ? [] : batch.records.map((r) => ({ offset: batch.baseOffset + r.offsetDelta, value: fromUtf8.decode(r.value ?? new Uint8Array(0)) }));
  });
}

/** The index of the first batch where two logs differ (in bytes or length), or undefined. */
function firstMismatch(a: readonly Uint8Array[], b: readonly Uint8Array[]): number | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined || x.length !== y.length || x.some((byte, j) => byte !== y[j])) return i;
  }
  return undefined;
}

/** A batch in a violation: offset, epoch, control or values, size. */
function describeBatch(bytes: Uint8Array): string {
  const batch = decodeBatch(bytes);
  const what = batch.isControl ? 'control' : batch.records.map((r) => fromUtf8.decode(r.value ?? new Uint8Array(0))).join(',');
  return `@${batch.baseOffset} e${batch.partitionLeaderEpoch} ${what} (${bytes.length} B, ts ${batch.baseTimestamp})`;
}
