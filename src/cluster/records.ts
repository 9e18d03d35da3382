import { MetadataRecordError } from '../errors';
import { ByteReader, FieldWriter } from '../protocol';

// The metadata log's records (KRaft's __cluster_metadata), one per raft entry payload, and
// their binary codec: FORMATS.md § Metadata record. Decoding never throws: malformed bytes
// become a MetadataRecordError value.

/** Version of every record type's body this node writes (and the newest it reads), but the partition record's. */
export const RECORD_VERSION = 0;
/** The partition record's body: version 1 added the reassignment (version 0 is read as none). */
export const PARTITION_RECORD_VERSION = 1;
/** The registerBroker record's body: version 1 added `hostedBy` (version 0 is read as none). */
export const REGISTER_BROKER_RECORD_VERSION = 1;
const versionOf = (type: MetadataRecord['type']): number => (type === 'partition' ? PARTITION_RECORD_VERSION : type === 'registerBroker' ? REGISTER_BROKER_RECORD_VERSION : RECORD_VERSION);
/** Longest string field a record may carry (names, endpoints, ids), in UTF-8 bytes. */
export const RECORD_STRING_BYTES_MAX = 1024;
/** Most elements of an array field (replicas, endpoints). */
export const RECORD_ARRAY_MAX = 1024;

/** The cluster's identity: the first record of its log, written by the broker that bootstrapped it. */
export interface ClusterIdRecord {
  readonly type: 'clusterId';
  /** Unique per cluster (random, chosen at bootstrap). */
  readonly clusterId: string;
  /** The name brokers meet under (an origin's local cluster, a relay's). */
  readonly clusterName: string;
}
/** A broker joined (or came back with its storage, maybe at new endpoints). */
export interface RegisterBrokerRecord {
  readonly type: 'registerBroker';
  readonly brokerId: number;
  /** Its storage incarnation: the identity of the slot's database. */
  readonly incarnation: string;
  /** The browser profile it runs in: replicas on distinct devices survive a device. */
  readonly deviceId: string;
  readonly endpoints: readonly string[];
  /** The broker whose tab runs it, when another tab adopted its slot (its own tab closed); absent in its own tab. */
  readonly hostedBy?: number;
}
/** A broker fenced (silent past its session timeout, or its tab gone) or unfenced (heard from again). */
export interface FenceBrokerRecord {
  readonly type: 'fenceBroker' | 'unfenceBroker';
  readonly brokerId: number;
  readonly incarnation: string;
}
export interface TopicRecord {
  readonly type: 'topic';
  readonly topicId: number;
  readonly name: string;
}
/** A partition's placement: a new partition, or a changed replica set or leader. */
export interface PartitionRecord {
  readonly type: 'partition';
  readonly topicId: number;
  readonly partition: number;
  readonly replicas: readonly number[];
  /** In-sync replicas (Cluster II); ⊆ replicas. */
  readonly isr: readonly number[];
  /** The leader hint: a replica, or -1 for none. */
  readonly leader: number;
  readonly leaderEpoch: number;
  /**
   * A replica set being changed (KIP-455): `replicas` holds both the old set and the new, and
   * the partition's raft group moves from `replicas` − `adding` to `replicas` − `removing`
   * one voter at a time (src/cluster/reassignment.ts). Absent when none is in progress.
   */
  readonly reassignment?: Reassignment;
}

/** Replicas joining a partition (as learners first) and leaving it; both ⊆ replicas, disjoint, each non-empty. */
export interface Reassignment {
  readonly adding: readonly number[];
  readonly removing: readonly number[];
}
/** A topic config entry set (`value`) or removed (`null`). */
export interface ConfigRecord {
  readonly type: 'config';
  readonly topicId: number;
  readonly name: string;
  readonly value: string | null;
}
export interface RemoveTopicRecord {
  readonly type: 'removeTopic';
  readonly topicId: number;
}
/**
 * A block of producer ids handed to a broker (KIP-730's ProducerIdsRecord): the ids from the
 * previous record's `nextProducerId` (0 at first) up to this one's, for idempotent producers.
 */
export interface ProducerIdsRecord {
  readonly type: 'producerIds';
  readonly brokerId: number;
  /** One past the block's last id: where the next block starts. */
  readonly nextProducerId: number;
}

export type MetadataRecord =
  | ClusterIdRecord
  | RegisterBrokerRecord
  | FenceBrokerRecord
  | TopicRecord
  | PartitionRecord
  | ConfigRecord
  | RemoveTopicRecord
  | ProducerIdsRecord;

/** Type ids on the wire (FORMATS.md § Metadata record). */
const TYPE_IDS = {
  clusterId: 0,
  registerBroker: 1,
  fenceBroker: 2,
  unfenceBroker: 3,
  topic: 4,
  partition: 5,
  config: 6,
  removeTopic: 7,
  producerIds: 8,
} as const satisfies Record<MetadataRecord['type'], number>;
const TYPE_NAMES = Object.fromEntries(Object.entries(TYPE_IDS).map(([name, id]) => [id, name])) as Record<number, MetadataRecord['type']>;

