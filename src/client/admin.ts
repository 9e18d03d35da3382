import { DeleteGroupsError, GroupError, NotConnectedError, UnknownTopicOrPartitionError } from '../errors';
import type { Assignment, NodeApi, ConfigEntry, GroupErrorCode, GroupStateName, OffsetCommit, TopicSpec, TopicState } from '../node';
import { Instrumentation, type InstrumentationEvent } from './events';
import type { CallOptions } from './call-options';
import type { ClientContext } from './context';
import { ClientRequests, pageBrokerAddress, requestEmitter, requestEventNames, type RequestEventsOf } from './requests';
import type { Logger } from './logger';
import { abortable } from './node-connection';
import * as check from './validate';

/** Whole numbers the node range-checks itself (with Kafka's error codes): here only their type. */
const ANY_WHOLE = Number.MIN_SAFE_INTEGER;

/** Kafka's numbers for the group errors (KafkaJS reports `errorCode` as these). */
const KAFKA_ERROR_CODES: { readonly [code in GroupErrorCode]: number } = {
  UNKNOWN_TOPIC_OR_PARTITION: 3, OFFSET_METADATA_TOO_LARGE: 12, COORDINATOR_NOT_AVAILABLE: 15, NOT_COORDINATOR: 16, ILLEGAL_GENERATION: 22, INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24, UNKNOWN_MEMBER_ID: 25, INVALID_SESSION_TIMEOUT: 26, REBALANCE_IN_PROGRESS: 27, INVALID_REQUEST: 42, KAFKA_STORAGE_ERROR: 56,
  NON_EMPTY_GROUP: 68, GROUP_ID_NOT_FOUND: 69, GROUP_MAX_SIZE_REACHED: 81,
};

const topicNames = (value: unknown, what: string): string[] => check.array(value, what).map((name, i) => check.string(name, `${what}[${i}]`));

/** A topic spec with only its known, checked fields: nothing else crosses to the worker. */
function topicSpec(value: unknown, i: number): TopicSpec {
  const spec = check.object(value, `topics[${i}]`);
  const entries = check.array(spec['configEntries'], `topics[${i}].configEntries`, true);
  return {
    topic: check.string(spec['topic'], `topics[${i}].topic`),
    ...optional('numPartitions', check.integer(spec['numPartitions'], `topics[${i}].numPartitions`, ANY_WHOLE, undefined, undefined)),
    ...optional('replicationFactor', check.integer(spec['replicationFactor'], `topics[${i}].replicationFactor`, ANY_WHOLE, undefined, undefined)),
    ...(entries === undefined ? {} : { configEntries: configEntries(entries, `topics[${i}].configEntries`) }),
  };
}

function configEntries(value: unknown, what: string): ConfigEntry[] {
  return check.array(value, what).map((entry, j) => {
    const { name, value: v } = check.object(entry, `${what}[${j}]`);
    return { name: check.string(name, `${what}[${j}].name`), value: typeof v === 'string' ? v : check.string(v, `${what}[${j}].value`) };
  });
}

const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));

function partitionOffsets(value: unknown, min: number): Array<{ partition: number; offset: number }> {
  return check.array(value, 'partitions').map((entry, i) => {
    const { partition, offset } = check.object(entry, `partitions[${i}]`);
    return { partition: check.integer(partition, `partitions[${i}].partition`, 0), offset: check.decimal(offset, `partitions[${i}].offset`, min) };
  });
}

/**
 * What `describeCluster` answers: KafkaJS's fields, and the replication health of the
 * partitions; a broker another tab runs (its own tab closed, its slot adopted) names that tab's
 * broker in `hostedBy`.
 */
export interface ClusterDescription {
  brokers: Array<{ nodeId: number; host: string; port: number; hostedBy?: number }>;
  controller: number | null;
  clusterId: string;
  /** Partitions with a live leader and fewer live in-sync replicas than replicas (Kafka's UnderReplicatedPartitions). */
  underReplicatedPartitions: number;
  /** Partitions with no live leader (Kafka's OfflinePartitionsCount). */
  offlinePartitions: number;
}

