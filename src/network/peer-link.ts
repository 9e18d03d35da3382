import { AbortedError, PeerNotConnectedError } from '../errors';

// Defined with the other errors so that it crosses Comlink as itself; re-exported here, where it is raised.
export { PeerNotConnectedError };
import type { BridgePort, PageToWorker, PeerInfo, WorkerToPage } from './bridge-messages';
import { BRIDGE_COPY_BYTES_MAX, BRIDGE_WINDOW_BYTES, PEER_WINDOW_UPDATE_BYTES } from './constants';

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
   * Queues `bytes` for `peerId`'s stream; resolves once the page may take them, waiting
   * while {@link BRIDGE_WINDOW_BYTES} are already in flight to that peer. The buffer is
   * transferred (unusable afterwards). Rejects with PeerNotConnectedError, or AbortedError.
   */
  send(peerId: string, bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
  on<E extends keyof PeerLinkEvents>(type: E, listener: (event: PeerLinkEvents[E]) => void): () => void;
  close(): void;
}

interface PeerState {
  info: PeerInfo;
  inFlightBytes: number;
  /** Bytes of the peer's data read here and not yet reported to the page as consumed. */
  unreportedBytes: number;
  /** Sends waiting for credit, woken in order. */
  waiting: Array<() => void>;
}

/**
 * The worker's side of the frame bridge over `port` (a MessagePort from the page's network).
 * @example const link = createPeerLink(port); link.on('joined', (peer) => console.log(peer.peerId));
 */
export function createPeerLink(port: BridgePort): PeerLink {
  const peers = new Map<string, PeerState>();
  const listeners = new Map<keyof PeerLinkEvents, Set<(event: never) => void>>();
  let self: string | undefined;

  const emit = <E extends keyof PeerLinkEvents>(type: E, event: PeerLinkEvents[E]) => {
    for (const listener of listeners.get(type) ?? []) (listener as (event: PeerLinkEvents[E]) => void)(event);
  };
  const wake = (state: PeerState) => {
    for (const resume of state.waiting.splice(0)) resume();
  };

  const onMessage = (event: MessageEvent) => {
    const message = event.data as PageToWorker;
    switch (message.type) {
      case 'self':
        self = message.peerId;
        break;
      case 'joined':
        peers.set(message.peer.peerId, { info: message.peer, inFlightBytes: 0, unreportedBytes: 0, waiting: [] });
        emit('joined', message.peer);
        break;
      case 'left': {
        const state = peers.get(message.peerId);
        if (state === undefined) break;
        peers.delete(message.peerId);
        wake(state);
        emit('left', { peerId: message.peerId, reason: message.reason });
        break;
      }
      case 'quality': {
        const state = peers.get(message.peerId);
        if (state !== undefined) state.info = { ...state.info, rttMs: message.rttMs };
        emit('quality', { peerId: message.peerId, rttMs: message.rttMs });
        break;
      }
      case 'data': {
        emit('data', { peerId: message.peerId, bytes: new Uint8Array(message.bytes) });
        const state = peers.get(message.peerId);
        if (state === undefined) break;
        state.unreportedBytes += message.bytes.byteLength;
        if (state.unreportedBytes >= PEER_WINDOW_UPDATE_BYTES) {
          const consumed: WorkerToPage = { type: 'consumed', peerId: message.peerId, bytes: state.unreportedBytes };
          port.postMessage(consumed, []);
          state.unreportedBytes = 0;
        }
        break;
      }
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

  return {
    get peerId() {
      return self;
    },
    peers: () => [...peers.values()].map((state) => state.info),
    async send(peerId, bytes, options = {}) {
      const { signal } = options;
      for (;;) {
        if (signal?.aborted === true) throw new AbortedError(undefined, { cause: signal.reason });
        const state = peers.get(peerId);
        if (state === undefined) throw new PeerNotConnectedError(peerId);
        // One message larger than the window still goes, alone: the window bounds what queues behind it.
        if (state.inFlightBytes === 0 || state.inFlightBytes + bytes.byteLength <= BRIDGE_WINDOW_BYTES) {
          state.inFlightBytes += bytes.byteLength;
          const buffer =
            bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
              ? bytes.buffer
              : bytes.slice().buffer;
          const message: WorkerToPage = { type: 'send', peerId, bytes: buffer };
          port.postMessage(message, buffer.byteLength < BRIDGE_COPY_BYTES_MAX ? [] : [buffer]);
          return;
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
    on(type, listener) {
      const set = listeners.get(type) ?? new Set();
      set.add(listener as (event: never) => void);
      listeners.set(type, set);
      return () => set.delete(listener as (event: never) => void);
    },
    close() {
      port.removeEventListener('message', onMessage);
      port.close();
      for (const [peerId, state] of peers) {
        peers.delete(peerId);
        wake(state);
      }
    },
  };
}
