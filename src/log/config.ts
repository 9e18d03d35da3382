/**
 * Topic-level settings the log obeys, with Kafka's names and defaults (Kafka's
 * `retention.ms`, `retention.bytes`, `cleanup.policy`, `delete.retention.ms`,
 * `max.message.bytes`, `min.insync.replicas`).
 */
export interface LogConfig {
  /** Delete batches whose newest record is older than this; -1 keeps them forever. Default 7 days. */
  retentionMs: number;
  /** Delete the oldest batches while the log would still hold at least this many bytes; -1 for no limit. Default -1. */
  retentionBytes: number;
  /** `delete`: retention only; `compact`: keep the latest record per key; both: `compact,delete`. Default `delete`. */
  cleanupPolicy: 'delete' | 'compact' | 'compact,delete';
  /** How long a tombstone (null value) survives compaction. Default 1 day. */
  deleteRetentionMs: number;
  /** Largest record batch accepted, in bytes. Default 1048588 (Kafka's). */
  maxMessageBytes: number;
  /** In-sync replicas an `acks: -1` write needs, leader included (a replicated partition's). Default 1. */
  minInsyncReplicas: number;
}

export const defaultLogConfig: LogConfig = {
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  retentionBytes: -1,
  cleanupPolicy: 'delete',
  deleteRetentionMs: 24 * 60 * 60 * 1000,
  maxMessageBytes: 1048588,
  minInsyncReplicas: 1,
};

export const compacts = (config: LogConfig) => config.cleanupPolicy !== 'delete';
export const deletes = (config: LogConfig) => config.cleanupPolicy !== 'compact';
