// `npm run sim -- --seeds 100000 [--from N]` runs a campaign of seeds and prints
// seeds/s, coverage totals and failures; `npm run sim -- --seed N` replays one seed
// with its trace. `--cluster` does the same with the cluster simulation (whole brokers
// with the metadata controller, test/sim/cluster/).
import { parseArgs } from 'node:util';
import { runClusterCampaign } from './cluster/campaign';
import { addCoverage, runSeed, type Coverage, type SeedReport } from './simulator';

const { values } = parseArgs({
  options: { seeds: { type: 'string' }, from: { type: 'string' }, seed: { type: 'string' }, cluster: { type: 'boolean' } },
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

const count = whole('seeds', values.seeds, 1000);
const from = whole('from', values.from, 1);
let coverage: Coverage | undefined;
const scenarios = new Map<string, number>();
const livenessTicks: number[] = [];
const failures: SeedReport[] = [];
const started = performance.now();
let lastProgress = started;
for (let seed = from; seed < from + count; seed++) {
  const report = runSeed(seed);
  if (coverage === undefined) coverage = { ...report.coverage };
  else addCoverage(coverage, report.coverage);
  scenarios.set(report.scenario, (scenarios.get(report.scenario) ?? 0) + 1);
  if (report.violation !== undefined) failures.push(report);
  else livenessTicks.push(report.livenessTicks);
  const now = performance.now();
  if (now - lastProgress > 2000) {
    lastProgress = now;
    const done = seed - from + 1;
    process.stderr.write(`  ${done}/${count} seeds, ${((done / (now - started)) * 1000).toFixed(0)} seeds/s, ${failures.length} failed\n`);
  }
}
const seconds = (performance.now() - started) / 1000;
livenessTicks.sort((a, b) => a - b);
const at = (q: number) => livenessTicks[Math.min(livenessTicks.length - 1, Math.floor(q * livenessTicks.length))] ?? NaN;
console.log(`seeds ${from}..${from + count - 1}: ${count - failures.length} passed, ${failures.length} failed in ${seconds.toFixed(1)}s (${(count / seconds).toFixed(0)} seeds/s)`);
console.log(`scenarios: ${[...scenarios].map(([name, n]) => `${name} ${n}`).join(', ')}`);
console.log(`coverage: ${Object.entries(coverage ?? {}).map(([key, value]) => `${key} ${value}`).join(', ')}`);
console.log(`liveness after heal (ticks): p50 ${at(0.5)}, p99 ${at(0.99)}, max ${livenessTicks.at(-1) ?? NaN}`);
for (const failure of failures.slice(0, 5)) printFailure(failure);
if (failures.length > 5) console.log(`\n… and ${failures.length - 5} more failing seeds: ${failures.slice(5, 50).map((f) => f.seed).join(' ')}`);
process.exit(failures.length === 0 ? 0 : 1);
