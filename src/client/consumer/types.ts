// The consumer's public types (re-exported by ../consumer.ts) and the settings its parts share.

import type { AssignorName, Assignment } from '../../node';
import type { KafkaMessage } from '../messages';
import type { RequestEventsOf } from '../requests';
import type { RetryOptions } from '../retry';

export interface ConsumerConfig {
  groupId: string;
  /** In order of preference; every member of a group must share one. Default [roundRobin], as KafkaJS. */
  partitionAssigners?: AssignorName[];
  /** A member silent this long is removed from the group. Default 30000. */
  sessionTimeout?: number;
  /** How long a rebalance waits for members to rejoin. Default 60000. */
  rebalanceTimeout?: number;
  /** How often the consumer heartbeats (and so how soon it notices a rebalance). Default 3000. */
  heartbeatInterval?: number;
  /** Longest a fetch waits at the end of the log for new records. Default 5000. */
  maxWaitTimeInMs?: number;
  /** Bytes a fetch waits for before answering. Default 1. */
  minBytes?: number;
  /** Bytes one fetch returns at most. Default 10 MiB. */
  maxBytes?: number;
  /** Bytes one partition contributes to a fetch at most. Default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Create a subscribed topic that does not exist, with one partition (KafkaJS's default: true). */
  allowAutoTopicCreation?: boolean;
  /**
   * KafkaJS's isolation level: read_committed (false, the default) or read_uncommitted (true).
   * Without transactions the last stable offset is the high watermark, so both read up to it.
   */
  readUncommitted?: boolean;
  /**
   * Retries of a failing eachMessage/eachBatch (exponential backoff), then restarts of the
   * crashed consumer (each emits CRASH), as KafkaJS's. Once spent, `restartOnFailure` decides
   * whether it restarts again; without it the consumer stops. Default { retries: 5, initialRetryTime: 300 }.
   */
  retry?: RetryOptions;
}

export interface ConsumerSubscribeTopics {
  topics?: Array<string | RegExp>;
  topic?: string | RegExp;
  /** Without a committed offset, start at the log start (true) or the end (false, default): Kafka's auto.offset.reset. */
  fromBeginning?: boolean;
}

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

export interface TopicPartitions {
  topic: string;
  partitions?: number[];
}

export interface OffsetsByTopicPartition {
  topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;
}

export interface Batch {
  topic: string;
  partition: number;
  highWatermark: string;
  messages: KafkaMessage[];
  isEmpty(): boolean;
  firstOffset(): string | null;
  lastOffset(): string;
  /** Records between the last message and the high watermark. */
  offsetLag(): string;
  /** Records between the first message and the high watermark. */
  offsetLagLow(): string;
}

export interface EachMessagePayload {
  topic: string;
  partition: number;
  message: KafkaMessage;
  heartbeat(): Promise<void>;
  /** Pauses this partition; returns a function that resumes it. */
  pause(): () => void;
}

export interface EachBatchPayload {
  batch: Batch;
  /** Marks `offset` processed: a commit will commit offset + 1. */
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  pause(): () => void;
  /** Commits resolved offsets if autoCommit's interval or threshold says so (or `offsets`, if given). */
  commitOffsetsIfNecessary(offsets?: OffsetsByTopicPartition): Promise<void>;
  uncommittedOffsets(): OffsetsByTopicPartition;
  isRunning(): boolean;
  /** True once the partition may belong to another member (a rebalance began): stop processing. */
  isStale(): boolean;
}

export interface ConsumerRunConfig {
  eachMessage?: (payload: EachMessagePayload) => Promise<void>;
  eachBatch?: (payload: EachBatchPayload) => Promise<void>;
  /** Default true. */
  autoCommit?: boolean;
  /** Commit at most this often, in ms (null: after every batch unless a threshold is set). */
  autoCommitInterval?: number | null;
  /** Commit once this many messages are resolved. */
  autoCommitThreshold?: number | null;
  /** How many partitions are processed at once. Default 1. */
  partitionsConsumedConcurrently?: number;
  /** Resolve a batch's last offset when eachBatch returns. Default true. */
  eachBatchAutoResolve?: boolean;
}

type OffsetsPayload = { groupId: string; memberId: string; groupGenerationId: number; topics: OffsetsByTopicPartition['topics'] };
export type BatchPayload = { topic: string; partition: number; highWatermark: string; offsetLag: string; offsetLagLow: string; batchSize: number; firstOffset: string; lastOffset: string };

/**
 * KafkaJS's consumer events and their payloads. The request events (`consumer.network.*`) are
 * the consumer's calls to its tab's broker and that broker's requests to the partitions'
 * leaders for them (src/client/requests.ts).
 */
export interface ConsumerEvents extends RequestEventsOf<'consumer'> {
  'consumer.heartbeat': { groupId: string; memberId: string; groupGenerationId: number };
  'consumer.commit_offsets': OffsetsPayload;
  'consumer.group_join': { duration: number; groupId: string; isLeader: boolean; leaderId: string; groupProtocol: string; memberId: string; memberAssignment: Assignment };
  'consumer.fetch_start': { nodeId: number };
  'consumer.fetch': { numberOfBatches: number; duration: number; nodeId: number };
  'consumer.start_batch_process': BatchPayload;
  'consumer.end_batch_process': BatchPayload & { duration: number };
  'consumer.connect': Record<string, never>;
  'consumer.disconnect': Record<string, never>;
  'consumer.stop': Record<string, never>;
  'consumer.crash': { error: Error; groupId: string; restart: boolean };
  'consumer.rebalancing': { groupId: string; memberId: string };
  /** A topic subscribed to did not exist and was created (allowAutoTopicCreation; not a KafkaJS event). */
  'consumer.topic_created': { topic: string; numPartitions: number };
}

/** ConsumerConfig with its defaults applied. */
export type ConsumerSettings = Required<Omit<ConsumerConfig, 'groupId' | 'retry'>>;

/** ConsumerRunConfig with its defaults applied: one of the handlers, and every option. */
export type RunSettings = ConsumerRunConfig & Required<Omit<ConsumerRunConfig, 'eachMessage' | 'eachBatch'>>;
