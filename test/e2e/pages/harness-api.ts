import type { Remote } from 'comlink';

/** What the harness worker exposes through Comlink. */
export interface HarnessApi {
  /** Writes `value` under `key` in the worker's IndexedDB database, then reads it back. */
  putAndGet(key: string, value: string): Promise<string | undefined>;
  /** Reads `key` in a new connection to the database. */
  get(key: string): Promise<string | undefined>;
  /** The worker's global scope type, to prove the code runs in a DedicatedWorker. */
  scope(): string;
}

declare global {
  interface Window {
    harness: Remote<HarnessApi>;
  }
}
