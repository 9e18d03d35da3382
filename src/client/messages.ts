import { InvalidArgumentError } from '../errors';
import * as check from './validate';
import { encodeBatchAsync, type BatchRecord, type Compression, type RecordBatch, type RecordHeader, type RecordInput } from '../protocol';

/** Header values as sent: one value or several under one key. */
export type HeaderValue = string | Uint8Array | Array<string | Uint8Array>;
export type MessageHeaders = Record<string, HeaderValue | undefined>;

/** A message to send, as in KafkaJS. Text is sent as UTF-8. */
export interface Message {
  key?: string | Uint8Array | null;
  value: string | Uint8Array | null;
  headers?: MessageHeaders;
  /** A fixed partition; otherwise the key's hash (Kafka's partitioner) or the sticky partition for null keys. */
  partition?: number;
  /** Milliseconds since the epoch, as a decimal string or a number. Default: now. */
  timestamp?: string | number;
}

const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const latin1Decoder = new TextDecoder('latin1');

/**
 * Consumed bytes, Buffer-compatible where KafkaJS code relies on it: a `Uint8Array` whose
 * `toString()` decodes UTF-8 (or `'hex'`, `'base64'`, `'latin1'`), so `message.value.toString()`,
 * `` `${message.value}` `` and `JSON.parse(message.value)` read text as with KafkaJS's Buffers.
 * A subclass rather than the `buffer` package: the same view over the fetched bytes (no copy),
 * and no polyfill in the bundle.
 * @example JSON.parse(message.value!.toString())
 */
export class Bytes extends Uint8Array {
  /** A view of `bytes` (no copy). */
  static view(bytes: Uint8Array): Bytes;
  static view(bytes: Uint8Array | null): Bytes | null;
  static view(bytes: Uint8Array | null): Bytes | null {
    return bytes === null ? null : new Bytes(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length);
  }

  /** The bytes as text: `'utf8'` (default), `'hex'`, `'base64'` or `'latin1'`, as Buffer's. */
  override toString(encoding: 'utf8' | 'utf-8' | 'hex' | 'base64' | 'latin1' | 'binary' = 'utf8'): string {
    switch (encoding) {
      case 'utf8':
      case 'utf-8':
        return utf8Decoder.decode(this);
      case 'hex':
        return Array.from(this, (b) => b.toString(16).padStart(2, '0')).join('');
      case 'base64':
        return btoa(latin1Decoder.decode(this));
      case 'latin1':
      case 'binary':
        return latin1Decoder.decode(this);
      default:
        throw new InvalidArgumentError(`encoding must be one of "utf8", "hex", "base64", "latin1", got ${check.describe(encoding)}`);
    }
  }

  /** As Buffer's: `{ type: 'Buffer', data: [...] }`, so JSON.stringify of a message shows bytes. */
  toJSON(): { type: 'Buffer'; data: number[] } {
    return { type: 'Buffer', data: Array.from(this) };
  }
}

/** A consumed message. Offsets and timestamps are decimal strings; `value.toString()` reads text, as with KafkaJS's Buffers. */
export interface KafkaMessage {
  key: Bytes | null;
  value: Bytes | null;
  headers: Record<string, Bytes | Bytes[] | null>;
  timestamp: string;
  offset: string;
  attributes: number;
  /** Bytes of key and value. */
  size: number;
}

const utf8 = new TextEncoder();

/** Text as UTF-8, bytes as they are; a view of a transferred (detached) buffer is refused, not sent empty. */
function toBytes(value: unknown, what: string): Uint8Array {
  if (typeof value === 'string') return utf8.encode(value);
  if (value instanceof Uint8Array) {
    if ((value.buffer as ArrayBuffer & { detached?: boolean }).detached === true) throw new InvalidArgumentError(`${what} is a Uint8Array whose buffer was transferred (detached)`);
    return value;
  }
  throw new InvalidArgumentError(`${what} must be a string or a Uint8Array, got ${check.describe(value)}`);
}

const nullableBytes = (value: unknown, what: string) => (value === null ? null : toBytes(value, what));

