// `npm run bench [-- <id…>|=<id>…] [--json FILE] [--runs N] [--profile DIR]`: runs the benchmark
// cases of test/bench/cases/ in real Chromium and prints median, min and max of each figure,
// with its ratio to a baseline measured in the same run; --profile writes CPU profiles of each
// case's runs after the first (profile.ts).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { chromiumArgs, findChromium } from '../support/chromium';
import { startPagesServer } from '../support/pages-server';
import { launchKillableChromium, type KillableChromium } from '../support/killable-chromium';
import { startRelayProcess, type RelayProcess } from '../support/relay-process';
import { profileAll } from './profile';
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
  /** Each run's value, in run order (in --json only): shows whether a min or max is one odd run or a trend. */
  values: number[];
}

const { values: options, positionals: selectors } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'string' }, runs: { type: 'string' }, profile: { type: 'string' } },
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
const launch = (dir: string) =>
  chromium.launchPersistentContext(dir, {
    executablePath: findChromium(),
    headless: true,
    // gc() for heap figures; measureUserAgentSpecificMemory() answering at once instead of at the next GC.
    args: [...chromiumArgs, '--js-flags=--expose-gc', '--enable-blink-features=ForceEagerMeasureMemory'],
  });
const context = await launch(profile);
/** Started when a case needs them: the relay process, and a second browser process for peer pages. */
let relay: RelayProcess | undefined;
let otherBrowser: BrowserContext | undefined;
const otherProfile = join(profile, '..', `${profile.split('/').pop()}-peer`);
/** The page a case's measuring page talks to (see BenchCase.needs), while that case runs. */
let peerPage: Page | undefined;
/** The browser process of a `peer-process-killable` case's peer page, on a profile of its own that outlives a kill. */
let killable: KillableChromium | undefined;
const killableProfile = join(profile, '..', `${profile.split('/').pop()}-killable`);
/** While a `peer-process-killable` case runs: opens its peer page in a (re)started killable browser. */
let restartKillable: (() => Promise<void>) | undefined;

const openBenchPage = async (where: BrowserContext, existing?: Page) => {
  const page = existing ?? (await where.newPage());
  page.on('pageerror', (error) => progress(`page error: ${error.message}`));
  // A case's own progress lines (`console.log('bench: …')`), e.g. what a failover went through.
  page.on('console', (message) => message.text().startsWith('bench: ') && progress(message.text()));
  await page.goto(`${server.url}test/bench/bench.html`);
  await page.waitForFunction(() => document.body?.dataset['ready'] === 'true');
  return page;
};

/** A closed page's workers end this soon after (0.16–0.74 s measured on a loaded machine, README); past it the runner says so and goes on. */
const WORKER_END_TIMEOUT_MS = 10_000;

/**
 * Closes the tabs a case opened and left open (cluster.* keeps its broker tabs across its runs),
 * and waits for their workers to end, so that the next case runs without them and finds their
 * slots free.
 */
async function closeLeftovers(where: BrowserContext, keep: Page): Promise<void> {
  await Promise.all(
    where.pages().filter((p) => p !== keep).map(async (p) => {
      const ended = p.workers().map((w) => new Promise<void>((resolve) => w.once('close', () => resolve())));
      await p.close();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), WORKER_END_TIMEOUT_MS)));
      if ((await Promise.race([Promise.all(ended), late])) === 'late') progress(`a closed tab's worker had not ended within ${WORKER_END_TIMEOUT_MS} ms`);
      clearTimeout(timer);
    }),
  );
}

