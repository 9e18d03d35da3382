import { wrap, type Remote } from 'comlink';
import { TestCluster } from '../../raft/harness';
import { Prng } from '../../sim/prng';
import { BenchCluster } from '../raft-cluster';
import { median } from '../stats';
import type { BenchCase } from '../types';
import type { RaftWorkerApi } from '../workers/raft-api';

// What raft costs through the node's executor: a 3-member group whose logs are in
// in-memory storage behind the group commit and whose frames are delivered in memory, so
// the figure is the CPU of the core, the executor and the storage path per committed
// entry; and what many idle groups cost one worker.

const PAYLOAD_BYTES = 100;
const PROPOSALS_PER_ROUND = 32;
const RUN_MS = 1000;
/** Groups, each with a member on every one of `IDLE_BROKERS` brokers in one worker. */
const IDLE_GROUPS = 1000;
const IDLE_BROKERS = 3;
/** Idle time simulated per run (ticks come from a manual clock, as fast as the CPU allows). */
const IDLE_SECONDS = 10;

let worker: Remote<RaftWorkerApi> | undefined;
const raftWorker = () => (worker ??= wrap<RaftWorkerApi>(new Worker(new URL('../workers/raft.worker.ts', import.meta.url), { type: 'module' })));
/** Seeds of `raft.transfer`; each gives the target a different lag and message loss. */
const TRANSFER_SEEDS = 200;
/** Entries the transfer target misses before the request, at most. */
const TRANSFER_LAG_ENTRIES_MAX = 40;
/** Chance that one message is lost while the transfer runs. */
const TRANSFER_LOSS = 0.05;
/** The group's election timeout: a transfer not done by then is abandoned, and the closing tab asks again. */
const ELECTION_TICKS = 10;
/** A transfer that takes longer is a bug. */
const TRANSFER_TICKS_MAX = 1000;

/**
 * Ticks from a transfer request to the new leader committing an entry of its term, in a
 * 3-member group where a message takes one tick (heartbeat every 2 ticks, election
 * timeout 10, as the simulator) and the target first lacks up to TRANSFER_LAG_ENTRIES_MAX entries.
 * The leader asks again each election timeout, as a closing tab would, until it has handed over.
 * @example transferTicks(7) // 6
 */
function transferTicks(seed: number): number {
  const prng = new Prng(seed);
  const c = new TestCluster(['a', 'b', 'c'], { config: { electionTicks: ELECTION_TICKS, heartbeatTicks: 2, maxEntriesPerAppend: 8 } });
  c.elect('a');
  const lag = prng.int(0, TRANSFER_LAG_ENTRIES_MAX);
  for (let i = 0; i < lag; i++) c.propose('a', i);
  c.deliver({ drop: (m) => m.to === 'c' });
  const oldLastIndex = c.member('a').log.entries.length;
  for (let ticks = 1; ticks <= TRANSFER_TICKS_MAX; ticks++) {
    if (ticks % ELECTION_TICKS === 1 && c.state('a').role === 'leader') c.input('a', { type: 'transferLeadership', to: 'c' });
    for (const id of ['a', 'b', 'c']) c.tick(id);
    c.deliver({ drop: () => prng.chance(TRANSFER_LOSS) }, 1);
    const target = c.state('c');
    if (target.role === 'leader' && target.commit > oldLastIndex) return ticks;
  }
  throw new Error(`raft.transfer: seed ${seed} did not hand over within ${TRANSFER_TICKS_MAX} ticks`);
}

export const cases: BenchCase[] = [
  {
    id: 'raft.commit',
    title: `3-member raft group through the executor, logs in in-memory storage: proposals of ${PAYLOAD_BYTES} B committed per second`,
    async run() {
      const cluster = await BenchCluster.start(3, 1, { maxInflightAppends: 8, maxEntriesPerAppend: 64, maxUncommittedEntries: 4096 });
      await cluster.elect();
      const group = cluster.groups[0]!;
      const leader = cluster.leaderOf(group)!;
      const executor = cluster.executors.get(leader)!;
      let lastProposed = 0;
      let waiting: { index: number; resolve: () => void } | undefined;
      cluster.onEffect = (broker, _group, effect) => {
        if (broker !== leader) return;
        if (effect.type === 'proposed') lastProposed = effect.lastIndex;
        if (effect.type === 'apply' && waiting !== undefined && effect.entries.at(-1)!.index >= waiting.index) {
          const done = waiting;
          waiting = undefined;
          done.resolve();
        }
      };
      const payload = new Uint8Array(PAYLOAD_BYTES);
      const startCommit = executor.raftState(group)!.commit;
      const start = performance.now();
      let elapsedMs = 0;
      while (elapsedMs < RUN_MS) {
        for (let i = 0; i < PROPOSALS_PER_ROUND; i++) executor.input(group, { type: 'propose', payloads: [payload] });
        await new Promise<void>((resolve) => (waiting = { index: lastProposed, resolve }));
        elapsedMs = performance.now() - start;
      }
      const committed = executor.raftState(group)!.commit - startCommit;
      cluster.stop();
      return [{ id: 'raft.commit', value: committed / (elapsedMs / 1000), unit: 'proposals/s', better: 'higher' }];
    },
  },
  {
    id: 'raft.groups.idle',
    title: `CPU per idle raft group member per second: ${IDLE_BROKERS} brokers in one worker, each in ${IDLE_GROUPS} groups (ticks and heartbeats only)`,
    runs: 3,
    async run() {
      const { ms, frames, messages } = await raftWorker().idle(IDLE_BROKERS, IDLE_GROUPS, IDLE_SECONDS);
      const members = IDLE_BROKERS * IDLE_GROUPS;
      const links = IDLE_BROKERS * (IDLE_BROKERS - 1);
      return [
        { id: 'raft.groups.idle', value: (ms * 1000) / (IDLE_SECONDS * members), unit: 'µs CPU/member/s', better: 'lower' },
        { id: 'raft.groups.idle.frames', value: frames / IDLE_SECONDS / links, unit: 'frames/link/s', better: 'lower' },
        { id: 'raft.groups.idle.messages', value: messages / IDLE_SECONDS / links, unit: 'messages/link/s', better: 'lower' },
      ];
    },
  },
  {
    id: 'raft.transfer',
    title: `leader transfer in a 3-member group: ticks from the request to the new leader committing, median over ${TRANSFER_SEEDS} seeds`,
    runs: 1,
    async run() {
      const ticks = Array.from({ length: TRANSFER_SEEDS }, (_, i) => transferTicks(i + 1));
      return [{ id: 'raft.transfer', value: median(ticks), unit: 'ticks', better: 'lower' }];
    },
  },
];
