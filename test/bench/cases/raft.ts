import { TestCluster } from '../../raft/harness';
import type { BenchCase } from '../types';

// What the pure raft core costs: a 3-member group whose messages and disk writes are
// delivered at once in memory, so the figure is the core's CPU per committed entry.

const PAYLOAD_BYTES = 100;
const PROPOSALS_PER_ROUND = 32;
const RUN_MS = 1000;

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
];
