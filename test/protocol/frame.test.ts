import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { FrameError, LetterboxError } from '../../src/errors';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_HEADER_BYTES,
  createFrameCodec,
  createPeerFrameCodec,
  type FrameResult,
  type MessageType,
  type MessageTypes,
} from '../../src/protocol';

/** A test message type: a UTF-8 string body; version 2 upper-cases it on the wire. */
const echo: MessageType<string> = {
  id: 7,
  versions: [1, 2],
  encode: (text, version) => new TextEncoder().encode(version === 2 ? text.toUpperCase() : text),
  decode: (bytes) => new TextDecoder('utf-8', { fatal: true }).decode(bytes),
};
/** A body codec that is careless about bounds: its RangeError must not escape the frame codec. */
const careless: MessageType<number> = {
  id: 8,
  versions: [0],
  encode: (n) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, n);
    return bytes;
  },
  decode: (bytes) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0),
};

const codec = createFrameCodec({ echo, careless }, { maxFrameBytes: 64 });

const failed = <T extends MessageTypes>(result: FrameResult<T> | undefined) => {
  expect(result?.ok).toBe(false);
  return result as Extract<FrameResult<T>, { ok: false }>;
};

/** A frame with a hand-written header. */
const rawFrame = (typeId: number, version: number, flags: number, requestId: number, body: number[] = []) => {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, bytes.length - 4);
  view.setUint16(4, typeId);
  view.setUint8(6, version);
  view.setUint8(7, flags);
  view.setUint32(8, requestId);
  bytes.set(body, FRAME_HEADER_BYTES);
  return bytes;
};

