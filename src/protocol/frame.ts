// Peer frames: the envelope of every message between brokers (FORMATS.md § Peer frame).
// A frame is a 12-byte header and a body whose layout belongs to its message type. The
// codec is built from a registry of message types, so each later protocol (raft, fetch
// and produce forwarding, groups, metadata) adds its bodies without touching this file.
// Decoding returns a value, never throws: a bad frame becomes a FrameError the caller can
// answer with, and the connection goes on with the next frame.

import { FrameError, LetterboxError } from '../errors';
import { ByteReader, putVarint, varintBytes } from './bytes';

/** Bytes of the envelope before the body. */
export const FRAME_HEADER_BYTES = 12;
/**
 * Default ceiling on a whole frame: room for a fetch answer of a few 1 MiB record batches
 * (Kafka's default max.message.bytes is about 1 MiB), small enough that a peer cannot make
 * a node buffer without bound.
 */
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** The message type id reserved for error answers, present in every codec. */
export const ERROR_ANSWER_TYPE_ID = 0;
const RESPONSE_FLAG = 0x01;
const MAX_UINT32 = 0xffffffff;

/** One message type: its wire id and the codec of its body, per version. */
export interface MessageType<Body> {
  /** Wire id, 1–65535, unique within a registry (0 is the error answer). */
  readonly id: number;
  /** Body versions (0–255) this node reads and writes. A frame of another version is answered with UNSUPPORTED_VERSION. */
  readonly versions: readonly number[];
  encode(body: Body, version: number): Uint8Array;
  /** May throw on a malformed body; the codec turns that into a CORRUPT_MESSAGE FrameError. */
  decode(bytes: Uint8Array, version: number): Body;
}

// `any`: a registry holds message types of many different bodies.
export type MessageTypes = Record<string, MessageType<any>>;

type BodyOf<T> = T extends MessageType<infer Body> ? Body : never;

/** What an error answer carries: a LetterboxError's code, message and retriable flag. */
export interface ErrorAnswer {
  code: string;
  message: string;
  retriable: boolean;
}

/** The built-in error answer: varint-length UTF-8 code, varint-length UTF-8 message, int8 retriable. */
const errorAnswerType: MessageType<ErrorAnswer> = {
  id: ERROR_ANSWER_TYPE_ID,
  versions: [0],
  encode({ code, message, retriable }) {
    const codeBytes = textEncoder.encode(code);
    const messageBytes = textEncoder.encode(message);
    const out = new Uint8Array(varintBytes(codeBytes.length) + codeBytes.length + varintBytes(messageBytes.length) + messageBytes.length + 1);
    let position = putVarint(out, 0, codeBytes.length);
    out.set(codeBytes, position);
    position = putVarint(out, position + codeBytes.length, messageBytes.length);
    out.set(messageBytes, position);
    out[position + messageBytes.length] = retriable ? 1 : 0;
    return out;
  },
  decode(bytes) {
    const reader = new ByteReader(bytes, (message) => new FrameError('CORRUPT_MESSAGE', `error answer: ${message}`));
    const code = textDecoder.decode(reader.bytesOrNull('code') ?? new Uint8Array(0));
    const message = textDecoder.decode(reader.bytesOrNull('message') ?? new Uint8Array(0));
    const retriable = reader.int8('retriable') !== 0;
    if (reader.position !== bytes.length) throw new FrameError('CORRUPT_MESSAGE', 'error answer has trailing bytes');
    return { code, message, retriable };
  },
};

/** The types of a codec built from registry `T`: its own plus the error answer. */
export type WithErrorAnswer<T extends MessageTypes> = T & { error: MessageType<ErrorAnswer> };

/** A decoded frame of registry `T`, discriminated by `type` (the message type's name). */
export type Frame<T extends MessageTypes> = {
  [Name in keyof T & string]: {
    type: Name;
    version: number;
    /** Chosen by the requester, echoed by the response. */
    requestId: number;
    isResponse: boolean;
    body: BodyOf<T[Name]>;
  };
}[keyof T & string];

/**
 * The outcome of decoding one frame. On failure, `requestId` is set when the bad frame was a
 * request whose id could be read: answer it with `encodeErrorAnswer(requestId, error)`.
 */
export type FrameResult<T extends MessageTypes> =
  | { ok: true; frame: Frame<T> }
  | { ok: false; error: FrameError; requestId: number | undefined };

/** Reassembles frames from bytes that arrive in chunks of any size. */
export interface FrameStreamDecoder<T extends MessageTypes> {
  /**
   * Adds a chunk and returns the results of every frame it completes, in order. A frame
   * over the size limit is answered as soon as its header is in and its bytes are skipped,
   * never buffered. Frames that lie whole inside one chunk are decoded from views of it:
   * do not reuse a chunk's memory after pushing it.
   */
  push(chunk: Uint8Array): FrameResult<T>[];
  /** Bytes held while waiting for the rest of a frame. */
  readonly bufferedBytes: number;
}

