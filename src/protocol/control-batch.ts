import { CorruptBatchError } from '../errors';
import { decodeBatch, encodeBatch } from './record-batch';

// Control batches (FORMATS.md § Control batch): the raft entries of a partition that carry
// no user records — a new leader's no-op and a configuration change — written as Kafka writes
// its own markers: a batch with the control attribute holding one record whose key is
// (version int16, type int16). Each takes one offset, so the partition's offsets stay a
// function of its raft log; consumers (ours, KafkaJS, kcat) skip control batches.

/** Kafka's ControlRecordType ids that Letterbox writes: LEADER_CHANGE (2) and KRAFT_VOTERS (6). */
const CONTROL_TYPE_IDS = { leaderChange: 2, voters: 6 } as const;
export type ControlType = keyof typeof CONTROL_TYPE_IDS;
const CONTROL_KEY_VERSION = 0;
const CONTROL_KEY_BYTES = 4;

export interface ControlRecord {
  type: ControlType;
  /** The record's value: empty for leaderChange, the membership's JSON for voters. */
  value: Uint8Array;
}

/**
 * Encodes a control batch of one record (baseOffset 0: the log sets it), at leader epoch `epoch`.
 * @example const noop = encodeControlBatch({ type: 'leaderChange', value: new Uint8Array(0) }, term, now);
 */
export function encodeControlBatch(record: ControlRecord, epoch: number, timestamp: number): Uint8Array {
  const key = new Uint8Array(CONTROL_KEY_BYTES);
  const view = new DataView(key.buffer);
  view.setInt16(0, CONTROL_KEY_VERSION);
  view.setInt16(2, CONTROL_TYPE_IDS[record.type]);
  return encodeBatch({ isControl: true, partitionLeaderEpoch: epoch, baseTimestamp: timestamp, records: [{ key, value: record.value }] });
}

/**
 * The record of a control batch written by {@link encodeControlBatch}; CorruptBatchError for
 * any other batch (not control, another record count, an unknown key).
 * @example if (readBatchHeader(bytes).isControl) const { type } = decodeControlBatch(bytes);
 */
export function decodeControlBatch(bytes: Uint8Array): ControlRecord {
  const batch = decodeBatch(bytes);
  const [record] = batch.records;
  if (!batch.isControl || batch.records.length !== 1 || record === undefined || record.key === null || record.key.length !== CONTROL_KEY_BYTES) {
    throw new CorruptBatchError('not a Letterbox control batch (one record, a 4-byte control key)');
  }
  const key = new DataView(record.key.buffer, record.key.byteOffset, CONTROL_KEY_BYTES);
  const version = key.getInt16(0);
  const id = key.getInt16(2);
  const type = (Object.keys(CONTROL_TYPE_IDS) as ControlType[]).find((name) => CONTROL_TYPE_IDS[name] === id);
  if (version !== CONTROL_KEY_VERSION || type === undefined) throw new CorruptBatchError(`control record version ${version} type ${id} is not one Letterbox writes`);
  return { type, value: record.value ?? new Uint8Array(0) };
}
