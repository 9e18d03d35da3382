// Kafka RecordBatch v2 (magic 2): the unit that Letterbox stores, replicates and fetches.
// Layout and meaning in FORMATS.md § Record batch; this is its codec for uncompressed
// record sets. Compressed batches go through compression.ts, which calls back here.

import { CorruptBatchError, InvalidRecordError, UnsupportedCompressionError } from '../errors';
import { ByteReader, getSafeInt64, putVarint, putVarlong, setInt64, varintBytes, varlongBytes } from './bytes';
import { crc32c } from './crc32c';

/** Bytes of the fixed batch header, up to the first record. */
export const BATCH_HEADER_BYTES = 61;
/** Bytes before `batchLength` counts: baseOffset (8) and batchLength itself (4). */
const LOG_OVERHEAD_BYTES = 12;
const MAGIC = 2;

// Field offsets (FORMATS.md § Record batch).
const BASE_OFFSET = 0;
const BATCH_LENGTH = 8;
const PARTITION_LEADER_EPOCH = 12;
const MAGIC_OFFSET = 16;
const CRC = 17;
/** The CRC covers everything from attributes to the end of the batch. */
const ATTRIBUTES = 21;
const LAST_OFFSET_DELTA = 23;
const BASE_TIMESTAMP = 27;
const MAX_TIMESTAMP = 35;
const PRODUCER_ID = 43;
const PRODUCER_EPOCH = 51;
const BASE_SEQUENCE = 53;
const RECORD_COUNT = 57;

// Attribute bits.
const COMPRESSION_MASK = 0x07;
const TIMESTAMP_TYPE_BIT = 0x08;
const TRANSACTIONAL_BIT = 0x10;
const CONTROL_BIT = 0x20;

/** Kafka's compression codec ids 0–4, by name. */
export const COMPRESSION_IDS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type Compression = keyof typeof COMPRESSION_IDS;
const COMPRESSION_BY_ID: readonly Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

export type TimestampType = 'CreateTime' | 'LogAppendTime';

