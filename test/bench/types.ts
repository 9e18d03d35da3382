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
  /**
   * What the runner sets up first: `relay` starts the relay process; `peer-tab` opens a
   * second bench page in the same browser, `peer-process` one in another browser process,
   * which runs {@link serve} and talks to this page over `context.peer`;
   * `peer-process-killable` is a `peer-process` whose browser the case can kill (SIGKILL of
   * its process group, a crash) and start again on the same profile (`context.peerProcess`).
   */
  needs?: Array<'relay' | 'peer-tab' | 'peer-process' | 'peer-process-killable'>;
  /** Measures once and returns the figures. */
  run(context: BenchContext): Promise<BenchFigure[]>;
  /** The peer page's side of the case: runs until the page closes. */
  serve?(context: BenchContext): Promise<void>;
}

/** A message pipe between the measuring page and its peer page (through the runner: slow, for set-up only). */
export interface BenchPipe {
  send(message: unknown): void;
  /** The next message from the other page. */
  receive(): Promise<unknown>;
}

export interface BenchContext {
  /** The relay's URL, when the case needs it. */
  relayUrl?: string;
  /** The pipe to the peer page, when the case needs one. */
  peer?: BenchPipe;
  /** The peer page's browser process, when the case needs `peer-process-killable`. */
  peerProcess?: PeerProcess;
  /**
   * Closes a tab this page opened, whose URL names it (`tab=<tab>`), as a user closes it
   * (Playwright's page.close(), from the runner); resolves once it is closed.
   */
  closeTab(tab: string): Promise<void>;
}

/** The browser process of a `peer-process-killable` peer page, as the runner drives it. */
export interface PeerProcess {
  /** SIGKILLs the peer page's browser process group; resolves once the process has exited. */
  kill(): Promise<void>;
  /** Launches that browser again on the same profile, with a fresh peer page serving the case; resolves once it serves. */
  restart(): Promise<void>;
}

/** What the bench page exposes to the runner as `window.letterboxBench`. */
export interface BenchPageApi {
  list(): Array<Pick<BenchCase, 'id' | 'title' | 'baselines' | 'runs' | 'needs'>>;
  run(id: string, context: { relayUrl?: string }): Promise<BenchFigure[]>;
  /** On the peer page: runs case `id`'s serve. */
  serve(id: string, context: { relayUrl?: string }): Promise<void>;
  /** The runner hands this page a message from the other page. */
  deliver(message: unknown): void;
}

declare global {
  interface Window {
    letterboxBench: BenchPageApi;
    /** Set by the runner (Playwright binding) on pages with a peer: carries a message to the other page. */
    letterboxBenchToPeer?(message: unknown): Promise<void>;
    /** Set by the runner on the measuring page: {@link PeerProcess}'s calls, for a `peer-process-killable` case. */
    letterboxBenchPeerProcess?(action: 'kill' | 'restart'): Promise<void>;
    /** Set by the runner on the measuring page: {@link BenchContext.closeTab}. */
    letterboxBenchCloseTab?(tab: string): Promise<void>;
  }
}
