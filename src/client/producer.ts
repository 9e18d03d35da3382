import { AbortedError, InvalidArgumentError, LetterboxError, NotConnectedError, NumberOfRetriesExceededError, OutOfOrderSequenceNumberError, StorageFullError, TimeoutError, UnknownTopicOrPartitionError } from '../errors';
import type { ProduceResult, TopicState } from '../node';
import { createStickyPartitioner, defaultPartition } from '../protocol';
import { Instrumentation, type InstrumentationEvent } from './events';
import type { CallOptions } from './call-options';
import type { ClientContext } from './context';
import type { Logger } from './logger';
import { encodeBatches, normalizeMessage, type Message, type NormalizedMessage } from './messages';
import { abortable, transfer } from './node-connection';
import { ClientRequests, requestEmitter, requestEventNames, type RequestEventsOf } from './requests';
import { retryOf, type Retry, type RetryOptions } from './retry';
import * as check from './validate';

/** A custom partitioner, as KafkaJS calls it: the partition of a message without one. */
export type Partitioner = (args: { topic: string; partitionMetadata: Array<{ partitionId: number; leader: number; replicas: number[]; isr: number[] }>; message: Message }) => number;

const builtInPartitioner = (): Partitioner => () => 0; // a marker: the producer partitions itself (murmur2 / sticky)

/**
 * KafkaJS's partitioner names. All three mean Letterbox's own: Kafka's murmur2 of the key (as
 * Java's and KafkaJS's DefaultPartitioner), the sticky partition (KIP-480) without a key.
 * @example letterbox.producer({ createPartitioner: Partitioners.DefaultPartitioner })
 */
export const Partitioners = { DefaultPartitioner: builtInPartitioner, JavaCompatiblePartitioner: builtInPartitioner, LegacyPartitioner: builtInPartitioner } as const;

/** KafkaJS's compression codes. Letterbox compresses None and GZIP (built in, no codec to register). */
export const CompressionTypes = { None: 0, GZIP: 1 } as const;
export type CompressionType = (typeof CompressionTypes)[keyof typeof CompressionTypes];

/**
 * KafkaJS's codec registry, for code that reads it. Letterbox's codecs run in the broker's
 * worker, where a codec function given on the page cannot go: registering one (Snappy, LZ4,
 * ZSTD) throws InvalidArgumentError instead of being silently ignored.
 * @example CompressionCodecs[CompressionTypes.GZIP] // defined: gzip is built in
 */
const refuseCodec = (key: string | symbol): never => {
  throw new InvalidArgumentError(`CompressionCodecs[${String(key)}]: custom codecs are not supported (the codecs run in the broker's worker); use CompressionTypes.GZIP`);
};
export const CompressionCodecs: Readonly<Record<number, string>> = new Proxy({ [CompressionTypes.GZIP]: 'gzip' } as Record<number, string>, {
  set: (_, key) => refuseCodec(key),
  defineProperty: (_, key) => refuseCodec(key),
});

export interface ProducerConfig {
  /** Create a topic on first send when it does not exist (KafkaJS's default: true). */
  allowAutoTopicCreation?: boolean;
  /**
   * Largest record batch the producer builds, in bytes. Default ~1 MiB: measured on IndexedDB,
   * 1 MiB batches append and read at 0.6–0.9 of raw speed, 60 KiB ones at 0.2–0.5.
   */
  maxBatchBytes?: number;
  /**
   * KafkaJS's `createPartitioner`: `Partitioners.DefaultPartitioner` (the default; also what
   * JavaCompatiblePartitioner and LegacyPartitioner give: Kafka's murmur2 for keys, sticky without)
   * or your own `() => ({ topic, partitionMetadata, message }) => partition`, for messages without a partition.
   */
  createPartitioner?: () => Partitioner;
  /** Retries of a send that failed with a retriable error (not a timeout): then NumberOfRetriesExceededError (KafkaJSNumberOfRetriesExceeded). Default { retries: 5, initialRetryTime: 300 }. */
  retry?: RetryOptions;
  /**
   * Idempotence (KIP-98), on by default as since Kafka 3.0: the producer takes a producer id
   * from its broker and numbers its batches per partition, so a retried send is written
   * once — the leader answers a batch it has with the original offsets. `false` turns it off.
   */
  idempotent?: boolean;
  /**
   * Sends in flight at once (KafkaJS's option; unbounded by default). With idempotence at most
   * 5 (Kafka's bound, the batches a leader remembers per producer); default 5 then.
   */
  maxInFlightRequests?: number;
}

