// Kafka's consumer protocol (ConsumerProtocol v0, FORMATS.md § Consumer protocol): the member
// metadata a consumer joins with and the assignment it is given, as KafkaJS's AssignerProtocol
// encodes them, byte for byte. Fixed-width big-endian fields, int16-length strings,
// int32-length bytes (-1: null).
import { InvalidRecordError } from '../errors';
import { ByteReader } from './bytes';

export interface MemberMetadata {
  version: number;
  topics: string[];
  userData: Uint8Array | null;
}

export interface MemberAssignment {
  version: number;
  /** Partitions by topic: `{ 'topic-A': [0, 2] }`. */
  assignment: Record<string, number[]>;
  userData: Uint8Array | null;
}

const utf8 = new TextEncoder();
const malformed = (message: string) => new InvalidRecordError(`consumer protocol: ${message}`);

/** Writes fields in order; `int16`, `int32`, `string`, `bytes` as Kafka's protocol does. */
class Writer {
  readonly #parts: number[] = [];
  int16(value: number): this {
    this.#parts.push((value >> 8) & 0xff, value & 0xff);
    return this;
  }
  int32(value: number): this {
    this.#parts.push((value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
    return this;
  }
  string(value: string): this {
    const bytes = utf8.encode(value);
    if (bytes.length > 0x7fff) throw malformed(`a string of ${bytes.length} bytes is longer than an int16 length allows`);
    this.int16(bytes.length);
    for (const b of bytes) this.#parts.push(b);
    return this;
  }
  bytes(value: Uint8Array | null): this {
    if (value === null) return this.int32(-1);
    this.int32(value.length);
    for (const b of value) this.#parts.push(b);
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

const readBytes = (reader: ByteReader, what: string) => {
  const length = reader.int32(what);
  if (length === -1) return null;
  if (length < 0) throw malformed(`${what}: negative length ${length}`);
  reader.need(length, what);
  const start = reader.position;
  reader.position += length;
  return reader.bytes.slice(start, start + length);
};

const readArray = <T>(reader: ByteReader, what: string, item: (i: number) => T): T[] => {
  const count = reader.int32(`${what} count`);
  if (count < 0) throw malformed(`${what}: negative count ${count}`);
  // Each item takes at least 2 bytes: a count larger than what is left is refused before allocating.
  reader.need(count * 2, what);
  return Array.from({ length: count }, (_, i) => item(i));
};

const atEnd = (reader: ByteReader, what: string) => {
  if (reader.position !== reader.end) throw malformed(`${what} has ${reader.end - reader.position} bytes after its end`);
};

/**
 * Encodes a member's subscription as Kafka's ConsumerProtocol MemberMetadata.
 * @example encodeMemberMetadata({ version: 0, topics: ['orders'], userData: null })
 */
export function encodeMemberMetadata({ version, topics, userData }: MemberMetadata): Uint8Array {
  const writer = new Writer().int16(version).int32(topics.length);
  for (const topic of topics) writer.string(topic);
  return writer.bytes(userData).done();
}

/**
 * Decodes a MemberMetadata; InvalidRecordError when the bytes are not one.
 * @example decodeMemberMetadata(bytes).topics
 */
export function decodeMemberMetadata(bytes: Uint8Array): MemberMetadata {
  const reader = new ByteReader(bytes, malformed);
  const version = reader.int16('version');
  const topics = readArray(reader, 'topics', (i) => reader.string(`topics[${i}]`));
  const userData = readBytes(reader, 'userData');
  atEnd(reader, 'MemberMetadata');
  return { version, topics, userData };
}

/**
 * Encodes an assignment as Kafka's ConsumerProtocol MemberAssignment.
 * @example encodeMemberAssignment({ version: 0, assignment: { orders: [0, 1] }, userData: null })
 */
export function encodeMemberAssignment({ version, assignment, userData }: MemberAssignment): Uint8Array {
  const topics = Object.keys(assignment);
  const writer = new Writer().int16(version).int32(topics.length);
  for (const topic of topics) {
    const partitions = assignment[topic]!;
    writer.string(topic).int32(partitions.length);
    for (const partition of partitions) writer.int32(partition);
  }
  return writer.bytes(userData).done();
}

/**
 * Decodes a MemberAssignment; null for empty bytes (no assignment), as KafkaJS; InvalidRecordError when malformed.
 * @example decodeMemberAssignment(bytes)?.assignment
 */
export function decodeMemberAssignment(bytes: Uint8Array): MemberAssignment | null {
  if (bytes.length < 2) return null;
  const reader = new ByteReader(bytes, malformed);
  const version = reader.int16('version');
  const assignment: Record<string, number[]> = {};
  readArray(reader, 'assignment', (i) => {
    const topic = reader.string(`assignment[${i}].topic`);
    const partitions = readArray(reader, `assignment[${i}].partitions`, (j) => reader.int32(`assignment[${i}].partitions[${j}]`));
    // Defined, not assigned: `__proto__` is a valid topic name, and assigning it would set the object's prototype.
    Object.defineProperty(assignment, topic, { value: partitions, enumerable: true, writable: true, configurable: true });
  });
  const userData = readBytes(reader, 'userData');
  atEnd(reader, 'MemberAssignment');
  return { version, assignment, userData };
}
