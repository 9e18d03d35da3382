// `npm run bench [-- <id…>] [--json FILE] [--runs N]`: runs the benchmark cases of
// test/bench/cases/ in real Chromium and prints median, min and max of each figure,
// with its ratio to a baseline measured in the same run.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { chromiumArgs, findChromium } from '../support/chromium';
import { startPagesServer } from '../support/pages-server';
import { median } from './stats';
import type { BenchFigure } from './types';


interface BenchResult {
  id: string;
  value: number;
  unit: string;
  baseline?: string;
  ratio?: number;
  runs: number;
  min: number;
  max: number;
}

const { values: options, positionals: selectors } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'string' }, runs: { type: 'string' } },
});
const runsOverride = options.runs === undefined ? undefined : Number(options.runs);
if (runsOverride !== undefined && (!Number.isInteger(runsOverride) || runsOverride < 1)) {
  console.error(`bench: --runs takes a whole number ≥ 1, got "${options.runs}"`);
  process.exit(2);
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

const server = await startPagesServer();
const profile = await mkdtemp(join(tmpdir(), 'letterbox-bench-'));
// A persistent context: an incognito one keeps IndexedDB in memory, which would flatter it.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: findChromium(),
  headless: true,
  // gc() for heap figures; measureUserAgentSpecificMemory() answering at once instead of at the next GC.
  args: [...chromiumArgs, '--js-flags=--expose-gc', '--enable-blink-features=ForceEagerMeasureMemory'],
});

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => progress(`page error: ${error.message}`));
  await page.goto(`${server.url}test/bench/bench.html`);
  await page.waitForFunction(() => document.body?.dataset['ready'] === 'true');
  const all = await page.evaluate(() => window.letterboxBench.list());

  const matches = (id: string) => selectors.length === 0 || selectors.some((s) => id === s || id.startsWith(`${s}.`));
  const unknown = selectors.filter((s) => !all.some((c) => c.id === s || c.id.startsWith(`${s}.`)));
  if (unknown.length > 0) {
    throw new Error(`no benchmark matches ${unknown.join(', ')}; known: ${all.map((c) => c.id).join(', ')}`);
  }
  // Baselines run first, and also when only the case that needs them was named.
  const caseOfFigure = (figureId: string) =>
    all.filter((c) => figureId === c.id || figureId.startsWith(`${c.id}.`)).sort((a, b) => b.id.length - a.id.length)[0];
  const order: typeof all = [];
  const visit = (c: (typeof all)[number]) => {
    if (order.includes(c)) return;
    for (const figure of c.baselines ?? []) {
      const base = caseOfFigure(figure);
      if (base === undefined) throw new Error(`${c.id} names baseline ${figure}, which no benchmark measures`);
      visit(base);
    }
    order.push(c);
  };
  all.filter((c) => matches(c.id)).forEach(visit);

  const samples = new Map<string, BenchFigure[]>();
  for (const [index, c] of order.entries()) {
    const runs = runsOverride ?? c.runs ?? 5;
    for (let run = 1; run <= runs; run++) {
      progress(`[${index + 1}/${order.length}] ${c.id} — run ${run}/${runs}: ${c.title}`);
      const figures = await page.evaluate((id) => window.letterboxBench.run(id), c.id);
      for (const figure of figures) samples.set(figure.id, [...(samples.get(figure.id) ?? []), figure]);
    }
  }

  const results: BenchResult[] = [];
  for (const [id, figures] of samples) {
    const first = figures[0]!;
    const numbers = figures.map((f) => f.value);
    const value = median(numbers);
    const result: BenchResult = { id, value, unit: first.unit, runs: numbers.length, min: Math.min(...numbers), max: Math.max(...numbers) };
    if (first.baseline !== undefined) {
      const base = samples.get(first.baseline);
      if (base === undefined) throw new Error(`${id}: baseline ${first.baseline} was not measured`);
      const baseValue = median(base.map((f) => f.value));
      result.baseline = first.baseline;
      result.ratio = first.better === 'higher' ? value / baseValue : baseValue / value;
    }
    results.push(result);
  }

  const format = (n: number) =>
    Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toPrecision(3);
  const rows = [
    ['id', 'median', 'unit', 'min', 'max', 'runs', 'baseline', 'ratio'],
    ...results.map((r) => [
      r.id,
      format(r.value),
      r.unit,
      format(r.min),
      format(r.max),
      String(r.runs),
      r.baseline ?? '',
      r.ratio === undefined ? '' : r.ratio.toFixed(2),
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const numeric = new Set([1, 3, 4, 5, 7]);
  for (const row of rows) {
    console.log(row.map((cell, col) => (numeric.has(col) ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!))).join('  ').trimEnd());
  }
  if (options.json !== undefined) {
    await writeFile(options.json, `${JSON.stringify(results, null, 2)}\n`);
    progress(`wrote ${options.json}`);
  }
} finally {
  await context.close();
  await server.close();
  await rm(profile, { recursive: true, force: true });
}