export interface FrameCodec<T extends MessageTypes> {
  readonly maxFrameBytes: number;
  /** Encodes a frame with its length prefix; throws FrameError for an unknown type or version, or a frame over the limit. */
  encode(frame: Frame<T>): Uint8Array;
  /** Decodes exactly one whole frame, length prefix included. Never throws. */
  decode(frameBytes: Uint8Array): FrameResult<T>;
  /** A response frame carrying `error` to request `requestId`. */
  encodeErrorAnswer(requestId: number, error: LetterboxError): Uint8Array;
  createStreamDecoder(): FrameStreamDecoder<T>;
}

export interface FrameCodecInit {
  /** Largest whole frame (header and length prefix included) encoded or accepted. Default 8 MiB. */
  maxFrameBytes?: number;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Builds the codec of a registry of message types; the error answer (id 0) is added to it.
 * @example const codec = createFrameCodec({ ping: pingType }, { maxFrameBytes: 1 << 20 });
 */
export function createFrameCodec<T extends MessageTypes>(types: T, init: FrameCodecInit = {}): FrameCodec<WithErrorAnswer<T>> {
  const maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < FRAME_HEADER_BYTES || maxFrameBytes > MAX_UINT32) {
    throw new LetterboxError('INVALID_CONFIG', `maxFrameBytes ${maxFrameBytes} must be an integer from ${FRAME_HEADER_BYTES} to ${MAX_UINT32}`);
  }
  const all = { ...types, error: errorAnswerType } as WithErrorAnswer<T>;
  const byId = new Map<number, { name: string; type: MessageType<unknown> }>();
  for (const [name, type] of Object.entries(all)) {
    const clash = byId.get(type.id);
    const reserved = name !== 'error' && type.id === ERROR_ANSWER_TYPE_ID;
    if (clash !== undefined || reserved || !Number.isInteger(type.id) || type.id < 0 || type.id > 0xffff) {
      throw new LetterboxError('INVALID_CONFIG', `message type ${name} has id ${type.id}, which is ${clash ? `also ${clash.name}'s` : 'reserved or not a uint16'}`);
    }
    if (type.versions.length === 0 || !type.versions.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xff)) {
      throw new LetterboxError('INVALID_CONFIG', `message type ${name} must list its versions, each a uint8`);
    }
    byId.set(type.id, { name, type });
  }

  const encode = (frame: Frame<WithErrorAnswer<T>>): Uint8Array => {
    const type = all[frame.type] as MessageType<unknown> | undefined;
    if (type === undefined) throw new FrameError('INVALID_REQUEST', `no message type ${frame.type}`);
    if (!type.versions.includes(frame.version)) {
      throw new FrameError('UNSUPPORTED_VERSION', `message type ${frame.type} has no version ${frame.version} here (${type.versions.join(', ')})`);
    }
    if (!Number.isInteger(frame.requestId) || frame.requestId < 0 || frame.requestId > MAX_UINT32) {
      throw new FrameError('INVALID_REQUEST', `requestId ${frame.requestId} is not a uint32`);
    }
    const body = type.encode(frame.body, frame.version);
    const frameBytes = FRAME_HEADER_BYTES + body.length;
    if (frameBytes > maxFrameBytes) {
      throw new FrameError('MESSAGE_TOO_LARGE', `${frame.type} frame of ${frameBytes} bytes is over the ${maxFrameBytes}-byte limit`);
    }
    const out = new Uint8Array(frameBytes);
    const view = new DataView(out.buffer);
    view.setUint32(0, frameBytes - 4);
    view.setUint16(4, type.id);
    view.setUint8(6, frame.version);
    view.setUint8(7, frame.isResponse ? RESPONSE_FLAG : 0);
    view.setUint32(8, frame.requestId);
    out.set(body, FRAME_HEADER_BYTES);
    return out;
  };

