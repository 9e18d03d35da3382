// The registry of peer message types: name → id and body codec. Each protocol adds its
// bodies here as it is built (raft, fetch/produce forwarding, groups, metadata: see their
// issues), with ids from the table in FORMATS.md § Message types. The error answer (id 0)
// is part of every frame codec and is not listed.

import { createFrameCodec, type FrameCodec, type FrameCodecInit, type MessageType, type WithErrorAnswer } from './frame';

/** `echo` (id 1): the body is opaque bytes, answered unchanged; for liveness checks, tests and benchmarks. */
const echoType: MessageType<Uint8Array> = {
  id: 1,
  versions: [0],
  encode: (body) => body,
  decode: (bytes) => bytes,
};

export const PEER_MESSAGE_TYPES = { echo: echoType };

export type PeerMessageTypes = WithErrorAnswer<typeof PEER_MESSAGE_TYPES>;

/**
 * The codec of Letterbox's peer protocol, with its size limit.
 * @example const codec = createPeerFrameCodec({ maxFrameBytes: 4 << 20 }); const decoder = codec.createStreamDecoder();
 */
export function createPeerFrameCodec(init: FrameCodecInit = {}): FrameCodec<PeerMessageTypes> {
  return createFrameCodec(PEER_MESSAGE_TYPES, init);
}
