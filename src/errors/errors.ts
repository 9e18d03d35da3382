// The error tree, as KafkaJS has one: every error the project raises is a
// LetterboxError with a stable `code` (Kafka's error name where Kafka has one) and a
// `retriable` flag that retry logic reads instead of matching messages.

export interface LetterboxErrorOptions {
  /** Whether trying the same call again may succeed. Default false. */
  retriable?: boolean;
  cause?: unknown;
}

/**
 * Base of every error Letterbox raises.
 * @example if (error instanceof LetterboxError && error.retriable) retry();
 */
export class LetterboxError extends Error {
  /** The error's `name`; a static, so that it survives minification and can key a registry. */
  static readonly errorName: string = 'LetterboxError';
  /** Stable machine-readable code, e.g. `CORRUPT_MESSAGE`. */
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: LetterboxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = (new.target as typeof LetterboxError).errorName;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** The browser refused to store more (IndexedDB QuotaExceededError). The write was not applied; retry after freeing space. */
export class StorageFullError extends LetterboxError {
  static override readonly errorName = 'StorageFullError';
  constructor(message = 'storage quota exceeded: the write was not applied', options: LetterboxErrorOptions = {}) {
    super('KAFKA_STORAGE_ERROR', message, { retriable: true, ...options });
  }
}

/** The store is closed: by `close()`, or because another tab upgraded the database. */
export class StorageClosedError extends LetterboxError {
  static override readonly errorName = 'StorageClosedError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('STORAGE_CLOSED', message, options);
  }
}

/** Any other failure of the underlying store. */
export class StorageError extends LetterboxError {
  static override readonly errorName = 'StorageError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('KAFKA_STORAGE_ERROR', message, options);
  }
}

/** A fetch asked for an offset outside [logStartOffset, logEndOffset]; the consumer applies its auto.offset.reset. */
export class OffsetOutOfRangeError extends LetterboxError {
  static override readonly errorName = 'OffsetOutOfRangeError';
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  constructor(topic: string, partition: number, offset: number, logStartOffset: number, logEndOffset: number) {
    super('OFFSET_OUT_OF_RANGE', `offset ${offset} of ${topic}-${partition} is outside [${logStartOffset}, ${logEndOffset}]`);
    this.topic = topic;
    this.partition = partition;
    this.offset = offset;
  }
}

/** A record batch is larger than the topic's max.message.bytes. */
export class RecordBatchTooLargeError extends LetterboxError {
  static override readonly errorName = 'RecordBatchTooLargeError';
  constructor(sizeBytes: number, maxBytes: number) {
    super('MESSAGE_TOO_LARGE', `record batch of ${sizeBytes} bytes exceeds max.message.bytes ${maxBytes}`);
  }
}


/** An offset that breaks the log's rules: a follower batch that does not continue the log, or a truncation below the high watermark. */
export class InvalidOffsetError extends LetterboxError {
  static override readonly errorName = 'InvalidOffsetError';
  constructor(message: string) {
    super('INVALID_OFFSET', message);
  }
}

/**
 * Bytes that claim to be a record batch but are not one: too short, wrong magic, a
 * length that disagrees with the bytes, a record that overruns its batch, a bad CRC.
 * @example try { verifyBatch(bytes) } catch (e) { if (e instanceof CorruptBatchError) truncateHere(); }
 */
export class CorruptBatchError extends LetterboxError {
  static override readonly errorName = 'CorruptBatchError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('CORRUPT_MESSAGE', message, options);
  }
}

/**
 * A batch whose compression codec Letterbox cannot (de)compress (snappy, lz4, zstd, or an unknown id).
 * @example if (e instanceof UnsupportedCompressionError) reply(e.code);
 */
export class UnsupportedCompressionError extends LetterboxError {
  static override readonly errorName = 'UnsupportedCompressionError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('UNSUPPORTED_COMPRESSION_TYPE', message, options);
  }
}

/**
 * A record or batch that cannot be encoded: an offset or timestamp out of range, a count over the format's limits.
 * @example encodeBatch({ ...batch, baseOffset: -5 }) // throws InvalidRecordError
 */
export class InvalidRecordError extends LetterboxError {
  static override readonly errorName = 'InvalidRecordError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('INVALID_RECORD', message, options);
  }
}

/**
 * A peer frame that cannot be accepted. `code` says why: `MESSAGE_TOO_LARGE` (over the
 * size limit), `UNSUPPORTED_VERSION` (a version of a message type this node does not
 * speak), `INVALID_REQUEST` (unknown message type), `CORRUPT_MESSAGE` (a body that does
 * not decode). The connection stays usable after any of them.
 * @example if (result.error instanceof FrameError) answer(result.requestId, result.error);
 */
