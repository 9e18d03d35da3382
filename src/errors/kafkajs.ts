// KafkaJS's error classes, answering for Letterbox's errors: code written for KafkaJS
// (`error instanceof KafkaJSError`, `instanceof KafkaJSProtocolError && error.retriable`) works
// on what Letterbox throws, while every error stays a LetterboxError with its own class.
import { DeleteGroupsError, LetterboxError, NotConnectedError, NumberOfRetriesExceededError, OffsetOutOfRangeError, PeerNotConnectedError, TimeoutError, type LetterboxErrorOptions } from './errors';

/** Errors whose code is a Kafka protocol error name (KafkaJS's `type`). */
const protocolCodes = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION', 'OFFSET_OUT_OF_RANGE', 'CORRUPT_MESSAGE', 'MESSAGE_TOO_LARGE', 'KAFKA_STORAGE_ERROR', 'INVALID_TOPIC_EXCEPTION',
  'INVALID_PARTITIONS', 'INVALID_REPLICATION_FACTOR', 'INVALID_REPLICA_ASSIGNMENT', 'INVALID_CONFIG', 'INVALID_REQUEST', 'REQUEST_TIMED_OUT', 'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'INVALID_GROUP_ID', 'GROUP_ID_NOT_FOUND', 'COORDINATOR_NOT_AVAILABLE', 'INCONSISTENT_GROUP_PROTOCOL', 'NON_EMPTY_GROUP',
  'INVALID_SESSION_TIMEOUT', 'GROUP_MAX_SIZE_REACHED', 'OFFSET_METADATA_TOO_LARGE', 'UNSUPPORTED_COMPRESSION_TYPE', 'INVALID_RECORD',
  'NOT_CONTROLLER', 'STALE_CONTROLLER_EPOCH', 'INCONSISTENT_CLUSTER_ID', 'TOPIC_ALREADY_EXISTS', 'DUPLICATE_BROKER_REGISTRATION', 'STALE_BROKER_EPOCH',
  'NOT_LEADER_OR_FOLLOWER', 'LEADER_NOT_AVAILABLE', 'NOT_COORDINATOR', 'NOT_ENOUGH_REPLICAS',
  'OUT_OF_ORDER_SEQUENCE_NUMBER', 'INVALID_PRODUCER_EPOCH', 'UNKNOWN_PRODUCER_ID',
]);
const isProtocolError = (e: LetterboxError) => protocolCodes.has(e.code);

/** `instanceof` answering true for a LetterboxError that `test` accepts (and for instances of the class itself). */
const answersFor = (test: (error: LetterboxError) => boolean) =>
  function (this: abstract new (...args: never[]) => unknown, value: unknown): boolean {
    return value instanceof LetterboxError ? test(value) || Function.prototype[Symbol.hasInstance].call(this, value) : false;
  };

/**
 * KafkaJS's base error: every LetterboxError is one.
 * @example catch (e) { if (e instanceof KafkaJSError && e.retriable) retry(); }
 */
export class KafkaJSError extends LetterboxError {
  static override readonly errorName: string = 'KafkaJSError';
  static override [Symbol.hasInstance] = answersFor(() => true);
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('KAFKAJS_ERROR', message, options);
  }
}

/** KafkaJS's error that is never retried: a non-retriable LetterboxError other than a protocol error. */
export class KafkaJSNonRetriableError extends KafkaJSError {
  static override readonly errorName: string = 'KafkaJSNonRetriableError';
  static override [Symbol.hasInstance] = answersFor((e) => !e.retriable && !isProtocolError(e));
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super(message, { ...options, retriable: false });
  }
}

/** KafkaJS's error for a Kafka error code: a LetterboxError whose `code` is Kafka's name for it (KafkaJS's `type`). */
export class KafkaJSProtocolError extends KafkaJSError {
  static override readonly errorName: string = 'KafkaJSProtocolError';
  static override [Symbol.hasInstance] = answersFor(isProtocolError);
}

/** KafkaJS's OFFSET_OUT_OF_RANGE: Letterbox's OffsetOutOfRangeError. */
export class KafkaJSOffsetOutOfRange extends KafkaJSProtocolError {
  static override readonly errorName: string = 'KafkaJSOffsetOutOfRange';
  static override [Symbol.hasInstance] = answersFor((e) => e instanceof OffsetOutOfRangeError || e.code === 'OFFSET_OUT_OF_RANGE');
}

/** KafkaJS's retries-exhausted error: Letterbox's NumberOfRetriesExceededError (its `cause` is the last failure). */
export class KafkaJSNumberOfRetriesExceeded extends KafkaJSNonRetriableError {
  static override readonly errorName: string = 'KafkaJSNumberOfRetriesExceeded';
  static override [Symbol.hasInstance] = answersFor((e) => e instanceof NumberOfRetriesExceededError);
}

/** KafkaJS's connection error: Letterbox's NotConnectedError and PeerNotConnectedError. */
export class KafkaJSConnectionError extends KafkaJSError {
  static override readonly errorName: string = 'KafkaJSConnectionError';
  static override [Symbol.hasInstance] = answersFor((e) => e instanceof NotConnectedError || e instanceof PeerNotConnectedError);
}

/** KafkaJS's request timeout: Letterbox's TimeoutError. */
export class KafkaJSRequestTimeoutError extends KafkaJSError {
  static override readonly errorName: string = 'KafkaJSRequestTimeoutError';
  static override [Symbol.hasInstance] = answersFor((e) => e instanceof TimeoutError);
}

/** KafkaJS's error of admin.deleteGroups: Letterbox's DeleteGroupsError (its `groups` name each group left in place). */
export class KafkaJSDeleteGroupsError extends KafkaJSError {
  static override readonly errorName: string = 'KafkaJSDeleteGroupsError';
  static override [Symbol.hasInstance] = answersFor((e) => e instanceof DeleteGroupsError);
}
