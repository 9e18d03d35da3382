// Field-by-field writing and reading of the peer bodies built from Kafka's primitives
// (FORMATS.md § Cluster message fields): zigzag varints and varlongs, length-prefixed
// UTF-8 and bytes, counted arrays, optional values. The writer refuses values the
// format cannot carry exactly; the reader refuses anything but a well-formed field,
// with a FrameError('CORRUPT_MESSAGE'), and bounds every count by the bytes left.

import { FrameError } from '../errors';
import { ByteReader, putVarint, putVarlong, varintBytes, varlongBytes } from './bytes';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;

const corrupt = (message: string): FrameError => new FrameError('CORRUPT_MESSAGE', message);

/** Appends fields to a growing buffer; throws FrameError('INVALID_REQUEST') for a value the layout cannot hold. */
export class FieldWriter {
  #bytes = new Uint8Array(64);
  #length = 0;

  #room(count: number): void {
    if (this.#length + count <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#length + count));
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }

  int8(value: number): this {
    this.#room(1);
    this.#bytes[this.#length++] = value;
    return this;
  }
  bool(value: boolean): this {
    return this.int8(value ? 1 : 0);
  }
  /** Presence flag of an optional field: the caller writes the value after it when present. */
  present<T>(value: T | undefined): value is T {
    this.bool(value !== undefined);
    return value !== undefined;
  }
  /** An int32 of at least `min`, as the reader's `varint(what, min)` accepts it. */
  varint(value: number, what: string, min = INT32_MIN): this {
    if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) throw new FrameError('INVALID_REQUEST', `${what}: ${value} is not an int32`);
    if (value < min) throw new FrameError('INVALID_REQUEST', `${what}: ${value} is below ${min}`);
    this.#room(varintBytes(value));
    this.#length = putVarint(this.#bytes, this.#length, value);
    return this;
  }
  /** A safe integer of at least `min`, as the reader's `varlong(what, min)` accepts it. */
  varlong(value: number, what: string, min = Number.MIN_SAFE_INTEGER): this {
    if (!Number.isSafeInteger(value)) throw new FrameError('INVALID_REQUEST', `${what}: ${value} is not a safe integer`);
    if (value < min) throw new FrameError('INVALID_REQUEST', `${what}: ${value} is below ${min}`);
    this.#room(varlongBytes(value));
    this.#length = putVarlong(this.#bytes, this.#length, value);
    return this;
  }
  float64(value: number): this {
    this.#room(8);
    new DataView(this.#bytes.buffer).setFloat64(this.#length, value);
    this.#length += 8;
    return this;
  }
  bytes(value: Uint8Array): this {
    this.varint(value.length, 'length');
    this.#room(value.length);
    this.#bytes.set(value, this.#length);
    this.#length += value.length;
    return this;
  }
  /** A string, or -1 for null/undefined. */
  string(value: string | null | undefined): this {
    return value === null || value === undefined ? this.varint(-1, 'length') : this.bytes(utf8.encode(value));
  }
  /** A count, then each element written by `write`. */
  array<T>(values: readonly T[], write: (value: T) => void): this {
    this.varint(values.length, 'count');
    for (const value of values) write(value);
    return this;
  }
  strings(values: readonly string[]): this {
    return this.array(values, (value) => this.string(value));
  }
  done(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }
}

/** Reads fields; every malformed field is a FrameError('CORRUPT_MESSAGE'). */
export class FieldReader {
  readonly #reader: ByteReader;

  constructor(bytes: Uint8Array) {
    this.#reader = new ByteReader(bytes, corrupt);
  }

  get left(): number {
    return this.#reader.end - this.#reader.position;
  }
  int8(what: string): number {
    return this.#reader.int8(what);
  }
  bool(what: string): boolean {
    const value = this.#reader.int8(what);
    if (value !== 0 && value !== 1) throw corrupt(`${what}: ${value} is not a boolean (0 or 1)`);
    return value === 1;
  }
  /** Reads an optional field's presence flag. */
  present(what: string): boolean {
    return this.bool(`${what} presence`);
  }
  /** An int32 of at least `min`. */
  varint(what: string, min = INT32_MIN): number {
    const value = this.#reader.varint(what);
    if (value < min) throw corrupt(`${what}: ${value} is below ${min}`);
    return value;
  }
  /** A safe integer of at least `min`. */
  varlong(what: string, min = Number.MIN_SAFE_INTEGER): number {
    const value = this.#reader.varlong(what);
    if (value < min) throw corrupt(`${what}: ${value} is below ${min}`);
    return value;
  }
  float64(what: string): number {
    this.#reader.need(8, what);
    const { bytes, position } = this.#reader;
    this.#reader.position += 8;
    return new DataView(bytes.buffer, bytes.byteOffset + position, 8).getFloat64(0);
  }
  /** A copy, not a view: a decoded payload may be kept (a raft entry in a log cache) long after the frame's buffer. */
  bytes(what: string): Uint8Array {
    const bytes = this.#reader.bytesOrNull(what);
    if (bytes === null) throw corrupt(`${what} is null`);
    return bytes.slice();
  }
  string(what: string): string {
    const value = this.optionalString(what);
    if (value === undefined) throw corrupt(`${what} is absent`);
    return value;
  }
  /** A string, or undefined for length -1. */
  optionalString(what: string): string | undefined {
    const bytes = this.#reader.bytesOrNull(what);
    if (bytes === null) return undefined;
    try {
      return fromUtf8.decode(bytes);
    } catch {
      throw corrupt(`${what} is not UTF-8`);
    }
  }
  /** A count, bounded by the bytes left (every element takes at least one), then each element read by `read`. */
  array<T>(what: string, read: () => T): T[] {
    const count = this.#reader.varint(`${what} count`);
    if (count < 0 || count > this.left) throw corrupt(`${what}: ${count} elements with ${this.left} bytes left`);
    return Array.from({ length: count }, read);
  }
  strings(what: string): string[] {
    return this.array(what, () => this.string(what));
  }
  /** Fails unless every byte was read. */
  end(what: string): void {
    if (this.left !== 0) throw corrupt(`${what} has ${this.left} bytes after its last field`);
  }
}

/**
 * Reads a tag and returns its name from `tags`, or fails for an unknown tag.
 * @example const readKind = tagReader({ request: 0, reply: 1 }, 'message kind'); readKind(reader)
 */
export function tagReader<Name extends string>(tags: Record<Name, number>, what: string): (r: FieldReader) => Name {
  const names = new Map(Object.entries(tags).map(([name, tag]) => [tag, name as Name]));
  return (r) => {
    const tag = r.int8(what);
    const name = names.get(tag);
    if (name === undefined) throw corrupt(`unknown ${what} ${tag}`);
    return name;
  };
}

/** Runs `read` when the optional field's presence flag is set. @example optional(r, 'error', () => readError(r)) */
export const optional = <T>(r: FieldReader, what: string, read: () => T): T | undefined => (r.present(what) ? read() : undefined);
