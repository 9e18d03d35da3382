import { expect, it } from 'vitest';
import { addPartitionsCoverage, runPartitionsSeed, type PartitionsCoverage, type PartitionsSeedReport } from './simulator';

// The CI seed range of the partitions simulation: whole brokers with replicated partitions
// (PartitionReplica on the executor, the partition log as the raft log, storage that loses
// unlanded writes in a crash), producers with acks -1 and consumers, under loss, delay,
// duplication, partitions and crashes; judged by the history checker and by every replica's
// log against the leader's. 2,000 seeds took 65 s in `npx vitest run test/sim` on this 2-core
// machine (about 31 seeds/s, beside the other simulations); `npm run sim -- --partitions
// --seeds 100000` runs a campaign (22–41 seeds/s by the machine's load), `npm run sim -- --partitions --seed N`
// replays a seed with its trace. With acks -1 answered at the leader's own durable write (a
// broken rule, tried by hand in src/node/replica.ts), 621 of these 2,000 seeds fail, the first
// at seed 6: a leader cut off acknowledged a record at offset 61 that the new leader's
// acknowledged record replaced (an inconsistent offset).
// The producers are idempotent (KIP-98: a producer id, per-partition sequences, every retry the
// same bytes; a new producer id after a send given up), their requests and answers are lost,
// delayed and duplicated, and the checker counts a value at two offsets as an anomaly: with the
// leader's duplicate detection switched off by hand (src/node/replica.ts #screen), 54 of the
// first 100 seeds fail. With it, `npm run sim -- --partitions --seeds 2000` ran 2,000 seeds in
// 46 s on the quiet machine (43 seeds/s; 2,387 retries answered as duplicates); this file's
// 2,000 took 64–88 s in vitest beside other helpers' runs.
const FROM_SEED = 1;
const SEEDS = 2000;

const describe = (f: PartitionsSeedReport) => `seed ${f.seed}: ${f.violation!.checker}: ${f.violation!.message} — repro: npm run sim -- --partitions --seed ${f.seed}`;

it(`partitions seeds ${FROM_SEED}..${FROM_SEED + SEEDS - 1} lose no acknowledged write, read nothing later lost, keep the replicas identical and settle after the heal`, async () => {
  const failures: PartitionsSeedReport[] = [];
  let coverage: PartitionsCoverage | undefined;
  for (let seed = FROM_SEED; seed < FROM_SEED + SEEDS; seed++) {
    const report = await runPartitionsSeed(seed);
    if (coverage === undefined) coverage = { ...report.coverage };
    else addPartitionsCoverage(coverage, report.coverage);
    if (report.violation !== undefined) failures.push(report);
  }
  expect(failures.slice(0, 5).map(describe)).toEqual([]);
  // The campaign must exercise what it claims to; a consumer behind its leader's log start and a
  // follower restoring a snapshot take retention and a long enough outage, so they are rarer.
  const rare = new Set<keyof PartitionsCoverage>(['offsetResets', 'snapshotsRestored']);
  for (const key of Object.keys(coverage!) as Array<keyof PartitionsCoverage>) expect(coverage![key], key).toBeGreaterThan(rare.has(key) ? SEEDS / 100 : SEEDS / 20);
}, 300_000);

// Seeds that once failed, each with what it found; kept so the fix stays.
const REGRESSIONS: ReadonlyArray<[number, string]> = [
  [802031, 'a late attempt of a send its producer had given up landed after the producer\'s next send: a new producer id fenced nothing; now the producer bumps its epoch (KIP-360)'],
  [21918, 'a follower restored its leader snapshot while its retention removed the head: the removal set the log start back over the restored log'],
];

it.each(REGRESSIONS)('regression seed %i (%s) keeps every invariant', async (seed) => {
  const report = await runPartitionsSeed(seed, { loseBrokers: false });
  expect(report.violation === undefined ? [] : [describe(report)]).toEqual([]);
});

it('a seed replays exactly: the same history, coverage and settle time', async () => {
  const [a, b] = [await runPartitionsSeed(11), await runPartitionsSeed(11)];
  expect(b.history).toEqual(a.history);
  expect(b.coverage).toEqual(a.coverage);
  expect(b.settleMs).toBe(a.settleMs);
  expect(a.history.ops.length).toBeGreaterThan(0);
});