export interface PartitionMetadata {
  partitionErrorCode: number;
  partitionId: number;
  leader: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicMetadata {
  name: string;
  partitions: PartitionMetadata[];
}

/** KafkaJS's resource types for describeConfigs / alterConfigs; topics are what Letterbox has. */
export const ConfigResourceTypes = { TOPIC: 2 } as const;

export interface ConfigResource {
  type: (typeof ConfigResourceTypes)['TOPIC'];
  name: string;
  /** Only these entries (describeConfigs); all when omitted. */
  configNames?: string[];
}

export interface DescribedConfigEntry {
  configName: string;
  configValue: string;
  readOnly: boolean;
  isDefault: boolean;
  isSensitive: boolean;
}

export interface GroupMemberDescription {
  memberId: string;
  clientId: string;
  /** The member's subscription (KafkaJS gives encoded bytes; here they are decoded). */
  memberMetadata: { topics: string[] };
  memberAssignment: Assignment;
}

export interface GroupDescriptionResult {
  groupId: string;
  state: GroupStateName;
  protocol: string;
  protocolType: 'consumer';
  errorCode: number;
  members: GroupMemberDescription[];
}

export interface PartitionOffsets {
  partition: number;
  /** The high watermark (the next offset to be written). */
  offset: string;
  high: string;
  low: string;
}

export interface GroupPartitionOffset {
  partition: number;
  /** The committed offset (the next one to consume), '-1' if none. */
  offset: string;
  metadata: string | null;
  /** Records between the committed offset and the high watermark. */
  lag: string;
}

/**
 * KafkaJS's admin events and their payloads. The request events (`admin.network.*`) are the
 * admin's calls to its tab's broker and that broker's requests to the partitions' leaders for
 * them (src/client/requests.ts).
 */
export interface AdminEvents extends RequestEventsOf<'admin'> {
  'admin.connect': Record<string, never>;
  'admin.disconnect': Record<string, never>;
}

/**
 * Topic and group administration, KafkaJS-style.
 * @example const admin = letterbox.admin(); await admin.connect();
 */
export class Admin {
  readonly events = { CONNECT: 'admin.connect', DISCONNECT: 'admin.disconnect', ...requestEventNames('admin') } as const satisfies Record<string, keyof AdminEvents>;
  readonly #context: ClientRequests;
  readonly #logger: Logger;
  readonly #instrumentation = new Instrumentation<AdminEvents>();
  #connected = false;

  constructor(context: ClientContext, logger: Logger) {
    this.#context = new ClientRequests(context, requestEmitter(this.#instrumentation, 'admin'));
    this.#logger = logger;
  }

  /**
   * Listens to an admin event; returns a function that stops listening.
   * @example const off = admin.on(admin.events.CONNECT, () => console.log('connected'));
   */
  on<K extends keyof AdminEvents>(type: K, listener: (event: InstrumentationEvent<AdminEvents[K]>) => void): () => void {
    check.listener(type, listener, Object.values(this.events));
    return this.#instrumentation.on(type, listener);
  }

  /**
   * This admin's logger, as KafkaJS's `admin.logger()`.
   * @example admin.logger().info('creating topics');
   */
  logger(): Logger {
    return this.#logger;
  }

  /** @example await admin.connect(); */
  async connect(): Promise<void> {
    await this.#context.node();
    this.#connected = true;
    this.#logger.debug('connected');
    this.#instrumentation.emit('admin.connect', () => ({}));
  }

  /** @example await admin.disconnect(); */
  async disconnect(): Promise<void> {
    this.#connected = false;
    this.#instrumentation.emit('admin.disconnect', () => ({}));
  }

