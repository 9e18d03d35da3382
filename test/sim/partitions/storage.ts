import type { MemoryStorage, PartitionId, Storage, StorageWrite } from '../../../src/storage';

// A broker's storage in the partitions simulation: the in-memory store as the durable
// contents, in front of it a disk that lands each write at a simulated time, in the order
// written (one transaction at a time, as IndexedDB commits). Reads wait for the writes
// issued before them, as an IndexedDB read transaction waits for an earlier readwrite one
// on the same stores. A crash keeps a prefix of the writes in flight and loses the rest;
// the handle is dead from then on (the tab is gone), and the broker reopens the contents.

interface InFlight {
  readonly writes: readonly StorageWrite[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** A promise that never settles: what a dead tab's storage calls come to. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/**
 * One incarnation's handle on a broker's durable contents, with writes landing when the simulator says.
 * @example const storage = new SimStorage(disk.reopen(), () => queue.push(syncAtMs, { kind: 'sync', storage }));
 */
export class SimStorage implements Storage {
  readonly #durable: MemoryStorage;
  /** Asks the simulator to call `land` once, at the time this write is durable (in order). */
  readonly #schedule: () => void;
  readonly #inFlight: InFlight[] = [];
  #lastWrite: Promise<void> = Promise.resolve();
  #dead = false;

  constructor(durable: MemoryStorage, schedule: () => void) {
    this.#durable = durable;
    this.#schedule = schedule;
  }

  /** Writes waiting to land. */
  get inFlight(): number {
    return this.#inFlight.length;
  }

  write(writes: readonly StorageWrite[]): Promise<void> {
    if (this.#dead) return never();
    const written = new Promise<void>((resolve, reject) => this.#inFlight.push({ writes, resolve, reject }));
    this.#lastWrite = written.catch(() => undefined);
    this.#schedule();
    return written;
  }

  /** The oldest write in flight lands: applied to the durable contents (or refused), then answered; its outcome. */
  land(): Promise<void> | undefined {
    const next = this.#inFlight.shift();
    if (next === undefined || this.#dead) return undefined;
    const written = this.#durable.write(next.writes);
    written.then(next.resolve, next.reject);
    return written;
  }

  /** The tab dies: the first `kept` writes in flight land unanswered, the rest are lost. Returns how many were lost. */
  crash(kept: number): number {
    this.#dead = true;
    const landed = this.#inFlight.splice(0, kept);
    // A full disk refuses them as it would have: nothing applied.
    for (const { writes } of landed) this.#durable.write(writes).catch(() => undefined);
    const lost = this.#inFlight.length;
    this.#inFlight.length = 0;
    return lost;
  }

  async readBatches(id: PartitionId, fromBaseOffset: number, count: number): Promise<Uint8Array[]> {
    await this.#afterWrites();
    return this.#durable.readBatches(id, fromBaseOffset, count);
  }
  async readSummaries(id: PartitionId, offset: number, limit: number) {
    await this.#afterWrites();
    return this.#durable.readSummaries(id, offset, limit);
  }
  async readLastSummaries(id: PartitionId, limit: number) {
    await this.#afterWrites();
    return this.#durable.readLastSummaries(id, limit);
  }
  async readMeta(id: PartitionId) {
    await this.#afterWrites();
    return this.#durable.readMeta(id);
  }
  async readValue(key: string): Promise<unknown> {
    await this.#afterWrites();
    return this.#durable.readValue(key);
  }
  async listPartitions(): Promise<PartitionId[]> {
    await this.#afterWrites();
    return this.#durable.listPartitions();
  }
  /** Out of quota (or not): writes that store anything are refused, as the in-memory store's `setFull` says. */
  setFull(full: boolean): void {
    this.#durable.setFull(full);
  }
  close(): void {
    this.#dead = true;
  }

  async #afterWrites(): Promise<void> {
    if (this.#dead) return never();
    await this.#lastWrite;
    if (this.#dead) return never();
  }
}
