// The contract between benchmark cases (run in the bench page, in Chromium) and the
// runner (test/bench/main.ts, in Node). A case module in test/bench/cases/ exports
// `cases: BenchCase[]`; the page finds every such module by itself.

/** One measured figure of one run. */
export interface BenchFigure {
  /** Stable dotted id; it starts with its case's id, e.g. `raw.idb.put.mbps` of case `raw.idb.put`. */
  id: string;
  value: number;
  /** e.g. `records/s`, `MB/s` (10^6 bytes), `ms`. */
  unit: string;
  /** Which way is better; the ratio is oriented so that higher is always better. */
  better: 'higher' | 'lower';
  /** Id of the figure this one is compared against, measured in the same run. */
  baseline?: string;
}

export interface BenchCase {
  /** Stable dotted id, e.g. `raw.idb.put`; `npm run bench -- raw.idb` selects by prefix. */
  id: string;
  /** One line saying what is measured. */
  title: string;
  /** Ids of figures (of other cases) this case's figures are compared against; their cases run first. */
  baselines?: string[];
  /** How many times the runner repeats the case; default 5. */
  runs?: number;
  /** Measures once and returns the figures. */
  run(): Promise<BenchFigure[]>;
}

/** What the bench page exposes to the runner as `window.letterboxBench`. */
export interface BenchPageApi {
  list(): Array<Pick<BenchCase, 'id' | 'title' | 'baselines' | 'runs'>>;
  run(id: string): Promise<BenchFigure[]>;
}

declare global {
  interface Window {
    letterboxBench: BenchPageApi;
  }
}
