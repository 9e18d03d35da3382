// A simulation's trace: the last lines before a violation, kept only when asked for
// (replaying a failing seed), bounded so a long run does not hold all of its lines.

/** Lines kept beyond which the trace is cut back to its last `keep`. */
const KEEP_FACTOR = 4;

export class TraceLog {
  readonly #lines: string[] | undefined;

  constructor(enabled: boolean, readonly keep: number) {
    this.#lines = enabled ? [] : undefined;
  }

  /** Adds a line stamped with the simulated time; `line` is only called when tracing. @example trace.add(nowMs, () => `${id} CRASH`) */
  add(nowMs: number, line: () => string): void {
    if (this.#lines === undefined) return;
    this.#lines.push(`${String(nowMs).padStart(6)}ms ${line()}`);
    if (this.#lines.length > this.keep * KEEP_FACTOR) this.#lines.splice(0, this.#lines.length - this.keep);
  }

  /** The last `keep` lines, or undefined when not tracing. @example report.trace = trace.last() */
  last(): string[] | undefined {
    return this.#lines?.slice(-this.keep);
  }
}
