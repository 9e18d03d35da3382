import { LetterboxError } from '../errors';

// The discovery protocol's wire format (specified in src/protocol/FORMATS.md, "Discovery"):
// each message is a uint32 big-endian length, then that many bytes of UTF-8 JSON. Pure.

/** Where the relay serves its peer id and multiaddrs over HTTP, as `{ peerId, multiaddrs }` JSON. */
export const RELAY_INFO_PATH = '/.well-known/letterbox-relay.json';
/** libp2p protocol id of cluster discovery on the relay. */
export const DISCOVERY_PROTOCOL = '/letterbox/discovery/1.0.0';
/** Largest message, length prefix excluded: a member list of {@link MEMBERS_PER_CLUSTER_MAX} peer ids fits with room. */
export const DISCOVERY_MESSAGE_BYTES_MAX = 64 * 1024;
/** Members one cluster may have on one relay: bounds the list every member receives. */
export const MEMBERS_PER_CLUSTER_MAX = 256;
/** Clusters one relay serves at once: bounds the relay's memory. */
export const CLUSTERS_MAX = 1024;
/** A cluster name: 1 to 64 of letters, digits, `.`, `_`, `-`. */
export const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** A peer id as text (base58btc multihash): bounds what a member list may carry. */
const PEER_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{16,128}$/;

/** What a node sends: register once, then keep the stream open; closing it leaves the cluster. */
export type DiscoveryRequest = { type: 'register'; cluster: string };

/** What the relay sends: the members at registration, then changes, or an error before it closes the stream. */
export type DiscoveryEvent =
  | { type: 'members'; cluster: string; peers: string[] }
  | { type: 'joined'; peer: string }
  | { type: 'left'; peer: string }
  | { type: 'error'; code: DiscoveryErrorCode; message: string };

export type DiscoveryErrorCode = 'MESSAGE_TOO_LARGE' | 'CORRUPT_MESSAGE' | 'INVALID_REQUEST' | 'CLUSTER_FULL' | 'TIMEOUT';

/**
 * A discovery message that cannot be accepted, or an error the relay answered with.
 * @example if (error instanceof DiscoveryError && error.code === 'CLUSTER_FULL') useAnotherRelay();
 */
export class DiscoveryError extends LetterboxError {
  static override readonly errorName = 'DiscoveryError';
  declare readonly code: DiscoveryErrorCode;
  constructor(code: DiscoveryErrorCode, message: string) {
    super(code, message, { retriable: code === 'CLUSTER_FULL' || code === 'TIMEOUT' });
  }
}

/**
 * Encodes one message: length prefix and JSON.
 * @example stream.send(encodeDiscoveryMessage({ type: 'register', cluster: 'demo' }));
 */
export function encodeDiscoveryMessage(message: DiscoveryRequest | DiscoveryEvent): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(message));
  if (json.length > DISCOVERY_MESSAGE_BYTES_MAX) throw new DiscoveryError('MESSAGE_TOO_LARGE', `a discovery message of ${json.length} bytes is over ${DISCOVERY_MESSAGE_BYTES_MAX}`);
  const bytes = new Uint8Array(4 + json.length);
  new DataView(bytes.buffer).setUint32(0, json.length);
  bytes.set(json, 4);
  return bytes;
}

/**
 * Splits a byte stream into the JSON values of whole messages. Throws DiscoveryError
 * (`MESSAGE_TOO_LARGE` as soon as a length prefix is over the limit, `CORRUPT_MESSAGE` for
 * bytes that are not UTF-8 JSON); after an error the stream is out of step and must close.
 * @example const decoder = createDiscoveryDecoder(); for (const value of decoder.push(chunk)) handle(value);
 */
export function createDiscoveryDecoder(maxBytes = DISCOVERY_MESSAGE_BYTES_MAX): { push(chunk: Uint8Array): unknown[] } {
  let buffered = new Uint8Array(0);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  return {
    push(chunk) {
      const joined = new Uint8Array(buffered.length + chunk.length);
      joined.set(buffered);
      joined.set(chunk, buffered.length);
      const values: unknown[] = [];
      let at = 0;
      while (joined.length - at >= 4) {
        const length = new DataView(joined.buffer, joined.byteOffset + at).getUint32(0);
        if (length > maxBytes) throw new DiscoveryError('MESSAGE_TOO_LARGE', `a discovery message of ${length} bytes is over ${maxBytes}`);
        if (joined.length - at - 4 < length) break;
        const body = joined.subarray(at + 4, at + 4 + length);
        at += 4 + length;
        try {
          values.push(JSON.parse(utf8.decode(body)));
        } catch (error) {
          throw new DiscoveryError('CORRUPT_MESSAGE', `a discovery message is not UTF-8 JSON: ${String(error)}`);
        }
      }
      buffered = joined.slice(at);
      return values;
    },
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isPeerId = (value: unknown): value is string => typeof value === 'string' && PEER_ID_PATTERN.test(value);

/**
 * Checks a decoded value is a request the relay accepts; throws DiscoveryError `INVALID_REQUEST` otherwise.
 * @example const request = parseDiscoveryRequest(value);
 */
export function parseDiscoveryRequest(value: unknown): DiscoveryRequest {
  if (!isRecord(value) || value['type'] !== 'register') throw new DiscoveryError('INVALID_REQUEST', 'expected {"type":"register","cluster":…}');
  const cluster = value['cluster'];
  if (typeof cluster !== 'string' || !CLUSTER_NAME_PATTERN.test(cluster)) {
    throw new DiscoveryError('INVALID_REQUEST', `a cluster name is 1 to 64 of A-Z a-z 0-9 . _ -, got ${JSON.stringify(cluster)?.slice(0, 80)}`);
  }
  return { type: 'register', cluster };
}

/**
 * Checks a decoded value is an event a relay may send; throws DiscoveryError `CORRUPT_MESSAGE` otherwise.
 * @example const event = parseDiscoveryEvent(value);
 */
export function parseDiscoveryEvent(value: unknown): DiscoveryEvent {
  const bad = () => new DiscoveryError('CORRUPT_MESSAGE', `not a discovery event: ${JSON.stringify(value)?.slice(0, 80)}`);
  if (!isRecord(value)) throw bad();
  switch (value['type']) {
    case 'members': {
      const { cluster, peers } = value;
      if (typeof cluster !== 'string' || !Array.isArray(peers) || peers.length > MEMBERS_PER_CLUSTER_MAX || !peers.every(isPeerId)) throw bad();
      return { type: 'members', cluster, peers };
    }
    case 'joined':
    case 'left':
      if (!isPeerId(value['peer'])) throw bad();
      return { type: value['type'], peer: value['peer'] };
    case 'error': {
      const codes: DiscoveryErrorCode[] = ['MESSAGE_TOO_LARGE', 'CORRUPT_MESSAGE', 'INVALID_REQUEST', 'CLUSTER_FULL', 'TIMEOUT'];
      const code = codes.find((c) => c === value['code']);
      if (code === undefined || typeof value['message'] !== 'string') throw bad();
      return { type: 'error', code, message: value['message'] };
    }
    default:
      throw bad();
  }
}
