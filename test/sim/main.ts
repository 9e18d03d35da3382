// `npm run sim -- --seeds 100000 [--from N]` runs a campaign of seeds and prints
// seeds/s, coverage totals and failures; `npm run sim -- --seed N` replays one seed
// with its trace. `--cluster` does the same with the cluster simulation (whole brokers
// with the metadata controller, test/sim/cluster/); `--coordinators` with the group
// coordinator following its offsets partition's leader between brokers (test/sim/coordinators/),
// `--stale-coordinator` running the stale rule its checkers must catch; `--partitions` with
// replicated partitions on whole brokers, judged by their clients' history (test/sim/partitions/).
import { parseArgs } from 'node:util';
import { runClusterCampaign } from './cluster/campaign';
import { runCoordinatorsCampaign } from './coordinators/campaign';
import { runPartitionsCampaign } from './partitions/campaign';
import { runCampaign } from './campaign-runner';
import { addCoverage, runSeed, type Coverage, type SeedReport } from './simulator';

const { values } = parseArgs({
  options: { seeds: { type: 'string' }, from: { type: 'string' }, seed: { type: 'string' }, cluster: { type: 'boolean' }, coordinators: { type: 'boolean' }, 'stale-coordinator': { type: 'boolean' }, partitions: { type: 'boolean' } },
});
const whole = (name: string, text: string | undefined, fallback: number): number => {
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`sim: --${name} takes a whole number, got "${text}"`);
    process.exit(2);
  }
  return value;
};

/** Prints a failing seed: what broke, the repro command, and the steps before it. */
function printFailure(report: SeedReport): void {
  const replay = runSeed(report.seed, { trace: true });
  console.log(`\nFAIL seed ${report.seed} (${report.scenario}, ${report.nodes} nodes) at ${report.violation!.atMs}ms`);
  console.log(`  ${report.violation!.checker}: ${report.violation!.message}`);
  console.log(`  repro: npm run sim -- --seed ${report.seed}`);
  console.log('  last steps:');
  for (const line of replay.trace ?? []) console.log(`    ${line}`);
}

if (values.cluster === true) {
  const seed = values.seed === undefined ? undefined : whole('seed', values.seed, 0);
  process.exit(runClusterCampaign(seed === undefined ? { from: whole('from', values.from, 1), count: whole('seeds', values.seeds, 1000) } : { seed }));
}

if (values.coordinators === true) {
  const seed = values.seed === undefined ? undefined : whole('seed', values.seed, 0);
  const seeds = seed === undefined ? { from: whole('from', values.from, 1), count: whole('seeds', values.seeds, 1000) } : { seed };
  process.exit(runCoordinatorsCampaign(seeds, { staleCoordinator: values['stale-coordinator'] === true }));
}

if (values.partitions === true) {
  const seed = values.seed === undefined ? undefined : whole('seed', values.seed, 0);
  process.exit(await runPartitionsCampaign(seed === undefined ? { from: whole('from', values.from, 1), count: whole('seeds', values.seeds, 1000) } : { seed }));
}

if (values.seed !== undefined) {
  const seed = whole('seed', values.seed, 0);
  const report = runSeed(seed, { trace: true });
  if (report.violation !== undefined) {
    printFailure(report);
    process.exit(1);
  }
  console.log(`seed ${seed} (${report.scenario}, ${report.nodes} nodes): ok, live ${report.livenessTicks} ticks after the heal`);
  console.log(JSON.stringify(report.coverage));
  console.log('last steps:');
  for (const line of report.trace ?? []) console.log(`  ${line}`);
  process.exit(0);
}

process.exit(
  runCampaign<SeedReport, Coverage>({
    from: whole('from', values.from, 1),
    count: whole('seeds', values.seeds, 1000),
    label: 'seeds',
    run: (seed) => runSeed(seed),
    addCoverage,
    measure: { name: 'liveness after heal (ticks)', of: (report) => report.livenessTicks },
    printFailure,
  }),
);
