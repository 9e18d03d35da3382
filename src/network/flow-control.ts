// Flow control of peer RPC: a node sends a peer at most about PEER_WINDOW_BYTES that the
// peer's node has not yet consumed, and announces what it consumed of the peer's stream in
// `window` frames, so a peer that stops reading holds a bounded amount of this node's memory
// and of the bridge's.

import { PEER_WINDOW_BYTES, PEER_WINDOW_UPDATE_BYTES } from './constants';

/** One peer channel's window, both ways: what this node sent and the peer has not acknowledged, and what it consumed and has not announced. */
export class PeerWindow {
  #unackedBytes = 0;
  #consumedBytes = 0;

  /** Bytes sent to the peer that its node has not yet said it consumed. */
  get unackedBytes(): number {
    return this.#unackedBytes;
  }

  /**
   * Whether a chunk of `bytes` may be sent now. Fewer than PEER_WINDOW_UPDATE_BYTES
   * unacknowledged may never be granted (the receiver waits for that many), so a chunk over the
   * window goes then, not when nothing is unacknowledged.
   */
  allows(bytes: number): boolean {
    return this.#unackedBytes < PEER_WINDOW_UPDATE_BYTES || this.#unackedBytes + bytes <= PEER_WINDOW_BYTES;
  }

  /** Counts `bytes` handed to the link for the peer. */
  sent(bytes: number): void {
    this.#unackedBytes += bytes;
  }

  /** The peer's `window` frame: its node consumed `bytes` more of this node's stream. */
  acknowledged(bytes: number): void {
    this.#unackedBytes = Math.max(0, this.#unackedBytes - bytes);
  }

  /** Counts `bytes` of the peer's stream consumed here; returns how many to announce in a `window` frame now (once at least PEER_WINDOW_UPDATE_BYTES), else 0. */
  consumed(bytes: number): number {
    this.#consumedBytes += bytes;
    if (this.#consumedBytes < PEER_WINDOW_UPDATE_BYTES) return 0;
    const granted = this.#consumedBytes;
    this.#consumedBytes = 0;
    return granted;
  }
}
