import { runCampaign } from '../campaign-runner';
import { addCoordinatorsCoverage, runCoordinatorsSeed, type CoordinatorsCoverage, type CoordinatorsOptions, type CoordinatorsSeedReport } from './simulator';

// The command-line side of the coordinators simulation (`npm run sim -- --coordinators ...`):
// a campaign of seeds with seeds/s, coverage totals and failures, or one seed replayed with
// its trace; `--stale-coordinator` runs the stale rule the checkers must catch.

function printFailure(report: CoordinatorsSeedReport, options: CoordinatorsOptions): void {
  const replay = runCoordinatorsSeed(report.seed, { ...options, trace: true });
  const stale = options.staleCoordinator === true ? ' --stale-coordinator' : '';
  console.log(`\nFAIL seed ${report.seed} (${report.scenario}) at ${report.violation!.atMs}ms`);
  console.log(`  ${report.violation!.checker}: ${report.violation!.message}`);
  console.log(`  repro: npm run sim -- --coordinators${stale} --seed ${report.seed}`);
  console.log('  last steps:');
  for (const line of replay.trace ?? []) console.log(`    ${line}`);
}

/**
 * Runs one seed with its trace, or `count` seeds from `from`; returns the exit code.
 * @example process.exit(runCoordinatorsCampaign({ from: 1, count: 100_000 }, {}));
 */
export function runCoordinatorsCampaign(seeds: { seed: number } | { from: number; count: number }, options: CoordinatorsOptions): number {
  if ('seed' in seeds) {
    const report = runCoordinatorsSeed(seeds.seed, { ...options, trace: true });
    if (report.violation !== undefined) {
      printFailure(report, options);
      return 1;
    }
    console.log(`seed ${seeds.seed} (${report.scenario}): ok, settled ${report.settleMs} ms after the heal`);
    console.log(JSON.stringify(report.coverage));
    for (const line of report.trace ?? []) console.log(`  ${line}`);
    return 0;
  }
  return runCampaign<CoordinatorsSeedReport, CoordinatorsCoverage>({
    ...seeds,
    label: 'coordinators seeds',
    run: (seed) => runCoordinatorsSeed(seed, options),
    addCoverage: addCoordinatorsCoverage,
    measure: { name: 'settled after heal (ms)', of: (report) => report.settleMs },
    printFailure: (report) => printFailure(report, options),
  });
}
