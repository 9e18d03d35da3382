import { InvalidArgumentError, NotConnectedError, UnknownTopicOrPartitionError } from '../errors';
import type { FetchedPartition } from '../node/api';
import { decodeBatchAsync } from '../protocol';
import type { Letterbox } from './letterbox';
import { toKafkaMessage, type KafkaMessage } from './messages';
import { abortable } from './node-connection';
import type { CallOptions } from './producer';

export interface ConsumerConfig {
  groupId: string;
  /** Longest a fetch waits at the end of the log for new records. Default 5000. */
  maxWaitTimeInMs?: number;
  /** Bytes a fetch waits for before answering. Default 1. */
  minBytes?: number;
  /** Bytes one fetch returns at most. Default 10 MiB. */
  maxBytes?: number;
  /** Bytes one partition contributes to a fetch at most. Default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Retries of a failing eachMessage before the consumer stops. Default { retries: 5, initialRetryTime: 100 }. */
  retry?: { retries?: number; initialRetryTime?: number };
}

export interface ConsumerSubscribeTopics {
  topics?: Array<string | RegExp>;
  topic?: string | RegExp;
  /** Where to start without a committed offset: the log start (true) or its end (false, default). */
  fromBeginning?: boolean;
}

export interface EachMessagePayload {
  topic: string;
  partition: number;
  message: KafkaMessage;
  heartbeat(): Promise<void>;
  /** Pauses this partition; returns a function that resumes it. */
  pause(): () => void;
}

export interface ConsumerRunConfig {
  eachMessage: (payload: EachMessagePayload) => Promise<void>;
}

interface Assigned {
  topic: string;
  partition: number;
  /** Next offset to hand over. */
  position: number;
  paused: boolean;
}

/**
 * Reads topics, KafkaJS-style: `subscribe`, then `run({ eachMessage })`. A consumer at the
 * end of the log waits in the node and is woken by the next append.
 * @example await consumer.subscribe({ topic: 'events', fromBeginning: true }); await consumer.run({ eachMessage: async ({ message }) => {} });
 */
export class Consumer {
  readonly groupId: string;
  readonly #letterbox: Letterbox;
  readonly #config: Required<Omit<ConsumerConfig, 'groupId' | 'retry'>> & { retries: number; initialRetryTime: number };
  #connected = false;
  readonly #subscriptions: Array<{ topic: string | RegExp; fromBeginning: boolean }> = [];
  #running: Promise<void> | undefined;
  #stopping = false;
  #requestId = 0;
  #inFlight: number | undefined;