/** Requests an idempotent producer keeps in flight at most: the batches a leader remembers per producer (Kafka's 5). */
const IDEMPOTENT_IN_FLIGHT_MAX = 5;
/** The largest producer epoch (an int16 in the batch header). */
const PRODUCER_EPOCH_MAX = 0x7fff;

export interface ProducerRecord {
  topic: string;
  messages: Message[];
  /** -1 (all replicas; on one node: durable), 1 (leader durable), 0 (node received). Default -1. */
  acks?: -1 | 0 | 1;
  /** Milliseconds before the send fails with TimeoutError. Default 30000. */
  timeout?: number;
  compression?: CompressionType;
}

export interface ProducerBatch {
  topicMessages: Array<{ topic: string; messages: Message[] }>;
  acks?: -1 | 0 | 1;
  timeout?: number;
  compression?: CompressionType;
}

/** One per partition written, as in KafkaJS. Offsets are decimal strings. */
export interface RecordMetadata {
  topicName: string;
  partition: number;
  errorCode: number;
  baseOffset: string;
  logAppendTime: string;
  logStartOffset: string;
}

const DEFAULT_MAX_BATCH_BYTES = 1_000_000;

/**
 * KafkaJS's producer events and their payloads. The request events (`producer.network.*`) are
 * the producer's calls to its tab's broker and that broker's requests to the partitions'
 * leaders for them (src/client/requests.ts).
 */
export interface ProducerEvents extends RequestEventsOf<'producer'> {
  'producer.connect': Record<string, never>;
  'producer.disconnect': Record<string, never>;
  /** A topic sent to did not exist and was created (allowAutoTopicCreation; not a KafkaJS event). */
  'producer.topic_created': { topic: string; numPartitions: number };
}

/**
 * Sends messages to topics, KafkaJS-style.
 * @example const producer = letterbox.producer(); await producer.connect();
 */
export class Producer {
  readonly events = { CONNECT: 'producer.connect', DISCONNECT: 'producer.disconnect', ...requestEventNames('producer'), TOPIC_CREATED: 'producer.topic_created' } as const satisfies Record<string, keyof ProducerEvents>;
  readonly #context: ClientRequests;
  readonly #logger: Logger;
  readonly #instrumentation = new Instrumentation<ProducerEvents>();
  readonly #config: Required<Omit<ProducerConfig, 'retry' | 'createPartitioner' | 'maxInFlightRequests'>> & { maxInFlightRequests: number };
  readonly #retry: Retry;
  readonly #partitioner: Partitioner | undefined;
  #connected = false;
  readonly #sticky = createStickyPartitioner(Math.random);
  readonly #partitionCounts = new Map<string, number>();
  /** Idempotence: the producer id and epoch (undefined until taken, and after a reset), and the next sequence per partition. */
  #producerId: { producerId: number; producerEpoch: number } | undefined;
  readonly #sequences = new Map<string, number>();
  /** Sends encode and go out one at a time, so each partition's sequences reach the node in order. */
  #sendTurn: Promise<void> = Promise.resolve();
  /** Requests sent and not answered, and sends waiting for one of them to end (maxInFlightRequests). */
  #inFlight = 0;
  readonly #inFlightWaiters: Array<() => void> = [];
  /**
   * Idempotent: sends being retried, and the sends waiting for them to end before going out. A
   * retried batch may have been written (its answer lost, or a leader change while it committed);
   * its retry is answered as a duplicate only while it is among the leader's last five batches
   * of the producer, so later sends wait behind it, as Kafka's producer puts a retried batch back
   * at the head of its partition's queue.
   */
  #retrying = 0;
  readonly #retryWaiters: Array<() => void> = [];

