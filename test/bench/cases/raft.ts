import { TestCluster } from '../../raft/harness';
import { Prng } from '../../sim/prng';
import { median } from '../stats';
import type { BenchCase } from '../types';

// What the pure raft core costs: a 3-member group whose messages and disk writes are
// delivered at once in memory, so the figure is the core's CPU per committed entry.

const PAYLOAD_BYTES = 100;
const PROPOSALS_PER_ROUND = 32;
const RUN_MS = 1000;
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
    title: `3-member raft group in memory: proposals of ${PAYLOAD_BYTES} B committed per second (core CPU only)`,
    async run() {
      const c = new TestCluster(['a', 'b', 'c'], {
        config: { maxInflightAppends: 8, maxEntriesPerAppend: 64, maxUncommittedEntries: 4096 },
      });
      c.elect('a');
      const payload = new Uint8Array(PAYLOAD_BYTES);
      const startCommit = c.state('a').commit;
      const start = performance.now();
      let elapsedMs = 0;
      while (elapsedMs < RUN_MS) {
        for (let i = 0; i < PROPOSALS_PER_ROUND; i++) c.input('a', { type: 'propose', payloads: [payload] });
        c.deliver();
        for (const member of c.members.values()) {
          member.effects.length = 0;
          member.applied.length = 0;
        }
        elapsedMs = performance.now() - start;
      }
      const committed = c.state('a').commit - startCommit;
      return [{ id: 'raft.commit', value: committed / (elapsedMs / 1000), unit: 'proposals/s', better: 'higher' }];
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
