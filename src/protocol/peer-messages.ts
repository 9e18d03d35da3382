// The registry of peer message types: name → id and body codec. Each protocol adds its
// bodies here as it is built (raft, fetch/produce forwarding, groups, metadata: see their
// issues), with ids from the table in FORMATS.md § Message types. The error answer (id 0)
// is part of every frame codec and is not listed.

import { FrameError } from '../errors';
import { clusterHelloType, controllerType, raftType } from './cluster-messages';
import { fetchType, listOffsetsType, produceType } from './data-messages';
import { groupType } from './group-messages';
import { createFrameCodec, type FrameCodec, type FrameCodecInit, type MessageType, type WithErrorAnswer } from './frame';

/** `echo` (id 1): the body is opaque bytes, answered unchanged; for liveness checks, tests and benchmarks. */
const echoType: MessageType<Uint8Array> = {
  id: 1,
  versions: [0],
  encode: (body) => body,
  decode: (bytes) => bytes,
};

/** Steps of the admission handshake (FORMATS.md § Admission). */
export type AdmissionBody =
  | { kind: 'challenge'; nonce: Uint8Array }
  | { kind: 'proof'; mac: Uint8Array }
  | { kind: 'welcome' }
  | { kind: 'refused' };

/** Bytes of a challenge's nonce and of a proof's HMAC-SHA256. */
export const ADMISSION_NONCE_BYTES = 32;
const ADMISSION_KINDS = ['challenge', 'proof', 'welcome', 'refused'] as const;

/** `admission` (id 2): int8 kind, then a 32-byte nonce (challenge) or HMAC (proof), or nothing. */
const admissionType: MessageType<AdmissionBody> = {
  id: 2,
  versions: [0],
  encode(body) {
    const bytes = body.kind === 'challenge' ? body.nonce : body.kind === 'proof' ? body.mac : new Uint8Array(0);
    const out = new Uint8Array(1 + bytes.length);
    out[0] = ADMISSION_KINDS.indexOf(body.kind);
    out.set(bytes, 1);
    return out;
  },
  decode(bytes) {
    const kind = ADMISSION_KINDS[bytes[0] ?? -1];
    const rest = bytes.subarray(1);
    const expected = kind === 'challenge' || kind === 'proof' ? ADMISSION_NONCE_BYTES : 0;
    if (kind === undefined || rest.length !== expected) throw new FrameError('CORRUPT_MESSAGE', `admission body of ${bytes.length} bytes, kind ${bytes[0]}`);
    if (kind === 'challenge') return { kind, nonce: rest };
    if (kind === 'proof') return { kind, mac: rest };
    return { kind };
  },
};

/**
 * `window` (id 3): uint32 `bytes`, big-endian — the sender consumed that many more bytes of
 * this node's stream, which may send as much more (FORMATS.md § Flow control). Always one-way.
 */
const windowType: MessageType<{ bytes: number }> = {
  id: 3,
  versions: [0],
  encode(body) {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, body.bytes);
    return out;
  },
  decode(bytes) {
    if (bytes.length !== 4) throw new FrameError('CORRUPT_MESSAGE', `window body of ${bytes.length} bytes, not 4`);
    return { bytes: new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0) };
  },
};

export const PEER_MESSAGE_TYPES = {
  echo: echoType,
  admission: admissionType,
  window: windowType,
  raft: raftType,
  controller: controllerType,
  clusterHello: clusterHelloType,
  produce: produceType,
  fetch: fetchType,
  listOffsets: listOffsetsType,
  group: groupType,
};

export type PeerMessageTypes = WithErrorAnswer<typeof PEER_MESSAGE_TYPES>;

/**
 * The codec of Letterbox's peer protocol, with its size limit.
 * @example const codec = createPeerFrameCodec({ maxFrameBytes: 4 << 20 }); const decoder = codec.createStreamDecoder();
 */
export function createPeerFrameCodec(init: FrameCodecInit = {}): FrameCodec<PeerMessageTypes> {
  return createFrameCodec(PEER_MESSAGE_TYPES, init);
}