  constructor(letterbox: Letterbox, config: ConsumerConfig) {
    if (typeof config !== 'object' || config === null || typeof config.groupId !== 'string' || config.groupId === '') {
      throw new InvalidArgumentError('consumer({ groupId }) needs a non-empty groupId');
    }
    this.#letterbox = letterbox;
    this.groupId = config.groupId;
    this.#config = {
      maxWaitTimeInMs: config.maxWaitTimeInMs ?? 5000,
      minBytes: config.minBytes ?? 1,
      maxBytes: config.maxBytes ?? 10 * 1024 * 1024,
      maxBytesPerPartition: config.maxBytesPerPartition ?? 1024 * 1024,
      retries: config.retry?.retries ?? 5,
      initialRetryTime: config.retry?.initialRetryTime ?? 100,
    };
  }

  /** @example await consumer.connect(); */
  async connect(): Promise<void> {
    await this.#letterbox.node();
    this.#connected = true;
  }

  /**
   * Adds topics (names or RegExps matched against existing topics) to read.
   * @example await consumer.subscribe({ topics: ['orders', /^audit\./], fromBeginning: true });
   */
  async subscribe(subscription: ConsumerSubscribeTopics, call: CallOptions = {}): Promise<void> {
    this.#ensureConnected();
    if (this.#running !== undefined) throw new InvalidArgumentError('subscribe before run(), as in KafkaJS');
    const topics = subscription.topics ?? (subscription.topic === undefined ? [] : [subscription.topic]);
    if (!Array.isArray(topics) || topics.length === 0) throw new InvalidArgumentError('subscribe needs { topic } or { topics: [...] }');
    const existing = await abortable((await this.#letterbox.node()).listTopics(), call.signal);
    for (const topic of topics) {
      if (typeof topic === 'string') {
        if (!existing.includes(topic)) throw new UnknownTopicOrPartitionError(topic);
      } else if (!(topic instanceof RegExp)) {
        throw new InvalidArgumentError(`a subscribed topic is a string or a RegExp, got ${typeof topic}`);
      }
      this.#subscriptions.push({ topic, fromBeginning: subscription.fromBeginning ?? false });
    }
  }

  /**
   * Starts consuming in the background; resolves once started.
   * @example await consumer.run({ eachMessage: async ({ topic, partition, message }) => console.log(message.offset) });
   */
  async run(config: ConsumerRunConfig): Promise<void> {
    this.#ensureConnected();
    if (typeof config !== 'object' || config === null || typeof config.eachMessage !== 'function') throw new InvalidArgumentError('run needs { eachMessage }');
    if (this.#running !== undefined) throw new InvalidArgumentError('the consumer is already running');
    if (this.#subscriptions.length === 0) throw new InvalidArgumentError('subscribe to a topic before run()');
    const assigned = await this.#assign();
    this.#stopping = false;
    this.#running = this.#loop(assigned, config.eachMessage)
      .catch((error: unknown) => {
        // KafkaJS's CRASH: the consumer stops; the error is reported, not thrown into the void.
        this.#stopping = true;
        console.error(`letterbox consumer ${this.groupId} stopped:`, error);
      })
      .finally(() => (this.#running = undefined));
  }

  /**
   * Stops consuming; resolves once the current message is done.
   * @example await consumer.stop();
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#inFlight !== undefined) (await this.#letterbox.node()).cancel(this.#inFlight);
    await this.#running?.catch(() => undefined);
  }

  /** @example await consumer.disconnect(); */
  async disconnect(): Promise<void> {
    await this.stop();
    this.#connected = false;
  }

  #ensureConnected(): void {
    if (!this.#connected) throw new NotConnectedError('the consumer is not connected: call connect() first');
  }

  async #assign(): Promise<Assigned[]> {
    const node = await this.#letterbox.node();
    const names = await node.listTopics();
    const chosen = new Map<string, boolean>();
    for (const { topic, fromBeginning } of this.#subscriptions) {
      for (const name of names) if (typeof topic === 'string' ? name === topic : topic.test(name)) chosen.set(name, fromBeginning);
    }
    const described = await node.describeTopics([...chosen.keys()]);
    const assigned = described.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partition, position: 0, paused: false })));
    await this.#reset(assigned, (a) => chosen.get(a.topic) ?? false);
    return assigned;
  }

  /** Kafka's auto.offset.reset: earliest when reading from the beginning, else latest. */
  async #reset(partitions: Assigned[], fromBeginning: (a: Assigned) => boolean): Promise<void> {
    const node = await this.#letterbox.node();
    const offsets = await node.listOffsets(partitions.map((a) => ({ topic: a.topic, partition: a.partition, query: fromBeginning(a) ? 'earliest' : 'latest' })));
    partitions.forEach((a, i) => (a.position = offsets[i] ?? 0));
  }

  async #loop(assigned: Assigned[], eachMessage: ConsumerRunConfig['eachMessage']): Promise<void> {
    const node = await this.#letterbox.node();
    const fromBeginning = new Map(this.#subscriptions.map((s) => [s.topic, s.fromBeginning]));
    while (!this.#stopping) {
      const active = assigned.filter((a) => !a.paused);
      const requestId = ++this.#requestId;
      this.#inFlight = requestId;
      const fetched = await node.fetch({
        requestId,
        maxWaitMs: this.#config.maxWaitTimeInMs,
        minBytes: this.#config.minBytes,
        maxBytes: this.#config.maxBytes,
        partitions: active.map((a) => ({ topic: a.topic, partition: a.partition, fetchOffset: a.position, maxBytes: this.#config.maxBytesPerPartition })),
      });
      this.#inFlight = undefined;
      for (const [i, result] of fetched.entries()) {
        const target = active[i]!;
        if (result.errorCode === 'OFFSET_OUT_OF_RANGE') {
          await this.#reset([target], (a) => fromBeginning.get(a.topic) ?? [...fromBeginning.values()].some(Boolean));
          continue;
        }
        await this.#deliver(target, result, eachMessage);
        if (this.#stopping) return;
      }
    }
  }

  async #deliver(target: Assigned, result: FetchedPartition, eachMessage: ConsumerRunConfig['eachMessage']): Promise<void> {
    for (const bytes of result.batches) {
      const batch = await decodeBatchAsync(bytes);
      for (const record of batch.records) {
        const offset = batch.baseOffset + record.offsetDelta;
        if (offset < target.position) continue;
        if (this.#stopping || target.paused) return;
        const message = toKafkaMessage(batch, record);
        await this.#withRetries(() =>
          eachMessage({
            topic: target.topic,
            partition: target.partition,
            message,
            heartbeat: async () => undefined,
            pause: () => {
              target.paused = true;
              return () => (target.paused = false);
            },
          }),
        );
        target.position = offset + 1;
      }
      // Records a batch no longer holds (compaction) are skipped, not fetched again.
      target.position = Math.max(target.position, batch.baseOffset + batch.lastOffsetDelta + 1);
    }
  }

  async #withRetries(call: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (attempt >= this.#config.retries || this.#stopping) {
          this.#stopping = true;
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, this.#config.initialRetryTime * 2 ** attempt));
      }
    }
  }
}