/** Headers as an object of names to values (one, or an array of several); an array of headers is refused. */
function headersOf(headers: unknown): RecordHeader[] {
  if (headers === undefined) return [];
  return Object.entries(check.object(headers, 'message headers')).flatMap(([key, value]) =>
    value === undefined ? [] : (Array.isArray(value) ? value : [value]).map((v) => ({ key, value: toBytes(v, `header "${key}"`) })),
  );
}

/** A message checked and turned into bytes. */
export interface NormalizedMessage {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
  partition: number | undefined;
  timestamp: number;
}

/**
 * Checks a message's types and converts its text to bytes.
 * @example normalizeMessage({ key: 'k', value: 'v' }, Date.now())
 */
export function normalizeMessage(message: unknown, now: number): NormalizedMessage {
  const m = check.object(message, 'a message');
  // An undefined value is refused, not taken for a tombstone: on a compacted topic a tombstone deletes its key.
  if (m['value'] === undefined) throw new InvalidArgumentError('a message needs a value (null for a tombstone)');
  const timestamp = m['timestamp'];
  return {
    key: m['key'] === undefined ? null : nullableBytes(m['key'], 'message key'),
    value: nullableBytes(m['value'], 'message value'),
    headers: headersOf(m['headers']),
    partition: check.integer(m['partition'], 'message partition', 0, undefined, undefined),
    timestamp: timestamp === undefined ? now : typeof timestamp === 'number' ? check.integer(timestamp, 'message timestamp', 0) : check.decimal(timestamp, 'message timestamp', 0),
  };
}

/** Bytes a record takes in a batch, roughly (varint overheads bounded): for splitting batches. */
const recordBytes = (m: NormalizedMessage) =>
  24 + (m.key?.length ?? 0) + (m.value?.length ?? 0) + m.headers.reduce((n, h) => n + 10 + h.key.length * 3 + (h.value?.length ?? 0), 0);

/**
 * Encodes one partition's messages as record batches of at most ~`maxBatchBytes` each.
 * @example await encodeBatches(messages, 1 << 20, 'none')
 */
export async function encodeBatches(
  messages: readonly NormalizedMessage[],
  maxBatchBytes: number,
  compression: Compression,
  /** An idempotent producer's id, epoch and the base sequence of a batch of `records` (the partition's sequence moves on by them). */
  stamp?: (records: number) => { producerId: number; producerEpoch: number; baseSequence: number },
): Promise<Uint8Array[]> {
  const batches: Uint8Array[] = [];
  for (let start = 0; start < messages.length; ) {
    let end = start;
    let size = 61;
    while (end < messages.length && (end === start || size + recordBytes(messages[end]!) <= maxBatchBytes)) size += recordBytes(messages[end++]!);
    const slice = messages.slice(start, end);
    const baseTimestamp = Math.min(...slice.map((m) => m.timestamp));
    const records: RecordInput[] = slice.map((m, i) => ({ offsetDelta: i, timestampDelta: m.timestamp - baseTimestamp, key: m.key, value: m.value, headers: m.headers }));
    batches.push(await encodeBatchAsync({ baseTimestamp, compression, records, ...stamp?.(records.length) }));
    start = end;
  }
  return batches;
}

/** A decoded record as the consumer hands it over. */
export function toKafkaMessage(batch: RecordBatch, record: BatchRecord): KafkaMessage {
  const headers: Record<string, Bytes | Bytes[] | null> = {};
  for (const header of record.headers) {
    const existing = headers[header.key];
    const value = Bytes.view(header.value);
    if (existing === undefined) headers[header.key] = value;
    else headers[header.key] = [...(Array.isArray(existing) ? existing : existing === null ? [] : [existing]), ...(value === null ? [] : [value])];
  }
  return {
    key: Bytes.view(record.key),
    value: Bytes.view(record.value),
    headers,
    timestamp: String(batch.timestampType === 'LogAppendTime' ? batch.maxTimestamp : batch.baseTimestamp + record.timestampDelta),
    offset: String(batch.baseOffset + record.offsetDelta),
    attributes: record.attributes,
    size: (record.key?.length ?? 0) + (record.value?.length ?? 0),
  };
}
