import { runCampaign } from '../campaign-runner';
import { addClusterCoverage, runClusterSeed, type ClusterCoverage, type ClusterSeedReport } from './simulator';

// The command-line side of the cluster simulation (`npm run sim -- --cluster ...`): a
// campaign of seeds with seeds/s, coverage totals and failures, or one seed replayed with its trace.

function printFailure(report: ClusterSeedReport): void {
  const replay = runClusterSeed(report.seed, { trace: true });
  console.log(`\nFAIL seed ${report.seed} (${report.scenario}, ${report.brokers} brokers) at ${report.violation!.atMs}ms`);
  console.log(`  ${report.violation!.checker}: ${report.violation!.message}`);
  console.log(`  repro: npm run sim -- --cluster --seed ${report.seed}`);
  console.log('  last steps:');
  for (const line of replay.trace ?? []) console.log(`    ${line}`);
}

/**
 * Runs one seed with its trace, or `count` seeds from `from`; returns the exit code.
 * @example process.exit(runClusterCampaign({ from: 1, count: 100_000 }));
 */
export function runClusterCampaign(options: { seed: number } | { from: number; count: number }): number {
  if ('seed' in options) {
    const report = runClusterSeed(options.seed, { trace: true });
    if (report.violation !== undefined) {
      printFailure(report);
      return 1;
    }
    console.log(`seed ${options.seed} (${report.scenario}, ${report.brokers} brokers, ${report.clusters} clusters): ok, converged ${report.convergeTicks} ticks after the heal`);
    console.log(JSON.stringify(report.coverage));
    for (const line of report.trace ?? []) console.log(`  ${line}`);
    return 0;
  }
  return runCampaign<ClusterSeedReport, ClusterCoverage>({
    ...options,
    label: 'cluster seeds',
    run: (seed) => runClusterSeed(seed),
    addCoverage: addClusterCoverage,
    measure: { name: 'converged after heal (ticks)', of: (report) => report.convergeTicks },
    printFailure,
  });
}
