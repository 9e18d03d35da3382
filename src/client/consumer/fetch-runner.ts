import type { FetchedPartition } from '../../node';
import { nextOffset, readBatchHeader } from '../../protocol';
import type { ClientContext, RemoteNode } from '../context';
import type { Instrumentation } from '../events';
import type { Logger } from '../logger';
import type { Retry } from '../retry';
import { batchPayload, readBatch } from './batch';
import { keyOf, type Generation, type OwnedPartition } from './generation';
import type { GroupSession } from './group-session';
import type { OffsetManager } from './offsets';
import type { ConsumerEvents, ConsumerSettings, RunSettings } from './types';

/** A fetch in flight and the positions it asked from. */
interface PendingFetch {
  requestId: number;
  partitions: Array<{ owned: OwnedPartition; fetchOffset: number }>;
  result: Promise<FetchedPartition[]>;
  started: number;
}

/** The offset after the last record of `batches`. */
const endOffsetOf = (batches: readonly Uint8Array[]) => nextOffset(readBatchHeader(batches.at(-1)!));

export interface FetchRunnerParts {
  groupId: string;
  context: ClientContext;
  config: Pick<ConsumerSettings, 'maxWaitTimeInMs' | 'minBytes' | 'maxBytes' | 'maxBytesPerPartition'>;
  session: Pick<GroupSession, 'heartbeats'>;
  offsets: OffsetManager;
  retry: Retry;
  logger: Logger;
  instrumentation: Instrumentation<ConsumerEvents>;
  /** True once the consumer is told to stop: processing ends after the current message. */
  stopping: () => boolean;
}

/**
 * Consumes a generation's partitions, as KafkaJS's runner: fetches (the next fetch while the
 * last one's records are processed), hands the records to eachMessage or eachBatch with
 * retries, and auto-commits. Also keeps which partitions are paused, since that is what the
 * next fetch leaves out.
 */
export class FetchRunner {
  readonly #parts: FetchRunnerParts;
  readonly #paused = new Set<string>();
  #requestId = 0;
  #inFlight: number | undefined;

  constructor(parts: FetchRunnerParts) {
    this.#parts = parts;
  }