export class FrameError extends LetterboxError {
  static override readonly errorName = 'FrameError';
}

/** A topic or partition this node does not know (Kafka's UNKNOWN_TOPIC_OR_PARTITION; retriable, as metadata may catch up). */
export class UnknownTopicOrPartitionError extends LetterboxError {
  static override readonly errorName = 'UnknownTopicOrPartitionError';
  readonly topic: string;
  readonly partition: number | undefined;
  constructor(topic: string, partition?: number) {
    super('UNKNOWN_TOPIC_OR_PARTITION', partition === undefined ? `unknown topic "${topic}"` : `unknown partition ${partition} of topic "${topic}"`, { retriable: true });
    this.topic = topic;
    this.partition = partition;
  }
}

/** A topic name that breaks Kafka's rules, or one reserved for internal use. */
export class InvalidTopicError extends LetterboxError {
  static override readonly errorName = 'InvalidTopicError';
  constructor(message: string) {
    super('INVALID_TOPIC_EXCEPTION', message);
  }
}

/** A bad topic configuration entry, partition count, replication factor or replica assignment. */
export class InvalidConfigError extends LetterboxError {
  static override readonly errorName = 'InvalidConfigError';
  constructor(message: string, code: 'INVALID_CONFIG' | 'INVALID_PARTITIONS' | 'INVALID_REPLICATION_FACTOR' | 'INVALID_REPLICA_ASSIGNMENT' = 'INVALID_CONFIG') {
    super(code, message);
  }
}

/** An argument of the wrong type or shape passed to the API. */
export class InvalidArgumentError extends LetterboxError {
  static override readonly errorName = 'InvalidArgumentError';
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** A call on a producer, consumer, admin or client that is not connected (or was closed). */
export class NotConnectedError extends LetterboxError {
  static override readonly errorName = 'NotConnectedError';
  constructor(message: string) {
    super('NOT_CONNECTED', message);
  }
}

/** The broker's worker did not start: typically a page CSP without `worker-src blob:` (script-tag build) or a wrong worker URL. */
export class WorkerStartError extends LetterboxError {
  static override readonly errorName = 'WorkerStartError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('WORKER_START_FAILED', message, options);
  }
}

/** An error about one node slot (its database, its lock): `slot` says which. */
export class SlotError extends LetterboxError {
  static override readonly errorName: string = 'SlotError';
  readonly slot: number;
  constructor(code: string, slot: number, message: string) {
    super(code, message);
    this.slot = slot;
  }
}

/**
 * This slot's database is gone though the browser remembers the slot had one (evicted by
 * the browser or wiped by the user): starting again at offset 0 would silently lose data.
 */
export class StorageLostError extends SlotError {
  static override readonly errorName = 'StorageLostError';
  constructor(slot: number, message: string) {
    super('STORAGE_LOST', slot, message);
  }
}

/** No node slot could be claimed (every slot is held by another tab or instance). */
export class NoFreeSlotError extends LetterboxError {
  static override readonly errorName = 'NoFreeSlotError';
  constructor(slots: number) {
    super('NO_FREE_SLOT', `all ${slots} node slots of this origin are in use`, { retriable: true });
  }
}

/** A closed tab's slot cannot be adopted: its database is gone, or it holds no broker of the cluster. */
export class SlotNotAdoptableError extends SlotError {
  static override readonly errorName = 'SlotNotAdoptableError';
  constructor(slot: number, message: string) {
    super('SLOT_NOT_ADOPTABLE', slot, message);
  }
}

/** A call was cancelled through its AbortSignal. */
export class AbortedError extends LetterboxError {
  static override readonly errorName = 'AbortError';
  constructor(message = 'the operation was aborted', options: LetterboxErrorOptions = {}) {
    super('ABORTED', message, options);
  }
}

/**
 * Sending to a peer this node has no direct connection to (never had, or it left).
 * @example if (error instanceof PeerNotConnectedError) pickAnotherReplica();
 */
export class PeerNotConnectedError extends LetterboxError {
  static override readonly errorName = 'PeerNotConnectedError';
  readonly peerId: string;
  constructor(peerId: string, message = `no direct connection to peer ${peerId}`) {
    super('PEER_NOT_CONNECTED', message, { retriable: true });
    this.peerId = peerId;
  }
}

