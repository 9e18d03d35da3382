import { FRAME_HEADER_BYTES } from '../../src/protocol';

/**
 * A raw peer frame (FORMATS.md § Peer frame) of any type id, version and request id, body as
 * given: what a hostile or broken peer can put on the wire, which the codec would refuse to make.
 * @example link.send(peerId, rawFrame(999, 1, new Uint8Array(8))); // an unknown type
 */
export function rawFrame(typeId: number, requestId: number, body: Uint8Array, { version = 0, response = false } = {}): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, out.length - 4);
  view.setUint16(4, typeId);
  view.setUint8(6, version);
  view.setUint8(7, response ? 1 : 0);
  view.setUint32(8, requestId);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}
