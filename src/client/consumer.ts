import { GroupError, InvalidArgumentError, NotConnectedError, UnknownTopicOrPartitionError } from '../errors';
import type { AssignorName, Assignment, FetchedPartition, JoinReply, NodeApi, OffsetCommit } from '../node';
import { decodeBatchAsync, nextOffset, readBatchHeader } from '../protocol';
import { Instrumentation, type InstrumentationEvent } from './events';
import { groupDescription, type GroupDescriptionResult } from './admin';
import type { Letterbox } from './letterbox';
import type { Logger } from './logger';
import { toKafkaMessage, type KafkaMessage } from './messages';
import { abortable } from './node-connection';
import type { CallOptions } from './producer';
import { retryOf, type Retry, type RetryOptions } from './retry';
import * as check from './validate';

/** Topic-partitions as pause and resume take them: `[{ topic, partitions? }]`. */
function topicPartitions(value: unknown): Array<{ topic: string; partitions: number[] | undefined }> {
  return check.array(value, 'topics').map((entry, i) => {
    const { topic, partitions } = check.object(entry, `topics[${i}]`);
    const listed = check.array(partitions, `topics[${i}].partitions`, true);
    return { topic: check.string(topic, `topics[${i}].topic`), partitions: listed?.map((p, j) => check.integer(p, `topics[${i}].partitions[${j}]`, 0)) };
  });
}

/** KafkaJS's assigners by name: `partitionAssigners: [PartitionAssigners.roundRobin]`. */
export const PartitionAssigners = { roundRobin: 'roundrobin', range: 'range' } as const satisfies Record<string, AssignorName>;

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
type BatchPayload = { topic: string; partition: number; highWatermark: string; offsetLag: string; offsetLagLow: string; batchSize: number; firstOffset: string; lastOffset: string };

/** KafkaJS's consumer events and their payloads. */
export interface ConsumerEvents {
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

const events = {
  HEARTBEAT: 'consumer.heartbeat',
  COMMIT_OFFSETS: 'consumer.commit_offsets',
  GROUP_JOIN: 'consumer.group_join',
  FETCH_START: 'consumer.fetch_start',
  FETCH: 'consumer.fetch',
  START_BATCH_PROCESS: 'consumer.start_batch_process',
  END_BATCH_PROCESS: 'consumer.end_batch_process',
  CONNECT: 'consumer.connect',
  DISCONNECT: 'consumer.disconnect',
  STOP: 'consumer.stop',
  CRASH: 'consumer.crash',
  REBALANCING: 'consumer.rebalancing',
  TOPIC_CREATED: 'consumer.topic_created',
} as const satisfies Record<string, keyof ConsumerEvents>;

/** A fetch in flight and the positions it asked from. */
interface PendingFetch {
  requestId: number;
  partitions: Array<{ owned: OwnedPartition; fetchOffset: number }>;
  result: Promise<FetchedPartition[]>;
  started: number;
}

/** The offset after the last record of `batches`. */
const endOffsetOf = (batches: readonly Uint8Array[]) => nextOffset(readBatchHeader(batches.at(-1)!));

interface OwnedPartition {
  topic: string;
  partition: number;
  /** Next offset to fetch. */
  position: number;
  /** Next offset to commit (one past the last resolved). */
  resolved: number;
  /** Last committed offset. */
  committed: number;
}

/** One join: its member, generation and the partitions it owns. */
interface Generation {
  memberId: string;
  generationId: number;
  owned: Map<string, OwnedPartition>;
  /** Set once the coordinator said to rejoin (or the member was fenced). */
  stale: boolean;
}

const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;
const groupRejoinCodes = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);

/**
 * Reads topics as a member of a consumer group, KafkaJS-style: `subscribe`, then `run`. The
 * group's partitions are split among its members and rebalanced as members come and go;
 * progress is committed to the node. A consumer at the end of the log waits in the node and
 * is woken by the next append.
 * @example await consumer.subscribe({ topic: 'events', fromBeginning: true }); await consumer.run({ eachMessage: async ({ message }) => {} });
 */