  /**
   * Creates topics; resolves true if all were created, false if any existed already.
   * @example await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 4, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] });
   */
  async createTopics(options: { topics: TopicSpec[]; validateOnly?: boolean }, call: CallOptions = {}): Promise<boolean> {
    const { signal } = check.callOptions(call);
    const o = check.object(options, 'createTopics options');
    const specs = check.array(o['topics'], 'topics').map(topicSpec);
    const validateOnly = check.boolean(o['validateOnly'], 'validateOnly', false);
    const created = await abortable((await this.#node()).createTopics(specs, validateOnly), signal);
    return created.every(Boolean);
  }

  /**
   * Deletes topics and all their records.
   * @example await admin.deleteTopics({ topics: ['old'] });
   */
  async deleteTopics(options: { topics: string[] }, call: CallOptions = {}): Promise<void> {
    const { signal } = check.callOptions(call);
    const topics = topicNames(check.object(options, 'deleteTopics options')['topics'], 'topics');
    await abortable((await this.#node()).deleteTopics(topics), signal);
  }

  /**
   * Raises topics' partition counts.
   * @example await admin.createPartitions({ topicPartitions: [{ topic: 'orders', count: 8 }] });
   */
  async createPartitions(options: { topicPartitions: Array<{ topic: string; count: number }> }, call: CallOptions = {}): Promise<boolean> {
    const { signal } = check.callOptions(call);
    const changes = check.array(check.object(options, 'createPartitions options')['topicPartitions'], 'topicPartitions').map((entry, i) => {
      const { topic, count } = check.object(entry, `topicPartitions[${i}]`);
      return { topic: check.string(topic, `topicPartitions[${i}].topic`), count: check.integer(count, `topicPartitions[${i}].count`, ANY_WHOLE) };
    });
    const node = await this.#node();
    await abortable(node.createPartitions(changes), signal);
    return true;
  }

  /**
   * Names of all topics.
   * @example const names = await admin.listTopics();
   */
  async listTopics(call: CallOptions = {}): Promise<string[]> {
    const { signal } = check.callOptions(call);
    return abortable((await this.#node()).listTopics(), signal);
  }

  /**
   * Partitions and leaders of the named topics (all if none named).
   * @example const { topics } = await admin.fetchTopicMetadata({ topics: ['orders'] });
   */
  async fetchTopicMetadata(options: { topics?: string[] } = {}, call: CallOptions = {}): Promise<{ topics: TopicMetadata[] }> {
    const { signal } = check.callOptions(call);
    const listed = check.object(options, 'fetchTopicMetadata options', true)['topics'];
    const names = listed === undefined ? undefined : topicNames(listed, 'topics');
    const states = await abortable((await this.#node()).describeTopics(names), signal);
    return {
      topics: states.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionErrorCode: 0, partitionId: p.partition, leader: p.leader, replicas: p.replicas ?? [p.leader], isr: p.isr ?? [p.leader], offlineReplicas: [] })),
      })),
    };
  }

  /**
   * Each partition's high watermark (`offset`, `high`) and log start (`low`).
   * @example const offsets = await admin.fetchTopicOffsets('orders');
   */
  async fetchTopicOffsets(topic: string, call: CallOptions = {}): Promise<PartitionOffsets[]> {
    const { signal } = check.callOptions(call);
    const [state] = await abortable((await this.#node()).describeTopics([check.string(topic, 'topic')]), signal);
    return state!.partitions.map((p) => ({ partition: p.partition, offset: String(p.highWatermark), high: String(p.highWatermark), low: String(p.logStartOffset) }));
  }

  /**
   * Per partition, the first offset whose timestamp is at or after `timestamp` (the high watermark if none; the log start without a timestamp).
   * @example await admin.fetchTopicOffsetsByTimestamp('orders', Date.now() - 3_600_000);
   */
  async fetchTopicOffsetsByTimestamp(topic: string, timestamp?: number, call: CallOptions = {}): Promise<Array<{ partition: number; offset: string }>> {
    const { signal } = check.callOptions(call);
    const name = check.string(topic, 'topic');
    const at = check.integer(timestamp, 'timestamp', ANY_WHOLE, undefined, undefined);
    const node = await this.#node();
    const state = await this.#topic(name);
    const queries = state.partitions.map((p) => ({ topic: name, partition: p.partition, query: at === undefined ? ('earliest' as const) : { timestamp: at } }));
    const offsets = await abortable(node.listOffsets(queries), signal);
    return state.partitions.map((p, i) => ({ partition: p.partition, offset: String(offsets[i] ?? p.highWatermark) }));
  }

  /**
   * A group's committed offsets per topic, with the lag to each partition's high watermark.
   * @example const [{ partitions }] = await admin.fetchOffsets({ groupId: 'readers', topics: ['orders'] });
   */
  async fetchOffsets(options: { groupId: string; topics?: string[] }, call: CallOptions = {}): Promise<Array<{ topic: string; partitions: GroupPartitionOffset[] }>> {
    const { signal } = check.callOptions(call);
    const o = check.object(options, 'fetchOffsets options');
    const groupId = check.string(o['groupId'], 'groupId');
    const listed = o['topics'] === undefined ? undefined : topicNames(o['topics'], 'topics');
    const node = await this.#node();
    const committed = await abortable(node.fetchOffsets(groupId), signal);
    const topics = listed ?? [...new Set(committed.map((c) => c.topic))];
    const states = await abortable(node.describeTopics(topics), signal);
    return states.map((t) => ({
      topic: t.name,
      partitions: t.partitions.map((p) => {
        const found = committed.find((c) => c.topic === t.name && c.partition === p.partition);
        const offset = found?.offset ?? -1;
        return { partition: p.partition, offset: String(offset), metadata: found?.metadata ?? null, lag: String(p.highWatermark - (offset < 0 ? p.logStartOffset : offset)) };
      }),
    }));
  }

  /**
   * Sets a group's committed offsets (the group must have no active members).
   * @example await admin.setOffsets({ groupId: 'readers', topic: 'orders', partitions: [{ partition: 0, offset: '42' }] });
   */
  async setOffsets(options: { groupId: string; topic: string; partitions: Array<{ partition: number; offset: string }> }, call: CallOptions = {}): Promise<void> {
    const { signal } = check.callOptions(call);
    const o = check.object(options, 'setOffsets options');
    const groupId = check.string(o['groupId'], 'groupId');
    const topic = check.string(o['topic'], 'topic');
    const offsets: OffsetCommit[] = partitionOffsets(o['partitions'], 0).map(({ partition, offset }) => ({ topic, partition, offset, metadata: null }));
    const node = await this.#node();
    await this.#topic(topic);
    await abortable(node.commitOffsets({ groupId, memberId: null, generationId: -1, offsets }), signal);
  }

  /**
   * Moves a group's committed offsets of a topic to its start (`earliest: true`) or end.
   * @example await admin.resetOffsets({ groupId: 'readers', topic: 'orders', earliest: true });
   */
  async resetOffsets(options: { groupId: string; topic: string; earliest?: boolean }, call: CallOptions = {}): Promise<void> {
    check.callOptions(call);
    const o = check.object(options, 'resetOffsets options');
    const groupId = check.string(o['groupId'], 'groupId');
    const topic = check.string(o['topic'], 'topic');
    const earliest = check.boolean(o['earliest'], 'earliest', false);
    const state = await this.#topic(topic);
    const partitions = state.partitions.map((p) => ({ partition: p.partition, offset: String(earliest ? p.logStartOffset : p.highWatermark) }));
    await this.setOffsets({ groupId, topic, partitions }, call);
  }

  /**
   * Groups this node coordinates.
   * @example const { groups } = await admin.listGroups();
   */
  async listGroups(call: CallOptions = {}): Promise<{ groups: Array<{ groupId: string; protocolType: 'consumer'; state: GroupStateName }> }> {
    const { signal } = check.callOptions(call);
    const groups = await abortable((await this.#node()).listGroups(), signal);
    return { groups: groups.map((g) => ({ groupId: g.groupId, protocolType: 'consumer', state: g.state })) };
  }

  /**
   * The cluster as KafkaJS describes it: its live brokers (nodeId the broker id, host its
   * peer id), the active controller's broker id and the cluster id; and how many partitions are
   * under-replicated or offline (Kafka's metrics of those names; also the event
   * `letterbox.replication_health`). A private broker (no `cluster`) is a cluster of one: nodeId
   * its slot, host the page's, id its incarnation.
   * @example const { brokers, controller, clusterId, underReplicatedPartitions } = await admin.describeCluster();
   */
  async describeCluster(call: CallOptions = {}): Promise<ClusterDescription> {
    const { signal } = check.callOptions(call);
    const cluster = await abortable((await this.#node()).clusterInfo(), signal);
    if (cluster !== undefined) {
      const brokers = cluster.brokers.filter((b) => !b.fenced).map((b) => ({ nodeId: b.brokerId, host: b.endpoints[0] ?? '', port: 0, ...(b.hostedBy === undefined ? {} : { hostedBy: b.hostedBy }) }));
      const { underReplicatedPartitions, offlinePartitions } = cluster;
      return { brokers, controller: cluster.controller, clusterId: cluster.clusterId ?? '', underReplicatedPartitions, offlinePartitions };
    }
    const info = await abortable(this.#context.nodeInfo(), signal);
    const { host, port } = pageBrokerAddress();
    // One broker holds every partition: none can be under-replicated, or offline while it answers.
    return { brokers: [{ nodeId: info.slot, host, port }], controller: info.slot, clusterId: info.incarnation, underReplicatedPartitions: 0, offlinePartitions: 0 };
  }

  /**
   * Members, assignments and state of groups.
   * @example const { groups: [group] } = await admin.describeGroups(['readers']);
   */
  async describeGroups(groupIds: string[], call: CallOptions = {}): Promise<{ groups: GroupDescriptionResult[] }> {
    const { signal } = check.callOptions(call);
    const ids = topicNames(groupIds, 'groupIds');
    const groups = await abortable((await this.#node()).describeGroups(ids), signal);
    return { groups: groups.map(groupDescription) };
  }

  /**
   * Deletes groups that have no members, with their committed offsets (KafkaJS's deleteGroups).
   * Throws DeleteGroupsError (also a KafkaJSDeleteGroupsError) naming each group left in place;
   * the others are deleted.
   * @example const [{ groupId, errorCode }] = await admin.deleteGroups(['readers']); // errorCode 0
   */
  async deleteGroups(groupIds: string[], call: CallOptions = {}): Promise<Array<{ groupId: string; errorCode: number }>> {
    const { signal } = check.callOptions(call);
    const ids = topicNames(groupIds, 'groupIds');
    const results = await abortable((await this.#node()).deleteGroups(ids), signal);
    const failed = results.flatMap(({ groupId, error }) =>
      error === null ? [] : [{ groupId, errorCode: KAFKA_ERROR_CODES[error.code], error: new GroupError(groupId, error.code, error.message) }],
    );
    if (failed.length > 0) throw new DeleteGroupsError(failed);
    return results.map(({ groupId }) => ({ groupId, errorCode: 0 }));
  }

  /**
   * Topic configs, as Kafka names them.
   * @example const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'orders' }] });
   */
  async describeConfigs(options: { resources: ConfigResource[] }, call: CallOptions = {}): Promise<{ resources: Array<{ resourceType: number; resourceName: string; errorCode: number; configEntries: DescribedConfigEntry[] }> }> {
    const { signal } = check.callOptions(call);
    const resources = check.array(check.object(options, 'describeConfigs options')['resources'], 'resources').map((entry, i) => {
      const r = check.object(entry, `resources[${i}]`);
      const configNames = r['configNames'] === undefined ? undefined : topicNames(r['configNames'], `resources[${i}].configNames`);
      return { type: check.oneOf(r['type'], `resources[${i}].type`, [ConfigResourceTypes.TOPIC]), name: check.string(r['name'], `resources[${i}].name`), configNames };
    });
    const node = await this.#node();
    const states = await abortable(node.describeTopics(resources.map((r) => r.name)), signal);
    return {
      resources: resources.map((resource, i) => {
        const entries = states[i]!.configEntries;
        return {
          resourceType: resource.type,
          resourceName: resource.name,
          errorCode: 0,
          configEntries: entries
            .filter((e) => resource.configNames === undefined || resource.configNames.includes(e.name))
            .map((e) => ({ configName: e.name, configValue: e.value, readOnly: false, isDefault: e.isDefault, isSensitive: false })),
        };
      }),
    };
  }

  /**
   * Changes topic configs (retention, cleanup policy, ...); maintenance obeys them from its next round.
   * @example await admin.alterConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'orders', configEntries: [{ name: 'retention.ms', value: '60000' }] }] });
   */
  async alterConfigs(options: { resources: Array<ConfigResource & { configEntries: ConfigEntry[] }> }, call: CallOptions = {}): Promise<void> {
    const { signal } = check.callOptions(call);
    const resources = check.array(check.object(options, 'alterConfigs options')['resources'], 'resources').map((entry, i) => {
      const r = check.object(entry, `resources[${i}]`);
      check.oneOf(r['type'], `resources[${i}].type`, [ConfigResourceTypes.TOPIC]);
      return { topic: check.string(r['name'], `resources[${i}].name`), entries: configEntries(r['configEntries'], `resources[${i}].configEntries`) };
    });
    await abortable((await this.#node()).alterConfigs(resources), signal);
  }

  /**
   * Deletes records below the given offsets ('-1': up to the high watermark).
   * @example await admin.deleteTopicRecords({ topic: 'orders', partitions: [{ partition: 0, offset: '100' }] });
   */
  async deleteTopicRecords(options: { topic: string; partitions: Array<{ partition: number; offset: string }> }, call: CallOptions = {}): Promise<void> {
    const { signal } = check.callOptions(call);
    const o = check.object(options, 'deleteTopicRecords options');
    const topic = check.string(o['topic'], 'topic');
    const partitions = partitionOffsets(o['partitions'], -1);
    await abortable((await this.#node()).deleteRecords(topic, partitions), signal);
  }

  async #topic(topic: string): Promise<TopicState> {
    const [state] = await (await this.#node()).describeTopics([topic]);
    if (state === undefined) throw new UnknownTopicOrPartitionError(topic);
    return state;
  }

  async #node() {
    if (!this.#connected) throw new NotConnectedError('the admin client is not connected: call connect() first');
    return this.#context.node();
  }
}

/** A node's group description in KafkaJS's shape (admin.describeGroups, consumer.describeGroup). */
export function groupDescription(g: Awaited<ReturnType<NodeApi['describeGroups']>>[number]): GroupDescriptionResult {
  return {
    groupId: g.groupId,
    state: g.state,
    protocol: g.assignor ?? '',
    protocolType: 'consumer',
    errorCode: 0,
    members: g.members.map((m) => ({ memberId: m.memberId, clientId: m.clientId, memberMetadata: { topics: m.topics }, memberAssignment: m.assignment })),
  };
}
