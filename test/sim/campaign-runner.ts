// A campaign of seeds for a command line (`npm run sim`): runs them, prints progress to
// stderr, then seeds/s, scenarios, coverage totals, a measure's percentiles and the first
// failures with their traces. Shared by the raft and the cluster simulations.

export interface CampaignReport<C> {
  readonly seed: number;
  readonly scenario: string;
  readonly coverage: C;
  readonly violation?: { readonly checker: string; readonly message: string; readonly atMs: number } | undefined;
}

export interface Campaign<R extends CampaignReport<C>, C> {
  readonly from: number;
  readonly count: number;
  /** What a seed is of, for the summary line ("seeds", "cluster seeds"). */
  readonly label: string;
  run(seed: number): R;
  addCoverage(total: C, more: C): void;
  /** A passing seed's measure and its name, e.g. ticks until live after the heal. */
  readonly measure: { readonly name: string; of(report: R): number };
  /** Prints a failure: replays it with its trace. */
  printFailure(report: R): void;
}

/**
 * Runs the campaign and prints its summary; returns the process exit code (1 if any seed failed).
 * @example process.exit(runCampaign({ from: 1, count: 1000, label: 'seeds', run: runSeed, ... }));
 */
export function runCampaign<R extends CampaignReport<C>, C extends object>(campaign: Campaign<R, C>): number {
  const { from, count } = campaign;
  let coverage: C | undefined;
  const scenarios = new Map<string, number>();
  const measures: number[] = [];
  const failures: R[] = [];
  const started = performance.now();
  let lastProgress = started;
  for (let seed = from; seed < from + count; seed++) {
    const report = campaign.run(seed);
    if (coverage === undefined) coverage = { ...report.coverage };
    else campaign.addCoverage(coverage, report.coverage);
    scenarios.set(report.scenario, (scenarios.get(report.scenario) ?? 0) + 1);
    if (report.violation !== undefined) failures.push(report);
    else measures.push(campaign.measure.of(report));
    const now = performance.now();
    if (now - lastProgress > 2000) {
      lastProgress = now;
      const done = seed - from + 1;
      process.stderr.write(`  ${done}/${count} seeds, ${((done / (now - started)) * 1000).toFixed(0)} seeds/s, ${failures.length} failed\n`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  measures.sort((a, b) => a - b);
  const at = (q: number) => measures[Math.min(measures.length - 1, Math.floor(q * measures.length))] ?? NaN;
  console.log(`${campaign.label} ${from}..${from + count - 1}: ${count - failures.length} passed, ${failures.length} failed in ${seconds.toFixed(1)}s (${(count / seconds).toFixed(1)} seeds/s)`);
  console.log(`scenarios: ${[...scenarios].map(([name, n]) => `${name} ${n}`).join(', ')}`);
  console.log(`coverage: ${Object.entries(coverage ?? {}).map(([key, value]) => `${key} ${String(value)}`).join(', ')}`);
  console.log(`${campaign.measure.name}: p50 ${at(0.5)}, p99 ${at(0.99)}, max ${measures.at(-1) ?? NaN}`);
  for (const failure of failures.slice(0, 5)) campaign.printFailure(failure);
  if (failures.length > 5) console.log(`\n… and ${failures.length - 5} more failing seeds: ${failures.slice(5, 50).map((f) => f.seed).join(' ')}`);
  return failures.length === 0 ? 0 : 1;
}
