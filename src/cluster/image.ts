import { MetadataRecordError } from '../errors';
import { decodeSnapshot, encodeSnapshot, type MetadataRecord, type PartitionRecord } from './records';

// The metadata image: what the committed metadata log says, built by applying its records
// in order (KRaft's MetadataImage). Every broker holds one, so metadata reads are local.
// A record that contradicts the image is refused (a typed error) and changes nothing;
// replicas apply the same committed records, so they refuse the same ones.

export interface BrokerInfo {
  readonly brokerId: number;
  readonly incarnation: string;
  readonly deviceId: string;
  readonly endpoints: readonly string[];
  /** The broker whose tab runs it, when another tab adopted its slot; absent in its own tab. */
  readonly hostedBy?: number;
  /** Fenced: silent past its session timeout, or its tab gone; it leads and receives nothing. */
  readonly fenced: boolean;
}

/** A partition's placement: its replicas, in-sync replicas and leader hint (as its record says). */
export type PartitionInfo = Omit<PartitionRecord, 'type' | 'topicId'>;

export interface TopicInfo {
  readonly topicId: number;
  readonly name: string;
  readonly partitions: readonly PartitionInfo[];
  readonly configs: ReadonlyMap<string, string>;
}

/** Kafka's rule: `.` and `_` collide in metric names, so `a.b` and `a_b` cannot both exist. @example collisionKey('a.b') === collisionKey('a_b') */
export const collisionKey = (name: string): string => name.replaceAll('.', '_');

/**
 * The metadata image. Queries are read-only; `apply` changes it in place, so a caller
 * that speculates (the controller, over records not yet committed) applies to a `clone`.
 * @example const image = new MetadataImage(); image.apply(record); image.topicByName('orders')?.partitions
 */
export class MetadataImage {
  #clusterId: string | undefined;
  #clusterName: string | undefined;
  readonly #brokers = new Map<number, BrokerInfo>();
  readonly #topics = new Map<number, TopicInfo>();
  readonly #topicIdByKey = new Map<string, number>();
  #nextTopicId = 1;
  #recordsApplied = 0;
  /** Where the next block of producer ids starts, and the broker the last block went to. */
  #producerIds = { next: 0, brokerId: -1 };

