// Messages of the local transport (FORMATS.md § Local transport): what goes over the origin's
// BroadcastChannels between the workers of one browser's tabs. Pure: names, and checks of what
// arrives (anything on the origin can post there), each refusal a typed PeerError.

import { PeerError } from '../errors';

/** Version of the local transport's messages and channel names; a message of another version is refused. */
export const LOCAL_VERSION = 1;
/**
 * Bytes of a data message: a larger send goes in several. A 64 KiB RPC message is a frame a
 * few bytes larger, which 64 KiB messages split in two: peer RPC moved 12.3 MB/s with 64 KiB
 * messages, 16.2 MB/s with 1 MiB ones (`net.local.rpc.throughput`, 3 runs each).
 */
export const LOCAL_MESSAGE_BYTES_MAX = 1024 * 1024;
/** Characters of a peer id or session id: a libp2p peer id is 52, a session 32. */
export const LOCAL_ID_CHARS_MAX = 128;

/** The channel on which an origin's nodes of `cluster` announce themselves. */
export const discoveryChannelName = (cluster: string) => `letterbox/local/${LOCAL_VERSION}/${cluster}`;
/** The channel two sessions exchange bytes on: both ends derive the same name. */
export const pairChannelName = (cluster: string, a: string, b: string) => `letterbox/local/${LOCAL_VERSION}/${cluster}/${a < b ? `${a}+${b}` : `${b}+${a}`}`;
/** The Web Lock a session holds for its life: released exactly when its worker ends, which is how peers see it gone. */
export const sessionLockName = (session: string) => `letterbox/local/${LOCAL_VERSION}/session/${session}`;

/** On the discovery channel. `reply` marks an answer to another's hello (not answered again). */
export type DiscoveryMessage =
  | { v: typeof LOCAL_VERSION; type: 'hello'; cluster: string; peerId: string; session: string; reply: boolean }
  | { v: typeof LOCAL_VERSION; type: 'bye'; cluster: string; peerId: string; session: string };

/** On a pair channel: `from` is the sender's session; `data` carries bytes of its stream. */
export type PairMessage =
  | { v: typeof LOCAL_VERSION; type: 'hello' | 'ack' | 'bye'; from: string }
  | { v: typeof LOCAL_VERSION; type: 'data'; from: string; data: ArrayBuffer };

type Checked<T> = { ok: true; message: T } | { ok: false; error: PeerError };

const refuse = (peerId: string, code: string, why: string): { ok: false; error: PeerError } => ({ ok: false, error: new PeerError(peerId, code, `local transport: ${why}`) });
const isId = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= LOCAL_ID_CHARS_MAX;
const claimedId = (value: unknown) => (isId(value) ? value : '');

/**
 * Checks a message from the discovery channel of `cluster`: its shape, version and cluster
 * (refused `CORRUPT_MESSAGE`, `UNSUPPORTED_VERSION`, `INCONSISTENT_CLUSTER_ID`).
 * @example const checked = checkDiscoveryMessage(event.data, 'demo'); if (!checked.ok) report(checked.error);
 */
export function checkDiscoveryMessage(data: unknown, cluster: string): Checked<DiscoveryMessage> {
  if (typeof data !== 'object' || data === null) return refuse('', 'CORRUPT_MESSAGE', 'a discovery message that is not an object');
  const message = data as Record<string, unknown>;
  const peerId = claimedId(message['peerId']);
  if (message['v'] !== LOCAL_VERSION) return refuse(peerId, 'UNSUPPORTED_VERSION', `discovery message version ${String(message['v'])}, this node speaks ${LOCAL_VERSION}`);
  if (message['cluster'] !== cluster) return refuse(peerId, 'INCONSISTENT_CLUSTER_ID', `a discovery message for cluster ${JSON.stringify(String(message['cluster']).slice(0, 80))} on cluster ${cluster}'s channel`);
  if (!isId(message['peerId']) || !isId(message['session'])) return refuse(peerId, 'CORRUPT_MESSAGE', 'a discovery message without a valid peerId and session');
  const { peerId: id, session } = message as { peerId: string; session: string };
  if (message['type'] === 'hello' && typeof message['reply'] === 'boolean') return { ok: true, message: { v: LOCAL_VERSION, type: 'hello', cluster, peerId: id, session, reply: message['reply'] } };
  if (message['type'] === 'bye') return { ok: true, message: { v: LOCAL_VERSION, type: 'bye', cluster, peerId: id, session } };
  return refuse(peerId, 'CORRUPT_MESSAGE', `an unknown discovery message type ${JSON.stringify(String(message['type']).slice(0, 40))}`);
}

/**
 * Checks a message from the pair channel with peer `peerId`, whose session is `session`: its
 * shape and version, that it claims to come from that session (`FORGED_SENDER`), and a data
 * message's size (`MESSAGE_TOO_LARGE`).
 * @example const checked = checkPairMessage(event.data, peerId, session);
 */
export function checkPairMessage(data: unknown, peerId: string, session: string): Checked<PairMessage> {
  if (typeof data !== 'object' || data === null) return refuse(peerId, 'CORRUPT_MESSAGE', 'a pair message that is not an object');
  const message = data as Record<string, unknown>;
  if (message['v'] !== LOCAL_VERSION) return refuse(peerId, 'UNSUPPORTED_VERSION', `pair message version ${String(message['v'])}, this node speaks ${LOCAL_VERSION}`);
  if (message['from'] !== session) return refuse(peerId, 'FORGED_SENDER', `a pair message claiming to be from ${JSON.stringify(String(message['from']).slice(0, 80))} on the channel with session ${session}`);
  const type = message['type'];
  if (type === 'hello' || type === 'ack' || type === 'bye') return { ok: true, message: { v: LOCAL_VERSION, type, from: session } };
  if (type !== 'data') return refuse(peerId, 'CORRUPT_MESSAGE', `an unknown pair message type ${JSON.stringify(String(type).slice(0, 40))}`);
  const bytes = message['data'];
  if (!(bytes instanceof ArrayBuffer)) return refuse(peerId, 'CORRUPT_MESSAGE', 'a data message without an ArrayBuffer');
  if (bytes.byteLength > LOCAL_MESSAGE_BYTES_MAX) return refuse(peerId, 'MESSAGE_TOO_LARGE', `a data message of ${bytes.byteLength} bytes (at most ${LOCAL_MESSAGE_BYTES_MAX})`);
  return { ok: true, message: { v: LOCAL_VERSION, type: 'data', from: session, data: bytes } };
}