  /** The frame's request id when it is a request (and so wants an answer), from a header of at least 12 bytes. */
  const requestIdToAnswer = (header: Uint8Array): number | undefined => {
    const view = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES);
    return view.getUint8(7) & RESPONSE_FLAG ? undefined : view.getUint32(8);
  };

  const failure = (code: string, message: string, requestId: number | undefined, cause?: unknown): FrameResult<WithErrorAnswer<T>> => ({
    ok: false,
    error: new FrameError(code, message, cause === undefined ? {} : { cause }),
    requestId,
  });

  const decode = (bytes: Uint8Array): FrameResult<WithErrorAnswer<T>> => {
    if (bytes.length < FRAME_HEADER_BYTES) {
      return failure('CORRUPT_MESSAGE', `frame of ${bytes.length} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header`, undefined);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const requestId = requestIdToAnswer(bytes);
    if (bytes.length > maxFrameBytes) {
      return failure('MESSAGE_TOO_LARGE', `frame of ${bytes.length} bytes is over the ${maxFrameBytes}-byte limit`, requestId);
    }
    const frameLength = view.getUint32(0);
    if (frameLength + 4 !== bytes.length) {
      return failure('CORRUPT_MESSAGE', `frame says it has ${frameLength + 4} bytes but has ${bytes.length}`, requestId);
    }
    const id = view.getUint16(4);
    const version = view.getUint8(6);
    const entry = byId.get(id);
    if (entry === undefined) return failure('INVALID_REQUEST', `unknown message type ${id}`, requestId);
    if (!entry.type.versions.includes(version)) {
      return failure('UNSUPPORTED_VERSION', `message type ${entry.name} has no version ${version} here (${entry.type.versions.join(', ')})`, requestId);
    }
    let body: unknown;
    try {
      body = entry.type.decode(bytes.subarray(FRAME_HEADER_BYTES), version);
    } catch (cause) {
      return failure('CORRUPT_MESSAGE', `${entry.name} v${version} body does not decode: ${String((cause as Error)?.message ?? cause)}`, requestId, cause);
    }
    const frame = { type: entry.name, version, requestId: view.getUint32(8), isResponse: requestId === undefined, body };
    return { ok: true, frame: frame as Frame<WithErrorAnswer<T>> };
  };

  return {
    maxFrameBytes,
    encode,
    decode,
    encodeErrorAnswer(requestId, error) {
      // An answer must always go out, so a message too long for the frame limit is shortened.
      let message = error.message;
      for (;;) {
        const body = { code: error.code, message, retriable: error.retriable };
        const frame = { type: 'error', version: 0, requestId, isResponse: true, body } as Frame<WithErrorAnswer<T>>;
        try {
          return encode(frame);
        } catch (cause) {
          if (!(cause instanceof FrameError && cause.code === 'MESSAGE_TOO_LARGE') || message === '') throw cause;
          message = message.slice(0, Math.floor(message.length / 2));
        }
      }
    },
    createStreamDecoder: () => createStreamDecoder(decode, requestIdToAnswer, maxFrameBytes),
  };
}

function createStreamDecoder<T extends MessageTypes>(
  decode: (bytes: Uint8Array) => FrameResult<T>,
  requestIdToAnswer: (header: Uint8Array) => number | undefined,
  maxFrameBytes: number,
): FrameStreamDecoder<T> {
  const chunks: Uint8Array[] = [];
  let buffered = 0;
  /** Bytes of an oversize frame still to be dropped as they arrive. */
  let skipping = 0;

  /** The first `count` buffered bytes (count ≤ buffered): a view when they lie in one chunk, else a copy. */
  const peek = (count: number): Uint8Array => {
    const first = chunks[0]!;
    if (first.length >= count) return first.subarray(0, count);
    const out = new Uint8Array(count);
    let position = 0;
    for (const chunk of chunks) {
      const part = chunk.subarray(0, count - position);
      out.set(part, position);
      position += part.length;
      if (position === count) break;
    }
    return out;
  };

  const drop = (count: number): void => {
    buffered -= count;
    while (count > 0) {
      const first = chunks[0]!;
      if (first.length > count) {
        chunks[0] = first.subarray(count);
        return;
      }
      chunks.shift();
      count -= first.length;
    }
  };

  return {
    get bufferedBytes() {
      return buffered;
    },
    push(chunk) {
      const results: FrameResult<T>[] = [];
      if (chunk.length > 0) {
        chunks.push(chunk);
        buffered += chunk.length;
      }
      for (;;) {
        if (skipping > 0) {
          const count = Math.min(skipping, buffered);
          drop(count);
          skipping -= count;
          if (skipping > 0) break;
        }
        if (buffered < 4) break;
        const prefix = peek(4);
        const frameBytes = new DataView(prefix.buffer, prefix.byteOffset, 4).getUint32(0) + 4;
        if (frameBytes < FRAME_HEADER_BYTES) {
          // The length still marks where the next frame starts, so the stream stays in step.
          results.push({ ok: false, error: new FrameError('CORRUPT_MESSAGE', `frame of ${frameBytes} bytes is shorter than its header`), requestId: undefined });
          skipping = frameBytes;
          continue;
        }
        if (frameBytes > maxFrameBytes) {
          if (buffered < FRAME_HEADER_BYTES) break;
          const requestId = requestIdToAnswer(peek(FRAME_HEADER_BYTES));
          results.push({
            ok: false,
            error: new FrameError('MESSAGE_TOO_LARGE', `frame of ${frameBytes} bytes is over the ${maxFrameBytes}-byte limit`),
            requestId,
          });
          skipping = frameBytes;
          continue;
        }
        if (buffered < frameBytes) break;
        const frame = peek(frameBytes);
        drop(frameBytes);
        results.push(decode(frame));
      }
      return results;
    },
  };
}
