// Bounds-checked reading and writing of the primitive types of Kafka's wire format:
// big-endian fixed-width integers and zigzag varints (protobuf's encoding, which Kafka's
// ByteUtils uses for record fields). Every read checks its bounds first, so malformed
// input raises the caller's typed error instead of a RangeError from a DataView.

/** Builds the typed error a reader throws for malformed input. */
export type MalformedInput = (message: string) => Error;

const TWO_POW_32 = 0x1_0000_0000;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Largest int64 high word whose value stays a safe integer: 2^53 - 1 = 0x1fffff_ffffffff. */
const MAX_SAFE_HIGH_WORD = 0x1fffff;

/**
 * Reads from `bytes[position, end)`; `position` is an absolute index into `bytes`. A caller
 * may narrow `end` to read a nested structure and widen it again afterwards.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  position: number;
  end: number;
  private readonly malformed: MalformedInput;

  constructor(bytes: Uint8Array, malformed: MalformedInput, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.position = start;
    this.end = end;
    this.malformed = malformed;
  }

  /** Fails unless `count` more bytes are available. */
  need(count: number, what: string): void {
    if (count > this.end - this.position) {
      throw this.malformed(`${what} needs ${count} bytes at offset ${this.position}, only ${this.end - this.position} left`);
    }
  }

  int8(what: string): number {
    this.need(1, what);
    return (this.bytes[this.position++]! << 24) >> 24;
  }

  /** Big-endian int16. */
  int16(what: string): number {
    this.need(2, what);
    const b = this.bytes;
    const value = ((b[this.position]! << 24) | (b[this.position + 1]! << 16)) >> 16;
    this.position += 2;
    return value;
  }

  /** Kafka's STRING: an int16 length, then that many bytes of UTF-8. */
  string(what: string): string {
    const value = this.nullableString(what);
    if (value === null) throw this.malformed(`${what}: null where a string is required`);
    return value;
  }

  /** Kafka's NULLABLE_STRING: a STRING, or length -1 for null. */
  nullableString(what: string): string | null {
    const length = this.int16(what);
    if (length === -1) return null;
    if (length < 0) throw this.malformed(`${what}: length ${length}`);
    this.need(length, what);
    const start = this.position;
    this.position += length;
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw this.malformed(`${what} is not UTF-8`);
    }
  }

  /** Big-endian int32. */
  int32(what: string): number {
    this.need(4, what);
    const b = this.bytes;
    const p = this.position;
    this.position = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  /**
   * Zigzag varint of at most 5 bytes (a Java int), as Kafka's ByteUtils.readVarint.
   * The one-byte case is inlined because most record fields are small.
   */
  varint(what: string): number {
    const bytes = this.bytes;
    let position = this.position;
    if (position < this.end) {
      const first = bytes[position]!;
      if (first < 0x80) {
        this.position = position + 1;
        return (first >>> 1) ^ -(first & 1);
      }
    }
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (position >= this.end) throw this.malformed(`${what}: varint runs past the end at offset ${position}`);
      const b = bytes[position++]!;
      value |= (b & 0x7f) << shift;
      if (b < 0x80) {
        // A fifth byte may carry only the top 4 bits of a 32-bit value.
        if (shift === 28 && b > 0x0f) break;
        this.position = position;
        return (value >>> 1) ^ -(value & 1);
      }
    }
    throw this.malformed(`${what}: varint longer than 5 bytes or over 32 bits at offset ${this.position}`);
  }

  /** Zigzag varlong of at most 10 bytes (a Java long); fails when the value is not a safe integer. */
  varlong(what: string): number {
    const bytes = this.bytes;
    let position = this.position;
    // Fast path: up to four bytes (28 bits) fit an int32 without loss.
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (position >= this.end) throw this.malformed(`${what}: varlong runs past the end at offset ${position}`);
      const b = bytes[position++]!;
      value |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.position = position;
        return (value >>> 1) ^ -(value & 1);
      }
    }
    let big = BigInt(value);
    for (let shift = 28n; shift < 70n; shift += 7n) {
      if (position >= this.end) throw this.malformed(`${what}: varlong runs past the end at offset ${position}`);
      const b = bytes[position++]!;
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        if (shift === 63n && b > 0x01) break;
        const n = Number(big & 1n ? -((big + 1n) >> 1n) : big >> 1n);
        if (!Number.isSafeInteger(n)) throw this.malformed(`${what}: ${big} is outside the safe integer range`);
        this.position = position;
        return n;
      }
    }
    throw this.malformed(`${what}: varlong longer than 10 bytes or over 64 bits at offset ${this.position}`);
  }

  /** A varint length (-1 = null) followed by that many bytes, returned as a view, not a copy. */
  bytesOrNull(what: string): Uint8Array | null {
    const length = this.varint(what);
    if (length < 0) {
      if (length === -1) return null;
      throw this.malformed(`${what}: negative length ${length}`);
    }
    this.need(length, what);
    const start = this.position;
    this.position = start + length;
    return this.bytes.subarray(start, start + length);
  }
}

/**
 * Reads a big-endian int64 at `offset` as a safe integer, or `undefined` when it is outside
 * ±(2^53 - 1). The caller has checked that 8 bytes are there.
 */
export function getSafeInt64(view: DataView, offset: number): number | undefined {
  const high = view.getInt32(offset);
  if (high > MAX_SAFE_HIGH_WORD || high < -MAX_SAFE_HIGH_WORD - 1) return undefined;
  const value = high * TWO_POW_32 + view.getUint32(offset + 4);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Writes a safe integer as a big-endian int64. */
export function setInt64(view: DataView, offset: number, value: number): void {
  const high = Math.floor(value / TWO_POW_32);
  view.setInt32(offset, high);
  view.setUint32(offset + 4, value - high * TWO_POW_32);
}

/** Bytes of the zigzag varint of a 32-bit integer. */
export function varintBytes(value: number): number {
  const z = ((value << 1) ^ (value >> 31)) >>> 0;
  return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 5;
}

/** Writes the zigzag varint of a 32-bit integer at `position`; returns the position after it. */
export function putVarint(bytes: Uint8Array, position: number, value: number): number {
  let z = ((value << 1) ^ (value >> 31)) >>> 0;
  while (z >= 0x80) {
    bytes[position++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  bytes[position++] = z;
  return position;
}

/** Zigzag of a safe integer as a BigInt (a Java long's zigzag, which a double cannot hold exactly). */
const zigzag64 = (value: number): bigint => {
  const n = BigInt(value);
  return n < 0n ? -2n * n - 1n : 2n * n;
};

/** Bytes of the zigzag varlong of a safe integer. */
export function varlongBytes(value: number): number {
  if (value === (value | 0)) return varintBytes(value);
  let z = zigzag64(value);
  let count = 1;
  while (z >= 0x80n) {
    z >>= 7n;
    count++;
  }
  return count;
}

/** Writes the zigzag varlong of a safe integer at `position`; returns the position after it. */
export function putVarlong(bytes: Uint8Array, position: number, value: number): number {
  // Zigzag of an int32 equals the low bits of the int64 zigzag, so small values take the int path.
  if (value === (value | 0)) return putVarint(bytes, position, value);
  let z = zigzag64(value);
  while (z >= 0x80n) {
    bytes[position++] = Number(z & 0x7fn) | 0x80;
    z >>= 7n;
  }
  bytes[position++] = Number(z);
  return position;
}
