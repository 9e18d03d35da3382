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

export interface GroupCommitter {
  /** Marks `source` as having pending work; it goes into the next transaction. */
  schedule(source: FlushSource): void;
  /** Transactions committed so far. */
  readonly transactions: number;
}

/**
 * Group commit: the pending batches of every partition go into one IndexedDB transaction
 * per flush, since an origin manages only ~1,000 commits/s. The linger adapts by itself:
 * when idle a flush starts at once (a lone record is not delayed); while one is in
 * flight, new work waits for it and goes together in the next.
 * @example const committer = createGroupCommitter(storage); committer.schedule(log);
 */
export function createGroupCommitter(storage: Storage): GroupCommitter {
  const ready = new Set<FlushSource>();
  let running = false;
  let transactions = 0;

  async function flushAll(): Promise<void> {
    while (ready.size > 0) {
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
      if (parts.length === 0) break; // what remains is held back (a truncation); its log reschedules it
      try {
        await storage.write(parts.flatMap((p) => p.writes));
        transactions++;
        for (const part of parts) part.committed();
      } catch (error) {
        for (const part of parts) part.failed(error);
      }
    }
    running = false;
  }

  return {
    schedule(source) {
      ready.add(source);
      if (running) return;
      running = true;
      // A microtask, not a timer: appends made in the same task share the transaction.
      queueMicrotask(() => void flushAll());
    },
    get transactions() {
      return transactions;
    },
  };
}
