import { every, realClock, type Cancel, type Clock } from '../clock';
import type { PartitionId, Storage } from '../storage';
import { LogCleaner } from './cleaner';
import { defaultLogConfig, type LogConfig } from './config';
import { createGroupCommitter, storageSink, type GroupCommitter } from './group-commit';
import { PartitionLog, READ_AHEAD_LOGS_MAX, TAIL_CACHE_LOGS_MAX } from './partition-log';
import { RecentSlots } from './recent-slots';
import { recoverPartition } from './recovery';

export interface OpenLogOptions {
  /**
   * `durable-end` (a single node): the high watermark follows the durable log end.
   * `replicated`: the owner advances it (replication). Default `durable-end`.
   */
  highWatermark?: 'durable-end' | 'replicated';
}

export interface LogManager {
  /**
   * Opens a partition's log, creating it or recovering it from storage.
   * @example const log = await logs.open({ topic: 'orders', partition: 0 }, { retentionMs: 60_000 });
   */
  open(id: PartitionId, config?: Partial<LogConfig>, options?: OpenLogOptions): Promise<PartitionLog>;
  /** An open log, if any. */
  get(id: PartitionId): PartitionLog | undefined;
  /** Deletes a partition's log and all its batches. */
  delete(id: PartitionId): Promise<void>;
  /**
   * One maintenance round for every open log: retention, then one compaction step.
   * Resolves true while compaction has more steps to do.
   * @example while (await logs.maintain(clock.now())) await nextTask();
   */
  maintain(nowMs: number): Promise<boolean>;
  /**
   * Marks what every open log has stored as verified (each batch was checked as it was
   * appended), so that the next open's recovery checks only its last batch: at a clean close,
   * and every RECOVERY_CHECKPOINT_MS in the background (Kafka's recovery-point checkpoint).
   * Without it, an open re-read and re-checked everything written since the last one.
   * @example await logs.checkpoint(); storage.close();
   */
  checkpoint(): Promise<void>;
  /**
   * Runs maintenance in the background: a round every `intervalMs` (Kafka's
   * log.retention.check.interval.ms, default 5 min), and while compaction has more steps,
   * the next step in a new task, so appends are never held up for long; and a checkpoint
   * every RECOVERY_CHECKPOINT_MS.
   * @example const maintenance = logs.maintainInBackground({ onError: console.error }); maintenance.stop();
   */
  maintainInBackground(init?: { intervalMs?: number; onError?: (error: unknown) => void }): BackgroundMaintenance;
  /** Partitions found in storage (opened or not). */
  listStored(): Promise<PartitionId[]>;
  /** IndexedDB transactions committed by group commit so far. */
  readonly transactions: number;
  /** The group committer the logs share: raft groups and coordinators (the node's executor) flush through it too. */
  readonly committer: GroupCommitter;
}

export interface LogManagerInit {
  /** Time and timers (maintenance rounds, flush scheduling); default the real clock. */
  clock?: Clock;
}

export interface BackgroundMaintenance {
  /** Runs a round now instead of at the next interval (e.g. after a config change). */
  runSoon(): void;
  stop(): void;
}

const keyOf = (id: PartitionId) => `${id.topic}\u0000${id.partition}`;

/** How often the logs' recovery points are checkpointed in the background (Kafka's log.flush.offset.checkpoint.interval.ms). */
export const RECOVERY_CHECKPOINT_MS = 60_000;

/**
 * The logs of one node over one storage, sharing one group committer.
 * @example const logs = createLogManager(await openIndexedDbStorage('letterbox-slot-0'), { clock: realClock });
 */
export function createLogManager(storage: Storage, init: LogManagerInit = {}): LogManager {
  const clock = init.clock ?? realClock;
  const committer = createGroupCommitter(storageSink(storage), clock);
  const cleaner = new LogCleaner();
  const logs = new Map<string, PartitionLog>();
  const slots = { readAheads: new RecentSlots(READ_AHEAD_LOGS_MAX), tailCaches: new RecentSlots(TAIL_CACHE_LOGS_MAX) };
  const opening = new Map<string, Promise<PartitionLog>>();

  return {
    open(id, config = {}, options = {}) {
      const key = keyOf(id);
      const existing = logs.get(key);
      if (existing !== undefined) return Promise.resolve(existing);
      const pending =
        opening.get(key) ??
        (async () => {
          const state = await recoverPartition(storage, id);
          const log = new PartitionLog(storage, committer, slots, id, { ...defaultLogConfig, ...config }, {
            ...state,
            followsDurableEnd: (options.highWatermark ?? 'durable-end') === 'durable-end',
          });
          logs.set(key, log);
          return log;
        })().finally(() => opening.delete(key));
      opening.set(key, pending);
      return pending;
    },
    get: (id) => logs.get(keyOf(id)),
    async delete(id) {
      const log = logs.get(keyOf(id));
      log?.markDeleted();
      if (log !== undefined) for (const holders of Object.values(slots)) holders.release(log);
      logs.delete(keyOf(id));
      await storage.write([{ kind: 'deletePartition', id }]);
    },
    async maintain(nowMs) {
      let more = false;
      for (const log of [...logs.values()]) {
        try {
          await log.enforceRetention(nowMs);
          if (await cleaner.step(log, nowMs)) more = true;
        } catch (error) {
          if (!log.deleted) throw error; // a log deleted mid-round wrote nothing more: nothing to report
        }
      }
      return more;
    },
    async checkpoint() {
      for (const log of [...logs.values()]) {
        try {
          await log.checkpoint();
        } catch (error) {
          if (!log.deleted) throw error;
        }
      }
    },
    maintainInBackground({ intervalMs = 300_000, onError = () => undefined } = {}) {
      let cancel: Cancel = () => undefined;
      let stopped = false;
      const stopCheckpoints = every(clock, RECOVERY_CHECKPOINT_MS, () => void this.checkpoint().catch(onError));
      const round = async () => {
        let more = false;
        try {
          more = await this.maintain(clock.now());
        } catch (error) {
          onError(error);
        }
        if (!stopped) cancel = clock.after(more ? 0 : intervalMs, () => void round());
      };
      cancel = clock.after(0, () => void round());
      return {
        runSoon() {
          if (stopped) return;
          cancel();
          cancel = clock.after(0, () => void round());
        },
        stop() {
          stopped = true;
          cancel();
          stopCheckpoints();
        },
      };
    },
    listStored: () => storage.listPartitions(),
    get transactions() {
      return committer.transactions;
    },
    committer,
  };
}