const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads fields; throws MetadataRecordError (caught by the decoders below). */
class FieldReader {
  readonly #reader: ByteReader;
  constructor(bytes: Uint8Array) {
    this.#reader = new ByteReader(bytes, (message) => new MetadataRecordError('CORRUPT_MESSAGE', message));
  }
  get left(): number {
    return this.#reader.end - this.#reader.position;
  }
  uint8(what: string): number {
    return this.#reader.int8(what) & 0xff;
  }
  varint(what: string): number {
    return this.#reader.varint(what);
  }
  varlong(what: string): number {
    return this.#reader.varlong(what);
  }
  int32AtLeast(what: string, min: number): number {
    const value = this.varint(what);
    if (value < min) throw new MetadataRecordError('CORRUPT_MESSAGE', `${what}: ${value} is below ${min}`);
    return value;
  }
  raw(what: string): Uint8Array {
    const bytes = this.#reader.bytesOrNull(what);
    if (bytes === null) throw new MetadataRecordError('CORRUPT_MESSAGE', `${what} is null`);
    return bytes;
  }
  string(what: string): string;
  string(what: string, nullable: true): string | null;
  string(what: string, nullable = false): string | null {
    const bytes = this.#reader.bytesOrNull(what);
    if (bytes === null) {
      if (nullable) return null;
      throw new MetadataRecordError('CORRUPT_MESSAGE', `${what} is null`);
    }
    if (bytes.length > RECORD_STRING_BYTES_MAX) throw new MetadataRecordError('CORRUPT_MESSAGE', `${what} is ${bytes.length} bytes; at most ${RECORD_STRING_BYTES_MAX}`);
    try {
      return fromUtf8.decode(bytes);
    } catch {
      throw new MetadataRecordError('CORRUPT_MESSAGE', `${what} is not UTF-8`);
    }
  }
  #count(what: string): number {
    const count = this.varint(what);
    if (count < 0 || count > RECORD_ARRAY_MAX) throw new MetadataRecordError('CORRUPT_MESSAGE', `${what}: ${count} elements; 0..${RECORD_ARRAY_MAX}`);
    return count;
  }
  int32s(what: string, min: number): number[] {
    return Array.from({ length: this.#count(what) }, () => this.int32AtLeast(what, min));
  }
  strings(what: string): string[] {
    return Array.from({ length: this.#count(what) }, () => this.string(what));
  }
}

/**
 * Encodes one metadata record (FORMATS.md § Metadata record).
 * @example const payload = encodeRecord({ type: 'topic', topicId: 1, name: 'orders' });
 */
export function encodeRecord(record: MetadataRecord): Uint8Array {
  const w = new FieldWriter().int8(TYPE_IDS[record.type]).int8(versionOf(record.type));
  switch (record.type) {
    case 'clusterId':
      return w.string(record.clusterId).string(record.clusterName).done();
    case 'registerBroker':
      return w.varint(record.brokerId, 'brokerId').string(record.incarnation).string(record.deviceId).strings(record.endpoints).varint(record.hostedBy ?? 0, 'hostedBy').done();
    case 'fenceBroker':
    case 'unfenceBroker':
      return w.varint(record.brokerId, 'brokerId').string(record.incarnation).done();
    case 'topic':
      return w.varint(record.topicId, 'topicId').string(record.name).done();
    case 'partition':
      return w
        .varint(record.topicId, 'topicId')
        .varint(record.partition, 'partition')
        .array(record.replicas, (id) => w.varint(id, 'replica'))
        .array(record.isr, (id) => w.varint(id, 'isr'))
        .varint(record.leader, 'leader')
        .varint(record.leaderEpoch, 'leaderEpoch')
        .array(record.reassignment?.adding ?? [], (id) => w.varint(id, 'adding'))
        .array(record.reassignment?.removing ?? [], (id) => w.varint(id, 'removing'))
        .done();
    case 'config':
      return w.varint(record.topicId, 'topicId').string(record.name).string(record.value).done();
    case 'removeTopic':
      return w.varint(record.topicId, 'topicId').done();
    case 'producerIds':
      return w.varint(record.brokerId, 'brokerId').varlong(record.nextProducerId, 'nextProducerId').done();
  }
}

/**
 * Decodes one metadata record; a malformed one is a MetadataRecordError value, never a throw.
 * @example const record = decodeRecord(entry.data); if (record instanceof MetadataRecordError) report(record);
 */
export function decodeRecord(bytes: Uint8Array): MetadataRecord | MetadataRecordError {
  try {
    return readRecord(new FieldReader(bytes));
  } catch (error) {
    if (error instanceof MetadataRecordError) return error;
    throw error;
  }
}

function readRecord(r: FieldReader): MetadataRecord {
  const typeId = r.uint8('record type');
  const type = TYPE_NAMES[typeId];
  if (type === undefined) throw new MetadataRecordError('CORRUPT_MESSAGE', `unknown metadata record type ${typeId}`);
  const version = r.uint8('record version');
  if (version > versionOf(type)) throw new MetadataRecordError('UNSUPPORTED_VERSION', `${type} record version ${version}; this node reads up to ${versionOf(type)}`);
  const record = readBody(r, type, version);
  if (r.left !== 0) throw new MetadataRecordError('CORRUPT_MESSAGE', `${type} record has ${r.left} bytes after its last field`);
  return record;
}

function readBody(r: FieldReader, type: MetadataRecord['type'], version: number): MetadataRecord {
  switch (type) {
    case 'clusterId':
      return { type, clusterId: r.string('clusterId'), clusterName: r.string('clusterName') };
    case 'registerBroker': {
      const record: RegisterBrokerRecord = { type, brokerId: r.int32AtLeast('brokerId', 0), incarnation: r.string('incarnation'), deviceId: r.string('deviceId'), endpoints: r.strings('endpoints') };
      const hostedBy = version === 0 ? 0 : r.int32AtLeast('hostedBy', 0);
      return hostedBy === 0 ? record : { ...record, hostedBy };
    }
    case 'fenceBroker':
    case 'unfenceBroker':
      return { type, brokerId: r.int32AtLeast('brokerId', 0), incarnation: r.string('incarnation') };
    case 'topic':
      return { type, topicId: r.int32AtLeast('topicId', 1), name: r.string('name') };
    case 'partition': {
      const topicId = r.int32AtLeast('topicId', 1);
      const partition = r.int32AtLeast('partition', 0);
      const replicas = r.int32s('replicas', 0);
      const isr = r.int32s('isr', 0);
      const leader = r.int32AtLeast('leader', -1);
      const leaderEpoch = r.int32AtLeast('leaderEpoch', 0);
      const record: PartitionRecord = { type, topicId, partition, replicas, isr, leader, leaderEpoch };
      if (version === 0) return record;
      const adding = r.int32s('adding', 0);
      const removing = r.int32s('removing', 0);
      if (adding.length === 0 && removing.length === 0) return record;
      return { ...record, reassignment: { adding, removing } };
    }
    case 'config':
      return { type, topicId: r.int32AtLeast('topicId', 1), name: r.string('name'), value: r.string('value', true) };
    case 'removeTopic':
      return { type, topicId: r.int32AtLeast('topicId', 1) };
    case 'producerIds': {
      const brokerId = r.int32AtLeast('brokerId', 0);
      const nextProducerId = r.varlong('nextProducerId');
      if (nextProducerId <= 0) throw new MetadataRecordError('CORRUPT_MESSAGE', `nextProducerId ${nextProducerId} is not positive`);
      return { type, brokerId, nextProducerId };
    }
  }
}

/** Snapshot format version (FORMATS.md § Metadata snapshot). */
export const SNAPSHOT_VERSION = 0;

/** A snapshot's contents: counters that records do not carry, and the records that rebuild the image. */
export interface SnapshotContents {
  /** Records applied to make the image (compared when two clusters meet). */
  readonly recordsApplied: number;
  readonly nextTopicId: number;
  readonly records: readonly MetadataRecord[];
}

/** Encodes a snapshot image. @example encodeSnapshot({ recordsApplied: 12, nextTopicId: 3, records }) */
export function encodeSnapshot(contents: SnapshotContents): Uint8Array {
  const w = new FieldWriter().int8(SNAPSHOT_VERSION).varlong(contents.recordsApplied, 'recordsApplied').varint(contents.nextTopicId, 'nextTopicId').varlong(contents.records.length, 'record count');
  for (const record of contents.records) w.bytes(encodeRecord(record));
  return w.done();
}

/** Decodes a snapshot image; malformed bytes are a MetadataRecordError value. @example decodeSnapshot(snapshot.data) */
export function decodeSnapshot(bytes: Uint8Array): SnapshotContents | MetadataRecordError {
  try {
    const r = new FieldReader(bytes);
    const version = r.uint8('snapshot version');
    if (version !== SNAPSHOT_VERSION) throw new MetadataRecordError('UNSUPPORTED_VERSION', `metadata snapshot version ${version}; this node reads ${SNAPSHOT_VERSION}`);
    const recordsApplied = r.varlong('recordsApplied');
    const nextTopicId = r.int32AtLeast('nextTopicId', 1);
    const count = r.varlong('record count');
    if (recordsApplied < 0 || count < 0 || count > bytes.length) throw new MetadataRecordError('CORRUPT_MESSAGE', `snapshot counts ${recordsApplied}, ${count} out of range`);
    const records: MetadataRecord[] = [];
    for (let i = 0; i < count; i++) records.push(readRecord(new FieldReader(r.raw('record'))));
    if (r.left !== 0) throw new MetadataRecordError('CORRUPT_MESSAGE', `metadata snapshot has ${r.left} bytes after its last record`);
    return { recordsApplied, nextTopicId, records };
  } catch (error) {
    if (error instanceof MetadataRecordError) return error;
    throw error;
  }
}
