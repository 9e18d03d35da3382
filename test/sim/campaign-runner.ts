// A campaign of seeds for a command line (`npm run sim`): runs them, prints progress to
// stderr, then seeds/s, scenarios, coverage totals, a measure's percentiles and the first
// failures with their traces. Shared by the simulations.

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
  const tally = new Tally(campaign);
  for (let seed = campaign.from; seed < campaign.from + campaign.count; seed++) tally.add(campaign.run(seed));
  tally.printSummary();
  for (const failure of tally.failures.slice(0, 5)) campaign.printFailure(failure);
  return tally.printRest();
}

/**
 * {@link runCampaign} for a simulation whose seeds run asynchronously (one at a time: a seed's
 * promises settle in its own simulated time, never interleaved with another's).
 * @example process.exit(await runCampaignAsync({ from: 1, count: 1000, label: 'partitions seeds', run: runPartitionsSeed, ... }));
 */
export async function runCampaignAsync<R extends CampaignReport<C>, C extends object>(campaign: AsyncCampaign<R, C>): Promise<number> {
  const tally = new Tally(campaign);
  for (let seed = campaign.from; seed < campaign.from + campaign.count; seed++) tally.add(await campaign.run(seed));
  tally.printSummary();
  for (const failure of tally.failures.slice(0, 5)) await campaign.printFailure(failure);
  return tally.printRest();
}

export interface AsyncCampaign<R extends CampaignReport<C>, C> extends Omit<Campaign<R, C>, 'run' | 'printFailure'> {
  run(seed: number): Promise<R>;
  printFailure(report: R): Promise<void>;
}

/** A campaign's running totals, progress on stderr, and its summary. */
class Tally<R extends CampaignReport<C>, C extends object> {
  #coverage: C | undefined;
  readonly #scenarios = new Map<string, number>();
  readonly #measures: number[] = [];
  readonly #failures: R[] = [];
  readonly #started = performance.now();
  #lastProgress = this.#started;
  #done = 0;

  constructor(readonly campaign: Omit<Campaign<R, C>, 'run' | 'printFailure'>) {}

  get failures(): readonly R[] {
    return this.#failures;
  }

  add(report: R): void {
    const { campaign } = this;
    if (this.#coverage === undefined) this.#coverage = { ...report.coverage };
    else campaign.addCoverage(this.#coverage, report.coverage);
    this.#scenarios.set(report.scenario, (this.#scenarios.get(report.scenario) ?? 0) + 1);
    if (report.violation !== undefined) this.#failures.push(report);
    else this.#measures.push(campaign.measure.of(report));
    this.#done++;
    const now = performance.now();
    if (now - this.#lastProgress > 2000) {
      this.#lastProgress = now;
      process.stderr.write(`  ${this.#done}/${campaign.count} seeds, ${((this.#done / (now - this.#started)) * 1000).toFixed(0)} seeds/s, ${this.#failures.length} failed\n`);
    }
  }

  /** Prints seeds/s, scenarios, coverage and the measure's percentiles. */
  printSummary(): void {
    const { campaign } = this;
    const { from, count } = campaign;
    const failures = this.#failures;
    const measures = this.#measures;
    const seconds = (performance.now() - this.#started) / 1000;
    measures.sort((a, b) => a - b);
    const at = (q: number) => measures[Math.min(measures.length - 1, Math.floor(q * measures.length))] ?? NaN;
    console.log(`${campaign.label} ${from}..${from + count - 1}: ${count - failures.length} passed, ${failures.length} failed in ${seconds.toFixed(1)}s (${(count / seconds).toFixed(1)} seeds/s)`);
    console.log(`scenarios: ${[...this.#scenarios].map(([name, n]) => `${name} ${n}`).join(', ')}`);
    console.log(`coverage: ${Object.entries(this.#coverage ?? {}).map(([key, value]) => `${key} ${String(value)}`).join(', ')}`);
    console.log(`${campaign.measure.name}: p50 ${at(0.5)}, p99 ${at(0.99)}, max ${measures.at(-1) ?? NaN}`);
  }

  /** After the first five failures are printed: the other failing seeds; the exit code. */
  printRest(): number {
    const failures = this.#failures;
    if (failures.length > 5) console.log(`\n… and ${failures.length - 5} more failing seeds: ${failures.slice(5, 50).map((f) => f.seed).join(' ')}`);
    return failures.length === 0 ? 0 : 1;
  }
}
