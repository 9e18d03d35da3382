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
  const { from, count } = options;
  let coverage: ClusterCoverage | undefined;
  const scenarios = new Map<string, number>();
  const convergeTicks: number[] = [];
  const failures: ClusterSeedReport[] = [];
  const started = performance.now();
  let lastProgress = started;
  for (let seed = from; seed < from + count; seed++) {
    const report = runClusterSeed(seed);
    if (coverage === undefined) coverage = { ...report.coverage };
    else addClusterCoverage(coverage, report.coverage);
    scenarios.set(report.scenario, (scenarios.get(report.scenario) ?? 0) + 1);
    if (report.violation !== undefined) failures.push(report);
    else convergeTicks.push(report.convergeTicks);
    const now = performance.now();
    if (now - lastProgress > 2000) {
      lastProgress = now;
      const done = seed - from + 1;
      process.stderr.write(`  ${done}/${count} seeds, ${((done / (now - started)) * 1000).toFixed(0)} seeds/s, ${failures.length} failed\n`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  convergeTicks.sort((a, b) => a - b);
  const at = (q: number) => convergeTicks[Math.min(convergeTicks.length - 1, Math.floor(q * convergeTicks.length))] ?? NaN;
  console.log(`cluster seeds ${from}..${from + count - 1}: ${count - failures.length} passed, ${failures.length} failed in ${seconds.toFixed(1)}s (${(count / seconds).toFixed(1)} seeds/s)`);
  console.log(`scenarios: ${[...scenarios].map(([name, n]) => `${name} ${n}`).join(', ')}`);
  console.log(`coverage: ${Object.entries(coverage ?? {}).map(([key, value]) => `${key} ${value}`).join(', ')}`);
  console.log(`converged after heal (ticks): p50 ${at(0.5)}, p99 ${at(0.99)}, max ${convergeTicks.at(-1) ?? NaN}`);
  for (const failure of failures.slice(0, 5)) printFailure(failure);
  if (failures.length > 5) console.log(`\n… and ${failures.length - 5} more failing seeds: ${failures.slice(5, 50).map((f) => f.seed).join(' ')}`);
  return failures.length === 0 ? 0 : 1;
}