  /** The keys of the paused partitions. */
  paused(): string[] {
    return [...this.#paused];
  }

  /** Leaves partitions out of fetches until they are resumed. */
  pause(keys: readonly string[]): void {
    for (const key of keys) this.#paused.add(key);
    void this.cancelFetch(); // the next fetch leaves these partitions out
  }

  /** Fetches paused partitions again. */
  resume(keys: readonly string[]): void {
    for (const key of keys) this.#paused.delete(key);
    void this.cancelFetch(); // a fetch waiting without these partitions returns, and the next includes them
  }

  /** Ends the fetch waiting in the node, so the next one starts from what changed (a seek, a pause, a rebalance, a stop). */
  async cancelFetch(): Promise<void> {
    const requestId = this.#inFlight;
    if (requestId === undefined) return;
    try {
      await (await this.#parts.context.node()).cancel(requestId);
    } catch {
      // A closed Letterbox has no fetch left to cancel: its calls were settled when it closed.
    }
  }

  /** Consumes `generation` until it goes stale (a rebalance) or the consumer stops; throws what the handlers or auto-commits threw. */
  async consume(node: RemoteNode, generation: Generation, run: RunSettings): Promise<void> {
    const { config, offsets, instrumentation, stopping } = this.#parts;
    const stopHeartbeats = this.#parts.session.heartbeats(node, generation, () => this.cancelFetch());
    const startFetch = (from: ReadonlyMap<OwnedPartition, number> = new Map()): PendingFetch => {
      const partitions = [...generation.owned.values()]
        .filter((p) => !this.#paused.has(keyOf(p.topic, p.partition)))
        .map((owned) => ({ owned, fetchOffset: from.get(owned) ?? owned.position }));
      const requestId = ++this.#requestId;
      this.#inFlight = requestId;
      instrumentation.emit('consumer.fetch_start', () => ({ nodeId: 0 }));
      const result = node.fetch({
        requestId,
        maxWaitMs: config.maxWaitTimeInMs,
        minBytes: config.minBytes,
        maxBytes: config.maxBytes,
        partitions: partitions.map(({ owned, fetchOffset }) => ({ topic: owned.topic, partition: owned.partition, fetchOffset, maxBytes: config.maxBytesPerPartition })),
      });
      return { requestId, partitions, result, started: Date.now() };
    };
    let next = startFetch();
    const committed: { inFlight?: Promise<void> | undefined; again?: boolean; failure?: unknown } = {};
    try {
      while (!stopping() && !generation.stale) {
        const current = next;
        const fetched = await current.result;
        if (this.#inFlight === current.requestId) this.#inFlight = undefined;
        instrumentation.emit('consumer.fetch', () => ({ numberOfBatches: fetched.filter((f) => f.batches.length > 0).length, duration: Date.now() - current.started, nodeId: 0 }));
        // A result fetched from where its partition no longer is (a seek, a pause, a prefetch past
        // records left unprocessed) is dropped; the next fetch starts from the position.
        const usable = current.partitions
          .map((p, i) => ({ ...p, result: fetched[i]! }))
          .filter(({ owned, fetchOffset }) => owned.position === fetchOffset && !this.#paused.has(keyOf(owned.topic, owned.partition)));
        await offsets.reset(node, usable.filter(({ result }) => result.errorCode === 'OFFSET_OUT_OF_RANGE').map(({ owned }) => owned));
        const work = usable.filter(({ result }) => result.batches.length > 0);
        // A partition the node no longer has (its topic was deleted): the group rebalances, so rejoin.
        if (usable.some(({ result }) => result.errorCode === 'UNKNOWN_TOPIC_OR_PARTITION')) generation.stale = true;
        if (stopping() || generation.stale) break;
        // Prefetch: the next fetch starts where these batches end while they are processed.
        next = startFetch(new Map(work.map(({ owned, result }) => [owned, endOffsetOf(result.batches)])));
        await runConcurrently(work, run.partitionsConsumedConcurrently, ({ result, owned }) => this.#process(generation, owned, result, run));
        if (committed.failure !== undefined) throw committed.failure;
        if (run.autoCommit) {
          // Auto-commits never hold up the next batch: one at a time is made durable while
          // processing goes on, and offsets resolved meanwhile go in one more, right after it.
          // A failure surfaces on the next batch (or below) and its offsets are committed again.
          committed.again = committed.inFlight !== undefined;
          committed.inFlight ??= (async () => {
            do {
              committed.again = false;
              await offsets.commitIfNecessary(generation, run);
            } while (committed.again && !generation.stale);
          })()
            .catch((error: unknown) => void (committed.failure = error))
            .finally(() => (committed.inFlight = undefined));
        }
      }
      await committed.inFlight;
      if (committed.failure !== undefined) throw committed.failure;
    } finally {
      stopHeartbeats();
      // The prefetch still in flight ends now; its records are fetched again by whoever owns them next.
      await this.cancelFetch();
      await next.result.catch(() => undefined);
      this.#inFlight = undefined;
    }
  }

  async #process(generation: Generation, owned: OwnedPartition, result: FetchedPartition, run: RunSettings): Promise<void> {
    const { offsets, instrumentation, stopping } = this.#parts;
    const { batch, endOffset } = await readBatch(owned, result);
    const positionBefore = owned.position;
    const { messages } = batch;
    const key = keyOf(owned.topic, owned.partition);
    const isRunning = () => !stopping();
    const isStale = () => generation.stale || !generation.owned.has(key);
    const resolveOffset = (offset: string) => offsets.resolve(owned, offset, positionBefore);
    const pause = () => {
      this.#paused.add(key);
      return () => this.resume([key]);
    };
    const started = Date.now();
    instrumentation.emit('consumer.start_batch_process', () => batchPayload(batch));
    const heartbeat = async () => undefined; // heartbeats run on their own timer
    if (run.eachBatch !== undefined) {
      const eachBatch = run.eachBatch;
      const done = await this.#withRetries(key, () =>
        eachBatch({
          batch,
          resolveOffset,
          heartbeat,
          pause,
          commitOffsetsIfNecessary: (given) => offsets.commitOffsetsIfNecessary(generation, run, given),
          uncommittedOffsets: () => offsets.uncommitted(generation),
          isRunning,
          isStale,
        }),
      );
      if (isStale()) return;
      if (!done) {
        // Failed while paused: fetched again from what was resolved once resumed.
        owned.position = Math.max(owned.position, owned.resolved);
        return;
      }
      if (run.eachBatchAutoResolve && messages.length > 0) resolveOffset(messages.at(-1)!.offset);
      // Without auto-resolve, what the handler did not resolve is fetched again, as in KafkaJS.
      owned.position = messages.length === 0 || run.eachBatchAutoResolve ? endOffset : Math.max(owned.position, owned.resolved);
    } else {
      const eachMessage = run.eachMessage!;
      let finished = true;
      for (const message of messages) {
        if (!isRunning() || isStale() || this.#paused.has(key) || offsets.seeking || owned.position !== positionBefore) {
          finished = false;
          break;
        }
        if (!(await this.#withRetries(key, () => eachMessage({ topic: owned.topic, partition: owned.partition, message, heartbeat, pause })))) {
          finished = false;
          break;
        }
        resolveOffset(message.offset);
      }
      // A seek during processing moved the position; otherwise continue after what was resolved.
      if (owned.position === positionBefore) owned.position = finished ? endOffset : owned.resolved;
    }
    instrumentation.emit('consumer.end_batch_process', () => ({ ...batchPayload(batch), duration: Date.now() - started }));
  }

  /**
   * Calls a handler of partition `key`, retrying with backoff; false when it failed while its
   * partition was paused: then, as in KafkaJS, it is called again once the partition is resumed
   * and fetched again, not in place (the pause is the handler saying "not now").
   */
  async #withRetries(key: string, call: () => Promise<void>): Promise<boolean> {
    const { groupId, retry, logger, stopping } = this.#parts;
    for (let attempt = 0; ; attempt++) {
      try {
        await call();
        return true;
      } catch (error) {
        if (this.#paused.has(key) && !stopping()) {
          logger.info('message handler failed while its partition is paused; retried after resume', { groupId, error: String(error) });
          return false;
        }
        if (attempt >= retry.retries || stopping()) throw error;
        logger.warn('message handler failed; retrying', { groupId, attempt: attempt + 1, error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, retry.delay(attempt)));
      }
    }
  }
}

/** Runs `task` over `items` with at most `limit` at once. */
async function runConcurrently<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
