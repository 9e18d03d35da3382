import { realClock, type Cancel, type Clock } from '../clock';
import { AbortedError, PeerNotConnectedError } from '../errors';

// Defined with the other errors so that it crosses Comlink as itself; re-exported here, where it is raised.
export { PeerNotConnectedError };
import type { BridgePort, DirectChannel, PageToWorker, PeerInfo, WorkerToPage } from './bridge-messages';
import { linkEvents } from './link-events';
import { createLocalLink, type LocalLinkInit } from './local-link';
import { localFirst } from './local-first';
import {
  BRIDGE_COPY_BYTES_MAX,
  BRIDGE_WINDOW_BYTES,
  DATA_CHANNEL_BUFFERED_BYTES_MAX,
  DIRECT_HANDSHAKE_TIMEOUT_MS,
  DIRECT_MESSAGE_BYTES_MAX,
  PEER_WINDOW_UPDATE_BYTES,
} from './constants';

export interface PeerLinkEvents {
  joined: PeerInfo;
  left: { peerId: string; reason: string };
  quality: { peerId: string; rttMs: number };
  /** Bytes from a peer's stream, in arrival order; frame boundaries are not preserved. */
  data: { peerId: string; bytes: Uint8Array };
}

/** The worker's end of the bridge: the peers the page is directly connected to, and their bytes. */
export interface PeerLink {
  /** This node's libp2p peer id, once the page reported it. */
  readonly peerId: string | undefined;
  /** Peers with a direct connection now. */
  peers(): PeerInfo[];
  /**
   * The cluster's other members the relay lists, linked or not (empty without a relay);
   * `'unlisted'` until the page reports the relay's first list, or that it could not reach it.
   */
  members(): string[] | 'unlisted';
  /**
   * Queues `bytes` for `peerId`: on the peer's direct channel while it holds at most
   * DATA_CHANNEL_BUFFERED_BYTES_MAX, else through the page while at most
   * {@link BRIDGE_WINDOW_BYTES} are in flight to that peer; waits otherwise. The buffer may
   * be transferred (unusable afterwards). Rejects with PeerNotConnectedError, or AbortedError.
   */
  send(peerId: string, bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
  on<E extends keyof PeerLinkEvents>(type: E, listener: (event: PeerLinkEvents[E]) => void): () => void;
  close(): void;
}

interface PeerState {
  info: PeerInfo;
  /** The channel this node sends on once the peer's end of it exists; undefined: through the page. */
  direct: DirectChannel | undefined;
  /** Bytes handed to the page and not yet written by it. */
  inFlightBytes: number;
  /** Bytes of the peer's data read here and not yet reported to the page as consumed. */
  unreportedBytes: number;
  /** Sends waiting for credit or for the channel to drain, woken in order. */
  waiting: Array<() => void>;
}

/** Handshake messages on a direct channel (text; the byte stream is binary). FORMATS.md § Transport. */
const HELLO = 'hello';
const ACK = 'ack';

export interface PeerLinkOptions {
  /** Times the direct channel's handshake. Default: the real clock. */
  clock?: Clock;
  /**
   * Also meet this origin's other tabs of `local.cluster` over the local transport
   * (./local-link.ts), from when the page reports this node's peer id; a peer reachable both
   * ways is used over the local one. Needs no relay.
   */
  local?: Omit<LocalLinkInit, 'peerId' | 'clock'>;
  /** Hears this node's peer id once the page reports it (its cluster membership starts then). */
  onSelf?(peerId: string): void;
}

/**
 * The worker's link to its peers: the page's WebRTC network over `port` (a MessagePort from
 * the page's network), and with `options.local` the origin's other tabs as well.
 * @example const link = createPeerLink(port, { local: { cluster: 'demo' } }); link.on('joined', (peer) => console.log(peer.peerId));
 */
export function createPeerLink(port: BridgePort, options: PeerLinkOptions = {}): PeerLink {
  const { local, clock = realClock, onSelf } = options;
  if (local === undefined) return createBridgeLink(port, clock, (peerId) => onSelf?.(peerId));
  let started = false;
  const link = localFirst(
    createBridgeLink(port, clock, (peerId) => {
      if (started) return;
      started = true;
      link.addLocal(createLocalLink({ ...local, peerId, clock }));
      onSelf?.(peerId);
    }),
  );
  return link;
}

/**
 * The worker's side of the frame bridge over `port`. Each peer's bytes go on the direct
 * channel the page handed over with the peer, once the peer's end of it answered; without
 * one, through the page. `onSelf` hears this node's peer id when the page reports it.
 */
function createBridgeLink(port: BridgePort, clock: Clock, onSelf: (peerId: string) => void): PeerLink {
  const peers = new Map<string, PeerState>();
  /** Peers whose direct channel has not heard from the other end yet: not joined until it has, or until the timeout. */
  const pending = new Map<string, { info: PeerInfo; channel: DirectChannel; cancelTimeout: Cancel }>();
  /** Each peer's direct channel, whichever way this node sends: the peer may send on it regardless. */
  const channels = new Map<string, DirectChannel>();
  const events = linkEvents();
  let self: string | undefined;
  let members: string[] | 'unlisted' = 'unlisted';

  const { emit } = events;
  const wake = (state: PeerState) => {
    for (const resume of state.waiting.splice(0)) resume();
  };

  const join = (info: PeerInfo, direct: DirectChannel | undefined) => {
    const peer = { ...info, dataPath: direct === undefined ? ('page' as const) : ('worker' as const) };
    peers.set(info.peerId, { info: peer, direct, inFlightBytes: 0, unreportedBytes: 0, waiting: [] });
    emit('joined', peer);
  };

  const leave = (peerId: string, reason: string) => {
    const waiting = pending.get(peerId);
    waiting?.cancelTimeout();
    pending.delete(peerId);
    channels.get(peerId)?.close();
    channels.delete(peerId);
    const state = peers.get(peerId);
    if (state === undefined) return;
    peers.delete(peerId);
    wake(state);
    emit('left', { peerId, reason });
  };

  /** Bytes of the peer's stream; those that came through the page are reported consumed, so the page can bound what it holds. */
  const receive = (peerId: string, bytes: Uint8Array, throughPage: boolean) => {
    emit('data', { peerId, bytes });
    const state = peers.get(peerId);
    if (!throughPage || state === undefined) return;
    state.unreportedBytes += bytes.byteLength;
    if (state.unreportedBytes >= PEER_WINDOW_UPDATE_BYTES) {
      const consumed: WorkerToPage = { type: 'consumed', peerId, bytes: state.unreportedBytes };
      port.postMessage(consumed, []);
      state.unreportedBytes = 0;
    }
  };

  /**
   * Takes over `peerId`'s direct channel. A message sent before the other end's channel
   * exists is lost (negotiated channels have no opening handshake), so each end says `hello`
   * and answers a `hello` with `ack`: whichever end came second is heard, and any message
   * from the other end proves it is there. Only then does this node send on the channel.
   */
  const adoptChannel = (info: PeerInfo, channel: DirectChannel) => {
    const { peerId } = info;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = DATA_CHANNEL_BUFFERED_BYTES_MAX / 2;
    channels.set(peerId, channel);
    const cancelTimeout = clock.after(DIRECT_HANDSHAKE_TIMEOUT_MS, () => {
      if (pending.get(peerId)?.channel !== channel) return;
      pending.delete(peerId);
      join(info, undefined);
    });
    pending.set(peerId, { info, channel, cancelTimeout });
    const otherEndExists = () => {
      if (pending.get(peerId)?.channel !== channel) return;
      cancelTimeout();
      pending.delete(peerId);
      join(info, channel);
    };
    const trySend = (text: string) => {
      try {
        channel.send(text);
      } catch {
        // Closing: its close event ends the peer.
      }
    };
    channel.addEventListener('message', (event) => {
      if (channels.get(peerId) !== channel) return;
      if (event.data === HELLO) trySend(ACK);
      otherEndExists();
      if (event.data instanceof ArrayBuffer) receive(peerId, new Uint8Array(event.data), false);
    });
    channel.addEventListener('bufferedamountlow', () => {
      const state = peers.get(peerId);
      if (state?.direct === channel) wake(state);
    });
    channel.addEventListener('close', () => {
      if (channels.get(peerId) !== channel) return;
      const reason = 'its direct channel closed';
      leave(peerId, reason);
      // The page still holds the connection: closing it lets a new one, with a new channel, take its place.
      const disconnect: WorkerToPage = { type: 'disconnect', peerId, reason };
      port.postMessage(disconnect, []);
    });
    if (channel.readyState === 'open') trySend(HELLO);
    else channel.addEventListener('open', () => trySend(HELLO));
  };

  const onMessage = (event: MessageEvent) => {
    const message = event.data as PageToWorker;
    switch (message.type) {
      case 'self':
        self = message.peerId;
        onSelf(self);
        break;
      case 'joined':
        // The page adopted another connection to a peer it had: a new session.
        if (peers.has(message.peer.peerId) || pending.has(message.peer.peerId)) leave(message.peer.peerId, 'reconnected');
        if (message.channel === undefined) join(message.peer, undefined);
        else adoptChannel(message.peer, message.channel);
        break;
      case 'left':
        leave(message.peerId, message.reason);
        break;
      case 'members':
        members = message.peerIds;
        break;
      case 'quality': {
        const state = peers.get(message.peerId);
        if (state !== undefined) state.info = { ...state.info, rttMs: message.rttMs };
        emit('quality', { peerId: message.peerId, rttMs: message.rttMs });
        break;
      }
      case 'data':
        receive(message.peerId, new Uint8Array(message.bytes), true);
        break;
      case 'credit': {
        const state = peers.get(message.peerId);
        if (state === undefined) break;
        state.inFlightBytes -= message.bytes;
        wake(state);
        break;
      }
    }
  };
  port.addEventListener('message', onMessage);
  port.start();

  /** All of `bytes` at once (a send is never interleaved with another), in messages of at most DIRECT_MESSAGE_BYTES_MAX. */
  const sendDirect = (peerId: string, channel: DirectChannel, bytes: Uint8Array<ArrayBuffer>) => {
    try {
      for (let offset = 0; offset < bytes.byteLength; offset += DIRECT_MESSAGE_BYTES_MAX) {
        channel.send(bytes.subarray(offset, offset + DIRECT_MESSAGE_BYTES_MAX));
      }
    } catch {
      throw new PeerNotConnectedError(peerId, `peer ${peerId}: its direct channel closed`);
    }
  };

  /** Hands `bytes` to the page for the peer's libp2p stream: a large buffer is transferred, a small one copied. */
  const sendThroughPage = (peerId: string, state: PeerState, bytes: Uint8Array) => {
    state.inFlightBytes += bytes.byteLength;
    const buffer =
      bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : bytes.slice().buffer;
    const message: WorkerToPage = { type: 'send', peerId, bytes: buffer };
    port.postMessage(message, buffer.byteLength < BRIDGE_COPY_BYTES_MAX ? [] : [buffer]);
  };

  return {
    get peerId() {
      return self;
    },
    peers: () => [...peers.values()].map((state) => state.info),
    members: () => members,
    async send(peerId, bytes, options = {}) {
      const { signal } = options;
      for (;;) {
        if (signal?.aborted === true) throw new AbortedError(undefined, { cause: signal.reason });
        const state = peers.get(peerId);
        if (state === undefined) throw new PeerNotConnectedError(peerId);
        if (state.direct !== undefined) {
          // One send may overshoot the bound by a frame (8 MiB at most): well under Chromium's 16 MiB.
          if (state.direct.bufferedAmount <= DATA_CHANNEL_BUFFERED_BYTES_MAX) return sendDirect(peerId, state.direct, bytes as Uint8Array<ArrayBuffer>);
        } else if (state.inFlightBytes === 0 || state.inFlightBytes + bytes.byteLength <= BRIDGE_WINDOW_BYTES) {
          // One message larger than the window still goes, alone: the window bounds what queues behind it.
          return sendThroughPage(peerId, state, bytes);
        }
        await new Promise<void>((resume) => {
          const onAbort = () => resume();
          signal?.addEventListener('abort', onAbort, { once: true });
          state.waiting.push(() => {
            signal?.removeEventListener('abort', onAbort);
            resume();
          });
        });
      }
    },
    on: events.on,
    close() {
      port.removeEventListener('message', onMessage);
      port.close();
      for (const { cancelTimeout } of pending.values()) cancelTimeout();
      pending.clear();
      for (const channel of channels.values()) channel.close();
      channels.clear();
      for (const [peerId, state] of peers) {
        peers.delete(peerId);
        wake(state);
      }
    },
  };
}