/**
 * A peer answered a request with an error (its `code`, message and retriable flag, e.g.
 * `THROTTLING_QUOTA_EXCEEDED`), or this node stopped talking to a peer that broke the protocol.
 * @example catch (e) { if (e instanceof PeerError && e.retriable) retryLater(e.peerId); }
 */
export class PeerError extends LetterboxError {
  static override readonly errorName = 'PeerError';
  readonly peerId: string;
  constructor(peerId: string, code: string, message: string, options: LetterboxErrorOptions = {}) {
    super(code, message, options);
    this.peerId = peerId;
  }
}

/** A call took longer than its timeout. */
export class TimeoutError extends LetterboxError {
  static override readonly errorName = 'TimeoutError';
  constructor(message: string) {
    super('REQUEST_TIMED_OUT', message, { retriable: true });
  }
}

/** The group errors a caller may retry (Kafka's retriable ones). */
const RETRIABLE_GROUP_CODES = new Set(['REBALANCE_IN_PROGRESS', 'COORDINATOR_NOT_AVAILABLE', 'KAFKA_STORAGE_ERROR']);

/**
 * The group coordinator refused a request: `code` is Kafka's name (REBALANCE_IN_PROGRESS,
 * ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, NON_EMPTY_GROUP, ...). Retriable as in Kafka: a
 * rebalance in progress, a coordinator not available, an offset write that failed.
 */
export class GroupError extends LetterboxError {
  static override readonly errorName = 'GroupError';
  readonly groupId: string;
  constructor(groupId: string, code: string, message: string) {
    super(code, message, { retriable: RETRIABLE_GROUP_CODES.has(code) });
    this.groupId = groupId;
  }
}

/**
 * This broker does not coordinate the group (Kafka's NOT_COORDINATOR, error code 16): the
 * group's coordinator is the leader of its partition of `__consumer_offsets`, elsewhere or
 * moved. Retriable: the caller finds the coordinator again and retries.
 * @example catch (e) { if (e instanceof NotCoordinatorError) retryAt(e.groupId); }
 */
export class NotCoordinatorError extends LetterboxError {
  static override readonly errorName = 'NotCoordinatorError';
  readonly groupId: string;
  constructor(groupId: string, message = `this broker is not the coordinator of group ${groupId}`) {
    super('NOT_COORDINATOR', message, { retriable: true });
    this.groupId = groupId;
  }
}

/**
 * `admin.deleteGroups` left some groups in place: `groups` names each, with Kafka's numeric
 * `errorCode` and the GroupError saying why (NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, ...).
 * @example catch (e) { if (e instanceof DeleteGroupsError) console.log(e.groups.map((g) => g.error.code)); }
 */
export class DeleteGroupsError extends LetterboxError {
  static override readonly errorName = 'DeleteGroupsError';
  readonly groups: Array<{ groupId: string; errorCode: number; error: GroupError }>;
  constructor(groups: Array<{ groupId: string; errorCode: number; error: GroupError }>) {
    super('DELETE_GROUPS_FAILED', `groups not deleted: ${groups.map((g) => `${g.groupId} (${g.error.code}: ${g.error.message})`).join(', ')}`);
    this.groups = groups;
  }
}

/**
 * A call was retried as often as its `retry.retries` allows and failed each time; `cause` is the last failure.
 * @example catch (e) { if (e instanceof NumberOfRetriesExceededError) console.log(e.retryCount, e.cause); }
 */
export class NumberOfRetriesExceededError extends LetterboxError {
  static override readonly errorName = 'NumberOfRetriesExceededError';
  readonly retryCount: number;
  readonly retryTime: number;
  constructor(cause: unknown, retryCount: number, retryTime: number) {
    super('NUMBER_OF_RETRIES_EXCEEDED', `gave up after ${retryCount} retries: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.retryCount = retryCount;
    this.retryTime = retryTime;
  }
}

/**
 * Two clusters under one name met (brokers that bootstrapped apart, e.g. a tab opened
 * offline): this broker's cluster is the smaller one (fewer brokers, then fewer metadata
 * records). Remedy: offer its local topics to the other cluster, or keep it apart under
 * another name; it never silently shares the name.
 */
export class ClusterIdMismatchError extends LetterboxError {
  static override readonly errorName = 'ClusterIdMismatchError';
  readonly clusterName: string;
  readonly clusterId: string;
  readonly otherClusterId: string;
  constructor(clusterName: string, clusterId: string, otherClusterId: string) {
    super(
      'CLUSTER_ID_MISMATCH',
      `cluster "${clusterName}": this broker's cluster ${clusterId} is smaller than cluster ${otherClusterId} under the same name; ` +
        'offer its topics to the other cluster or keep it apart under another name',
    );
    this.clusterName = clusterName;
    this.clusterId = clusterId;
    this.otherClusterId = otherClusterId;
  }
}

