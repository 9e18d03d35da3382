import type { Clock } from '../clock';
import { NotCoordinatorError } from '../errors';
import type { OffsetCommit } from '../group';
import type { PartitionLog } from '../log';
import { decodeBatch, decodeOffsetKey, decodeOffsetValue, encodeBatch, encodeOffsetKey, encodeOffsetValue, readBatchHeader, type RecordInput } from '../protocol';
import type { OffsetStore } from './groups';

// A cluster's committed offsets live in the internal topic `__consumer_offsets`, as in Kafka:
// each group's offsets in one partition of it (coordinatorPartition), whose leader is the
// group's coordinator. One record per (group, topic, partition), the latest wins; a
// tombstone removes one (FORMATS.md § Offsets topic). The topic is compacted, so a
// partition holds about one record per committed offset however often they are committed.

/** The internal topic of committed offsets (Kafka's name). */
export { OFFSETS_TOPIC } from '../cluster';

/**
 * Partitions of the offsets topic. Kafka's 50 is sized for brokers holding thousands of
 * groups; a tab cluster has a handful of brokers (one per tab or device) and each partition
 * is a log every holder opens and a coordinator loads. Eight spreads coordinators over the
 * brokers a tab cluster has (leaders are placed round-robin) while a broker holding all of
 * them opens only eight small logs. Fixed once the topic exists, as in Kafka: a group's
 * partition is its id's hash modulo the count the image shows.
 */
export const OFFSETS_PARTITIONS = 8;
/** Kafka's offsets.topic.replication.factor; fewer where fewer brokers are live when the topic is made. */
export const OFFSETS_REPLICATION_FACTOR = 3;

/** Topic configs of the offsets topic: compacted (Kafka's offsets.topic cleanup policy). */
export const OFFSETS_TOPIC_CONFIGS = [{ name: 'cleanup.policy', value: 'compact' }] as const;

/** Bytes read per step when loading a partition, and the most a written batch holds before the next starts. */
const LOAD_READ_BYTES = 1 << 20;
const WRITE_BATCH_BYTES = 512 * 1024;

const offsetKey = (topic: string, partition: number) => `${partition}:${topic}`;

/** A partition of the offsets topic as read back: each group's offsets, by `offsetKey`. */
export type LoadedOffsets = Map<string, Map<string, OffsetCommit>>;

/**
 * Every group's committed offsets in a partition of the offsets topic: its records from the
 * log start on, the latest per key, tombstones removing. A record that does not decode
 * throws (InvalidRecordError, CorruptBatchError): a damaged partition is not half loaded.
 * @example const groups = await readOffsets(log); for (const [groupId, offsets] of groups) runtime.load(groupId, [...offsets.values()]);
 */
export async function readOffsets(log: PartitionLog): Promise<LoadedOffsets> {
  const groups: LoadedOffsets = new Map();
  const end = log.logEndOffset;
  let offset = log.logStartOffset;
  while (offset < end) {
    const batches = await log.read(offset, { maxBytes: LOAD_READ_BYTES, endOffset: end });
    if (batches.length === 0) break;
    for (const bytes of batches) {
      const batch = decodeBatch(bytes);
      // Control batches (a raft leader's no-op, a configuration change) hold no offsets.
      for (const record of batch.isControl ? [] : batch.records) {
        if (batch.baseOffset + record.offsetDelta < offset || record.key === null) continue;
        const key = decodeOffsetKey(record.key);
        if (key === undefined) continue;
        const offsets = groups.get(key.groupId) ?? new Map<string, OffsetCommit>();
        groups.set(key.groupId, offsets);
        if (record.value === null) offsets.delete(offsetKey(key.topic, key.partition));
        else {
          const value = decodeOffsetValue(record.value);
          offsets.set(offsetKey(key.topic, key.partition), { topic: key.topic, partition: key.partition, offset: value.offset, metadata: value.metadata });
        }
      }
      offset = batch.baseOffset + readBatchHeader(bytes).lastOffsetDelta + 1;
    }
  }
  for (const [groupId, offsets] of groups) if (offsets.size === 0) groups.delete(groupId);
  return groups;
}

/**
 * The offset store of a broker of a cluster: a group's commit is appended to its partition of
 * the offsets topic (held here while this broker coordinates the group) as the records that
 * changed since the group's previous write, and tombstones for offsets it no longer has.
 * After a failed write the group's next write is whole again.
 */
