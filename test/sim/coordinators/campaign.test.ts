import { expect, it } from 'vitest';
import { coordinatorAction } from '../../../src/node';
import { addCoordinatorsCoverage, runCoordinatorsSeed, type CoordinatorsCoverage, type CoordinatorsSeedReport } from './simulator';

// The CI seed range of the coordinators simulation: one group's coordinator following the
// leadership of its offsets partition between whole brokers, with produces routed to each
// partition's leader, under moves, closes and a lossy network. 2,000 seeds take about 4.6 s
// on this 2-core machine (about 430 seeds/s; `npm run sim -- --coordinators --seeds 20000`:
// 47 s, 425 seeds/s); `npm run sim -- --coordinators --seed N` replays a seed with its trace.
const FROM_SEED = 1;
const SEEDS = 2000;

const describe = (f: CoordinatorsSeedReport) => `seed ${f.seed}: ${f.violation!.checker}: ${f.violation!.message} — repro: npm run sim -- --coordinators --seed ${f.seed}`;

it(`coordinators seeds ${FROM_SEED}..${FROM_SEED + SEEDS - 1} keep every invariant and settle after the heal`, () => {
  const failures: CoordinatorsSeedReport[] = [];
  let coverage: CoordinatorsCoverage | undefined;
  for (let seed = FROM_SEED; seed < FROM_SEED + SEEDS; seed++) {
    const report = runCoordinatorsSeed(seed);
    if (coverage === undefined) coverage = { ...report.coverage };
    else addCoordinatorsCoverage(coverage, report.coverage);
    if (report.violation !== undefined) failures.push(report);
  }
  expect(failures.slice(0, 5).map(describe)).toEqual([]);
  // The campaign must exercise what it claims to.
  for (const key of Object.keys(coverage!) as Array<keyof CoordinatorsCoverage>) expect(coverage![key], key).toBeGreaterThan(SEEDS / 10);
}, 120_000);

it('a coordinator reloads whenever it leads at another epoch than it loaded at, and forgets when it does not lead', () => {
  expect(coordinatorAction(undefined, true, 0)).toBe('load');
  expect(coordinatorAction(0, true, 0)).toBe('keep');
  expect(coordinatorAction(0, false, 1)).toBe('forget');
  expect(coordinatorAction(undefined, false, 1)).toBe('keep');
  // Led at 0, then its view jumped to 2 (another broker led at 1): loading again is the only way to see that broker's commits.
  expect(coordinatorAction(0, true, 2)).toBe('load');
});

// The checkers catch a coordinator that keeps its state when leadership of its offsets
// partition returns to it: seed 1 with the stale rule loses an acknowledged commit (another
// broker coordinated the group meanwhile); with the rule it keeps every invariant.
it('seed 1 catches a coordinator that keeps a stale cache when leadership returns to it', () => {
  const stale = runCoordinatorsSeed(1, { staleCoordinator: true });
  expect(stale.violation?.checker).toBe('acknowledged commit kept');
  expect(runCoordinatorsSeed(1).violation).toBeUndefined();
  let caught = 0;
  for (let seed = 1; seed <= 200; seed++) if (runCoordinatorsSeed(seed, { staleCoordinator: true }).violation?.checker === 'acknowledged commit kept') caught++;
  expect(caught).toBeGreaterThan(50);
});

// The same for the produce checker: leaders that skip leaderEpochRefusal acknowledge records
// asked for at an epoch they do not lead at (seed 1: asked at epoch 0, appended at 2).
it('seed 1 catches a leader that serves a produce asked at another leader epoch', () => {
  expect(runCoordinatorsSeed(1, { ignoreLeaderEpoch: true }).violation?.checker).toBe('produce at the leader');
});
