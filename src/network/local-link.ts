// The local transport (FORMATS.md § Local transport): a PeerLink between the workers of one
// origin's tabs, over BroadcastChannels, with no relay, no WebRTC and no page in the way. The
// RPC layer above it (framing, windows, admission) is the one the WebRTC link uses.
//
// Why BroadcastChannel and not MessagePorts: a MessagePort can only be handed to another tab's
// worker through a SharedWorker or a service worker, neither of which a dedicated worker can
// create, and the script-tag build's blob-URL workers could not share one anyway. Measured
// worker to worker across two tabs, a MessagePort was faster (0.1–0.2 ms round trip, 110–280
// MB/s, against 0.3–0.5 ms and 18–89 MB/s), but only with a page in the set-up.

import { realClock, type Clock } from '../clock';
import { AbortedError, PeerError, PeerNotConnectedError } from '../errors';
import type { PeerInfo } from './bridge-messages';
import { linkEvents } from './link-events';
import {
  checkDiscoveryMessage,
  checkPairMessage,
  discoveryChannelName,
  LOCAL_MESSAGE_BYTES_MAX,
  LOCAL_VERSION,
  pairChannelName,
  sessionLockName,
  type DiscoveryMessage,
  type PairMessage,
} from './local-messages';
import type { PeerLink } from './peer-link';

