import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError } from '../../src/errors';
import { createPageBridge, RECEIVE_BACKLOG_BYTES_MAX, type PageBridge, type WritableStream } from '../../src/network';
import { BRIDGE_WINDOW_BYTES, createPeerLink, PeerNotConnectedError, type BridgePort, type PeerLink, type WorkerToPage } from '../../src/network/worker';
import { until } from '../support/until';

const MiB = 1024 * 1024;
const PEER = '12D3KooWQFFcWrX3kdFtayJ4UqsX8dEWGWirNCivJ5UDYA6eAyzF';

/**
 * A stream whose transport stalls when told to, or by itself once `capacityBytes` were sent
 * since the last `flow()` (as a data channel over its buffered limit), until `flow()`: it
 * keeps what was sent. Like libp2p's, it announces each drain with one `drain` event.
 */
function fakeStream(capacityBytes = Infinity): WritableStream & { sent: Uint8Array[]; stall(): void; flow(): void } {
  const events = new EventTarget();
  let buffered = 0;
  const stream = {
    sent: [] as Uint8Array[],
    writeBufferLength: 0,
    writableNeedsDrain: false,
    send(data: Uint8Array) {
      stream.sent.push(data);
      buffered += data.byteLength;
      if (buffered >= capacityBytes) stream.writableNeedsDrain = true;
      return !stream.writableNeedsDrain;
    },
    addEventListener: (type: 'drain' | 'close', listener: () => void, options?: { once?: boolean }) => events.addEventListener(type, listener, options),
    removeEventListener: (type: 'drain' | 'close', listener: () => void) => events.removeEventListener(type, listener),
    stall() {
      stream.writableNeedsDrain = true;
    },
    flow() {
      buffered = 0;
      stream.writableNeedsDrain = false;
      events.dispatchEvent(new Event('drain'));
    },
  };
  return stream;
}

let page: PageBridge;
let link: PeerLink;
const cleanups: Array<() => void> = [];
function connect(onDisconnect?: (peerId: string, reason: string) => void) {
  const { port1, port2 } = new MessageChannel();
  page = createPageBridge(port1 as unknown as BridgePort, undefined, onDisconnect);
  link = createPeerLink(port2 as unknown as BridgePort);
  cleanups.push(() => page.close(), () => link.close());
}
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const info = { peerId: PEER, remoteAddr: `/webrtc/p2p/${PEER}`, limited: false, since: 1 };