export class Consumer {
  readonly groupId: string;
  readonly events = events;
  readonly #letterbox: Letterbox;
  readonly #logger: Logger;
  readonly #config: Required<Omit<ConsumerConfig, 'groupId' | 'retry'>>;
  readonly #retry: Retry;
  readonly #instrumentation = new Instrumentation<ConsumerEvents>();
  #connected = false;
  readonly #subscriptions: Array<{ topic: string | RegExp; fromBeginning: boolean }> = [];
  #running: Promise<void> | undefined;
  #stopping = false;
  #memberId: string | null = null;
  #generation: Generation | undefined;
  readonly #paused = new Set<string>();
  readonly #seeks = new Map<string, number>();
  #requestId = 0;
  #inFlight: number | undefined;
  #uncommitted = 0;
  #lastCommitAt = 0;

  constructor(letterbox: Letterbox, config: ConsumerConfig, logger: Logger) {
    const c = check.object(config, 'consumer config');
    this.#letterbox = letterbox;
    this.#logger = logger;
    this.groupId = check.string(c['groupId'], 'groupId');
    const assigners = check.array(c['partitionAssigners'], 'partitionAssigners', true);
    const ms = (name: string, fallback: number) => check.integer(c[name], name, 0, undefined, fallback);
    this.#config = {
      partitionAssigners: assigners?.map((a, i) => check.oneOf(a, `partitionAssigners[${i}]`, Object.values(PartitionAssigners))) ?? [PartitionAssigners.roundRobin],
      sessionTimeout: ms('sessionTimeout', 30_000),
      rebalanceTimeout: ms('rebalanceTimeout', 60_000),
      heartbeatInterval: check.integer(c['heartbeatInterval'], 'heartbeatInterval', 1, undefined, 3_000),
      maxWaitTimeInMs: ms('maxWaitTimeInMs', 5_000),
      minBytes: ms('minBytes', 1),
      maxBytes: check.integer(c['maxBytes'], 'maxBytes', 1, undefined, 10 * 1024 * 1024),
      maxBytesPerPartition: check.integer(c['maxBytesPerPartition'], 'maxBytesPerPartition', 1, undefined, 1024 * 1024),
      allowAutoTopicCreation: check.boolean(c['allowAutoTopicCreation'], 'allowAutoTopicCreation', true),
    };
    this.#retry = retryOf(c['retry'], 'retry');
  }

  /**
   * Listens to a consumer event; returns a function that stops listening.
   * @example const off = consumer.on(consumer.events.GROUP_JOIN, (e) => console.log(e.payload.memberAssignment));
   */
  on<K extends keyof ConsumerEvents>(type: K, listener: (event: InstrumentationEvent<ConsumerEvents[K]>) => void): () => void {
    check.listener(type, listener, Object.values(this.events));
    return this.#instrumentation.on(type, listener);
  }

  /**
   * This consumer's logger, as KafkaJS's `consumer.logger()`.
   * @example consumer.logger().info('processing', { topic: 'orders' });
   */
  logger(): Logger {
    return this.#logger;
  }

  /**
   * Describes this consumer's group: state, protocol, members and their assignments.
   * @example const { state, members } = await consumer.describeGroup();
   */
  async describeGroup(call: CallOptions = {}): Promise<GroupDescriptionResult> {
    const { signal } = check.callOptions(call);
    this.#ensureConnected();
    const [group] = await abortable((await this.#letterbox.node()).describeGroups([this.groupId]), signal);
    return groupDescription(group!);
  }

  /** @example await consumer.connect(); */
  async connect(): Promise<void> {
    await this.#letterbox.node();
    this.#connected = true;
    this.#instrumentation.emit('consumer.connect', () => ({}));
  }

  /**
   * Adds topics (names, or RegExps matched against existing topics) to read.
   * @example await consumer.subscribe({ topics: ['orders', /^audit\./], fromBeginning: true });
   */
  async subscribe(subscription: ConsumerSubscribeTopics, call: CallOptions = {}): Promise<void> {
    const { signal } = check.callOptions(call);
    const s = check.object(subscription, 'subscription');
    const name = (topic: unknown, what: string) => (topic instanceof RegExp ? topic : check.string(topic, what));
    const single = s['topic'] === undefined ? [] : [name(s['topic'], 'topic')];
    const topics = s['topics'] === undefined ? single : check.array(s['topics'], 'topics').map((topic, i) => name(topic, `topics[${i}]`));
    if (topics.length === 0) throw new InvalidArgumentError('subscribe needs { topic } or { topics: [...] }');
    const fromBeginning = check.boolean(s['fromBeginning'], 'fromBeginning', false);
    this.#ensureConnected();
    if (this.#running !== undefined) throw new InvalidArgumentError('subscribe before run(), as in KafkaJS');
    const node = await this.#letterbox.node();
    const existing = await abortable(node.listTopics(), signal);
    const missing = topics.filter((topic): topic is string => typeof topic === 'string' && !existing.includes(topic));
    if (missing.length > 0 && !this.#config.allowAutoTopicCreation) throw new UnknownTopicOrPartitionError(missing[0]!);
    // As Kafka's auto.create.topics.enable: a missing topic is created with one partition.
    if (missing.length > 0) {
      const created = await abortable(node.createTopics(missing.map((topic) => ({ topic })), false), signal);
      missing.forEach((topic, i) => {
        if (created[i] !== true) return; // created meanwhile by someone else
        this.#logger.info('created a missing topic (allowAutoTopicCreation)', { topic, numPartitions: 1 });
        this.#instrumentation.emit('consumer.topic_created', () => ({ topic, numPartitions: 1 }));
      });
    }
    for (const topic of topics) this.#subscriptions.push({ topic, fromBeginning });
  }

  /**
   * Joins the group and consumes in the background; resolves once the group is joined and
   * synced (as KafkaJS 2.2.4's runner), or once the consumer stopped or crashed trying.
   * @example await consumer.run({ eachMessage: async ({ topic, partition, message }) => console.log(message.offset) });
   */
  async run(config: ConsumerRunConfig): Promise<void> {
    const c = check.object(config, 'run config');
    const eachMessage = check.func<NonNullable<ConsumerRunConfig['eachMessage']>>(c['eachMessage'], 'eachMessage', true);
    const eachBatch = check.func<NonNullable<ConsumerRunConfig['eachBatch']>>(c['eachBatch'], 'eachBatch', true);
    if (eachMessage === undefined && eachBatch === undefined) throw new InvalidArgumentError('run needs { eachMessage } or { eachBatch }');
    const run: Required<Omit<ConsumerRunConfig, 'eachMessage' | 'eachBatch'>> & Pick<ConsumerRunConfig, 'eachMessage' | 'eachBatch'> = {
      ...(eachBatch === undefined ? { eachMessage } : { eachBatch }),
      autoCommit: check.boolean(c['autoCommit'], 'autoCommit', true),
      autoCommitInterval: c['autoCommitInterval'] === null ? null : check.integer(c['autoCommitInterval'], 'autoCommitInterval', 0, undefined, null),
      autoCommitThreshold: c['autoCommitThreshold'] === null ? null : check.integer(c['autoCommitThreshold'], 'autoCommitThreshold', 1, undefined, null),
      partitionsConsumedConcurrently: check.integer(c['partitionsConsumedConcurrently'], 'partitionsConsumedConcurrently', 1, undefined, 1),
      eachBatchAutoResolve: check.boolean(c['eachBatchAutoResolve'], 'eachBatchAutoResolve', true),
    };
    this.#ensureConnected();
    if (this.#running !== undefined) throw new InvalidArgumentError('the consumer is already running');
    if (this.#subscriptions.length === 0) throw new InvalidArgumentError('subscribe to a topic before run()');
    this.#stopping = false;
    let joined!: () => void;
    const firstJoin = new Promise<void>((resolve) => (joined = resolve));
    this.#running = this.#runLoop(run, joined).finally(() => {
      this.#running = undefined;
      joined();
    });
    await firstJoin;
  }

  /**
   * Stops consuming: finishes the current message, commits, leaves the group.
   * @example await consumer.stop();
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#cancelFetch();
    await this.#running;
  }

  /** @example await consumer.disconnect(); */
  async disconnect(): Promise<void> {
    await this.stop();
    this.#connected = false;
    this.#instrumentation.emit('consumer.disconnect', () => ({}));
  }

  /**
   * Consumes a partition from `offset` on (committed with the next commit).
   * @example consumer.seek({ topic: 'orders', partition: 0, offset: '42' });
   */
  seek(position: TopicPartitionOffset): void {
    const { topic, partition, offset } = check.object(position, 'seek position');
    // As KafkaJS: a string or a number; -1 and -2 are Kafka's latest and earliest.
    const at = typeof offset === 'number' ? check.integer(offset, 'offset', -2) : check.decimal(offset, 'offset', -2);
    const key = keyOf(check.string(topic, 'topic'), check.integer(partition, 'partition', 0));
    if (at >= 0) return this.#seekTo(key, at);
    void (async () => {
      const node = await this.#letterbox.node();
      const [found] = await node.listOffsets([{ topic: check.string(topic, 'topic'), partition: partition as number, query: at === -2 ? 'earliest' : 'latest' }]);
      this.#seekTo(key, found ?? 0);
    })().catch((error: unknown) => this.#logger.error('seek failed', { topic, partition, offset: at, error: String(error) }));
  }

  #seekTo(key: string, offset: number): void {
    this.#seeks.set(key, offset);
    this.#applySeeks();
    void this.#cancelFetch();
  }

  /**
   * Stops fetching the given topics (all their partitions, or those listed) until resumed.
   * @example consumer.pause([{ topic: 'orders', partitions: [0] }]);
   */
  pause(topics: TopicPartitions[]): void {
    for (const key of this.#keysOf(topics)) this.#paused.add(key);
    void this.#cancelFetch(); // the next fetch leaves these partitions out
  }

  /**
   * Fetches paused partitions again.
   * @example consumer.resume([{ topic: 'orders' }]);
   */
  resume(topics: TopicPartitions[]): void {
    for (const key of this.#keysOf(topics)) this.#paused.delete(key);
    void this.#cancelFetch(); // a fetch waiting without these partitions returns, and the next includes them
  }

  /**
   * The paused partitions.
   * @example consumer.paused() // [{ topic: 'orders', partitions: [0] }]
   */
  paused(): Array<{ topic: string; partitions: number[] }> {
    const byTopic = new Map<string, number[]>();
    for (const key of this.#paused) {
      const [topic, partition] = key.split('\u0000') as [string, string];
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), Number(partition)]);
    }
    return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }));
  }

  /**
   * Commits offsets (the next offset to consume of each partition) now.
   * @example await consumer.commitOffsets([{ topic: 'orders', partition: 0, offset: '43' }]);
   */
  async commitOffsets(offsets: TopicPartitionOffset[]): Promise<void> {
    const commits = check.array(offsets, 'offsets').map((entry, i): OffsetCommit => {
      const { topic, partition, offset } = check.object(entry, `offsets[${i}]`);
      return { topic: check.string(topic, `offsets[${i}].topic`), partition: check.integer(partition, `offsets[${i}].partition`, 0), offset: check.decimal(offset, `offsets[${i}].offset`, 0), metadata: null };
    });
    const generation = this.#generation;
    if (generation === undefined) throw new NotConnectedError('commitOffsets needs a running consumer that has joined its group');
    for (const { topic, partition, offset } of commits) {
      const owned = generation.owned.get(keyOf(topic, partition));
      if (owned !== undefined) owned.resolved = offset;
    }
    await this.#commit(generation, commits);
  }

  #ensureConnected(): void {
    if (!this.#connected) throw new NotConnectedError('the consumer is not connected: call connect() first');
  }

  #keysOf(topics: TopicPartitions[]): string[] {
    return topicPartitions(topics).flatMap(({ topic, partitions }) => {
      const owned = [...(this.#generation?.owned.values() ?? [])].filter((p) => p.topic === topic).map((p) => p.partition);
      return (partitions ?? owned).map((partition) => keyOf(topic, partition));
    });
  }

  async #cancelFetch(): Promise<void> {
    const requestId = this.#inFlight;
    if (requestId === undefined) return;
    try {
      await (await this.#letterbox.node()).cancel(requestId);
    } catch {
      // A closed Letterbox has no fetch left to cancel: its calls were settled when it closed.
    }
  }

  async #runLoop(run: ConsumerRunConfig & Required<Omit<ConsumerRunConfig, 'eachMessage' | 'eachBatch'>>, joined: () => void): Promise<void> {
    const node = await this.#letterbox.node();
    let failures = 0;
    while (!this.#stopping) {
      try {
        const generation = await this.#join(node);
        joined();
        failures = 0;
        await this.#consume(node, generation, run);
        if (run.autoCommit) await this.#commitResolved(generation).catch(() => undefined);
        if (!this.#stopping) this.#instrumentation.emit('consumer.rebalancing', () => ({ groupId: this.groupId, memberId: generation.memberId }));
      } catch (error) {
        if (error instanceof GroupError && groupRejoinCodes.has(error.code)) {
          if (error.code === 'UNKNOWN_MEMBER_ID') this.#memberId = null;
          continue;
        }
        // An assigned topic deleted while joining: the coordinator rebalances without it.
        if (error instanceof UnknownTopicOrPartitionError && !this.#stopping) continue;
        failures++;
        // A closed Letterbox does not come back: the consumer stops instead of retrying.
        const crash = error instanceof Error ? error : new Error(String(error));
        const restart = !(error instanceof NotConnectedError) && (failures <= this.#retry.retries || ((await this.#retry.restartOnFailure?.(crash).catch(() => false)) ?? false));
        if (restart && failures > this.#retry.retries) failures = 0;
        this.#logger.error('consumer failed', { groupId: this.groupId, error: String(error), restart });
        this.#instrumentation.emit('consumer.crash', () => ({ error: crash, groupId: this.groupId, restart }));
        if (!restart) {
          this.#stopping = true;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, this.#retry.delay(Math.max(0, failures - 1))));
      }
    }
    await this.#leave(node, run.autoCommit);
    this.#instrumentation.emit('consumer.stop', () => ({}));
  }

  async #join(node: Awaited<ReturnType<Letterbox['node']>>): Promise<Generation> {
    const started = Date.now();
    const topics = await this.#subscribedTopics(node);
    const joined: JoinReply = await node.joinGroup({
      groupId: this.groupId,
      memberId: this.#memberId,
      clientId: this.#letterbox.clientId,
      sessionTimeoutMs: this.#config.sessionTimeout,
      rebalanceTimeoutMs: this.#config.rebalanceTimeout,
      topics,
      assignors: this.#config.partitionAssigners,
    });
    this.#memberId = joined.memberId;
    const { assignment } = await node.syncGroup({ groupId: this.groupId, memberId: joined.memberId, generationId: joined.generationId });
    const owned = new Map<string, OwnedPartition>();
    const committed = await node.fetchOffsets(this.groupId);
    const toReset: OwnedPartition[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const found = committed.find((c) => c.topic === topic && c.partition === partition);
        const p: OwnedPartition = { topic, partition, position: found?.offset ?? -1, resolved: found?.offset ?? -1, committed: found?.offset ?? -1 };
        if (found === undefined || found.offset < 0) toReset.push(p);
        owned.set(keyOf(topic, partition), p);
      }
    }
    await this.#reset(node, toReset);
    const generation: Generation = { memberId: joined.memberId, generationId: joined.generationId, owned, stale: false };
    this.#generation = generation;
    this.#applySeeks();
    this.#logger.info('joined group', { groupId: this.groupId, memberId: joined.memberId, generationId: joined.generationId, assignment });
    this.#instrumentation.emit('consumer.group_join', () => ({
      duration: Date.now() - started,
      groupId: this.groupId,
      isLeader: joined.leaderId === joined.memberId,
      leaderId: joined.leaderId,
      groupProtocol: joined.assignor,
      memberId: joined.memberId,
      memberAssignment: assignment,
    }));
    return generation;
  }

  /**
   * The topics this member joins with: every topic subscribed by name, existing or not (so a
   * topic deleted and created again is assigned again), and the existing ones a RegExp matches.
   */
  async #subscribedTopics(node: Awaited<ReturnType<Letterbox['node']>>): Promise<string[]> {
    const names = await node.listTopics();
    const matched = names.filter((name) => this.#subscriptions.some(({ topic }) => topic instanceof RegExp && topic.test(name)));
    const named = this.#subscriptions.flatMap(({ topic }) => (typeof topic === 'string' ? [topic] : []));
    return [...new Set([...named, ...matched])];
  }

  /** Kafka's auto.offset.reset: earliest when the subscription reads from the beginning, else latest. */
  async #reset(node: Awaited<ReturnType<Letterbox['node']>>, partitions: OwnedPartition[]): Promise<void> {
    if (partitions.length === 0) return;
    const fromBeginning = (topic: string) => this.#subscriptions.some((s) => s.fromBeginning && (typeof s.topic === 'string' ? s.topic === topic : s.topic.test(topic)));
    const offsets = await node.listOffsets(partitions.map((p) => ({ topic: p.topic, partition: p.partition, query: fromBeginning(p.topic) ? 'earliest' : 'latest' })));
    partitions.forEach((p, i) => {
      p.position = offsets[i] ?? 0;
      p.resolved = p.position;
    });
  }

  #applySeeks(): void {
    const owned = this.#generation?.owned;
    if (owned === undefined) return;
    for (const [key, offset] of this.#seeks) {
      const p = owned.get(key);
      if (p === undefined) continue;
      p.position = offset;
      p.resolved = offset;
      p.committed = -2; // differs from any real offset: the sought offset gets committed
      this.#seeks.delete(key);
    }
  }

  async #consume(node: Awaited<ReturnType<Letterbox['node']>>, generation: Generation, run: ConsumerRunConfig & Required<Omit<ConsumerRunConfig, 'eachMessage' | 'eachBatch'>>): Promise<void> {
    const heartbeat = async () => {
      if (generation.stale) return;
      try {
        await node.heartbeat({ groupId: this.groupId, memberId: generation.memberId, generationId: generation.generationId });
        this.#instrumentation.emit('consumer.heartbeat', () => ({ groupId: this.groupId, memberId: generation.memberId, groupGenerationId: generation.generationId }));
      } catch (error) {
        if (error instanceof GroupError && groupRejoinCodes.has(error.code)) {
          generation.stale = true;
          if (error.code === 'UNKNOWN_MEMBER_ID') this.#memberId = null;
          await this.#cancelFetch();
        }
      }
    };
    const timer = setInterval(() => void heartbeat(), this.#config.heartbeatInterval);
    const startFetch = (from: ReadonlyMap<OwnedPartition, number> = new Map()): PendingFetch => {
      const partitions = [...generation.owned.values()]
        .filter((p) => !this.#paused.has(keyOf(p.topic, p.partition)))
        .map((owned) => ({ owned, fetchOffset: from.get(owned) ?? owned.position }));
      const requestId = ++this.#requestId;
      this.#inFlight = requestId;
      this.#instrumentation.emit('consumer.fetch_start', () => ({ nodeId: 0 }));
      const result = node.fetch({
        requestId,
        maxWaitMs: this.#config.maxWaitTimeInMs,
        minBytes: this.#config.minBytes,
        maxBytes: this.#config.maxBytes,
        partitions: partitions.map(({ owned, fetchOffset }) => ({ topic: owned.topic, partition: owned.partition, fetchOffset, maxBytes: this.#config.maxBytesPerPartition })),
      });
      return { requestId, partitions, result, started: Date.now() };
    };
    let next = startFetch();
    const committed: { inFlight?: Promise<void> | undefined; again?: boolean; failure?: unknown } = {};
    try {
      while (!this.#stopping && !generation.stale) {
        const current = next;
        const fetched = await current.result;
        if (this.#inFlight === current.requestId) this.#inFlight = undefined;
        this.#instrumentation.emit('consumer.fetch', () => ({ numberOfBatches: fetched.filter((f) => f.batches.length > 0).length, duration: Date.now() - current.started, nodeId: 0 }));
        // A result fetched from where its partition no longer is (a seek, a pause, a prefetch past
        // records left unprocessed) is dropped; the next fetch starts from the position.
        const usable = current.partitions
          .map((p, i) => ({ ...p, result: fetched[i]! }))
          .filter(({ owned, fetchOffset }) => owned.position === fetchOffset && !this.#paused.has(keyOf(owned.topic, owned.partition)));
        await this.#reset(node, usable.filter(({ result }) => result.errorCode === 'OFFSET_OUT_OF_RANGE').map(({ owned }) => owned));
        const work = usable.filter(({ result }) => result.batches.length > 0);
        // A partition the node no longer has (its topic was deleted): the group rebalances, so rejoin.
        if (usable.some(({ result }) => result.errorCode === 'UNKNOWN_TOPIC_OR_PARTITION')) generation.stale = true;
        if (this.#stopping || generation.stale) break;
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
              await this.#commitIfNecessary(generation, run);
            } while (committed.again && !generation.stale);
          })()
            .catch((error: unknown) => void (committed.failure = error))
            .finally(() => (committed.inFlight = undefined));
        }
      }
      await committed.inFlight;
      if (committed.failure !== undefined) throw committed.failure;
    } finally {
      clearInterval(timer);
      // The prefetch still in flight ends now; its records are fetched again by whoever owns them next.
      await this.#cancelFetch();
      await next.result.catch(() => undefined);
      this.#inFlight = undefined;
    }
  }

  async #process(generation: Generation, owned: OwnedPartition, result: FetchedPartition, run: ConsumerRunConfig & Required<Omit<ConsumerRunConfig, 'eachMessage' | 'eachBatch'>>): Promise<void> {
    const messages: KafkaMessage[] = [];
    let nextAfterBatches = owned.position;
    for (const bytes of result.batches) {
      const batch = await decodeBatchAsync(bytes);
      for (const record of batch.records) if (batch.baseOffset + record.offsetDelta >= owned.position) messages.push(toKafkaMessage(batch, record));
      // Records a batch no longer holds (compaction) are skipped, not fetched again.
      nextAfterBatches = Math.max(nextAfterBatches, nextOffset(batch));
    }
    const positionBefore = owned.position;
    const key = keyOf(owned.topic, owned.partition);
    const isRunning = () => !this.#stopping;
    const isStale = () => generation.stale || !generation.owned.has(key);
    const resolveOffset = (offset: string) => {
      const next = Number(offset) + 1;
      if (next > owned.resolved) {
        this.#uncommitted += next - Math.max(owned.resolved, positionBefore);
        owned.resolved = next;
      }
    };
    const pause = () => {
      this.#paused.add(key);
      return () => this.resume([{ topic: owned.topic, partitions: [owned.partition] }]);
    };
    const highWatermark = result.highWatermark;
    const batch: Batch = {
      topic: owned.topic,
      partition: owned.partition,
      highWatermark: String(highWatermark),
      messages,
      isEmpty: () => messages.length === 0,
      firstOffset: () => messages[0]?.offset ?? null,
      lastOffset: () => messages.at(-1)?.offset ?? String(highWatermark - 1),
      offsetLag: () => String(Math.max(0, highWatermark - 1 - Number(messages.at(-1)?.offset ?? highWatermark - 1))),
      offsetLagLow: () => String(Math.max(0, highWatermark - 1 - Number(messages[0]?.offset ?? highWatermark - 1))),
    };
    const describe = (): BatchPayload => ({
      topic: owned.topic,
      partition: owned.partition,
      highWatermark: batch.highWatermark,
      offsetLag: batch.offsetLag(),
      offsetLagLow: batch.offsetLagLow(),
      batchSize: messages.length,
      firstOffset: batch.firstOffset() ?? batch.lastOffset(),
      lastOffset: batch.lastOffset(),
    });
    const started = Date.now();
    this.#instrumentation.emit('consumer.start_batch_process', describe);
    const heartbeat = async () => undefined; // heartbeats run on their own timer
    if (run.eachBatch !== undefined) {
      const eachBatch = run.eachBatch;
      const done = await this.#withRetries(key, () =>
        eachBatch({
          batch,
          resolveOffset,
          heartbeat,
          pause,
          commitOffsetsIfNecessary: (offsets) => (offsets === undefined ? this.#commitIfNecessary(generation, run, run.autoCommit) : this.#commit(generation, flatten(offsets))),
          uncommittedOffsets: () => this.#uncommittedOffsets(generation),
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
      owned.position = messages.length === 0 || run.eachBatchAutoResolve ? nextAfterBatches : Math.max(owned.position, owned.resolved);
    } else {
      const eachMessage = run.eachMessage!;
      let finished = true;
      for (const message of messages) {
        if (!isRunning() || isStale() || this.#paused.has(key) || this.#seeks.size > 0 || owned.position !== positionBefore) {
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
      if (owned.position === positionBefore) owned.position = finished ? nextAfterBatches : owned.resolved;
    }
    this.#instrumentation.emit('consumer.end_batch_process', () => ({ ...describe(), duration: Date.now() - started }));
  }

  #uncommittedOffsets(generation: Generation): OffsetsByTopicPartition {
    const dirty = [...generation.owned.values()].filter((p) => p.resolved !== p.committed && p.resolved >= 0);
    return { topics: groupByTopic(dirty.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.resolved }))) };
  }

  /** Commits resolved offsets when the interval or threshold says so, or (`everyBatch`) when neither is set. */
  async #commitIfNecessary(generation: Generation, run: Pick<ConsumerRunConfig, 'autoCommitInterval' | 'autoCommitThreshold'>, everyBatch = true): Promise<void> {
    const interval = run.autoCommitInterval ?? null;
    const threshold = run.autoCommitThreshold ?? null;
    const due =
      (everyBatch && interval === null && threshold === null) ||
      (interval !== null && Date.now() - this.#lastCommitAt >= interval) ||
      (threshold !== null && this.#uncommitted >= threshold);
    if (due) await this.#commitResolved(generation);
  }

  async #commitResolved(generation: Generation): Promise<void> {
    const offsets = flatten(this.#uncommittedOffsets(generation));
    if (offsets.length > 0) await this.#commit(generation, offsets);
  }

  async #commit(generation: Generation, offsets: OffsetCommit[]): Promise<void> {
    if (offsets.length === 0) return;
    const node = await this.#letterbox.node();
    const counted = this.#uncommitted; // records resolved while this commit is in flight stay counted
    try {
      await node.commitOffsets({ groupId: this.groupId, memberId: generation.memberId, generationId: generation.generationId, offsets });
    } catch (error) {
      if (error instanceof GroupError && groupRejoinCodes.has(error.code)) generation.stale = true;
      throw error;
    }
    for (const { topic, partition, offset } of offsets) {
      const owned = generation.owned.get(keyOf(topic, partition));
      if (owned !== undefined) owned.committed = offset;
    }
    this.#uncommitted = Math.max(0, this.#uncommitted - counted);
    this.#lastCommitAt = Date.now();
    this.#instrumentation.emit('consumer.commit_offsets', () => ({
      groupId: this.groupId,
      memberId: generation.memberId,
      groupGenerationId: generation.generationId,
      topics: groupByTopic(offsets),
    }));
  }

  /** Leaves the group, committing what was resolved first unless autoCommit is off (KafkaJS gates every commit of its own on it). */
  async #leave(node: NodeApi | Awaited<ReturnType<Letterbox['node']>>, autoCommit: boolean): Promise<void> {
    const generation = this.#generation;
    this.#generation = undefined;
    if (this.#memberId === null) return;
    const memberId = this.#memberId;
    this.#memberId = null;
    if (autoCommit && generation !== undefined && !generation.stale) await this.#commitResolved(generation).catch(() => undefined);
    await node.leaveGroup({ groupId: this.groupId, memberId }).catch(() => undefined);
  }

  /**
   * Calls a handler of partition `key`, retrying with backoff; false when it failed while its
   * partition was paused: then, as in KafkaJS, it is called again once the partition is resumed
   * and fetched again, not in place (the pause is the handler saying "not now").
   */
  async #withRetries(key: string, call: () => Promise<void>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await call();
        return true;
      } catch (error) {
        if (this.#paused.has(key) && !this.#stopping) {
          this.#logger.info('message handler failed while its partition is paused; retried after resume', { groupId: this.groupId, error: String(error) });
          return false;
        }
        if (attempt >= this.#retry.retries || this.#stopping) throw error;
        this.#logger.warn('message handler failed; retrying', { groupId: this.groupId, attempt: attempt + 1, error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, this.#retry.delay(attempt)));
      }
    }
  }
}

function flatten(offsets: OffsetsByTopicPartition): OffsetCommit[] {
  return offsets.topics.flatMap(({ topic, partitions }) => partitions.map(({ partition, offset }) => ({ topic, partition, offset: Number(offset), metadata: null })));
}

function groupByTopic(offsets: ReadonlyArray<{ topic: string; partition: number; offset: number }>): OffsetsByTopicPartition['topics'] {
  const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
  for (const { topic, partition, offset } of offsets) {
    const list = byTopic.get(topic) ?? [];
    list.push({ partition, offset: String(offset) });
    byTopic.set(topic, list);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

/** Runs `task` over `items` with at most `limit` at once. */
async function runConcurrently<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