/** A request, record or raft message from a peer of another cluster (Kafka's INCONSISTENT_CLUSTER_ID). Nothing was applied. */
export class InconsistentClusterIdError extends LetterboxError {
  static override readonly errorName = 'InconsistentClusterIdError';
  constructor(message: string) {
    super('INCONSISTENT_CLUSTER_ID', message);
  }
}

/**
 * A broker's identity was refused: `DUPLICATE_BROKER_REGISTRATION` (a peer claims a broker
 * id registered with another storage incarnation), `STALE_BROKER_EPOCH` (an incarnation
 * older than the registered one, or a member unknown to the cluster). Nothing was applied.
 */
export class BrokerIdentityError extends LetterboxError {
  static override readonly errorName = 'BrokerIdentityError';
  readonly brokerId: number;
  constructor(code: 'DUPLICATE_BROKER_REGISTRATION' | 'STALE_BROKER_EPOCH', brokerId: number, message: string) {
    super(code, message);
    this.brokerId = brokerId;
  }
}

/** A message claiming to come from the controller of an epoch it did not lead (forged or stale; Kafka's STALE_CONTROLLER_EPOCH). Nothing was applied. */
export class StaleControllerEpochError extends LetterboxError {
  static override readonly errorName = 'StaleControllerEpochError';
  constructor(message: string) {
    super('STALE_CONTROLLER_EPOCH', message);
  }
}

/** This broker is not the active controller (retriable: `leaderHint` names the one it knows of, if any). */
export class NotControllerError extends LetterboxError {
  static override readonly errorName = 'NotControllerError';
  readonly leaderHint: string | undefined;
  constructor(message: string, leaderHint?: string) {
    super('NOT_CONTROLLER', message, { retriable: true });
    this.leaderHint = leaderHint;
  }
}

/** A topic of that name, or of a name that collides with it (Kafka's `a.b` vs `a_b`), exists. */
export class TopicExistsError extends LetterboxError {
  static override readonly errorName = 'TopicExistsError';
  readonly topic: string;
  constructor(topic: string, message = `topic "${topic}" already exists`) {
    super('TOPIC_ALREADY_EXISTS', message);
    this.topic = topic;
  }
}

/**
 * The partition lives on another broker of the cluster (`leader`, a broker id; -1 when it
 * has none now). Kafka's NOT_LEADER_OR_FOLLOWER: retriable, since a client asks the leader
 * once requests are routed between brokers (Cluster I, routing).
 */
export class NotLeaderOrFollowerError extends LetterboxError {
  static override readonly errorName = 'NotLeaderOrFollowerError';
  readonly topic: string;
  readonly partition: number;
  readonly leader: number;
  constructor(topic: string, partition: number, leader: number) {
    super('NOT_LEADER_OR_FOLLOWER', `partition ${partition} of topic "${topic}" is on broker ${leader}, not this one`, { retriable: true });
    this.topic = topic;
    this.partition = partition;
    this.leader = leader;
  }
}

/** The partition has no leader that can be reached now (Kafka's LEADER_NOT_AVAILABLE): retriable, a leader is elected or comes back. */
export class LeaderNotAvailableError extends LetterboxError {
  static override readonly errorName = 'LeaderNotAvailableError';
  readonly topic: string;
  readonly partition: number;
  constructor(topic: string, partition: number) {
    super('LEADER_NOT_AVAILABLE', `partition ${partition} of topic "${topic}" has no leader that can be reached now`, { retriable: true });
    this.topic = topic;
    this.partition = partition;
  }
}

/**
 * Fewer replicas of the partition are in sync than its `min.insync.replicas` (Kafka's
 * NOT_ENOUGH_REPLICAS): an `acks: -1` write is refused before anything is written; retriable,
 * the replicas catch up or come back.
 */
export class NotEnoughReplicasError extends LetterboxError {
  static override readonly errorName = 'NotEnoughReplicasError';
  readonly topic: string;
  readonly partition: number;
  constructor(topic: string, partition: number, inSync: number, required: number) {
    super('NOT_ENOUGH_REPLICAS', `partition ${partition} of topic "${topic}" has ${inSync} in-sync replicas, fewer than its min.insync.replicas ${required}`, { retriable: true });
    this.topic = topic;
    this.partition = partition;
  }
}

