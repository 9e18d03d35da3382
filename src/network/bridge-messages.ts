// Messages over the MessagePort between the page's network side and the worker. Types only,
// shared by both sides (no DOM or WebWorker types), so either end can be tested alone.

/** How this node reaches a peer: `direct` WebRTC; broker traffic never takes a relayed path. */
export interface PeerInfo {
  peerId: string;
  /** The remote address of the direct connection, e.g. `/webrtc/p2p/12D3…` (no IPs). */
  remoteAddr: string;
  /** Whether the connection has a relay's limits: always false for a peer (broker traffic is direct only); reported so that tests and the demo can check. */
  limited: boolean;
  /** Last ping round trip, once measured. */
  rttMs?: number;
  /** When the direct connection opened (ms since the epoch). */
  since: number;
  /**
   * How broker bytes travel to the peer, once the worker chose: `worker`, on a data channel
   * handed to the worker (they never cross the page); `page`, through the page's libp2p stream;
   * `local`, a tab of the same origin reached over the local transport (no WebRTC, no relay).
   */
  dataPath?: 'worker' | 'page' | 'local';
}

/** Page → worker. `data` carries bytes of the peer's stream as they arrived (frame boundaries are the worker's to find); its buffer is transferred. */
export type PageToWorker =
  | { type: 'self'; peerId: string }
  /** `channel`, when the page could open one: the peer connection's direct channel, transferred (FORMATS.md § Transport). */
  | { type: 'joined'; peer: PeerInfo; channel?: DirectChannel }
  | { type: 'left'; peerId: string; reason: string }
  | { type: 'quality'; peerId: string; rttMs: number }
  /** The cluster's other members as the relay lists them, linked or not yet (a new broker waits for them before it bootstraps); after a failed relay session, those known so far. */
  | { type: 'members'; peerIds: string[] }
  | { type: 'data'; peerId: string; bytes: ArrayBuffer }
  /** `bytes` of earlier `send`s to this peer were written (or dropped because it left): the worker may send that much more. */
  | { type: 'credit'; peerId: string; bytes: number };

/**
 * Worker → page: `send` carries bytes for one peer's stream (buffer transferred); `consumed`
 * says the worker has read that many more bytes of the peer's `data`, so the page can bound
 * what it holds for a peer that ignores the window; `disconnect` asks the page to close its
 * connection to a peer the worker can no longer talk to (its direct channel closed), so that
 * a new connection, with a new channel, replaces it.
 */
export type WorkerToPage =
  | { type: 'send'; peerId: string; bytes: ArrayBuffer }
  | { type: 'consumed'; peerId: string; bytes: number }
  | { type: 'disconnect'; peerId: string; reason: string };

/**
 * The part of RTCDataChannel the worker uses (structural: no DOM types here, and tests can
 * pass a fake). Text messages are the handshake, binary ones the peer's byte stream.
 */
export interface DirectChannel {
  binaryType: string;
  readonly readyState: string;
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold: number;
  send(data: string): void;
  send(data: ArrayBufferView<ArrayBuffer>): void;
  close(): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  addEventListener(type: 'open' | 'close' | 'bufferedamountlow', listener: () => void): void;
}

/** The part of MessagePort both sides use: structural, so tests can pass any channel. */
export interface BridgePort {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  start(): void;
  close(): void;
}
