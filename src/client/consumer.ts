import { InvalidArgumentError, LetterboxError, NotConnectedError, UnknownTopicOrPartitionError } from '../errors';
import type { AssignorName, OffsetCommit } from '../node';
import { groupDescription, type GroupDescriptionResult } from './admin';
import type { CallOptions } from './call-options';
import { FetchRunner } from './consumer/fetch-runner';
import { keyOf, partitionOf } from './consumer/generation';
import { GroupSession } from './consumer/group-session';
import { OffsetManager } from './consumer/offsets';
import { Subscriptions } from './consumer/subscriptions';
import type { ConsumerConfig, ConsumerEvents, ConsumerRunConfig, ConsumerSettings, ConsumerSubscribeTopics, RunSettings, TopicPartitionOffset, TopicPartitions } from './consumer/types';
import type { ClientContext } from './context';
import { Instrumentation, type InstrumentationEvent } from './events';
import { ClientRequests, requestEmitter, requestEventNames } from './requests';
import type { Logger } from './logger';
import { abortable } from './node-connection';
import { retryOf, type Retry } from './retry';
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

export type {
  Batch,
  ConsumerConfig,
  ConsumerEvents,
  ConsumerRunConfig,
  ConsumerSubscribeTopics,
  EachBatchPayload,
  EachMessagePayload,
  OffsetsByTopicPartition,
  TopicPartitionOffset,
  TopicPartitions,
} from './consumer/types';

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
  ...requestEventNames('consumer'),
} as const satisfies Record<string, keyof ConsumerEvents>;

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
  readonly #context: ClientContext;
  readonly #logger: Logger;
  readonly #config: ConsumerSettings;
  readonly #retry: Retry;
  readonly #instrumentation = new Instrumentation<ConsumerEvents>();
  readonly #subscriptions = new Subscriptions();
  readonly #offsets: OffsetManager;
  readonly #session: GroupSession;
  readonly #runner: FetchRunner;
  #connected = false;
  #running: Promise<void> | undefined;
  #stopping = false;

  constructor(context: ClientContext, config: ConsumerConfig, logger: Logger) {
    const c = check.object(config, 'consumer config');
    this.#context = new ClientRequests(context, requestEmitter(this.#instrumentation, 'consumer'));
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
      // Both isolation levels read up to the high watermark until transactions exist (ConsumerConfig).
      readUncommitted: check.boolean(c['readUncommitted'], 'readUncommitted', false),
    };
    this.#retry = retryOf(c['retry'], 'retry');
    const shared = { groupId: this.groupId, context: this.#context, config: this.#config, logger, instrumentation: this.#instrumentation, subscriptions: this.#subscriptions };
    this.#offsets = new OffsetManager(shared);
    this.#session = new GroupSession({ ...shared, offsets: this.#offsets });
    this.#runner = new FetchRunner({ ...shared, session: this.#session, offsets: this.#offsets, retry: this.#retry, stopping: () => this.#stopping });
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
    const [group] = await abortable((await this.#context.node()).describeGroups([this.groupId]), signal);
    return groupDescription(group!);
  }

  /** @example await consumer.connect(); */
  async connect(): Promise<void> {
    await this.#context.node();
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
    const node = await this.#context.node();
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
    this.#subscriptions.add(topics, fromBeginning);
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
    const run: RunSettings = {
      ...(eachBatch === undefined ? { eachMessage } : { eachBatch }),
      autoCommit: check.boolean(c['autoCommit'], 'autoCommit', true),
      autoCommitInterval: c['autoCommitInterval'] === null ? null : check.integer(c['autoCommitInterval'], 'autoCommitInterval', 0, undefined, null),
      autoCommitThreshold: c['autoCommitThreshold'] === null ? null : check.integer(c['autoCommitThreshold'], 'autoCommitThreshold', 1, undefined, null),
      partitionsConsumedConcurrently: check.integer(c['partitionsConsumedConcurrently'], 'partitionsConsumedConcurrently', 1, undefined, 1),
      eachBatchAutoResolve: check.boolean(c['eachBatchAutoResolve'], 'eachBatchAutoResolve', true),
    };
    this.#ensureConnected();
    if (this.#running !== undefined) throw new InvalidArgumentError('the consumer is already running');
    if (this.#subscriptions.isEmpty) throw new InvalidArgumentError('subscribe to a topic before run()');
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
    await this.#runner.cancelFetch();
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
      const node = await this.#context.node();
      const [found] = await node.listOffsets([{ topic: check.string(topic, 'topic'), partition: partition as number, query: at === -2 ? 'earliest' : 'latest' }]);
      this.#seekTo(key, found ?? 0);
    })().catch((error: unknown) => this.#logger.error('seek failed', { topic, partition, offset: at, error: String(error) }));
  }

  #seekTo(key: string, offset: number): void {
    this.#offsets.seek(key, offset, this.#session.generation);
    void this.#runner.cancelFetch();
  }

  /**
   * Stops fetching the given topics (all their partitions, or those listed) until resumed.
   * @example consumer.pause([{ topic: 'orders', partitions: [0] }]);
   */
  pause(topics: TopicPartitions[]): void {
    this.#runner.pause(this.#keysOf(topics));
  }

  /**
   * Fetches paused partitions again.
   * @example consumer.resume([{ topic: 'orders' }]);
   */
  resume(topics: TopicPartitions[]): void {
    this.#runner.resume(this.#keysOf(topics));
  }

  /**
   * The paused partitions.
   * @example consumer.paused() // [{ topic: 'orders', partitions: [0] }]
   */
  paused(): Array<{ topic: string; partitions: number[] }> {
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of this.#runner.paused().map(partitionOf)) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
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
    const generation = this.#session.generation;
    if (generation === undefined) throw new NotConnectedError('commitOffsets needs a running consumer that has joined its group');
    await this.#offsets.commitOffsets(generation, commits);
  }

  #ensureConnected(): void {
    if (!this.#connected) throw new NotConnectedError('the consumer is not connected: call connect() first');
  }

  #keysOf(topics: TopicPartitions[]): string[] {
    return topicPartitions(topics).flatMap(({ topic, partitions }) => {
      const owned = [...(this.#session.generation?.owned.values() ?? [])].filter((p) => p.topic === topic).map((p) => p.partition);
      return (partitions ?? owned).map((partition) => keyOf(topic, partition));
    });
  }

  /**
   * Once retries are spent: `restartOnFailure` decides; without one the consumer restarts only
   * on an error the cluster says is retriable (a leader or coordinator unreachable until a
   * failover ends must not stop it for good; its retries wait up to maxRetryTime apart), and
   * stops on any other — a handler's own error repeating in a crash loop costs the tab's battery.
   */
  async #restartsAfter(crash: Error): Promise<boolean> {
    const { restartOnFailure } = this.#retry;
    if (restartOnFailure !== undefined) return restartOnFailure(crash).catch(() => false);
    return crash instanceof LetterboxError && crash.retriable;
  }

  /** Joins, consumes until a rebalance, and joins again, until stopped; a failure restarts it as `retry` says (each emits CRASH). */
  async #runLoop(run: RunSettings, joined: () => void): Promise<void> {
    const node = await this.#context.node();
    let failures = 0;
    while (!this.#stopping) {
      try {
        const generation = await this.#session.join(node);
        joined();
        failures = 0;
        await this.#runner.consume(node, generation, run);
        if (run.autoCommit) await this.#offsets.commitResolved(generation).catch(() => undefined);
        if (!this.#stopping) this.#instrumentation.emit('consumer.rebalancing', () => ({ groupId: this.groupId, memberId: generation.memberId }));
      } catch (error) {
        if (this.#session.rejoins(error)) continue;
        // An assigned topic deleted while joining: the coordinator rebalances without it.
        if (error instanceof UnknownTopicOrPartitionError && !this.#stopping) continue;
        failures++;
        // A closed Letterbox does not come back: the consumer stops instead of retrying.
        const crash = error instanceof Error ? error : new Error(String(error));
        const restart = !(error instanceof NotConnectedError) && (failures <= this.#retry.retries || (await this.#restartsAfter(crash)));
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
    await this.#session.leave(node, run.autoCommit);
    this.#instrumentation.emit('consumer.stop', () => ({}));
  }
}
