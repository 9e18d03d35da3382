// What test/e2e/pages/peer-net.ts puts on window, for the specs that drive it.

export interface PeerNetPage {
  peerId: string;
  /** Peers the RPC layer can reach (direct connections). */
  peers(): string[];
  /** How broker bytes travel to each of those peers (PeerInfo.dataPath). */
  dataPaths(): string[];
  /** An echo request; its outcome, or the typed error's name and code. */
  echo(peerId: string, timeoutMs: number): Promise<{ ok: true; ms: number } | { ok: false; name: string; code: string; ms: number }>;
  /** Closes the direct WebRTC connections to `peerId`. */
  cut(peerId: string): Promise<number>;
  /** While true, every new RTCPeerConnection of this page is closed at once: no direct connection can form. */
  blockWebRtc(blocked: boolean): void;
  /** Connections to `peerId` now: their kind and the protocols of their open streams. */
  connections(peerId: string): Array<{ limited: boolean; direct: boolean; protocols: string[] }>;
  /** Opens a relayed connection to `peerId` through the relay (as a WebRTC dial's signalling does); whether it is limited. */
  dialRelayed(peerId: string): Promise<{ limited: boolean }>;
  /** Opens a broker stream to `peerId` on a relayed (limited) connection, as a misbehaving node would: the stream's status 5 s later (`open` if the peer took it), or the error's name. */
  brokerStreamOnRelay(peerId: string): Promise<string>;
  /** The most broker streams seen at once on a limited connection since start (sampled every 20 ms and at each new connection). */
  brokerStreamsOnLimitedMax(): number;
  /**
   * Sends `peerId` hostile bytes, past this page's RPC: floods of requests, unknown types and
   * versions, an oversized and a truncated frame, then ~8 MiB of random bytes, ignoring the
   * flow-control window — until done, or until a send finds no room for 3 s. What it sent and what stopped it.
   */
  attack(peerId: string): Promise<{ sentBytes: number; stoppedBy: string }>;
}

declare global {
  interface Window {
    peerNet?: PeerNetPage;
  }
}

export {};