  constructor(context: ClientContext, config: ProducerConfig, logger: Logger) {
    this.#context = new ClientRequests(context, requestEmitter(this.#instrumentation, 'producer'));
    this.#logger = logger;
    const c = check.object(config, 'producer config', true);
    this.#config = {
      allowAutoTopicCreation: check.boolean(c['allowAutoTopicCreation'], 'allowAutoTopicCreation', true),
      maxBatchBytes: check.integer(c['maxBatchBytes'], 'maxBatchBytes', 1, undefined, DEFAULT_MAX_BATCH_BYTES),
      idempotent: check.boolean(c['idempotent'], 'idempotent', true),
      maxInFlightRequests: Infinity,
    };
    const maxInFlight = check.integer(c['maxInFlightRequests'], 'maxInFlightRequests', 1, undefined, null);
    if (this.#config.idempotent && maxInFlight !== null && maxInFlight > IDEMPOTENT_IN_FLIGHT_MAX) {
      throw new InvalidArgumentError(`an idempotent producer keeps at most ${IDEMPOTENT_IN_FLIGHT_MAX} requests in flight (maxInFlightRequests ${maxInFlight}); pass idempotent: false for more`);
    }
    this.#config.maxInFlightRequests = maxInFlight ?? (this.#config.idempotent ? IDEMPOTENT_IN_FLIGHT_MAX : Infinity);
    this.#retry = retryOf(c['retry'], 'retry');
    if (this.#config.idempotent && this.#retry.retries < 1) throw new InvalidArgumentError('an idempotent producer needs retries (retry.retries ≥ 1) to protect against transient errors, as KafkaJS requires');
    const createPartitioner = check.func<() => Partitioner>(c['createPartitioner'], 'createPartitioner', true);
    this.#partitioner = createPartitioner === undefined || createPartitioner === builtInPartitioner ? undefined : check.func<Partitioner>(createPartitioner(), 'what createPartitioner() returns');
  }

  /**
   * This producer's logger, as KafkaJS's `producer.logger()`.
   * @example producer.logger().info('sending', { topic: 'orders' });
   */
  logger(): Logger {
    return this.#logger;
  }

  /**
   * Whether the producer is idempotent (the default; `idempotent: false` turns it off): a
   * retried send is written once.
   * @example producer.isIdempotent() // true
   */
  isIdempotent(): boolean {
    return this.#config.idempotent;
  }

