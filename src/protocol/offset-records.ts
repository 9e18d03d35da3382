// The records of the internal `__consumer_offsets` topic (FORMATS.md § Offsets topic): a
// group's committed offset is one record, keyed by (group, topic, partition) in Kafka's
// OffsetCommitKey layout (version 1) with Kafka's OffsetCommitValue (version 3) as its value;
// a null value (a tombstone) removes it, and compaction keeps the latest per key. Fixed-width
// big-endian fields and int16-length strings, as Kafka's GroupMetadataManager writes them.
// Decoding is checked field by field: a damaged record is an InvalidRecordError, never an offset.

import { InvalidRecordError } from '../errors';
import { ByteReader, getSafeInt64, setInt64 } from './bytes';

/** OffsetCommitKey version (Kafka writes 1; 0 has the same layout). */
const OFFSET_KEY_VERSION = 1;
/** OffsetCommitValue version 3: offset, leaderEpoch, metadata, commitTimestamp. */
const OFFSET_VALUE_VERSION = 3;
/** Kafka's GroupMetadataKey version: group metadata records, which Letterbox does not write and skips. */
const GROUP_METADATA_KEY_VERSION = 2;

export interface OffsetKey {
  readonly groupId: string;
  readonly topic: string;
  readonly partition: number;
}

export interface OffsetValue {
  readonly offset: number;
  /** The commit's time, ms since the epoch. */
  readonly commitTimestamp: number;
  /** null is written as length −1 (Kafka writes "" for none; Letterbox keeps null apart from ""). */
  readonly metadata: string | null;
}

const utf8 = new TextEncoder();
const malformed = (message: string) => new InvalidRecordError(`offsets record: ${message}`);
const INT16_MAX = 0x7fff;

/** Kafka's int16-length string; −1 for null. */
function stringBytes(value: string | null, what: string): Uint8Array | null {
  if (value === null) return null;
  const bytes = utf8.encode(value);
  if (bytes.length > INT16_MAX) throw malformed(`${what} of ${bytes.length} bytes is longer than an int16 length allows`);
  return bytes;
}

type Field = { readonly int16: number } | { readonly int32: number } | { readonly int64: number } | { readonly string: Uint8Array | null };
const fieldBytes = (f: Field) => ('int16' in f ? 2 : 'int32' in f ? 4 : 'int64' in f ? 8 : 2 + (f.string?.length ?? 0));

/** Lays out fields in order: int16s, int32s, int64s and int16-length strings (−1: null), big-endian. */
function layout(fields: readonly Field[]): Uint8Array {
  const bytes = new Uint8Array(fields.reduce((n, f) => n + fieldBytes(f), 0));
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const f of fields) {
    if ('int16' in f) view.setInt16(at, f.int16);
    else if ('int32' in f) view.setInt32(at, f.int32);
    else if ('int64' in f) setInt64(view, at, f.int64);
    else {
      view.setInt16(at, f.string === null ? -1 : f.string.length);
      if (f.string !== null) bytes.set(f.string, at + 2);
    }
    at += fieldBytes(f);
  }
  return bytes;
}

function readInt64(reader: ByteReader, what: string): number {
  reader.need(8, what);
  const value = getSafeInt64(new DataView(reader.bytes.buffer, reader.bytes.byteOffset), reader.position);
  if (value === undefined) throw malformed(`${what} is not a safe integer`);
  reader.position += 8;
  return value;
}

function ended(reader: ByteReader, what: string): void {
  if (reader.position !== reader.end) throw malformed(`${what} has ${reader.end - reader.position} bytes after its last field`);
}

/**
 * An offset record's key.
 * @example const key = encodeOffsetKey({ groupId: 'g', topic: 'orders', partition: 0 });
 */
export function encodeOffsetKey({ groupId, topic, partition }: OffsetKey): Uint8Array {
  if (!Number.isInteger(partition) || partition < 0 || partition > 0x7fff_ffff) throw malformed(`partition ${partition} is not an int32 ≥ 0`);
  return layout([{ int16: OFFSET_KEY_VERSION }, { string: stringBytes(groupId, 'group') }, { string: stringBytes(topic, 'topic') }, { int32: partition }]);
}

/**
 * An offset record's value (a commit), or null for a tombstone.
 * @example const value = encodeOffsetValue({ offset: 42, commitTimestamp: Date.now(), metadata: null });
 */
export function encodeOffsetValue({ offset, commitTimestamp, metadata }: OffsetValue): Uint8Array {
  if (!Number.isSafeInteger(offset) || offset < 0) throw malformed(`offset ${offset} is not a whole number`);
  if (!Number.isSafeInteger(commitTimestamp)) throw malformed(`commit timestamp ${commitTimestamp} is not a whole number`);
  // leaderEpoch -1: Letterbox's consumers do not track the leader epoch yet.
  return layout([{ int16: OFFSET_VALUE_VERSION }, { int64: offset }, { int32: -1 }, { string: stringBytes(metadata, 'metadata') }, { int64: commitTimestamp }]);
}

/**
 * A record key of the offsets topic: an offset commit's, or `undefined` for Kafka's group
 * metadata key (version 2), which Letterbox does not use. Throws InvalidRecordError for anything else.
 * @example const key = decodeOffsetKey(record.key!); if (key !== undefined) offsets.set(key, record.value);
 */
export function decodeOffsetKey(bytes: Uint8Array): OffsetKey | undefined {
  const reader = new ByteReader(bytes, malformed);
  const version = reader.int16('key version');
  if (version === GROUP_METADATA_KEY_VERSION) return undefined;
  if (version !== 0 && version !== OFFSET_KEY_VERSION) throw malformed(`unknown key version ${version}`);
  const groupId = reader.string('group');
  const topic = reader.string('topic');
  const partition = reader.int32('partition');
  if (partition < 0) throw malformed(`partition ${partition}`);
  ended(reader, 'key');
  return { groupId, topic, partition };
}

/**
 * An offset record's value (version 3 only: the one Letterbox writes).
 * @example const { offset } = decodeOffsetValue(record.value!);
 */
export function decodeOffsetValue(bytes: Uint8Array): OffsetValue {
  const reader = new ByteReader(bytes, malformed);
  const version = reader.int16('value version');
  if (version !== OFFSET_VALUE_VERSION) throw malformed(`unknown value version ${version}`);
  const offset = readInt64(reader, 'offset');
  if (offset < 0) throw malformed(`offset ${offset}`);
  reader.int32('leaderEpoch');
  const metadata = reader.nullableString('metadata');
  const commitTimestamp = readInt64(reader, 'commitTimestamp');
  ended(reader, 'value');
  return { offset, commitTimestamp, metadata };
}
