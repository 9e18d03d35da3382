import { ManualClock, type Clock } from '../../src/clock';
import { createGroupCommitter, storageSink } from '../../src/log';
import { Executor, type ApplicationEffect, StoredRaftLog } from '../../src/node';
import type { RaftConfig } from '../../src/raft';
import { createMemoryStorage } from '../../src/storage';

// Raft groups for the benchmarks, through the node's executor: brokers in one thread, each
// with its raft logs in in-memory storage behind the real group commit; frames between
// them are delivered in a microtask, and flushes run in microtasks (as on the real clock),
// while ticks come from a manual clock the benchmark advances.

export const BENCH_TICK_MS = 50;
const HEARTBEAT_TICKS = 2;
const ELECTION_TICKS = 10;

/** Resolves in a new task: the microtasks queued before (deliveries, writes) have all run. */
export const nextTask = () =>
  new Promise<void>((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(undefined);
  });

export class BenchCluster {
  readonly ticks = new ManualClock();
  readonly executors = new Map<string, Executor>();
  /** Every application effect, per broker and group, for who waits on them. */
  onEffect: (broker: string, group: string, effect: ApplicationEffect) => void = () => undefined;

  private constructor(readonly brokers: readonly string[], readonly groups: readonly string[]) {}

  /** `brokers` brokers, each a member of all `groups` groups, with `overrides` of the raft options. */
  static async start(brokers: number, groups: number, overrides: Partial<RaftConfig> = {}): Promise<BenchCluster> {
    const cluster = new BenchCluster(
      Array.from({ length: brokers }, (_, i) => `b${i + 1}`),
      Array.from({ length: groups }, (_, i) => `g${i}`),
    );
    // Timers from the manual clock; deferred work in microtasks, as the real clock does.
    const clock: Clock = {
      now: () => cluster.ticks.now(),
      monotonic: () => cluster.ticks.monotonic(),
      after: (ms, fn) => cluster.ticks.after(ms, fn),
      defer: (fn) => queueMicrotask(fn),
    };
    let seed = 1;
    for (const id of cluster.brokers) {
      const storage = createMemoryStorage();
      const executor = new Executor({
        nodeId: id,
        clock,
        committer: createGroupCommitter(storageSink(storage), clock),
        sendFrame: (peer, messages) => {
          queueMicrotask(() => cluster.executors.get(peer)!.receive(id, messages));
          return true;
        },
        tickMs: BENCH_TICK_MS,
        heartbeatFlushTicks: HEARTBEAT_TICKS,
      });
      for (const group of cluster.groups) {
        const config: RaftConfig = {
          id,
          voters: cluster.brokers,
          electionTicks: ELECTION_TICKS,
          heartbeatTicks: HEARTBEAT_TICKS,
          maxInflightAppends: 8,
          maxEntriesPerAppend: 64,
          maxBytesPerAppend: 1 << 20,
          maxUncommittedEntries: 4096,
          maxApplyBytesPerStep: 1 << 20,
          maxPendingReads: 16,
          seed: seed++,
          ...overrides,
        };
        executor.addRaftGroup(group, { config, store: await StoredRaftLog.open(storage, group), handler: { effect: (e) => cluster.onEffect(id, group, e) } });
      }
      cluster.executors.set(id, executor);
      executor.start();
    }
    return cluster;
  }

  /** Lets `ms` of ticks pass, a tick at a time, each followed by everything it set off. */
  async advance(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += BENCH_TICK_MS) {
      this.ticks.advance(BENCH_TICK_MS);
      await nextTask();
    }
  }

  /** Advances until every group has a leader that has committed in its term (bounded by `maxMs`). */
  async elect(maxMs = 60_000): Promise<void> {
    for (let t = 0; !this.groups.every((g) => this.leaderOf(g) !== undefined); t += BENCH_TICK_MS) {
      if (t > maxMs) throw new Error(`bench: no leader in every group within ${maxMs} ms`);
      await this.advance(BENCH_TICK_MS);
    }
    await this.advance(10 * BENCH_TICK_MS); // followers hear of the commit; the groups go idle
  }

  /** The broker that leads `group` and has committed in its term. */
  leaderOf(group: string): string | undefined {
    for (const [id, executor] of this.executors) {
      const state = executor.raftState(group);
      if (state?.role === 'leader' && state.commit > 0 && state.leader === id) return id;
    }
    return undefined;
  }

  stop(): void {
    for (const executor of this.executors.values()) executor.stop();
  }
}