try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.exposeBinding('letterboxBenchToPeer', async (_, message: unknown) => {
    await peerPage?.evaluate((m) => window.letterboxBench.deliver(m), message);
  });
  // context.peerProcess of a peer-process-killable case (types.ts PeerProcess).
  await page.exposeBinding('letterboxBenchPeerProcess', async (_, action: 'kill' | 'restart') => {
    if (restartKillable === undefined) throw new Error('no peer-process-killable case is running');
    peerPage = undefined;
    await killable?.kill();
    killable = undefined;
    if (action === 'restart') await restartKillable();
  });
  // context.closeTab (types.ts): the tab this page opened whose URL names it, closed as a user closes it.
  await page.exposeBinding('letterboxBenchCloseTab', async (_, tab: string) => {
    const opened = context.pages().find((p) => new URL(p.url()).searchParams.get('tab') === tab);
    if (opened === undefined) throw new Error(`no open tab is named ${tab}`);
    await opened.close();
  });
  await openBenchPage(context, page);
  const all = await page.evaluate(() => window.letterboxBench.list());

  // `<id>` selects that case and those under it (`raw.idb` selects raw.idb.put and raw.idb.read); `=<id>` that case alone.
  const selects = (s: string, id: string) => (s.startsWith('=') ? id === s.slice(1) : id === s || id.startsWith(`${s}.`));
  const matches = (id: string) => selectors.length === 0 || selectors.some((s) => selects(s, id));
  const unknown = selectors.filter((s) => !all.some((c) => selects(s, c.id)));
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
  /** Per case, the baseline figures measured interleaved with its runs. */
  const paired = new Map<string, Map<string, BenchFigure[]>>();
  const caseOf = new Map<string, string>();
  for (const [index, c] of order.entries()) {
    const needs = c.needs ?? [];
    if (needs.includes('relay')) relay ??= await startRelayProcess();
    const caseContext = relay === undefined ? {} : { relayUrl: relay.url };
    const openPeer = async (where: BrowserContext) => {
      const peer = await where.newPage();
      await peer.exposeBinding('letterboxBenchToPeer', async (_, message: unknown) => {
        await page.evaluate((m) => window.letterboxBench.deliver(m), message);
      });
      peerPage = await openBenchPage(where, peer);
      // Serves until the page closes, which ends this evaluate with an error.
      void peer.evaluate(([id, init]) => window.letterboxBench.serve(id, init), [c.id, caseContext] as const).catch(() => undefined);
      await page.bringToFront();
    };
    if (needs.includes('peer-tab') || needs.includes('peer-process')) {
      await openPeer(needs.includes('peer-tab') ? context : (otherBrowser ??= await launch(otherProfile)));
    } else if (needs.includes('peer-process-killable')) {
      restartKillable = async () => {
        killable = await launchKillableChromium(killableProfile);
        await openPeer(killable.browser.contexts()[0]!);
      };
      await restartKillable();
    }
    try {
      const runs = runsOverride ?? c.runs ?? 5;
      // Each run is paired with a fresh run of its (local) baselines just before it, so a ratio
      // compares figures measured under the same load, not minutes apart on a shared machine.
      const pairedBaselines = [...new Set((c.baselines ?? []).map((f) => caseOfFigure(f)!))].filter((b) => (b.needs ?? []).length === 0);
      const ownPairs = new Map<string, BenchFigure[]>();
      paired.set(c.id, ownPairs);
      let profiler: Awaited<ReturnType<typeof profileAll>> | undefined;
      for (let run = 1; run <= runs; run++) {
        if (run === 2 && options.profile !== undefined) profiler = await profileAll([context, ...(otherBrowser === undefined ? [] : [otherBrowser])]);
        for (const b of pairedBaselines) {
          const figures = await page.evaluate(([id, init]) => window.letterboxBench.run(id, init), [b.id, caseContext] as const);
          for (const figure of figures) ownPairs.set(figure.id, [...(ownPairs.get(figure.id) ?? []), figure]);
        }
        progress(`[${index + 1}/${order.length}] ${c.id} — run ${run}/${runs}: ${c.title}`);
        const figures = await page.evaluate(([id, init]) => window.letterboxBench.run(id, init), [c.id, caseContext] as const);
        for (const figure of figures) {
          samples.set(figure.id, [...(samples.get(figure.id) ?? []), figure]);
          caseOf.set(figure.id, c.id);
        }
      }
      if (profiler !== undefined) {
        await profiler.stop(options.profile!, c.id);
        progress(`wrote CPU profiles of ${c.id} to ${options.profile}`);
      }
    } finally {
      await peerPage?.close();
      peerPage = undefined;
      restartKillable = undefined;
      await killable?.kill();
      killable = undefined;
      await closeLeftovers(context, page);
    }
  }

  const results: BenchResult[] = [];
  for (const [id, figures] of samples) {
    const first = figures[0]!;
    const numbers = figures.map((f) => f.value);
    const value = median(numbers);
    const result: BenchResult = { id, value, unit: first.unit, runs: numbers.length, min: Math.min(...numbers), max: Math.max(...numbers), values: numbers };
    if (first.baseline !== undefined) {
      const base = paired.get(caseOf.get(id)!)?.get(first.baseline) ?? samples.get(first.baseline);
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
  await otherBrowser?.close();
  await killable?.kill();
  await relay?.stop();
  await context.close();
  await server.close();
  await rm(profile, { recursive: true, force: true });
  await rm(otherProfile, { recursive: true, force: true });
  await rm(killableProfile, { recursive: true, force: true });
}