/** The fixed fields of a batch, readable without decompressing its records. */
export interface BatchHeader {
  baseOffset: number;
  /** Bytes after the batchLength field: the whole batch is `batchLength + 12` bytes. */
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  /** CRC32C stored in the batch, unsigned. */
  crc: number;
  /** The raw attributes; the named fields below decode its bits. */
  attributes: number;
  compression: Compression;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

/** One decoded record; `key` and `value` are views into the batch bytes, not copies. */
export interface BatchRecord {
  /** Record attributes; unused by Kafka so far, always 0 from its clients. */
  attributes: number;
  timestampDelta: number;
  offsetDelta: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

export interface RecordBatch extends BatchHeader {
  records: BatchRecord[];
}

/** A record to encode; omitted fields take Kafka's defaults. */
export interface RecordInput {
  /** Default 0. */
  attributes?: number;
  /** Default 0. */
  timestampDelta?: number;
  /** Default: the record's index in the batch. Gaps are kept (compaction removes records, never offsets). */
  offsetDelta?: number;
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: readonly RecordHeader[];
}

/** A batch to encode; omitted fields take the defaults a Kafka producer without idempotence writes. */
export interface RecordBatchInput {
  /** Default 0: the leader assigns offsets with `setBaseOffset` when it appends. */
  baseOffset?: number;
  /** Default -1 (no epoch), as Kafka producers send. */
  partitionLeaderEpoch?: number;
  /** Default 'none'. `encodeBatch` writes only 'none'; `encodeBatchAsync` also writes 'gzip'. */
  compression?: Compression;
  /** Default 'CreateTime'. */
  timestampType?: TimestampType;
  isTransactional?: boolean;
  isControl?: boolean;
  /** Default: the largest offsetDelta (0 for an empty batch). */
  lastOffsetDelta?: number;
  baseTimestamp: number;
  /** Default: baseTimestamp plus the largest timestampDelta (baseTimestamp for an empty batch). */
  maxTimestamp?: number;
  /** Default -1 (not idempotent). */
  producerId?: number;
  /** Default -1. */
  producerEpoch?: number;
  /** Default -1. */
  baseSequence?: number;
  records: readonly RecordInput[];
}

const corrupt = (message: string) => new CorruptBatchError(message);
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the fixed v2 header without touching the records; checks the size, magic and batchLength, not the CRC.
 * @example readBatchHeader(bytes).baseOffset
 */
export function readBatchHeader(bytes: Uint8Array): BatchHeader {
  if (bytes.length < BATCH_HEADER_BYTES) {
    throw corrupt(`record batch of ${bytes.length} bytes is shorter than its ${BATCH_HEADER_BYTES}-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getInt8(MAGIC_OFFSET);
  if (magic !== MAGIC) throw corrupt(`record batch magic is ${magic}, only ${MAGIC} is supported`);
  const batchLength = view.getInt32(BATCH_LENGTH);
  if (batchLength + LOG_OVERHEAD_BYTES !== bytes.length) {
    throw corrupt(`record batch says it has ${batchLength + LOG_OVERHEAD_BYTES} bytes but has ${bytes.length}`);
  }
  const attributes = view.getInt16(ATTRIBUTES);
  const compression = COMPRESSION_BY_ID[attributes & COMPRESSION_MASK];
  // Ids 5–7 name no codec at all (unlike snappy, lz4, zstd, which are merely unsupported):
  // the batch is damaged, and a bit flip in the attributes must read as such.
  if (compression === undefined) throw corrupt(`record batch names unknown compression codec ${attributes & COMPRESSION_MASK}`);
  const int64 = (offset: number, name: string) => {
    const value = getSafeInt64(view, offset);
    if (value === undefined) throw corrupt(`record batch ${name} is outside the safe integer range`);
    return value;
  };
  const recordCount = view.getInt32(RECORD_COUNT);
  if (recordCount < 0) throw corrupt(`record batch has negative record count ${recordCount}`);
  return {
    baseOffset: int64(BASE_OFFSET, 'baseOffset'),
    batchLength,
    partitionLeaderEpoch: view.getInt32(PARTITION_LEADER_EPOCH),
    magic,
    crc: view.getUint32(CRC),
    attributes,
    compression,
    timestampType: attributes & TIMESTAMP_TYPE_BIT ? 'LogAppendTime' : 'CreateTime',
    isTransactional: (attributes & TRANSACTIONAL_BIT) !== 0,
    isControl: (attributes & CONTROL_BIT) !== 0,
    lastOffsetDelta: view.getInt32(LAST_OFFSET_DELTA),
    baseTimestamp: int64(BASE_TIMESTAMP, 'baseTimestamp'),
    maxTimestamp: int64(MAX_TIMESTAMP, 'maxTimestamp'),
    producerId: int64(PRODUCER_ID, 'producerId'),
    producerEpoch: view.getInt16(PRODUCER_EPOCH),
    baseSequence: view.getInt32(BASE_SEQUENCE),
    recordCount,
  };
}

/**
 * Reads the header and checks the CRC32C over attributes..end; throws CorruptBatchError on any mismatch.
 * @example const header = verifyBatch(bytesFromPeer);
 */
export function verifyBatch(bytes: Uint8Array): BatchHeader {
  const header = readBatchHeader(bytes);
  const actual = crc32c(bytes.subarray(ATTRIBUTES));
  if (actual !== header.crc) {
    throw corrupt(`record batch CRC32C is ${hex(actual)}, the batch says ${hex(header.crc)}`);
  }
  return header;
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * Overwrites baseOffset in place; it lies outside the CRC, so the batch stays valid.
 * @example setBaseOffset(batch, logEndOffset);
 */
export function setBaseOffset(bytes: Uint8Array, baseOffset: number): void {
  if (!Number.isSafeInteger(baseOffset) || baseOffset < 0) throw new InvalidRecordError(`baseOffset ${baseOffset} is not a non-negative safe integer`);
  if (bytes.length < BATCH_HEADER_BYTES) throw corrupt(`record batch of ${bytes.length} bytes is shorter than its header`);
  setInt64(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), BASE_OFFSET, baseOffset);
}

/**
 * Overwrites partitionLeaderEpoch in place; it lies outside the CRC, so the batch stays valid.
 * @example setPartitionLeaderEpoch(batch, raftTerm);
 */
export function setPartitionLeaderEpoch(bytes: Uint8Array, epoch: number): void {
  if (!isInt32(epoch)) throw new InvalidRecordError(`partitionLeaderEpoch ${epoch} is not an int32`);
  if (bytes.length < BATCH_HEADER_BYTES) throw corrupt(`record batch of ${bytes.length} bytes is shorter than its header`);
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setInt32(PARTITION_LEADER_EPOCH, epoch);
}

/**
 * Decodes the records of a verified batch from `recordBytes` (the uncompressed record set).
 * @internal used by decodeBatch and by the compressed path.
 */
export function decodeRecords(header: BatchHeader, recordBytes: Uint8Array, start: number): BatchRecord[] {
  const reader = new ByteReader(recordBytes, corrupt, start);
  const records: BatchRecord[] = new Array(header.recordCount);
  for (let i = 0; i < header.recordCount; i++) {
    const length = reader.varint('record length');
    if (length < 0) throw corrupt(`record ${i} has negative length ${length}`);
    reader.need(length, `record ${i}`);
    const recordEnd = reader.position + length;
    const recordReader = reader.end === recordEnd ? reader : new ByteReader(recordBytes, corrupt, reader.position, recordEnd);
    const attributes = recordReader.int8('record attributes');
    const timestampDelta = recordReader.varlong('record timestampDelta');
    const offsetDelta = recordReader.varint('record offsetDelta');
    const key = recordReader.bytesOrNull('record key');
    const value = recordReader.bytesOrNull('record value');
    const headerCount = recordReader.varint('record header count');
    if (headerCount < 0) throw corrupt(`record ${i} has negative header count ${headerCount}`);
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const keyBytes = recordReader.bytesOrNull('header key');
      if (keyBytes === null) throw corrupt(`record ${i} has a header with a null key`);
      headers.push({ key: utf8(keyBytes), value: recordReader.bytesOrNull('header value') });
    }
    if (recordReader.position !== recordEnd) throw corrupt(`record ${i} has ${recordEnd - recordReader.position} bytes left over`);
    reader.position = recordEnd;
    records[i] = { attributes, timestampDelta, offsetDelta, key, value, headers };
  }
  if (reader.position !== reader.end) {
    throw corrupt(`record batch has ${reader.end - reader.position} bytes after its ${header.recordCount} records`);
  }
  return records;
}

function utf8(bytes: Uint8Array): string {
  try {
    return textDecoder.decode(bytes);
  } catch (cause) {
    throw new CorruptBatchError('record header key is not valid UTF-8', { cause });
  }
}

/**
 * Decodes an uncompressed batch after checking its header and CRC. Keys, values and header values are views into `bytes`.
 * @example for (const record of decodeBatch(bytes).records) use(record.value);
 */
export function decodeBatch(bytes: Uint8Array): RecordBatch {
  const header = verifyBatch(bytes);
  if (header.compression !== 'none') {
    throw new UnsupportedCompressionError(`record batch is ${header.compression}-compressed: use decodeBatchAsync`);
  }
  return { ...header, records: decodeRecords(header, bytes, BATCH_HEADER_BYTES) };
}

const isInt32 = (n: number) => n === (n | 0);
const isInt16 = (n: number) => n === (n << 16) >> 16;
const invalid = (message: string) => new InvalidRecordError(message);

/** A record's body size and header keys, computed in the sizing pass and used in the writing pass. */
interface SizedRecord {
  bodyBytes: number;
  headerKeys: Uint8Array[] | undefined;
}

/**
 * Encodes `records` as an uncompressed record set into a new array, after `offset` bytes
 * left free for the caller (the batch header), so that the common path copies nothing twice.
 * @internal used by encodeBatch and by the compressed path.
 */
export function encodeRecords(records: readonly RecordInput[], offset: number): Uint8Array {
  const sized: SizedRecord[] = new Array(records.length);
  let total = offset;
  let previousOffsetDelta = -1;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const offsetDelta = record.offsetDelta ?? i;
    if (!isInt32(offsetDelta) || offsetDelta <= previousOffsetDelta) {
      throw invalid(`record ${i}: offsetDelta ${offsetDelta} must be an int32 above the previous one (${previousOffsetDelta})`);
    }
    previousOffsetDelta = offsetDelta;
    const timestampDelta = record.timestampDelta ?? 0;
    if (!Number.isSafeInteger(timestampDelta)) throw invalid(`record ${i}: timestampDelta ${timestampDelta} is not a safe integer`);
    const attributes = record.attributes ?? 0;
    if (attributes !== (attributes << 24) >> 24) throw invalid(`record ${i}: attributes ${attributes} is not an int8`);
    let bodyBytes =
      1 + varlongBytes(timestampDelta) + varintBytes(offsetDelta) + nullableBytes(record.key ?? null) + nullableBytes(record.value);
    let headerKeys: Uint8Array[] | undefined;
    const headers = record.headers;
    if (headers === undefined || headers.length === 0) {
      bodyBytes += 1;
    } else {
      headerKeys = new Array(headers.length);
      bodyBytes += varintBytes(headers.length);
      for (let h = 0; h < headers.length; h++) {
        const key = textEncoder.encode(headers[h]!.key);
        headerKeys[h] = key;
        bodyBytes += nullableBytes(key) + nullableBytes(headers[h]!.value);
      }
    }
    sized[i] = { bodyBytes, headerKeys };
    total += varintBytes(bodyBytes) + bodyBytes;
  }
  if (total > 0x7fffffff) throw invalid(`records of ${total} bytes are over the int32 batch length limit`);

  const out = new Uint8Array(total);
  let position = offset;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const { bodyBytes, headerKeys } = sized[i]!;
    position = putVarint(out, position, bodyBytes);
    out[position++] = record.attributes ?? 0;
    position = putVarlong(out, position, record.timestampDelta ?? 0);
    position = putVarint(out, position, record.offsetDelta ?? i);
    position = putNullable(out, position, record.key ?? null);
    position = putNullable(out, position, record.value);
    if (headerKeys === undefined) {
      out[position++] = 0;
    } else {
      const headers = record.headers!;
      position = putVarint(out, position, headers.length);
      for (let h = 0; h < headers.length; h++) {
        position = putNullable(out, position, headerKeys[h]!);
        position = putNullable(out, position, headers[h]!.value);
      }
    }
  }
  return out;
}

const nullableBytes = (bytes: Uint8Array | null) => (bytes === null ? 1 : varintBytes(bytes.length) + bytes.length);

function putNullable(out: Uint8Array, position: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    out[position] = 1; // zigzag(-1)
    return position + 1;
  }
  position = putVarint(out, position, bytes.length);
  out.set(bytes, position);
  return position + bytes.length;
}

/**
 * Writes the 61-byte header into the front of `out`, whose records (or compressed records)
 * follow from byte 61 on, and fills in the CRC.
 * @internal shared by the uncompressed and compressed encoders.
 */
export function writeBatchHeader(batch: RecordBatchInput, out: Uint8Array): Uint8Array {
  const compression = batch.compression ?? 'none';
  const records = batch.records;
  let lastOffsetDelta = batch.lastOffsetDelta;
  // Kafka's maxTimestamp is the largest record timestamp; deltas may be negative.
  let maxTimestampDelta = records.length === 0 ? 0 : -Infinity;
  const maxOffsetDelta = records.length === 0 ? 0 : (records[records.length - 1]!.offsetDelta ?? records.length - 1);
  for (const record of records) maxTimestampDelta = Math.max(maxTimestampDelta, record.timestampDelta ?? 0);
  lastOffsetDelta ??= maxOffsetDelta;
  if (!isInt32(lastOffsetDelta) || lastOffsetDelta < maxOffsetDelta) {
    throw invalid(`lastOffsetDelta ${lastOffsetDelta} must be an int32 no smaller than the last record's offsetDelta ${maxOffsetDelta}`);
  }
  const baseOffset = batch.baseOffset ?? 0;
  const maxTimestamp = batch.maxTimestamp ?? batch.baseTimestamp + maxTimestampDelta;
  const producerId = batch.producerId ?? -1;
  const partitionLeaderEpoch = batch.partitionLeaderEpoch ?? -1;
  const producerEpoch = batch.producerEpoch ?? -1;
  const baseSequence = batch.baseSequence ?? -1;
  for (const [name, value] of [['baseOffset', baseOffset], ['baseTimestamp', batch.baseTimestamp], ['maxTimestamp', maxTimestamp], ['producerId', producerId]] as const) {
    if (!Number.isSafeInteger(value)) throw invalid(`${name} ${value} is not a safe integer`);
  }
  if (!isInt32(partitionLeaderEpoch)) throw invalid(`partitionLeaderEpoch ${partitionLeaderEpoch} is not an int32`);
  if (!isInt16(producerEpoch)) throw invalid(`producerEpoch ${producerEpoch} is not an int16`);
  if (!isInt32(baseSequence)) throw invalid(`baseSequence ${baseSequence} is not an int32`);

  const attributes =
    COMPRESSION_IDS[compression] |
    (batch.timestampType === 'LogAppendTime' ? TIMESTAMP_TYPE_BIT : 0) |
    (batch.isTransactional ? TRANSACTIONAL_BIT : 0) |
    (batch.isControl ? CONTROL_BIT : 0);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  setInt64(view, BASE_OFFSET, baseOffset);
  view.setInt32(BATCH_LENGTH, out.length - LOG_OVERHEAD_BYTES);
  view.setInt32(PARTITION_LEADER_EPOCH, partitionLeaderEpoch);
  view.setInt8(MAGIC_OFFSET, MAGIC);
  view.setInt16(ATTRIBUTES, attributes);
  view.setInt32(LAST_OFFSET_DELTA, lastOffsetDelta);
  setInt64(view, BASE_TIMESTAMP, batch.baseTimestamp);
  setInt64(view, MAX_TIMESTAMP, maxTimestamp);
  setInt64(view, PRODUCER_ID, producerId);
  view.setInt16(PRODUCER_EPOCH, producerEpoch);
  view.setInt32(BASE_SEQUENCE, baseSequence);
  view.setInt32(RECORD_COUNT, records.length);
  view.setUint32(CRC, crc32c(out.subarray(ATTRIBUTES)));
  return out;
}

/**
 * Encodes an uncompressed batch (for gzip use encodeBatchAsync).
 * @example const bytes = encodeBatch({ baseTimestamp: now, records: [{ key: null, value }] });
 */
export function encodeBatch(batch: RecordBatchInput): Uint8Array {
  if ((batch.compression ?? 'none') !== 'none') {
    throw new UnsupportedCompressionError(`encodeBatch writes uncompressed batches; use encodeBatchAsync for ${batch.compression}`);
  }
  return writeBatchHeader(batch, encodeRecords(batch.records, BATCH_HEADER_BYTES));
}
