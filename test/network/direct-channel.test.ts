import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortedError } from '../../src/errors';
import {
  createPeerLink,
  DATA_CHANNEL_BUFFERED_BYTES_MAX,
  DIRECT_HANDSHAKE_TIMEOUT_MS,
  DIRECT_MESSAGE_BYTES_MAX,
  PeerNotConnectedError,
  type DirectChannel,
  type PeerLink,
} from '../../src/network/worker';
import { fakePort } from '../support/fake-port';
import { until } from '../support/until';

// The worker's side of the direct channel (src/network/peer-link.ts): its handshake, its
// fallback to the page, and its flow control, against fake channel ends that behave as
// negotiated WebRTC data channels do: a message reaching an end that does not exist yet is lost.

const MiB = 1024 * 1024;
const A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const B = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const infoOf = (peerId: string) => ({ peerId, remoteAddr: `/webrtc/p2p/${peerId}`, limited: false, since: 1 });

class FakeChannelEnd implements DirectChannel {
  binaryType = 'blob';
  readyState = 'open';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  /** Whether this end was created: until then, what the other end sends is lost. */
  exists = false;
  /** While set, sent messages stay buffered here (a peer that does not read). */
  stalled = false;
  other!: FakeChannelEnd;
  readonly messagesSent: Array<string | number> = [];
  #held: Array<() => void> = [];

  readonly #events = new EventTarget();

  addEventListener(type: string, listener: ((event: MessageEvent) => void) | (() => void)): void {
    this.#events.addEventListener(type, listener as EventListener);
  }

  dispatchEvent(event: Event): void {
    this.#events.dispatchEvent(event);
  }

  send(data: string | ArrayBufferView<ArrayBuffer>): void {
    if (this.readyState !== 'open') throw new DOMException('RTCDataChannel.readyState is not open', 'InvalidStateError');
    const payload = typeof data === 'string' ? data : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    const size = typeof payload === 'string' ? payload.length : payload.byteLength;
    this.messagesSent.push(typeof payload === 'string' ? payload : size);
    this.bufferedAmount += size;
    this.#held.push(() => {
      const before = this.bufferedAmount;
      this.bufferedAmount -= size;
      if (before > this.bufferedAmountLowThreshold && this.bufferedAmount <= this.bufferedAmountLowThreshold) this.dispatchEvent(new Event('bufferedamountlow'));
      if (this.other.exists && this.other.readyState === 'open') this.other.dispatchEvent(new MessageEvent('message', { data: payload }));
    });
    setTimeout(() => {
      if (!this.stalled) this.flow();
    }, 0);
  }

  /** Delivers what is buffered. */
  flow(): void {
    this.stalled = false;
    for (const deliver of this.#held.splice(0)) deliver();
  }

  close(): void {
    for (const end of [this, this.other]) {
      if (end.readyState === 'closed') continue;
      end.readyState = 'closed';
      setTimeout(() => end.dispatchEvent(new Event('close')), 0);
    }
  }
}

function channelPair(): [FakeChannelEnd, FakeChannelEnd] {
  const a = new FakeChannelEnd();
  const b = new FakeChannelEnd();
  a.other = b;
  b.other = a;
  return [a, b];
}

interface Node {
  link: PeerLink;
  port: ReturnType<typeof fakePort>;
  received: number[];
}
const nodes: Node[] = [];
function node(): Node {
  const port = fakePort();
  const link = createPeerLink(port);
  const created: Node = { link, port, received: [] };
  link.on('data', ({ bytes }) => created.received.push(...bytes));
  nodes.push(created);
  return created;
}
/** The page of `at` adopted the connection to `peerId` and created its end of the channel. */
function hand(at: Node, peerId: string, end: FakeChannelEnd): void {
  end.exists = true;
  at.port.fromPage({ type: 'joined', peer: infoOf(peerId), channel: end });
}

afterEach(() => {
  for (const { link } of nodes.splice(0)) link.close();
  vi.useRealTimers();
});

