// Time, injected. Everything in node/, log/, raft/, group/ and network/ that reads the
// time or waits takes a `Clock`; only `realClock` below touches the platform's timers
// (the one place with raw `setTimeout`, `Date.now` and `performance.now`). Tests and the
// simulator pass a `ManualClock` (or their own), so a run's timing is theirs to decide.

/** Cancels a scheduled callback; calling it again, or after the callback ran, does nothing. */
export type Cancel = () => void;

/** The time and timer source of one node (or one test). */
export interface Clock {
  /** Wall-clock milliseconds since the epoch: record timestamps, retention, session expiry. */
  now(): number;
  /** Monotonic milliseconds (any origin): durations, rates and deadlines, which a wall-clock jump must not bend. */
  monotonic(): number;
  /**
   * Runs `fn` once after `delayMs` (at least); returns its cancel.
   * @example const cancel = clock.after(500, () => controller.abort());
   */
  after(delayMs: number, fn: () => void): Cancel;
  /**
   * Runs `fn` soon, after the current task's synchronous work but before any timer: what is
   * queued in the same task shares one run (a microtask on the real clock).
   * @example clock.defer(() => flush());
   */
  defer(fn: () => void): void;
}

/**
 * Runs `fn` every `intervalMs` until cancelled (each run scheduled after the previous one).
 * @example const stop = every(clock, 100, () => tick());
 */
export function every(clock: Clock, intervalMs: number, fn: () => void): Cancel {
  let cancelNext: Cancel = () => undefined;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    cancelNext = clock.after(intervalMs, run);
    fn();
  };
  cancelNext = clock.after(intervalMs, run);
  return () => {
    stopped = true;
    cancelNext();
  };
}

/**
 * Resolves after `delayMs`, or at once when `signal` aborts.
 * @example await sleep(clock, ADMISSION_RETRY_MS);
 */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const cancel = clock.after(delayMs, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * An AbortSignal that aborts after `delayMs` with a TimeoutError DOMException, as
 * `AbortSignal.timeout` does, but on `clock`.
 * @example await locks.request(name, { signal: timeoutSignal(clock, 3000) }, callback);
 */
export function timeoutSignal(clock: Clock, delayMs: number): AbortSignal {
  const controller = new AbortController();
  clock.after(delayMs, () => controller.abort(new DOMException(`timed out after ${delayMs} ms`, 'TimeoutError')));
  return controller.signal;
}

/** The platform's clock: the only user of the raw timer and time functions. */
export const realClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  after(delayMs, fn) {
    const timer = setTimeout(fn, Math.max(0, delayMs));
    return () => clearTimeout(timer);
  },
  defer: (fn) => queueMicrotask(fn),
};

/**
 * A clock that moves only when told: `advance` runs the due callbacks in time order (and
 * deferred ones first), so a test or a benchmark decides how time passes. Deterministic:
 * callbacks due at the same time run in the order they were scheduled.
 * @example const clock = new ManualClock(); clock.after(10, f); clock.advance(10); // f ran
 */
export class ManualClock implements Clock {
  #nowMs: number;
  #seq = 0;
  readonly #timers: Array<{ atMs: number; seq: number; fn: () => void }> = [];
  readonly #deferred: Array<() => void> = [];

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }
  monotonic(): number {
    return this.#nowMs;
  }
  after(delayMs: number, fn: () => void): Cancel {
    const timer = { atMs: this.#nowMs + Math.max(0, delayMs), seq: this.#seq++, fn };
    // Kept sorted by (atMs, seq): a binary search for the insertion point.
    let low = 0;
    let high = this.#timers.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const t = this.#timers[mid]!;
      if (t.atMs < timer.atMs || (t.atMs === timer.atMs && t.seq < timer.seq)) low = mid + 1;
      else high = mid;
    }
    this.#timers.splice(low, 0, timer);
    return () => {
      const at = this.#timers.indexOf(timer);
      if (at >= 0) this.#timers.splice(at, 1);
    };
  }
  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }

  /** Runs deferred callbacks (and those they defer) until none are left. */
  runDeferred(): void {
    for (let fn = this.#deferred.shift(); fn !== undefined; fn = this.#deferred.shift()) fn();
  }

  /** Moves time forward by `ms`, running deferred callbacks, then each timer due, in order. */
  advance(ms: number): void {
    const endMs = this.#nowMs + ms;
    this.runDeferred();
    for (let next = this.#timers[0]; next !== undefined && next.atMs <= endMs; next = this.#timers[0]) {
      this.#timers.shift();
      this.#nowMs = next.atMs;
      next.fn();
      this.runDeferred();
    }
    this.#nowMs = endMs;
  }

  /** Timers scheduled and not yet run. */
  get pendingTimers(): number {
    return this.#timers.length;
  }
}