describe('frame bridge', () => {
  it('reports peers and delivers their bytes to the worker in order', async () => {
    connect();
    const joined: string[] = [];
    const received: number[] = [];
    link.on('joined', (peer) => joined.push(peer.peerId));
    link.on('data', ({ bytes }) => received.push(...bytes));
    page.report({ type: 'self', peerId: 'me' });
    page.attach(PEER, fakeStream());
    page.report({ type: 'joined', peer: info });
    const chunk = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    page.deliver(PEER, chunk);
    page.deliver(PEER, { subarray: () => new Uint8Array([4]) });
    await until(() => received.length === 4, 'data');
    expect(received).toEqual([1, 2, 3, 4]);
    expect(chunk).toEqual(new Uint8Array([1, 2, 3])); // delivered as a copy: the transport's buffer is left alone
    expect(joined).toEqual([PEER]);
    expect(link.peerId).toBe('me');
    expect(link.peers()).toEqual([{ ...info, dataPath: 'page' }]);
    page.report({ type: 'quality', peerId: PEER, rttMs: 1.5 });
    page.report({ type: 'left', peerId: PEER, reason: 'test' });
    await until(() => link.peers().length === 0, 'left');
  });

  it('bounds what the worker has in flight to a stalled peer, and resumes when the stream drains', async () => {
    connect();
    const stream = fakeStream();
    page.attach(PEER, stream);
    page.report({ type: 'joined', peer: info });
    await until(() => link.peers().length === 1, 'joined');
    stream.stall();
    const sends = [0, 1, 2, 3].map((i) => link.send(PEER, new Uint8Array(MiB).fill(i)));
    let done = 0;
    sends.forEach((s) => void s.then(() => done++));
    await until(() => done === BRIDGE_WINDOW_BYTES / MiB, 'the window fills');
    // Nothing reaches the stalled transport, and the worker's further sends wait for credit.
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setTimeout(resolve, 0));
    expect(done).toBe(BRIDGE_WINDOW_BYTES / MiB);
    expect(stream.sent).toHaveLength(0);
    stream.flow();
    await Promise.all(sends);
    await until(() => stream.sent.length === 4, 'all written');
    expect(stream.sent.map((b) => b[0])).toEqual([0, 1, 2, 3]);
  });

  it('a peer that sends past what the worker has read is cut off at the bound; one the worker keeps up with never is', async () => {
    const overruns: string[] = [];
    connect((peerId) => overruns.push(peerId));
    let received = 0;
    link.on('data', ({ bytes }) => (received += bytes.byteLength));
    page.attach(PEER, fakeStream());
    page.report({ type: 'joined', peer: info });
    await until(() => link.peers().length === 1, 'joined');
    // Well-behaved: three bounds' worth, each MiB sent once the worker has read the last.
    const chunks = Math.ceil((3 * RECEIVE_BACKLOG_BYTES_MAX) / MiB);
    for (let i = 1; i <= chunks; i++) {
      page.deliver(PEER, new Uint8Array(MiB));
      await until(() => received === i * MiB, `chunk ${i} read`);
      await new Promise((resolve) => setTimeout(resolve, 0)); // the worker's report reaches the page
    }
    expect(overruns).toEqual([]);
    // Hostile: a flood faster than the worker reads. What is past the bound is dropped and reported.
    received = 0;
    const flood = Math.ceil(RECEIVE_BACKLOG_BYTES_MAX / MiB) + 3;
    for (let i = 0; i < flood; i++) page.deliver(PEER, new Uint8Array(MiB));
    expect(overruns.length).toBeGreaterThan(0);
    expect(new Set(overruns)).toEqual(new Set([PEER]));
    await until(() => received === Math.floor(RECEIVE_BACKLOG_BYTES_MAX / MiB) * MiB, 'what was under the bound read');
  });

  it('waits for a fresh drain each time the stream fills again, and the page keeps running meanwhile', async () => {
    // Regression: the writer awaited libp2p's onDrain(), which stays settled after the first
    // drain; the second time the channel filled, the writer looped on microtasks and froze the page.
    connect();
    const stream = fakeStream(MiB);
    page.attach(PEER, stream);
    page.report({ type: 'joined', peer: info });
    await until(() => link.peers().length === 1, 'joined');
    const sends = [0, 1, 2, 3].map((i) => link.send(PEER, new Uint8Array(MiB).fill(i)));
    for (let written = 1; written <= 4; written++) {
      await until(() => stream.sent.length === written, `write ${written}`);
      // Full again: nothing more is written until the next drain, and macrotasks still run.
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 0));
      expect(stream.sent).toHaveLength(written);
      stream.flow();
    }
    await Promise.all(sends);
    expect(stream.sent.map((b) => b[0])).toEqual([0, 1, 2, 3]);
  });

  it("passes the worker's request to disconnect a peer on to the page's network", async () => {
    const disconnects: string[] = [];
    const { port1, port2 } = new MessageChannel();
    const bridge = createPageBridge(port1 as unknown as BridgePort, undefined, (peerId, reason) => disconnects.push(`${peerId}: ${reason}`));
    cleanups.push(() => bridge.close(), () => port2.close());
    port2.postMessage({ type: 'disconnect', peerId: PEER, reason: 'its direct channel closed' } satisfies WorkerToPage);
    await until(() => disconnects.length === 1, 'disconnect');
    expect(disconnects).toEqual([`${PEER}: its direct channel closed`]);
  });

  it('fails sends to an unknown or departed peer and honours abort', async () => {
    connect();
    await expect(link.send(PEER, new Uint8Array(1))).rejects.toBeInstanceOf(PeerNotConnectedError);
    const stream = fakeStream();
    page.attach(PEER, stream);
    page.report({ type: 'joined', peer: info });
    await until(() => link.peers().length === 1, 'joined');
    stream.stall();
    await link.send(PEER, new Uint8Array(BRIDGE_WINDOW_BYTES));
    const controller = new AbortController();
    const aborted = link.send(PEER, new Uint8Array(1), { signal: controller.signal });
    const orphaned = link.send(PEER, new Uint8Array(1));
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortedError);
    page.detach(PEER);
    page.report({ type: 'left', peerId: PEER, reason: 'test' });
    await expect(orphaned).rejects.toBeInstanceOf(PeerNotConnectedError);
  });
});