  /**
   * Starts the node if needed.
   * @example await producer.connect();
   */
  async connect(): Promise<void> {
    const node = await this.#context.node();
    if (this.#config.idempotent && this.#producerId === undefined) this.#producerId = await node.initProducerId();
    this.#connected = true;
    this.#logger.debug('connected');
    this.#instrumentation.emit('producer.connect', () => ({}));
  }

  /**
   * Listens to a producer event; returns a function that stops listening.
   * @example const off = producer.on(producer.events.REQUEST, (e) => console.log(e.payload.apiName, e.payload.broker, e.payload.duration));
   */
  on<K extends keyof ProducerEvents>(type: K, listener: (event: InstrumentationEvent<ProducerEvents[K]>) => void): () => void {
    check.listener(type, listener, Object.values(this.events));
    return this.#instrumentation.on(type, listener);
  }

  /**
   * Sends messages to one topic; resolves per partition with the offsets written. An abort
   * (or timeout) after the request reached the node stops the wait, not the write: the
   * records may still be appended, as with Kafka.
   * @example const [meta] = await producer.send({ topic: 'events', messages: [{ key: 'user-1', value: 'clicked' }] });
   */
  async send(record: ProducerRecord, options: CallOptions = {}): Promise<RecordMetadata[]> {
    const { topic, messages, ...rest } = check.object(record, 'record');
    return this.sendBatch({ ...rest, topicMessages: [{ topic, messages }] } as ProducerBatch, options);
  }

  /**
   * Sends messages to several topics in one request.
   * @example await producer.sendBatch({ topicMessages: [{ topic: 'a', messages }, { topic: 'b', messages }] });
   */
  async sendBatch(batch: ProducerBatch, options: CallOptions = {}): Promise<RecordMetadata[]> {
    const { signal } = check.callOptions(options);
    const b = check.object(batch, 'batch');
    const acks = check.oneOf(b['acks'], 'acks', [-1, 0, 1] as const, -1);
    const timeout = check.integer(b['timeout'], 'timeout', 1, undefined, 30_000);
    const compression = check.oneOf(b['compression'], 'compression', [CompressionTypes.None, CompressionTypes.GZIP], CompressionTypes.None) === CompressionTypes.GZIP ? 'gzip' : 'none';
    const now = Date.now();
    // Every message is checked before anything is sent (or a topic created for it).
    const topics = check.array(b['topicMessages'], 'topicMessages').map((entry, i) => {
      const { topic, messages } = check.object(entry, `topicMessages[${i}]`);
      return { topic: check.string(topic, `topicMessages[${i}].topic`), messages: check.array(messages, `messages of topic "${String(topic)}"`).map((m) => ({ ...normalizeMessage(m, now), original: m as Message })) };
    });
    if (!this.#connected) throw new NotConnectedError('the producer is not connected: call connect() first');
    if (signal?.aborted === true) throw new AbortedError(undefined, { cause: signal.reason });
    const node = await this.#context.node();
    type Request = Array<{ topic: string; partition: number; bytes: Uint8Array }>;
    const idempotent = this.#config.idempotent;
    /** Partitions and encodes the messages; with idempotence, stamps each batch with the producer id and the partition's next sequence. */
    const encode = async (): Promise<Request> => {
      const request: Request = [];
      const producer = idempotent ? (this.#producerId ??= await node.initProducerId()) : undefined;
      for (const { topic, messages: normalized } of topics) {
        const partitions = await this.#partitionCount(topic);
        const byPartition = new Map<number, NormalizedMessage[]>();
        for (const message of normalized) {
          const partition = this.#partitionOf(topic, message, partitions);
          const list = byPartition.get(partition);
          if (list === undefined) byPartition.set(partition, [message]);
          else list.push(message);
        }
        for (const [partition, list] of byPartition) {
          const key = `${topic}\u0000${partition}`;
          const stamp =
            producer === undefined
              ? undefined
              : (records: number) => {
                  const baseSequence = this.#sequences.get(key) ?? 0;
                  this.#sequences.set(key, (baseSequence + records) % 0x80000000);
                  return { ...producer, baseSequence };
                };
          for (const bytes of await encodeBatches(list, this.#config.maxBatchBytes, compression, stamp)) request.push({ topic, partition, bytes });
          this.#sticky.onNewBatch(topic, partitions, partition);
        }
      }
      return request;
    };
    /** Sends `request` and waits for its answer; idempotent, a copy, so that a retry sends the same bytes. */
    const sendOnce = async (request: Request): Promise<RecordMetadata[]> => {
      const batches = idempotent ? request.map((b) => ({ ...b, bytes: b.bytes.slice() })) : request;
      const buffers = [...new Set(batches.map((b) => b.bytes.buffer as ArrayBuffer))];
      const produced = node.produce(transfer({ acks, allowAutoTopicCreation: this.#config.allowAutoTopicCreation, batches }, buffers));
      const results = await abortable(this.#context.withTimeout(produced, timeout, 'send'), signal);
      return summarize(results);
    };
    /**
     * The request encoded and sent in this send's turn (so each partition's sequences go out in
     * order), once fewer than maxInFlightRequests are in flight; resolves with the request and its answer.
     */
    let counted = false;
    const encodeAndSend = (): Promise<{ request: Request; answer: Promise<RecordMetadata[]> }> => {
      const turn = this.#sendTurn.then(async () => {
        if (idempotent) while (this.#retrying > 0) await new Promise<void>((resolve) => this.#retryWaiters.push(resolve));
        if (!counted) {
          while (this.#inFlight >= this.#config.maxInFlightRequests) await new Promise<void>((resolve) => this.#inFlightWaiters.push(resolve));
          this.#inFlight++;
          counted = true;
        }
        const request = await encode();
        return { request, answer: sendOnce(request) };
      });
      this.#sendTurn = turn.then(
        () => undefined,
        () => undefined,
      );
      return turn;
    };
    let holding = false;
    try {
      let request: Request | undefined;
      const once = async (): Promise<RecordMetadata[]> => {
        if (request !== undefined) return sendOnce(request); // a retry: the same batches, the same sequences
        try {
          const sent = await encodeAndSend();
          request = idempotent ? sent.request : undefined;
          return await sent.answer;
        } catch (error) {
          if (!(error instanceof UnknownTopicOrPartitionError)) throw error;
          // The node refused the request (it appends nothing then, unless its leaders appended
          // some parts and one kept refusing the rest past the RPC bound: at least once, as
          // KafkaJS without idempotence). The topic may have been deleted and created again with
          // another partition count: look it up again, once — idempotent, under the producer id's next epoch,
          // as the sequences the refused batches took are not on the partitions.
          for (const { topic } of topics) this.#partitionCounts.delete(topic);
          if (idempotent) this.#resetProducerId();
          const sent = await encodeAndSend();
          request = idempotent ? sent.request : undefined;
          return await sent.answer;
        }
      };
      for (let retry = 0; ; retry++) {
        try {
          return await once();
        } catch (error) {
          // Retried as KafkaJS does: retriable errors, with backoff. Not a timeout (its write may
          // still land), an unknown topic (looked up again above) or a full disk (freed by the user,
          // not by waiting): on one node that leaves a peer or slot not yet available. A timeout is
          // the send's own bound (`timeout`), so it ends the send, idempotent or not (the producer
          // then bumps its epoch). Idempotent, a sequence out of order while another send is in
          // flight is retried (its batch may be the one missing).
          const retriable =
            error instanceof LetterboxError &&
            ((error.retriable && !(error instanceof TimeoutError || error instanceof UnknownTopicOrPartitionError || error instanceof StorageFullError)) ||
              (idempotent && request !== undefined && error instanceof OutOfOrderSequenceNumberError && this.#inFlight > 1));
          if (!retriable || retry >= this.#retry.retries) {
            // Given up with its sequences maybe missing on the partitions: later sends go under the next epoch (as Kafka's producer bumps it).
            if (idempotent && request !== undefined) this.#resetProducerId();
            if (!retriable) throw error;
            throw new NumberOfRetriesExceededError(error, retry, this.#retry.delay(Math.max(0, retry - 1)));
          }
          this.#logger.warn('send failed; retrying', { retry: retry + 1, error: String(error) });
          if (idempotent && request !== undefined && !holding) {
            holding = true;
            this.#retrying++;
          }
          await new Promise((resolve) => setTimeout(resolve, this.#retry.delay(retry)));
          if ((signal as AbortSignal | undefined)?.aborted === true) throw new AbortedError(undefined, { cause: signal?.reason });
        }
      }
    } finally {
      if (counted) {
        this.#inFlight--;
        this.#inFlightWaiters.shift()?.();
      }
      if (holding && --this.#retrying === 0) for (const wake of this.#retryWaiters.splice(0)) wake();
    }
  }

  /**
   * After a send given up: the next epoch of the producer id (a new id once the epochs run out),
   * its sequences from 0 (KIP-360's bump). A late attempt of the given-up send, still on the
   * wire, is then refused by a leader that has seen the new epoch, so it cannot land after later sends.
   */
  #resetProducerId(): void {
    const id = this.#producerId;
    this.#producerId = id === undefined || id.producerEpoch >= PRODUCER_EPOCH_MAX ? undefined : { producerId: id.producerId, producerEpoch: id.producerEpoch + 1 };
    this.#sequences.clear();
  }

  /**
   * Stops this producer; the node keeps running for other clients.
   * @example await producer.disconnect();
   */
  async disconnect(): Promise<void> {
    this.#connected = false;
    this.#instrumentation.emit('producer.disconnect', () => ({}));
  }

  async #partitionCount(topic: string): Promise<number> {
    const known = this.#partitionCounts.get(topic);
    if (known !== undefined) return known;
    const node = await this.#context.node();
    const created = this.#config.allowAutoTopicCreation && !(await node.listTopics()).includes(topic) && (await node.createTopics([{ topic }], false))[0] === true;
    const described: TopicState[] = await node.describeTopics([topic]);
    const count = described[0]!.numPartitions;
    if (created) {
      this.#logger.info('created a missing topic (allowAutoTopicCreation)', { topic, numPartitions: count });
      this.#instrumentation.emit('producer.topic_created', () => ({ topic, numPartitions: count }));
    }
    this.#partitionCounts.set(topic, count);
    return count;
  }

  #partitionOf(topic: string, message: NormalizedMessage & { original: Message }, partitions: number): number {
    if (message.partition !== undefined) {
      if (message.partition >= partitions) throw new InvalidArgumentError(`topic "${topic}" has ${partitions} partitions; there is no partition ${message.partition}`);
      return message.partition;
    }
    if (this.#partitioner !== undefined) {
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0] }));
      return check.integer(this.#partitioner({ topic, partitionMetadata, message: message.original }), `the partitioner's answer for topic "${topic}"`, 0, partitions - 1);
    }
    return message.key === null ? this.#sticky.partition(topic, partitions) : defaultPartition(message.key, partitions);
  }
}

/** One RecordMetadata per partition: the first batch's base offset, as Kafka reports a produce. */
function summarize(results: readonly ProduceResult[]): RecordMetadata[] {
  const byPartition = new Map<string, RecordMetadata>();
  for (const r of results) {
    const key = `${r.topic}\u0000${r.partition}`;
    if (byPartition.has(key)) continue;
    byPartition.set(key, { topicName: r.topic, partition: r.partition, errorCode: 0, baseOffset: String(r.baseOffset), logAppendTime: '-1', logStartOffset: String(r.logStartOffset) });
  }
  return [...byPartition.values()];
}