describe('direct channel', () => {
  it('an end created after the other heard nothing: the later hello is heard, answered, and both send on the channel', async () => {
    const [endA, endB] = channelPair();
    const a = node();
    const b = node();
    hand(a, B, endA);
    await until(() => endA.messagesSent.length === 1 && endA.bufferedAmount === 0, 'A said hello');
    // A's hello went nowhere: B's end did not exist. A waits; it joins nobody yet.
    expect(a.link.peers()).toEqual([]);
    hand(b, A, endB);
    await until(() => a.link.peers().length === 1 && b.link.peers().length === 1, 'both joined');
    expect(a.link.peers()[0]?.dataPath).toBe('worker');
    expect(b.link.peers()[0]?.dataPath).toBe('worker');
    expect(endA.messagesSent).toEqual(['hello', 'ack']);
    expect(endB.messagesSent).toEqual(['hello']);

    await a.link.send(B, new Uint8Array([1, 2, 3]));
    await b.link.send(A, new Uint8Array([4, 5]));
    await until(() => b.received.length === 3 && a.received.length === 2, 'bytes both ways');
    expect(b.received).toEqual([1, 2, 3]);
    expect(a.received).toEqual([4, 5]);
    // Nothing went through either page.
    expect([...a.port.toPage, ...b.port.toPage].filter((m) => m.type === 'send')).toEqual([]);
  });

  it('a send larger than one message goes in messages of at most DIRECT_MESSAGE_BYTES_MAX, in order', async () => {
    const [endA, endB] = channelPair();
    const a = node();
    const b = node();
    hand(a, B, endA);
    hand(b, A, endB);
    await until(() => a.link.peers().length === 1, 'joined');
    const bytes = new Uint8Array(DIRECT_MESSAGE_BYTES_MAX * 2 + 10).map((_, i) => i % 251);
    await a.link.send(B, bytes.slice());
    await a.link.send(B, new Uint8Array([7]));
    await until(() => b.received.length === bytes.length + 1, 'all bytes');
    expect(b.received).toEqual([...bytes, 7]);
    expect(endA.messagesSent.filter((m) => typeof m === 'number')).toEqual([DIRECT_MESSAGE_BYTES_MAX, DIRECT_MESSAGE_BYTES_MAX, 10, 1]);
  });

  it('without an answer within DIRECT_HANDSHAKE_TIMEOUT_MS the peer joins through the page, and what it sends on the channel is still read', async () => {
    vi.useFakeTimers();
    const [endA, endB] = channelPair();
    const a = node();
    hand(a, B, endA);
    await vi.advanceTimersByTimeAsync(DIRECT_HANDSHAKE_TIMEOUT_MS - 1);
    expect(a.link.peers()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(a.link.peers()[0]?.dataPath).toBe('page');
    await a.link.send(B, new Uint8Array([1, 2]));
    expect(a.port.toPage).toMatchObject([{ type: 'send', peerId: B }]);
    // The peer's end appears late, and it hears A: it sends on the channel, and A reads it.
    endB.exists = true;
    endB.send('hello');
    endB.send(new Uint8Array([9, 8]));
    await vi.advanceTimersByTimeAsync(1);
    expect(a.received).toEqual([9, 8]);
  });

  it('a peer that does not read: sends wait while the channel holds DATA_CHANNEL_BUFFERED_BYTES_MAX, resume when it drains, and can be aborted', async () => {
    const [endA, endB] = channelPair();
    const a = node();
    const b = node();
    hand(a, B, endA);
    hand(b, A, endB);
    await until(() => a.link.peers().length === 1 && b.link.peers().length === 1 && endA.bufferedAmount === 0, 'joined, handshake delivered');
    endA.stalled = true;
    const chunk = () => new Uint8Array(MiB);
    let sent = 0;
    while (endA.bufferedAmount <= DATA_CHANNEL_BUFFERED_BYTES_MAX) {
      await a.link.send(B, chunk());
      sent++;
    }
    expect(sent).toBe(DATA_CHANNEL_BUFFERED_BYTES_MAX / MiB + 1);
    let done = false;
    const waiting = a.link.send(B, chunk()).then(() => (done = true));
    const controller = new AbortController();
    const aborted = a.link.send(B, chunk(), { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(done).toBe(false);
    expect(endA.bufferedAmount).toBe(sent * MiB);
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortedError);
    endA.flow();
    await waiting;
    await until(() => b.received.length === (sent + 1) * MiB, 'all delivered');
  });

  it('text other than the handshake from the peer is ignored: nothing reaches the byte stream, and the peer keeps being served', async () => {
    const [endA, endB] = channelPair();
    const a = node();
    hand(a, B, endA);
    endB.exists = true;
    endB.send('hello');
    endB.send('x'.repeat(100_000));
    endB.send('{"type":"data"}');
    endB.send(new Uint8Array([1, 2]));
    await until(() => a.received.length === 2, 'the binary message');
    expect(a.received).toEqual([1, 2]);
    expect(a.link.peers()[0]?.dataPath).toBe('worker');
    await a.link.send(B, new Uint8Array([3]));
    expect(endA.messagesSent.at(-1)).toBe(1);
  });

  it('the channel closing ends the peer: "left", and sends fail with PeerNotConnectedError', async () => {
    const [endA, endB] = channelPair();
    const a = node();
    const b = node();
    const left: string[] = [];
    a.link.on('left', ({ reason }) => left.push(reason));
    hand(a, B, endA);
    hand(b, A, endB);
    await until(() => a.link.peers().length === 1, 'joined');
    endB.close();
    await until(() => left.length === 1, 'left');
    expect(left).toEqual(['its direct channel closed']);
    expect(a.link.peers()).toEqual([]);
    // The page is asked to close the connection, so that a new one (with a new channel) replaces it.
    expect(a.port.toPage).toContainEqual({ type: 'disconnect', peerId: B, reason: 'its direct channel closed' });
    await expect(a.link.send(B, new Uint8Array([1]))).rejects.toBeInstanceOf(PeerNotConnectedError);
  });

  it('the page reporting the peer gone closes its channel, also while the handshake waits', async () => {
    const [endA] = channelPair();
    const a = node();
    hand(a, B, endA);
    a.port.fromPage({ type: 'left', peerId: B, reason: 'connection closed' });
    expect(endA.readyState).toBe('closed');
    expect(a.link.peers()).toEqual([]);
    // Its close event comes after: the page, which reported the peer gone, is not asked to disconnect it.
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(a.port.toPage.filter((m) => m.type === 'disconnect')).toEqual([]);
  });
});