describe('peer frames', () => {
  it('encode and decode a request and a response', () => {
    const request = codec.encode({ type: 'echo', version: 1, requestId: 41, isResponse: false, body: 'hi' });
    expect([...request.subarray(0, FRAME_HEADER_BYTES)]).toEqual([0, 0, 0, 10, 0, 7, 1, 0, 0, 0, 0, 41]);
    expect(codec.decode(request)).toEqual({ ok: true, frame: { type: 'echo', version: 1, requestId: 41, isResponse: false, body: 'hi' } });
    const response = codec.encode({ type: 'echo', version: 2, requestId: 0xffffffff, isResponse: true, body: 'ok' });
    expect(codec.decode(response)).toEqual({ ok: true, frame: { type: 'echo', version: 2, requestId: 0xffffffff, isResponse: true, body: 'OK' } });
  });

  it('types each body by its message type', () => {
    const result = codec.decode(codec.encode({ type: 'careless', version: 0, requestId: 1, isResponse: false, body: 9 }));
    if (result.ok && result.frame.type === 'careless') expectTypeOf(result.frame.body).toEqualTypeOf<number>();
    if (result.ok && result.frame.type === 'error') expectTypeOf(result.frame.body.retriable).toEqualTypeOf<boolean>();
    // @ts-expect-error echo's body is a string
    const wrongBody = () => codec.encode({ type: 'echo', version: 1, requestId: 1, isResponse: false, body: 9 });
    // @ts-expect-error no such message type
    const unknownType = () => codec.encode({ type: 'nope', version: 1, requestId: 1, isResponse: false, body: 9 });
    expect([wrongBody, unknownType]).toHaveLength(2);
  });

  it('answers an unknown type or version with an error the requester can read', () => {
    const unknownType = failed(codec.decode(rawFrame(99, 1, 0, 5)));
    expect(unknownType.error).toBeInstanceOf(FrameError);
    expect(unknownType.error.code).toBe('INVALID_REQUEST');
    expect(unknownType.requestId).toBe(5);

    const unknownVersion = failed(codec.decode(rawFrame(7, 3, 0, 6)));
    expect(unknownVersion.error.code).toBe('UNSUPPORTED_VERSION');
    expect(unknownVersion.error.message).toMatch(/echo has no version 3/);

    const answer = codec.decode(codec.encodeErrorAnswer(unknownVersion.requestId!, unknownVersion.error));
    expect(answer).toEqual({
      ok: true,
      frame: { type: 'error', version: 0, requestId: 6, isResponse: true, body: { code: 'UNSUPPORTED_VERSION', message: expect.any(String), retriable: false } },
    });
    // The message is shortened to fit the frame limit, which the full one would not.
    const body = (answer as { frame: { body: { message: string } } }).frame.body;
    expect(unknownVersion.error.message.startsWith(body.message)).toBe(true);
    expect(body.message.length).toBeLessThan(unknownVersion.error.message.length);
    expect(createFrameCodec({}).encodeErrorAnswer(1, new LetterboxError('X', 'é'.repeat(100)))).toHaveLength(FRAME_HEADER_BYTES + 2 + 2 + 200 + 1);
  });

  it('does not ask for an answer to a bad response', () => {
    expect(failed(codec.decode(rawFrame(99, 1, 1, 5))).requestId).toBeUndefined();
  });

  it('turns a body that does not decode, even by a RangeError, into CORRUPT_MESSAGE', () => {
    const short = failed(codec.decode(rawFrame(8, 0, 0, 1, [1, 2])));
    expect(short.error.code).toBe('CORRUPT_MESSAGE');
    expect(short.error.cause).toBeInstanceOf(RangeError);
    expect(failed(codec.decode(rawFrame(7, 1, 0, 1, [0xff]))).error.code).toBe('CORRUPT_MESSAGE');
    expect(failed(codec.decode(rawFrame(0, 0, 1, 1, [9]))).error.code).toBe('CORRUPT_MESSAGE'); // error answer, truncated
  });

  it('rejects frames shorter than the header, with a wrong length, or over the limit', () => {
    expect(failed(codec.decode(new Uint8Array(5))).error.code).toBe('CORRUPT_MESSAGE');
    const frame = rawFrame(7, 1, 0, 1, [0x61]);
    expect(failed(codec.decode(frame.subarray(0, frame.length - 1))).error.code).toBe('CORRUPT_MESSAGE');
    expect(failed(codec.decode(rawFrame(7, 1, 0, 3, new Array(60).fill(0x61)))).error.code).toBe('MESSAGE_TOO_LARGE');
    expect(() => codec.encode({ type: 'echo', version: 1, requestId: 1, isResponse: false, body: 'x'.repeat(60) })).toThrow(FrameError);
  });

  it('refuses to encode what it could not decode', () => {
    expect(() => codec.encode({ type: 'echo', version: 9, requestId: 1, isResponse: false, body: '' })).toThrow(/no version 9/);
    expect(() => codec.encode({ type: 'echo', version: 1, requestId: -1, isResponse: false, body: '' })).toThrow(FrameError);
  });

  it('refuses registries with clashing or reserved ids, and bad limits', () => {
    expect(() => createFrameCodec({ a: echo, b: { ...careless, id: 7 } })).toThrow(LetterboxError);
    expect(() => createFrameCodec({ a: { ...echo, id: 0 } })).toThrow(LetterboxError);
    expect(() => createFrameCodec({ a: { ...echo, id: 70000 } })).toThrow(LetterboxError);
    expect(() => createFrameCodec({ a: { ...echo, versions: [256] } })).toThrow(LetterboxError);
    expect(() => createFrameCodec({ a: { ...echo, versions: [] } })).toThrow(LetterboxError);
    expect(() => createFrameCodec({}, { maxFrameBytes: 4 })).toThrow(LetterboxError);
    expect(createPeerFrameCodec().maxFrameBytes).toBe(DEFAULT_MAX_FRAME_BYTES);
  });

  it('carries a window update as a big-endian uint32, and refuses a body of another length', () => {
    const peer = createPeerFrameCodec();
    const frame = peer.encode({ type: 'window', version: 0, requestId: 0, isResponse: false, body: { bytes: 0xfedcba98 } });
    expect([...frame.subarray(FRAME_HEADER_BYTES)]).toEqual([0xfe, 0xdc, 0xba, 0x98]);
    expect(peer.decode(frame)).toMatchObject({ ok: true, frame: { type: 'window', body: { bytes: 0xfedcba98 } } });
    const short = frame.slice(0, -1);
    new DataView(short.buffer).setUint32(0, short.length - 4);
    expect(peer.decode(short)).toMatchObject({ ok: false, error: { code: 'CORRUPT_MESSAGE' } });
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const result = codec.decode(bytes);
        if (!result.ok) expect(result.error).toBeInstanceOf(FrameError);
      }),
      { numRuns: 2000 },
    );
  });

  describe('stream decoder', () => {
    const frames = [
      codec.encode({ type: 'echo', version: 1, requestId: 1, isResponse: false, body: 'one' }),
      rawFrame(99, 1, 0, 2), // unknown type
      codec.encode({ type: 'careless', version: 0, requestId: 3, isResponse: true, body: 12345 }),
      rawFrame(7, 1, 0, 4, new Array(200).fill(0x61)), // over the limit
      codec.encode({ type: 'echo', version: 2, requestId: 5, isResponse: false, body: 'five' }),
    ];
    const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    frames.reduce((at, f) => (stream.set(f, at), at + f.length), 0);

    const summary = (results: FrameResult<MessageTypes>[]) =>
      results.map((r) => (r.ok ? `${r.frame.type}:${r.frame.requestId}:${String(r.frame.body)}` : `${r.error.code}:${r.requestId}`));
    const expectedSummary = ['echo:1:one', 'INVALID_REQUEST:2', 'careless:3:12345', 'MESSAGE_TOO_LARGE:4', 'echo:5:FIVE'];

    it('reassembles frames from chunks of any size, and goes on after bad ones', () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 20 }), (cuts) => {
          const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
          const decoder = codec.createStreamDecoder();
          const results: FrameResult<MessageTypes>[] = [];
          for (let i = 1; i < points.length; i++) results.push(...decoder.push(stream.slice(points[i - 1], points[i])));
          expect(summary(results)).toEqual(expectedSummary);
          expect(decoder.bufferedBytes).toBe(0);
        }),
        { numRuns: 300 },
      );
    });

    it('rejects an oversize frame from its header, without buffering its body', () => {
      const decoder = codec.createStreamDecoder();
      const huge = new Uint8Array(FRAME_HEADER_BYTES);
      new DataView(huge.buffer).setUint32(0, 0xfffffff0);
      new DataView(huge.buffer).setUint32(8, 77);
      expect(summary(decoder.push(huge))).toEqual(['MESSAGE_TOO_LARGE:77']);
      for (let i = 0; i < 100; i++) {
        expect(decoder.push(new Uint8Array(1 << 16))).toEqual([]);
        expect(decoder.bufferedBytes).toBe(0);
      }
    });

    it('keeps in step after a frame whose length is shorter than a header', () => {
      const decoder = codec.createStreamDecoder();
      const tiny = new Uint8Array([0, 0, 0, 2, 0xaa, 0xbb]);
      expect(summary(decoder.push(new Uint8Array([...tiny, ...frames[0]!])))).toEqual(['CORRUPT_MESSAGE:undefined', 'echo:1:one']);
    });

    it('never throws on random chunks', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }), (chunks) => {
          const decoder = codec.createStreamDecoder();
          for (const chunk of chunks) decoder.push(chunk);
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(64 + 40);
        }),
        { numRuns: 1000 },
      );
    });
  });
});
