import type { Clock } from '../clock';
import type { Storage, StorageWrite } from '../storage';

/** What one log contributes to a flush: its writes, and what to do when they are durable or fail. */
export interface FlushPart {
  writes: StorageWrite[];
  sizeBytes: number;
  committed(): void;
  failed(error: unknown): void;
}

/** A log with work waiting for the next flush. */
export interface FlushSource {
  /** Takes pending work up to `budgetBytes` (at least one item), or undefined if none can go now. */
  takeFlushPart(budgetBytes: number): FlushPart | undefined;
  hasPending(): boolean;
}

/** Most bytes one transaction carries: bounds memory held by a flush and the work lost to one failure. */
const FLUSH_BYTES_MAX = 8 * 1024 * 1024;

/**
 * Where a group committer's transactions go, one at a time: `write` applies `writes`
 * atomically and calls `committed` once they are durable, or `failed` when nothing was
 * applied. The real one is a {@link Storage} ({@link storageSink}); the simulator's
 * completes writes at simulated times and loses the unfinished ones in a crash.
 */
export interface CommitSink {
  write(writes: StorageWrite[], committed: () => void, failed: (error: unknown) => void): void;
}

/** A {@link Storage} as a commit sink. @example createGroupCommitter(storageSink(storage), clock) */
export const storageSink = (storage: Storage): CommitSink => ({
  write: (writes, committed, failed) => void storage.write(writes).then(committed, failed),
});

export interface GroupCommitter {
  /** Marks `source` as having pending work; it goes into the next transaction. */
  schedule(source: FlushSource): void;
  /** Transactions committed so far. */
  readonly transactions: number;
}

/**
 * Group commit: the pending work of every source (partition logs, raft groups, group
 * coordinators) goes into one IndexedDB transaction per flush, since an origin manages
 * only ~1,000 commits/s. The linger adapts by itself: when idle a flush starts as soon as
 * the current task's work is queued (`clock.defer`: a lone record is not delayed); while
 * one is in flight, new work waits for it and goes together in the next. One transaction
 * is in flight at a time, so a source's writes become durable in the order it handed them
 * over, and a failed transaction is reported before its sources hand over anything after it.
 * @example const committer = createGroupCommitter(storageSink(storage), realClock); committer.schedule(log);
 */
export function createGroupCommitter(sink: CommitSink, clock: Pick<Clock, 'defer'>): GroupCommitter {
  const ready = new Set<FlushSource>();
  let running = false;
  let transactions = 0;

  const flushNext = (): void => {
    const parts: FlushPart[] = [];
    let budget = FLUSH_BYTES_MAX;
    for (const source of ready) {
      if (budget <= 0) break;
      const part = source.takeFlushPart(budget);
      if (part !== undefined) {
        parts.push(part);
        budget -= part.sizeBytes;
      }
      if (!source.hasPending()) ready.delete(source);
    }
    // Nothing left, or what remains is held back (a truncation): its source reschedules it.
    if (parts.length === 0) {
      running = false;
      return;
    }
    sink.write(
      parts.flatMap((p) => p.writes),
      () => {
        transactions++;
        for (const part of parts) part.committed();
        flushNext();
      },
      (error) => {
        for (const part of parts) part.failed(error);
        flushNext();
      },
    );
  };

  return {
    schedule(source) {
      ready.add(source);
      if (running) return;
      running = true;
      clock.defer(flushNext);
    },
    get transactions() {
      return transactions;
    },
  };
}
