import { ManualClock } from '../../src/clock';
import { createGroupCommitter, storageSink } from '../../src/log';
import { Executor, type ExecutorStats, type RaftGroupHandler, StoredRaftLog } from '../../src/node';
import type { RaftConfig } from '../../src/raft';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage';
import { Prng } from './prng';

// Brokers that are each in many raft groups, on one simulated clock: each broker runs the
// node's executor with its raft logs in (in-memory) storage behind the real group commit,
// and a network that delivers each frame after a seeded delay. Used to count frames.

export const TICK_MS = 50;
export const HEARTBEAT_TICKS = 2;
export const HEARTBEAT_INTERVAL_MS = TICK_MS * HEARTBEAT_TICKS;
const ELECTION_TICKS = 10;
const NETWORK_DELAY_MS_MAX = 5;

export interface Broker {
  readonly id: string;
  readonly executor: Executor;
  readonly storage: MemoryStorage;
  /** Frames sent to each peer. */
  readonly framesTo: Map<string, number>;
}

export interface ManyGroupsOptions {
  seed?: number;
  /** What each broker's application learns from each group. */
  handler?(broker: string, group: string): RaftGroupHandler;
  /** First wait before a stopped group restarts (simulated ms). */
  restartBackoffMs?: number;
  restartBackoffMaxMs?: number;
}

export class ManyGroups {
  readonly clock = new ManualClock();
  readonly brokers = new Map<string, Broker>();
  readonly groups: string[];
  readonly #prng: Prng;

  private constructor(readonly brokerIds: readonly string[], groupCount: number, readonly options: ManyGroupsOptions) {
    this.#prng = new Prng(options.seed ?? 1);
    this.groups = Array.from({ length: groupCount }, (_, i) => `g${i}`);
  }

  /** Starts `brokers` brokers, each a voter of every one of `groups` groups. */
  static async start(brokers: number, groups: number, options: ManyGroupsOptions = {}): Promise<ManyGroups> {
    const cluster = new ManyGroups(Array.from({ length: brokers }, (_, i) => `b${i + 1}`), groups, options);
    for (const id of cluster.brokerIds) await cluster.#startBroker(id);
    return cluster;
  }

  async #startBroker(id: string): Promise<void> {
    const storage = createMemoryStorage();
    const framesTo = new Map<string, number>();
    const executor = new Executor({
      nodeId: id,
      clock: this.clock,
      committer: createGroupCommitter(storageSink(storage), this.clock),
      sendFrame: (peer, messages) => {
        framesTo.set(peer, (framesTo.get(peer) ?? 0) + 1);
        this.clock.after(this.#prng.int(1, NETWORK_DELAY_MS_MAX), () => this.brokers.get(peer)!.executor.receive(id, messages));
        return true;
      },
      tickMs: TICK_MS,
      heartbeatFlushTicks: HEARTBEAT_TICKS,
      ...(this.options.restartBackoffMs !== undefined && { restartBackoffMs: this.options.restartBackoffMs }),
      ...(this.options.restartBackoffMaxMs !== undefined && { restartBackoffMaxMs: this.options.restartBackoffMaxMs }),
    });
    for (const group of this.groups) {
      const handler = this.options.handler?.(id, group) ?? {};
      executor.addRaftGroup(group, { config: this.#config(id), store: await StoredRaftLog.open(storage, group), handler });
    }
    this.brokers.set(id, { id, executor, storage, framesTo });
    executor.start();
  }

  #config(id: string): RaftConfig {
    return {
      id,
      voters: this.brokerIds,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      maxInflightAppends: 4,
      maxEntriesPerAppend: 64,
      maxBytesPerAppend: 1 << 20,
      maxUncommittedEntries: 1024,
      maxApplyBytesPerStep: 1 << 20,
      maxPendingReads: 16,
      seed: this.#prng.next(),
    };
  }

  /** Lets `ms` of simulated time pass, a millisecond at a time, letting storage writes complete in between. */
  async run(ms: number): Promise<void> {
    for (let i = 0; i < ms; i++) {
      this.clock.advance(1);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Runs until every group has a leader that every member follows and has committed in its term, or `maxMs` passes. */
  async settle(maxMs: number): Promise<boolean> {
    for (let ms = 0; ms < maxMs; ms += 10) {
      if (this.settled()) return true;
      await this.run(10);
    }
    return this.settled();
  }

  settled(): boolean {
    return this.groups.every((group) => {
      const states = [...this.brokers.values()].map((b) => b.executor.raftState(group));
      const leader = states.find((s) => s?.role === 'leader');
      return leader !== undefined && states.every((s) => s !== undefined && s.term === leader.term && s.leader === leader.config.id && s.commit === leader.commit && s.commit > 0);
    });
  }

  /** The broker leading `group` now, if any. */
  leaderOf(group: string): Broker | undefined {
    return [...this.brokers.values()].find((b) => b.executor.raftState(group)?.role === 'leader');
  }

  /** Totals of every broker's executor counters. */
  totals(): ExecutorStats {
    const total: ExecutorStats = { framesSent: 0, framesDropped: 0, messagesSent: 0, messagesRefused: 0, steps: 0 };
    for (const { executor } of this.brokers.values()) for (const key of Object.keys(total) as Array<keyof ExecutorStats>) total[key] += executor.stats[key];
    return total;
  }

  /** Frames each broker sent to each peer so far, as "from>to" → count. */
  framesByLink(): Map<string, number> {
    const out = new Map<string, number>();
    for (const broker of this.brokers.values()) for (const [peer, count] of broker.framesTo) out.set(`${broker.id}>${peer}`, count);
    return out;
  }

  stop(): void {
    for (const { executor } of this.brokers.values()) executor.stop();
  }
}