/** A request for a partition carried a leader epoch other than this broker's (KIP-320): retriable, nothing was applied. */
abstract class LeaderEpochError extends LetterboxError {
  readonly topic: string;
  readonly partition: number;
  constructor(code: string, topic: string, partition: number, message: string) {
    super(code, `partition ${partition} of topic "${topic}" ${message}`, { retriable: true });
    this.topic = topic;
    this.partition = partition;
  }
}

/** The request's leader epoch is older than this broker's (Kafka's FENCED_LEADER_EPOCH): the sender's metadata is stale. */
export class FencedLeaderEpochError extends LeaderEpochError {
  static override readonly errorName = 'FencedLeaderEpochError';
  constructor(topic: string, partition: number, asked: number, current: number) {
    super('FENCED_LEADER_EPOCH', topic, partition, `is at leader epoch ${current}; the request's ${asked} is stale`);
  }
}

/** The request's leader epoch is newer than this broker's (Kafka's UNKNOWN_LEADER_EPOCH): this broker's metadata is behind. */
export class UnknownLeaderEpochError extends LeaderEpochError {
  static override readonly errorName = 'UnknownLeaderEpochError';
  constructor(topic: string, partition: number, asked: number, current: number) {
    super('UNKNOWN_LEADER_EPOCH', topic, partition, `is at leader epoch ${current} here; the request's ${asked} is not known yet`);
  }
}

/**
 * A metadata record or snapshot that cannot be applied: `CORRUPT_MESSAGE` (does not
 * decode), `UNSUPPORTED_VERSION` (a version this node does not speak), `INVALID_RECORD`
 * (decodes, but contradicts the image: a partition of an unknown topic, a broker id taken).
 */
export class MetadataRecordError extends LetterboxError {
  static override readonly errorName = 'MetadataRecordError';
  constructor(code: 'CORRUPT_MESSAGE' | 'UNSUPPORTED_VERSION' | 'INVALID_RECORD', message: string) {
    super(code, message);
  }
}

/** An idempotent producer's problem with one partition: the partition's name travels with it. */
abstract class ProducerStateError extends LetterboxError {
  readonly topic: string;
  readonly partition: number;
  readonly producerId: number;
  constructor(code: string, topic: string, partition: number, producerId: number, message: string, options: LetterboxErrorOptions = {}) {
    super(code, `partition ${partition} of topic "${topic}": producer ${producerId} ${message}`, options);
    this.topic = topic;
    this.partition = partition;
    this.producerId = producerId;
  }
}

/**
 * A batch's sequence does not follow its producer's last one on the partition (Kafka's
 * OUT_OF_ORDER_SEQUENCE_NUMBER): a batch in between was lost. Nothing was written.
 */
export class OutOfOrderSequenceNumberError extends ProducerStateError {
  static override readonly errorName = 'OutOfOrderSequenceNumberError';
  readonly expected: number;
  readonly sequence: number;
  constructor(topic: string, partition: number, producerId: number, expected: number, sequence: number) {
    super('OUT_OF_ORDER_SEQUENCE_NUMBER', topic, partition, producerId, `sent sequence ${sequence}, expected ${expected}`);
    this.expected = expected;
    this.sequence = sequence;
  }
}

/**
 * A batch carries an epoch older than its producer's on the partition (Kafka's
 * INVALID_PRODUCER_EPOCH; KafkaJS's name): a newer instance of the producer fenced it. Nothing was written.
 */
export class InvalidProducerEpochError extends ProducerStateError {
  static override readonly errorName = 'InvalidProducerEpochError';
  readonly producerEpoch: number;
  readonly currentEpoch: number;
  constructor(topic: string, partition: number, producerId: number, producerEpoch: number, currentEpoch: number) {
    super('INVALID_PRODUCER_EPOCH', topic, partition, producerId, `sent epoch ${producerEpoch}, older than its epoch ${currentEpoch} (fenced)`);
    this.producerEpoch = producerEpoch;
    this.currentEpoch = currentEpoch;
  }
}

/**
 * A batch names a producer id the cluster never handed out (Kafka's UNKNOWN_PRODUCER_ID):
 * forged, or from a block this broker's metadata does not show yet — retriable, as the
 * metadata catches up. Nothing was written.
 */
export class UnknownProducerIdError extends ProducerStateError {
  static override readonly errorName = 'UnknownProducerIdError';
  constructor(topic: string, partition: number, producerId: number) {
    super('UNKNOWN_PRODUCER_ID', topic, partition, producerId, 'was never handed out by this cluster', { retriable: true });
  }
}
