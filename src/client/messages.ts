import { InvalidArgumentError } from '../errors';
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

/** A consumed message. Offsets and timestamps are decimal strings; read text with `new TextDecoder().decode(value)`. */
export interface KafkaMessage {
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, Uint8Array | Uint8Array[] | null>;
  timestamp: string;
  offset: string;
  attributes: number;
  /** Bytes of key and value. */
  size: number;
}

const utf8 = new TextEncoder();

function toBytes(value: unknown, what: string): Uint8Array | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return utf8.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new InvalidArgumentError(`${what} must be a string, a Uint8Array or null, got ${typeof value}`);
}

function headersOf(headers: unknown): RecordHeader[] {
  if (headers === undefined || headers === null) return [];
  if (typeof headers !== 'object') throw new InvalidArgumentError(`message headers must be an object, got ${typeof headers}`);
  return Object.entries(headers as Record<string, unknown>).flatMap(([key, value]) =>
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
  if (typeof message !== 'object' || message === null) throw new InvalidArgumentError('a message must be an object { key?, value, headers?, partition?, timestamp? }');
  const m = message as Record<string, unknown>;
  if (!('value' in m)) throw new InvalidArgumentError('a message needs a value (null for a tombstone)');
  const partition = m['partition'];
  if (partition !== undefined && partition !== null && (!Number.isInteger(partition) || (partition as number) < 0)) {
    throw new InvalidArgumentError(`message partition must be a whole number ≥ 0, got ${String(partition)}`);
  }
  let timestamp = now;
  if (m['timestamp'] !== undefined && m['timestamp'] !== null) {
    timestamp = Number(m['timestamp']);
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new InvalidArgumentError(`message timestamp must be milliseconds since the epoch, got ${String(m['timestamp'])}`);
  }
  return {
    key: toBytes(m['key'], 'message key'),
    value: toBytes(m['value'], 'message value'),
    headers: headersOf(m['headers']),
    partition: partition === null ? undefined : (partition as number | undefined),
    timestamp,
  };
}

/** Bytes a record takes in a batch, roughly (varint overheads bounded): for splitting batches. */
const recordBytes = (m: NormalizedMessage) =>
  24 + (m.key?.length ?? 0) + (m.value?.length ?? 0) + m.headers.reduce((n, h) => n + 10 + h.key.length * 3 + (h.value?.length ?? 0), 0);

/**
 * Encodes one partition's messages as record batches of at most ~`maxBatchBytes` each.
 * @example await encodeBatches(messages, 1 << 20, 'none')
 */
export async function encodeBatches(messages: readonly NormalizedMessage[], maxBatchBytes: number, compression: Compression): Promise<Uint8Array[]> {
  const batches: Uint8Array[] = [];
  for (let start = 0; start < messages.length; ) {
    let end = start;
    let size = 61;
    while (end < messages.length && (end === start || size + recordBytes(messages[end]!) <= maxBatchBytes)) size += recordBytes(messages[end++]!);
    const slice = messages.slice(start, end);
    const baseTimestamp = Math.min(...slice.map((m) => m.timestamp));
    const records: RecordInput[] = slice.map((m, i) => ({ offsetDelta: i, timestampDelta: m.timestamp - baseTimestamp, key: m.key, value: m.value, headers: m.headers }));
    batches.push(await encodeBatchAsync({ baseTimestamp, compression, records }));
    start = end;
  }
  return batches;
}

/** A decoded record as the consumer hands it over. */
export function toKafkaMessage(batch: RecordBatch, record: BatchRecord): KafkaMessage {
  const headers: Record<string, Uint8Array | Uint8Array[] | null> = {};
  for (const { key, value } of record.headers) {
    const existing = headers[key];
    if (existing === undefined) headers[key] = value;
    else headers[key] = [...(Array.isArray(existing) ? existing : existing === null ? [] : [existing]), ...(value === null ? [] : [value])];
  }
  return {
    key: record.key,
    value: record.value,
    headers,
    timestamp: String(batch.timestampType === 'LogAppendTime' ? batch.maxTimestamp : batch.baseTimestamp + record.timestampDelta),
    offset: String(batch.baseOffset + record.offsetDelta),
    attributes: record.attributes,
    size: (record.key?.length ?? 0) + (record.value?.length ?? 0),
  };
}
