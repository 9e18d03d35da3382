import { runCampaignAsync } from '../campaign-runner';
import { addPartitionsCoverage, runPartitionsSeed, type PartitionsCoverage, type PartitionsSeedReport } from './simulator';

// The command-line side of the partitions simulation (`npm run sim -- --partitions ...`): a
// campaign of seeds with seeds/s, coverage totals and failures, or one seed replayed with
// its trace.

async function printFailure(report: PartitionsSeedReport): Promise<void> {
  const replay = await runPartitionsSeed(report.seed, { trace: true });
  console.log(`\nFAIL seed ${report.seed} (${report.scenario}) at ${report.violation!.atMs}ms`);
  console.log(`  ${report.violation!.checker}: ${report.violation!.message}`);
  console.log(`  repro: npm run sim -- --partitions --seed ${report.seed}`);
  console.log('  last steps:');
  for (const line of replay.trace ?? []) console.log(`    ${line}`);
}

/**
 * Runs one seed with its trace, or `count` seeds from `from`; resolves to the exit code.
 * @example process.exit(await runPartitionsCampaign({ from: 1, count: 100_000 }));
 */
export async function runPartitionsCampaign(seeds: { seed: number } | { from: number; count: number }): Promise<number> {
  if ('seed' in seeds) {
    const report = await runPartitionsSeed(seeds.seed, { trace: true });
    if (report.violation !== undefined) {
      await printFailure(report);
      return 1;
    }
    console.log(`seed ${seeds.seed} (${report.scenario}): ok, settled ${report.settleMs} ms after the heal, ${report.coverage.deduplicated} retries deduplicated`);
    console.log(JSON.stringify(report.coverage));
    for (const line of report.trace ?? []) console.log(`  ${line}`);
    return 0;
  }
  return runCampaignAsync<PartitionsSeedReport, PartitionsCoverage>({
    ...seeds,
    label: 'partitions seeds',
    run: (seed) => runPartitionsSeed(seed),
    addCoverage: addPartitionsCoverage,
    measure: { name: 'settled after heal (ms)', of: (report) => report.settleMs },
    printFailure,
  });
}