export class OffsetsTopicStore implements OffsetStore {
  /** Per group, the set its last write made the committed set (absent: write the whole set next). */
  readonly #emitted = new Map<string, Map<string, OffsetCommit>>();
  /** Per group, keys that may have a live record in the log: those a tombstone must cover when dropped. */
  readonly #live = new Map<string, Set<string>>();
  /** Per group, its last write not yet settled: a write of only the changes stands only if that one does. */
  readonly #unsettled = new Map<string, Promise<void>>();

  /**
   * @param logOf where a group's records go, while this broker holds its offsets-topic partition (else undefined)
   * @example const store = new OffsetsTopicStore((groupId) => logs.get({ topic: OFFSETS_TOPIC, partition: coordinatorPartition(groupId, 8) }), clock);
   */
  constructor(
    private readonly logOf: (groupId: string) => { append(bytes: Uint8Array): Promise<unknown> } | undefined,
    private readonly clock: Clock,
  ) {}

  /** Notes what a loaded partition holds for `groupId` (its live keys and committed set). */
  loaded(groupId: string, offsets: ReadonlyMap<string, OffsetCommit>): void {
    this.#emitted.set(groupId, new Map(offsets));
    this.#live.set(groupId, new Set(offsets.keys()));
  }

  async write(groupId: string, offsets: readonly OffsetCommit[], deleteGroup: boolean): Promise<void> {
    const log = this.logOf(groupId);
    if (log === undefined) throw new NotCoordinatorError(groupId, `the offsets of group ${groupId} are not held by this broker`);
    const next = new Map(offsets.map((o) => [offsetKey(o.topic, o.partition), o]));
    const last = this.#emitted.get(groupId);
    const live = this.#live.get(groupId) ?? new Set<string>();
    const changed = [...next].filter(([key, o]) => last?.get(key)?.offset !== o.offset || last.get(key)?.metadata !== o.metadata);
    const gone = [...live].filter((key) => !next.has(key));
    const now = this.clock.now();
    const records: RecordInput[] = [
      ...changed.map(([, o]): RecordInput => ({ key: encodeOffsetKey({ groupId, topic: o.topic, partition: o.partition }), value: encodeOffsetValue({ offset: o.offset, commitTimestamp: now, metadata: o.metadata }) })),
      ...gone.map((key): RecordInput => {
        const at = key.indexOf(':');
        return { key: encodeOffsetKey({ groupId, topic: key.slice(at + 1), partition: Number(key.slice(0, at)) }), value: null };
      }),
    ];
    if (deleteGroup) this.#emitted.delete(groupId);
    else this.#emitted.set(groupId, next);
    for (const key of next.keys()) live.add(key);
    this.#live.set(groupId, live);
    // Appended in order (the log keeps it): each write's batches follow the previous write's. A
    // write of the changes only fails with the write before it (the offsets it leaves out are
    // that one's); a whole write stands alone.
    const appends: Array<Promise<unknown>> = batchesOf(records, now).map((bytes) => log.append(bytes));
    const before = last === undefined ? undefined : this.#unsettled.get(groupId);
    const written = Promise.all(before === undefined ? appends : [...appends, before]).then(() => undefined);
    this.#unsettled.set(groupId, written);
    try {
      await written;
    } catch (error) {
      this.#emitted.delete(groupId);
      throw error;
    } finally {
      if (this.#unsettled.get(groupId) === written) this.#unsettled.delete(groupId);
    }
    // Durable: the tombstoned keys are gone, unless a later write brought them back.
    const current = this.#emitted.get(groupId);
    for (const key of gone) if (current?.has(key) !== true) live.delete(key);
    if (deleteGroup && live.size === 0 && !this.#emitted.has(groupId)) this.#live.delete(groupId);
  }
}

/** Records in batches of at most about WRITE_BATCH_BYTES each (a group's whole set can be large). */
function batchesOf(records: readonly RecordInput[], now: number): Uint8Array[] {
  const batches: Uint8Array[] = [];
  let part: RecordInput[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = (record.key?.length ?? 0) + (record.value?.length ?? 0) + 16;
    if (part.length > 0 && bytes + size > WRITE_BATCH_BYTES) {
      batches.push(encodeBatch({ baseTimestamp: now, records: part }));
      part = [];
      bytes = 0;
    }
    part.push(record);
    bytes += size;
  }
  if (part.length > 0) batches.push(encodeBatch({ baseTimestamp: now, records: part }));
  return batches;
}