  get clusterId(): string | undefined {
    return this.#clusterId;
  }
  get clusterName(): string | undefined {
    return this.#clusterName;
  }
  /** Records applied so far (snapshots keep the count). */
  get recordsApplied(): number {
    return this.#recordsApplied;
  }
  /** The id the next topic gets: ids are never reused, not even after a deletion. */
  get nextTopicId(): number {
    return this.#nextTopicId;
  }
  /** Producer ids below this were handed out in blocks to brokers (KIP-730); an id at or above it is unknown to the cluster. */
  get nextProducerId(): number {
    return this.#producerIds.next;
  }
  /** The id the next new broker gets: one above every id ever registered. */
  get nextBrokerId(): number {
    let next = 1;
    for (const id of this.#brokers.keys()) next = Math.max(next, id + 1);
    return next;
  }

  /** @example image.broker(3)?.fenced */
  broker(brokerId: number): BrokerInfo | undefined {
    return this.#brokers.get(brokerId);
  }
  /** Every registered broker, by id. @example image.brokers().filter((b) => !b.fenced) */
  brokers(): BrokerInfo[] {
    return [...this.#brokers.values()].sort((a, b) => a.brokerId - b.brokerId);
  }
  /** Every topic, by name. @example image.topics().map((t) => t.name) */
  topics(): TopicInfo[] {
    return [...this.#topics.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  /** @example image.topic(1)?.name */
  topic(topicId: number): TopicInfo | undefined {
    return this.#topics.get(topicId);
  }
  /** @example image.topicByName('orders')?.partitions.length */
  topicByName(name: string): TopicInfo | undefined {
    const topic = this.#topics.get(this.#topicIdByKey.get(collisionKey(name)) ?? 0);
    return topic?.name === name ? topic : undefined;
  }
  /** The existing topic whose name collides with `name` (equal, or equal but for `.`/`_`). @example image.collidingTopic('a_b')?.name // 'a.b' */
  collidingTopic(name: string): TopicInfo | undefined {
    return this.#topics.get(this.#topicIdByKey.get(collisionKey(name)) ?? 0);
  }

  /**
   * Applies one committed record, or refuses it with a typed error and changes nothing.
   * @example const error = image.apply(record); if (error) report(error);
   */
  apply(record: MetadataRecord): MetadataRecordError | undefined {
    const refused = this.#check(record);
    if (refused !== undefined) return new MetadataRecordError('INVALID_RECORD', `${record.type} record refused: ${refused}`);
    this.#recordsApplied++;
    switch (record.type) {
      case 'clusterId':
        this.#clusterId = record.clusterId;
        this.#clusterName = record.clusterName;
        return undefined;
      case 'registerBroker': {
        const { brokerId, incarnation, deviceId, endpoints, hostedBy } = record;
        this.#brokers.set(brokerId, { brokerId, incarnation, deviceId, endpoints, ...(hostedBy === undefined ? {} : { hostedBy }), fenced: false });
        return undefined;
      }
      case 'fenceBroker':
      case 'unfenceBroker':
        this.#brokers.set(record.brokerId, { ...this.#brokers.get(record.brokerId)!, fenced: record.type === 'fenceBroker' });
        return undefined;
      case 'topic':
        this.#topics.set(record.topicId, { topicId: record.topicId, name: record.name, partitions: [], configs: new Map() });
        this.#topicIdByKey.set(collisionKey(record.name), record.topicId);
        this.#nextTopicId = record.topicId + 1;
        return undefined;
      case 'partition': {
        const topic = this.#topics.get(record.topicId)!;
        const partitions = topic.partitions.slice();
        const { type: _type, topicId: _topicId, ...placement } = record;
        partitions[record.partition] = placement;
        this.#topics.set(topic.topicId, { ...topic, partitions });
        return undefined;
      }
      case 'config': {
        const topic = this.#topics.get(record.topicId)!;
        const configs = new Map(topic.configs);
        if (record.value === null) configs.delete(record.name);
        else configs.set(record.name, record.value);
        this.#topics.set(topic.topicId, { ...topic, configs });
        return undefined;
      }
      case 'removeTopic': {
        const topic = this.#topics.get(record.topicId)!;
        this.#topics.delete(topic.topicId);
        this.#topicIdByKey.delete(collisionKey(topic.name));
        return undefined;
      }
      case 'producerIds':
        this.#producerIds = { next: record.nextProducerId, brokerId: record.brokerId };
        return undefined;
    }
  }

  /** Why `record` contradicts the image, or undefined. */
  #check(record: MetadataRecord): string | undefined {
    if (record.type === 'clusterId') return this.#clusterId === undefined ? undefined : `the cluster id is ${this.#clusterId} already`;
    if (this.#clusterId === undefined) return 'the log must start with the cluster id';
    switch (record.type) {
      case 'registerBroker': {
        const known = this.#brokers.get(record.brokerId);
        if (known !== undefined && known.incarnation !== record.incarnation) return `broker ${record.brokerId} is registered with another storage incarnation`;
        if (known === undefined && record.brokerId !== this.nextBrokerId) return `a new broker takes id ${this.nextBrokerId}, not ${record.brokerId}`;
        if (record.hostedBy === record.brokerId) return `broker ${record.brokerId} cannot be hosted by itself`;
        return undefined;
      }
      case 'fenceBroker':
      case 'unfenceBroker':
        return this.#brokers.get(record.brokerId)?.incarnation === record.incarnation ? undefined : `no broker ${record.brokerId} of incarnation ${record.incarnation}`;
      case 'topic':
        if (this.collidingTopic(record.name) !== undefined) return `topic "${record.name}" collides with "${this.collidingTopic(record.name)!.name}"`;
        return record.topicId >= this.#nextTopicId ? undefined : `topic id ${record.topicId} was used already`;
      case 'partition': {
        const topic = this.#topics.get(record.topicId);
        if (topic === undefined) return `no topic ${record.topicId}`;
        if (record.partition > topic.partitions.length) return `partition ${record.partition} would leave a gap after ${topic.partitions.length}`;
        const replicas = new Set(record.replicas);
        if (replicas.size === 0 || replicas.size !== record.replicas.length) return 'replicas must be distinct and at least one';
        if (record.replicas.some((id) => !this.#brokers.has(id))) return 'a replica is not a registered broker';
        if (record.isr.some((id) => !replicas.has(id))) return 'the isr must be replicas';
        const moving = record.reassignment;
        if (moving !== undefined) {
          const { adding, removing } = moving;
          const named = [...adding, ...removing];
          if (named.length === 0 || new Set(named).size !== named.length || named.some((id) => !replicas.has(id))) return 'a reassignment adds and removes distinct replicas';
          if (adding.length >= replicas.size || removing.length >= replicas.size) return 'a reassignment keeps a replica before and after it';
        }
        const current = topic.partitions[record.partition];
        if (current !== undefined && record.leaderEpoch < current.leaderEpoch) return `the leader epoch ${record.leaderEpoch} is below the partition's ${current.leaderEpoch}`;
        return record.leader === -1 || replicas.has(record.leader) ? undefined : 'the leader must be a replica';
      }
      case 'config':
      case 'removeTopic':
        return this.#topics.has(record.topicId) ? undefined : `no topic ${record.topicId}`;
      case 'producerIds':
        if (!this.#brokers.has(record.brokerId)) return `no broker ${record.brokerId}`;
        return record.nextProducerId > this.#producerIds.next ? undefined : `producer ids below ${this.#producerIds.next} were handed out already`;
    }
  }

  /** An independent copy. @example const speculative = image.clone(); */
  clone(): MetadataImage {
    const copy = new MetadataImage();
    copy.#clusterId = this.#clusterId;
    copy.#clusterName = this.#clusterName;
    for (const [id, broker] of this.#brokers) copy.#brokers.set(id, broker);
    for (const [id, topic] of this.#topics) copy.#topics.set(id, topic);
    for (const [key, id] of this.#topicIdByKey) copy.#topicIdByKey.set(key, id);
    copy.#nextTopicId = this.#nextTopicId;
    copy.#producerIds = this.#producerIds;
    copy.#recordsApplied = this.#recordsApplied;
    return copy;
  }

  /**
   * The raft snapshot image of the metadata group: records that rebuild this image (FORMATS.md § Metadata snapshot).
   * @example executor.input(group, { type: 'compact', index: applied, data: image.encode() });
   */
  encode(): Uint8Array {
    const records: MetadataRecord[] = [];
    if (this.#clusterId !== undefined) records.push({ type: 'clusterId', clusterId: this.#clusterId, clusterName: this.#clusterName! });
    for (const b of this.brokers()) {
      records.push({ type: 'registerBroker', brokerId: b.brokerId, incarnation: b.incarnation, deviceId: b.deviceId, endpoints: b.endpoints, ...(b.hostedBy === undefined ? {} : { hostedBy: b.hostedBy }) });
      if (b.fenced) records.push({ type: 'fenceBroker', brokerId: b.brokerId, incarnation: b.incarnation });
    }
    for (const topic of [...this.#topics.values()].sort((a, b) => a.topicId - b.topicId)) {
      records.push({ type: 'topic', topicId: topic.topicId, name: topic.name });
      for (const p of topic.partitions) records.push({ type: 'partition', topicId: topic.topicId, ...p });
      for (const [name, value] of topic.configs) records.push({ type: 'config', topicId: topic.topicId, name, value });
    }
    if (this.#producerIds.next > 0) records.push({ type: 'producerIds', brokerId: this.#producerIds.brokerId, nextProducerId: this.#producerIds.next });
    return encodeSnapshot({ recordsApplied: this.#recordsApplied, nextTopicId: this.#nextTopicId, records });
  }

  /**
   * Rebuilds an image from a snapshot; malformed or contradictory bytes are a MetadataRecordError value.
   * @example const image = MetadataImage.decode(snapshot.data);
   */
  static decode(bytes: Uint8Array): MetadataImage | MetadataRecordError {
    const contents = decodeSnapshot(bytes);
    if (contents instanceof MetadataRecordError) return contents;
    const image = new MetadataImage();
    for (const record of contents.records) {
      const error = image.apply(record);
      if (error !== undefined) return new MetadataRecordError('CORRUPT_MESSAGE', `metadata snapshot: ${error.message}`);
    }
    if (contents.nextTopicId < image.#nextTopicId) return new MetadataRecordError('CORRUPT_MESSAGE', 'metadata snapshot: nextTopicId below a topic id it holds');
    image.#nextTopicId = contents.nextTopicId;
    image.#recordsApplied = contents.recordsApplied;
    return image;
  }

  /** A canonical digest for comparing images across brokers (tests, the simulator). @example a.fingerprint() === b.fingerprint() */
  fingerprint(): string {
    return Array.from(this.encode(), (b) => b.toString(16).padStart(2, '0')).join('');
  }
}