/** The part of the Web Locks API the local transport uses (structural, so tests can pass their own). */
export interface LocalLocks {
  request(name: string, options: { mode?: 'exclusive' | 'shared'; ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => unknown): Promise<unknown>;
}

/** The part of BroadcastChannel the local transport uses. */
export interface LocalChannel {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface LocalLinkInit {
  /** The cluster: only nodes of the same cluster on this origin meet. */
  cluster: string;
  /** This node's peer id (the same as on the WebRTC network). */
  peerId: string;
  /** Default `navigator.locks`. */
  locks?: LocalLocks;
  /** Default: the real clock. */
  clock?: Clock;
  /** Default `new BroadcastChannel(name)`. */
  openChannel?(name: string): LocalChannel;
  /** Told of each message refused (a typed PeerError: its code says why); the link keeps serving. */
  onRefused?(error: PeerError): void;
}

export interface LocalLink extends PeerLink {
  /** This link's session id: random, one per link, the name of the lock it holds while alive. */
  readonly session: string;
  /** Messages refused so far. */
  readonly refused: number;
}

interface Session {
  peerId: string;
  channel: LocalChannel | undefined;
  /** Aborts the wait on the session's lock. */
  watch: AbortController;
  /** Set once the other end answered: the peer is joined. */
  info: PeerInfo | undefined;
}

/**
 * Joins the origin's local network of `cluster`: holds this session's lock, says `hello` on
 * the cluster's discovery channel, and connects to every live session that answers. A peer is
 * gone when its lock is released (its worker ended) or it says `bye`.
 * @example const link = createLocalLink({ cluster: 'demo', peerId }); const rpc = createPeerRpc(link);
 */
export function createLocalLink(init: LocalLinkInit): LocalLink {
  const { cluster, peerId: self } = init;
  const locks = init.locks ?? (navigator.locks as unknown as LocalLocks);
  const openChannel = init.openChannel ?? ((name: string) => new BroadcastChannel(name));
  const session = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
  /** Live sessions this node knows, connected or connecting, by session id. */
  const sessions = new Map<string, Session>();
  /** The joined session of each peer id. */
  const joined = new Map<string, string>();
  const events = linkEvents();
  const closing = new AbortController();
  let refused = 0;

  const { emit } = events;
  const report = (error: PeerError) => {
    refused += 1;
    init.onRefused?.(error);
  };
  const post = (channel: LocalChannel, message: DiscoveryMessage | PairMessage) => {
    try {
      channel.postMessage(message);
      return true;
    } catch {
      return false; // closed meanwhile
    }
  };

  /** Resolves true when no live worker holds `session`'s lock: it ended, or never existed. */
  const isGone = (other: string) =>
    new Promise<boolean>((resolve) => {
      locks.request(sessionLockName(other), { mode: 'shared', ifAvailable: true }, (lock) => resolve(lock !== null)).catch(() => resolve(false));
    });

  const leave = (other: string, reason: string) => {
    const state = sessions.get(other);
    if (state === undefined) return;
    sessions.delete(other);
    state.watch.abort();
    state.channel?.close();
    if (state.info !== undefined && joined.get(state.peerId) === other) {
      joined.delete(state.peerId);
      emit('left', { peerId: state.peerId, reason });
    }
  };

  const onPairMessage = (other: string, state: Session, data: unknown) => {
    if (sessions.get(other) !== state) return;
    const checked = checkPairMessage(data, state.peerId, other);
    if (!checked.ok) return report(checked.error);
    const message = checked.message;
    if (message.type === 'bye') return leave(other, 'it said bye');
    if (message.type === 'hello') post(state.channel!, { v: LOCAL_VERSION, type: 'ack', from: session });
    // Any message proves the other end's channel exists: only now may bytes go to it.
    if (state.info === undefined) {
      state.info = { peerId: state.peerId, remoteAddr: `/local/${other}`, limited: false, since: (init.clock ?? realClock).now(), dataPath: 'local' };
      joined.set(state.peerId, other);
      emit('joined', state.info);
    }
    if (message.type === 'data') emit('data', { peerId: state.peerId, bytes: new Uint8Array(message.data) });
  };

  /**
   * Opens the pair channel with a live session and says `hello` on it. What is posted before
   * the other end opened its own is lost, so each end says `hello` and answers one with `ack`:
   * the end that opened second is always heard, however late (a worker busy for seconds), so
   * there is no timeout: the session's lock, waited on, tells when it ends.
   */
  const connect = (other: string, state: Session) => {
    const channel = openChannel(pairChannelName(cluster, session, other));
    state.channel = channel;
    channel.addEventListener('message', (event) => onPairMessage(other, state, event.data));
    locks
      .request(sessionLockName(other), { mode: 'shared', signal: AbortSignal.any([state.watch.signal, closing.signal]) }, () => leave(other, 'its tab closed'))
      .catch(() => undefined); // aborted: left already, or this link closed
    post(channel, { v: LOCAL_VERSION, type: 'hello', from: session });
  };

  const hello = (reply: boolean) => post(discovery, { v: LOCAL_VERSION, type: 'hello', cluster, peerId: self, session, reply });

  /** A session that says hello: connected if it is live and consistent with what this node knows; refused (FORGED_SENDER) if not. */
  const onHello = async (message: Extract<DiscoveryMessage, { type: 'hello' }>) => {
    const { peerId, session: other } = message;
    const forged = (why: string) => report(new PeerError(peerId, 'FORGED_SENDER', `local transport: a hello from ${peerId} (session ${other}) ${why}`));
    if (other === session || peerId === self) return forged('claims to be this node');
    const known = sessions.get(other);
    if (known !== undefined) {
      if (known.peerId !== peerId) return forged(`names a session that belongs to ${known.peerId}`);
      if (!message.reply) hello(true); // it is looking again (e.g. after its own restart of discovery)
      return;
    }
    const state: Session = { peerId, channel: undefined, watch: new AbortController(), info: undefined };
    sessions.set(other, state); // claimed now, so a second hello meanwhile is not connected twice
    const previous = [...sessions].find(([id, s]) => id !== other && s.peerId === peerId)?.[0];
    const [gone, previousGone] = await Promise.all([isGone(other), previous === undefined ? true : isGone(previous)]);
    if (sessions.get(other) !== state || closing.signal.aborted) return;
    if (gone || !previousGone) {
      sessions.delete(other);
      return forged(gone ? 'holds no live session lock' : 'while that peer id is connected under another live session');
    }
    // The same peer id in a new session: its tab was reloaded on the same slot, and the old session ended.
    if (previous !== undefined) leave(previous, 'reconnected');
    if (!message.reply) hello(true);
    connect(other, state);
  };

  const onBye = async (message: Extract<DiscoveryMessage, { type: 'bye' }>) => {
    const state = sessions.get(message.session);
    if (state === undefined) return;
    if (state.peerId !== message.peerId || !(await isGone(message.session))) {
      return report(new PeerError(message.peerId, 'FORGED_SENDER', `local transport: a bye for session ${message.session} of ${state.peerId}, whose worker still holds its lock`));
    }
    leave(message.session, 'it said bye');
  };

  const discovery = openChannel(discoveryChannelName(cluster));
  discovery.addEventListener('message', (event) => {
    if (closing.signal.aborted) return;
    const checked = checkDiscoveryMessage(event.data, cluster);
    if (!checked.ok) return report(checked.error);
    void (checked.message.type === 'hello' ? onHello(checked.message) : onBye(checked.message));
  });

  // The lock first, then the hello: whoever hears the hello finds the lock held.
  let releaseLock: () => void = () => undefined;
  const held = new Promise<void>((release) => (releaseLock = release));
  locks
    .request(sessionLockName(session), { mode: 'exclusive', signal: closing.signal }, () => {
      if (!closing.signal.aborted) hello(false);
      return held;
    })
    .catch(() => undefined); // closed before it was granted

  const sendData = (peerId: string, channel: LocalChannel, bytes: Uint8Array) => {
    for (let offset = 0; offset < bytes.byteLength; offset += LOCAL_MESSAGE_BYTES_MAX) {
      const end = Math.min(bytes.byteLength, offset + LOCAL_MESSAGE_BYTES_MAX);
      // A view is cloned with its whole buffer: post a buffer of exactly this piece.
      const whole = offset === 0 && end === bytes.byteLength && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
      const data = whole ? (bytes.buffer as ArrayBuffer) : bytes.slice(offset, end).buffer;
      if (!post(channel, { v: LOCAL_VERSION, type: 'data', from: session, data })) throw new PeerNotConnectedError(peerId, `peer ${peerId}: its local channel closed`);
    }
  };

  return {
    session,
    get refused() {
      return refused;
    },
    peerId: self,
    peers: () => [...joined.values()].map((other) => sessions.get(other)!.info!),
    // The local transport has no relay's list: its tabs meet as soon as they announce themselves.
    members: () => [],
    // BroadcastChannel has no backpressure: what bounds the bytes in flight is the RPC layer's window.
    async send(peerId, bytes, options = {}) {
      if (options.signal?.aborted === true) throw new AbortedError(undefined, { cause: options.signal.reason });
      const other = joined.get(peerId);
      const channel = other === undefined ? undefined : sessions.get(other)?.channel;
      if (channel === undefined) throw new PeerNotConnectedError(peerId);
      sendData(peerId, channel, bytes);
    },
    on: events.on,
    close() {
      if (closing.signal.aborted) return;
      for (const [other, state] of sessions) {
        if (state.channel !== undefined) post(state.channel, { v: LOCAL_VERSION, type: 'bye', from: session });
        sessions.delete(other);
        state.watch.abort();
        state.channel?.close();
      }
      joined.clear();
      closing.abort();
      releaseLock();
      post(discovery, { v: LOCAL_VERSION, type: 'bye', cluster, peerId: self, session });
      discovery.close();
    },
  };
}
