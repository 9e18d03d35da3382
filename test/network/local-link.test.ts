import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, PeerError, TimeoutError } from '../../src/errors';
import { createPeerFrameCodec, FRAME_HEADER_BYTES, type FrameResult, type PeerMessageTypes } from '../../src/protocol';
import {
  createLocalLink,
  createPeerRpc,
  discoveryChannelName,
  localFirst,
  LOCAL_MESSAGE_BYTES_MAX,
  LOCAL_VERSION,
  pairChannelName,
  PEER_WINDOW_BYTES,
  PeerNotConnectedError,
  RPC_BAD_FRAMES_MAX,
  type LocalChannel,
  type LocalLink,
  type PeerInfo,
  type PeerLink,
  type PeerLinkEvents,
  type PeerRpc,
} from '../../src/network/worker';
import { createMemoryLocks, type MemoryLocks } from '../support/memory-locks';
import { rawFrame } from '../support/raw-frame';
import { until } from '../support/until';

// The local transport over Node's real BroadcastChannel (it reaches every channel of the same
// name in this process, as a browser's does across an origin's tabs), with Web Locks in memory.

const bytesOf = (...values: number[]) => new Uint8Array(values);
let clusterCount = 0;
const newCluster = () => `local-test-${process.pid}-${++clusterCount}`;

interface Tab {
  link: LocalLink;
  refusals: PeerError[];
  /** The worker ends without a word: its channels close and its locks are released, as when a tab is closed. */
  crash(): void;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function openTab(locks: MemoryLocks, cluster: string, peerId: string): Tab {
  const client = locks.client();
  const channels: BroadcastChannel[] = [];
  const refusals: PeerError[] = [];
  const link = createLocalLink({
    cluster,
    peerId,
    locks: client,
    openChannel: (name) => {
      const channel = new BroadcastChannel(name);
      channels.push(channel);
      return channel as unknown as LocalChannel;
    },
    onRefused: (error) => refusals.push(error),
  });
  const crash = () => {
    for (const channel of channels) channel.close();
    client.end();
  };
  cleanups.push(() => {
    link.close();
    crash();
  });
  return { link, refusals, crash };
}

const rpcOn = (link: PeerLink, secret = 'sesame'): PeerRpc => {
  const rpc = createPeerRpc(link, { admission: { secret } });
  rpc.handle('echo', (body) => body);
  cleanups.push(() => rpc.close());
  return rpc;
};
const peerIds = (link: PeerLink) => link.peers().map((peer) => peer.peerId).sort();

/** A channel of the origin that anyone on it could open: what a hostile or buggy script posts. */
function rogueChannel(name: string): BroadcastChannel {
  const channel = new BroadcastChannel(name);
  cleanups.push(() => channel.close());
  return channel;
}

/** Tabs of one cluster (A, B, C unless told), all met, with RPC and admission on each. */
async function threeTabs(ids = ['A', 'B', 'C']) {
  const locks = createMemoryLocks();
  const cluster = newCluster();
  const tabs = ids.map((id) => openTab(locks, cluster, id));
  const rpcs = tabs.map((tab) => rpcOn(tab.link));
  await until(() => tabs.every((tab) => tab.link.peers().length === ids.length - 1), 'all met');
  return { locks, cluster, tabs, rpcs };
}

describe('local transport', () => {
  it('three tabs find each other and exchange peer RPC both ways, admitted with the shared secret', async () => {
    const { tabs, rpcs } = await threeTabs();
    expect(peerIds(tabs[0]!.link)).toEqual(['B', 'C']);
    expect(tabs[1]!.link.peers()[0]).toMatchObject({ dataPath: 'local', limited: false, remoteAddr: expect.stringMatching(/^\/local\/[0-9a-f]{32}$/) });
    expect(await rpcs[0]!.request('B', 'echo', bytesOf(1, 2))).toEqual(bytesOf(1, 2));
    expect(await rpcs[1]!.request('A', 'echo', bytesOf(3))).toEqual(bytesOf(3));
    expect(await rpcs[2]!.request('A', 'echo', bytesOf(4))).toEqual(bytesOf(4));
    expect(rpcs[0]!.stats('C')!.admission).toBe('admitted');
    // A frame larger than one message goes in several, in order.
    const big = new Uint8Array(LOCAL_MESSAGE_BYTES_MAX + 5);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    // Compared as a Buffer: a deep equality over a million elements takes seconds.
    expect(Buffer.from(await rpcs[1]!.request('C', 'echo', big)).equals(Buffer.from(big))).toBe(true);
    expect(tabs.every((tab) => tab.refusals.length === 0)).toBe(true);
  });

  it('a request times out with TimeoutError, a cancelled one stops with AbortedError', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const [a, b] = [openTab(locks, cluster, 'A'), openTab(locks, cluster, 'B')];
    const rpcA = rpcOn(a.link);
    const rpcB = createPeerRpc(b.link, { admission: { secret: 'sesame' } });
    cleanups.push(() => rpcB.close());
    rpcB.handle('echo', () => new Promise(() => undefined));
    await until(() => a.link.peers().length === 1, 'met');
    await expect(rpcA.request('B', 'echo', bytesOf(1), { timeoutMs: 200 })).rejects.toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    const pending = rpcA.request('B', 'echo', bytesOf(2), { signal: controller.signal });
    setTimeout(() => controller.abort(), 5);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(rpcA.stats('B')!.inFlightRequests).toBe(0);
  });

  it('a closed tab (its lock released, no word said) is seen gone: its requests fail with PeerNotConnectedError', async () => {
    const { tabs, rpcs } = await threeTabs();
    const pending = rpcs[0]!.request('C', 'echo', bytesOf(1), { timeoutMs: 60_000 });
    tabs[2]!.crash();
    await expect(pending).rejects.toBeInstanceOf(PeerNotConnectedError);
    await until(() => peerIds(tabs[0]!.link).join() === 'B' && peerIds(tabs[1]!.link).join() === 'A', 'C seen gone by both');
    await expect(rpcs[1]!.request('C', 'echo', bytesOf(1))).rejects.toMatchObject({ code: 'PEER_NOT_CONNECTED' });
    await expect(tabs[0]!.link.send('C', bytesOf(1))).rejects.toBeInstanceOf(PeerNotConnectedError);
    await expect(tabs[0]!.link.send('B', bytesOf(1), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
    expect(await rpcs[0]!.request('B', 'echo', bytesOf(5))).toEqual(bytesOf(5));
  });

  it('a tab that closes says bye; a reopened tab with the same peer id is a new session', async () => {
    const { locks, cluster, tabs } = await threeTabs();
    const left: Array<PeerLinkEvents['left']> = [];
    tabs[0]!.link.on('left', (event) => left.push(event));
    tabs[1]!.link.close();
    await until(() => left.length === 1, 'B left');
    // Its bye on the pair channel, or its lock released, whichever is heard first.
    expect(left[0]).toMatchObject({ peerId: 'B', reason: expect.stringMatching(/^(it said bye|its tab closed)$/) });
    const reopened = openTab(locks, cluster, 'B');
    const rpc = rpcOn(reopened.link);
    await until(() => peerIds(tabs[0]!.link).join() === 'B,C', 'B back');
    expect(await rpc.request('A', 'echo', bytesOf(8))).toEqual(bytesOf(8));
  });

  it('a peer that stops consuming makes senders wait for the window, then time out; nothing is lost once it consumes', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const [a, b] = [openTab(locks, cluster, 'A'), openTab(locks, cluster, 'B')];
    const stalled = stallable(b.link);
    const rpcA = rpcOn(a.link);
    const received: number[] = [];
    const rpcB = createPeerRpc(stalled, { admission: { secret: 'sesame' } });
    cleanups.push(() => rpcB.close());
    rpcB.handle('echo', (body) => {
      received.push(body[0]!);
      return new Uint8Array(0);
    });
    await until(() => a.link.peers().length === 1, 'met');
    expect(await rpcA.request('B', 'echo', bytesOf(0))).toEqual(new Uint8Array(0));
    stalled.stop();
    const chunk = new Uint8Array(256 * 1024);
    let sent = 0;
    let failure: unknown;
    for (;;) {
      try {
        chunk[0] = sent % 256;
        await rpcA.notify('B', 'echo', chunk.slice(), { timeoutMs: 200 });
        sent += 1;
      } catch (error) {
        failure = error;
        break;
      }
    }
    expect(failure).toBeInstanceOf(TimeoutError);
    // What went out is bounded by the window plus the send queue, not by how long the sender kept trying.
    expect(sent * chunk.length).toBeLessThanOrEqual(PEER_WINDOW_BYTES + 4 * 1024 * 1024 + chunk.length);
    stalled.resume();
    await until(() => received.length === sent + 1, 'every message that went out arrives');
    expect(received.slice(1)).toEqual(Array.from({ length: sent }, (_, i) => i % 256));
  });

  it('refuses a peer with another secret on both sides', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const [a, b] = [openTab(locks, cluster, 'A'), openTab(locks, cluster, 'B')];
    const [rpcA, rpcB] = [rpcOn(a.link, 'sesame'), rpcOn(b.link, 'wrong')];
    await until(() => a.link.peers().length === 1, 'met');
    await expect(rpcA.request('B', 'echo', bytesOf(1))).rejects.toMatchObject({ name: 'PeerError', code: 'CLUSTER_AUTHORIZATION_FAILED' });
    await expect(rpcB.request('A', 'echo', bytesOf(1))).rejects.toMatchObject({ code: 'CLUSTER_AUTHORIZATION_FAILED' });
  });

  it('hostile frames from peers: typed error answers, a truncated frame held, a cut-off after too many, and the others still served', async () => {
    const { tabs, rpcs } = await threeTabs(['A', 'B', 'C', 'D', 'E']);
    const [, , unknownThenCorrupt, truncating, oversizing] = tabs as [Tab, Tab, Tab, Tab, Tab];
    // The hostile tabs' nodes ignore the RPC layer and write raw bytes on their links.
    for (const rpc of rpcs.slice(2)) rpc.close();
    const answersFrom = (tab: Tab) => {
      const decoder = createPeerFrameCodec().createStreamDecoder();
      const results: FrameResult<PeerMessageTypes>[] = [];
      tab.link.on('data', ({ peerId, bytes }) => peerId === 'A' && results.push(...decoder.push(bytes)));
      return results;
    };
    const codesOf = (results: FrameResult<PeerMessageTypes>[]) => results.flatMap((r) => (r.ok && r.frame.type === 'error' ? [r.frame.body.code] : []));
    const [fromC, fromE] = [answersFrom(unknownThenCorrupt), answersFrom(oversizing)];

    await unknownThenCorrupt.link.send('A', rawFrame(999, 1, bytesOf(1)));
    await until(() => codesOf(fromC).includes('INVALID_REQUEST'), 'the unknown type answered');
    for (let i = 0; i <= RPC_BAD_FRAMES_MAX; i++) await unknownThenCorrupt.link.send('A', rawFrame(0, 100 + i, bytesOf(0xff)));
    await until(() => rpcs[0]!.stats('C')?.cutOff === true, 'C is cut off');

    await truncating.link.send('A', rawFrame(1, 2, bytesOf(1, 2, 3)).subarray(0, FRAME_HEADER_BYTES - 2)); // the rest never comes
    await until(() => rpcs[0]!.stats('D')?.bufferedBytes === FRAME_HEADER_BYTES - 2, 'the partial frame is held');

    const oversize = rawFrame(1, 3, new Uint8Array(0));
    new DataView(oversize.buffer).setUint32(0, 0xfffffff0);
    await oversizing.link.send('A', oversize);
    await until(() => codesOf(fromE).includes('MESSAGE_TOO_LARGE'), 'the oversized frame answered');

    expect(await rpcs[1]!.request('A', 'echo', bytesOf(7))).toEqual(bytesOf(7));
    expect(await rpcs[0]!.request('B', 'echo', bytesOf(8))).toEqual(bytesOf(8));
    expect(rpcs[0]!.stats('B')!.badFrames).toBe(0);
  });
});

describe('local transport: bad input on the origin', () => {
  it('refuses, typed, messages for another cluster, of another version, malformed, oversized, and forged senders; the node keeps serving', async () => {
    const { cluster, tabs, rpcs } = await threeTabs();
    const [a, b] = tabs as [Tab, Tab, Tab];
    const discovery = rogueChannel(discoveryChannelName(cluster));
    const sessionOf = (tab: Tab) => tab.link.session;
    const refusalsOfA = () => a.refusals.map((error) => error.code);
    const expectRefused = async (codes: string[]) => {
      await until(() => refusalsOfA().length >= codes.length, `A refused ${codes.join(', ')}`);
      expect(refusalsOfA()).toEqual(codes);
      expect(a.refusals.every((error) => error instanceof PeerError)).toBe(true);
    };

    discovery.postMessage({ v: LOCAL_VERSION, type: 'hello', cluster: 'someone-else', peerId: 'X', session: 'f'.repeat(32), reply: false });
    discovery.postMessage({ v: 99, type: 'hello', cluster, peerId: 'X', session: 'f'.repeat(32), reply: false });
    discovery.postMessage('hello');
    discovery.postMessage({ v: LOCAL_VERSION, type: 'hello', cluster, peerId: 'X'.repeat(500), session: 'f'.repeat(32), reply: false });
    await expectRefused(['INCONSISTENT_CLUSTER_ID', 'UNSUPPORTED_VERSION', 'CORRUPT_MESSAGE', 'CORRUPT_MESSAGE']);

    // Forged senders: this node's own id; a session no live worker holds; B's id under another session while B lives; a bye for B while B lives.
    a.refusals.length = 0;
    discovery.postMessage({ v: LOCAL_VERSION, type: 'hello', cluster, peerId: 'A', session: 'e'.repeat(32), reply: false });
    discovery.postMessage({ v: LOCAL_VERSION, type: 'hello', cluster, peerId: 'Z', session: 'd'.repeat(32), reply: false });
    await expectRefused(['FORGED_SENDER', 'FORGED_SENDER']);
    a.refusals.length = 0;
    discovery.postMessage({ v: LOCAL_VERSION, type: 'hello', cluster, peerId: 'B', session: 'c'.repeat(32), reply: false });
    await expectRefused(['FORGED_SENDER']);
    a.refusals.length = 0;
    discovery.postMessage({ v: LOCAL_VERSION, type: 'bye', cluster, peerId: 'B', session: sessionOf(b) });
    await expectRefused(['FORGED_SENDER']);
    expect(a.refusals[0]!.message).toMatch(/still holds its lock/);

    // On the pair channel of A and B: another sender's id, an oversized and a malformed data message.
    a.refusals.length = 0;
    const pair = rogueChannel(pairChannelName(cluster, sessionOf(a), sessionOf(b)));
    pair.postMessage({ v: LOCAL_VERSION, type: 'bye', from: 'b'.repeat(32) });
    pair.postMessage({ v: LOCAL_VERSION, type: 'data', from: sessionOf(b), data: new ArrayBuffer(LOCAL_MESSAGE_BYTES_MAX + 1) });
    pair.postMessage({ v: LOCAL_VERSION, type: 'data', from: sessionOf(b), data: 'not bytes' });
    await expectRefused(['FORGED_SENDER', 'MESSAGE_TOO_LARGE', 'CORRUPT_MESSAGE']);

    // Nothing was lost: the same peers, and they are served.
    expect(peerIds(a.link)).toEqual(['B', 'C']);
    expect(await rpcs[0]!.request('B', 'echo', bytesOf(1))).toEqual(bytesOf(1));
    expect(await rpcs[1]!.request('A', 'echo', bytesOf(2))).toEqual(bytesOf(2));
    expect(await rpcs[2]!.request('A', 'echo', bytesOf(3))).toEqual(bytesOf(3));
  });

  it('tabs of another cluster on the same origin never meet this one', async () => {
    const locks = createMemoryLocks();
    const [one, two] = [newCluster(), newCluster()];
    const [a, b, c] = [openTab(locks, one, 'A'), openTab(locks, one, 'B'), openTab(locks, two, 'C')];
    await until(() => a.link.peers().length === 1 && b.link.peers().length === 1, 'A and B met');
    const d = openTab(locks, two, 'D');
    await until(() => c.link.peers().length === 1 && d.link.peers().length === 1, 'C and D met');
    expect(peerIds(a.link)).toEqual(['B']);
    expect(peerIds(c.link)).toEqual(['D']);
  });
});

describe('local first', () => {
  it('uses the local transport for a peer reachable both ways, and the other link when the local one loses it', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const remote = fakeRemote('A');
    const link = localFirst(remote);
    const events: string[] = [];
    link.on('joined', (peer) => events.push(`joined ${peer.peerId} ${peer.dataPath}`));
    link.on('left', (event) => events.push(`left ${event.peerId}`));
    remote.join({ peerId: 'B', remoteAddr: '/webrtc/p2p/B', limited: false, since: 0, dataPath: 'worker' });
    const a = openTab(locks, cluster, 'A');
    link.addLocal(a.link);
    const b = openTab(locks, cluster, 'B');
    const rpcA = rpcOn(link);
    rpcOn(b.link);
    await until(() => link.peers()[0]?.dataPath === 'local', 'B over the local transport');
    expect(events).toEqual(['joined B worker', 'left B', 'joined B local']);
    const sentOverWebRtc = remote.sent; // the admission challenge, sent before B was met locally
    expect(await rpcA.request('B', 'echo', bytesOf(4))).toEqual(bytesOf(4));
    expect(remote.sent).toBe(sentOverWebRtc);
    // WebRTC coming and going meanwhile changes nothing: the local path is in use.
    remote.leave('B');
    remote.join({ peerId: 'B', remoteAddr: '/webrtc/p2p/B', limited: false, since: 1, dataPath: 'worker' });
    expect(events).toHaveLength(3);
    b.crash();
    await until(() => link.peers()[0]?.dataPath === 'worker', 'B back over WebRTC');
    expect(events.slice(3)).toEqual(['left B', 'joined B worker']);
  });
});

/** A link whose node stops taking the peer's bytes while `stop`ped (a busy worker); they are held and delivered in order on `resume`. */
function stallable(link: PeerLink): PeerLink & { stop(): void; resume(): void } {
  let held: Array<PeerLinkEvents['data']> | undefined;
  const listeners = new Set<(event: PeerLinkEvents['data']) => void>();
  link.on('data', (event) => (held === undefined ? listeners.forEach((listener) => listener(event)) : held.push(event)));
  return {
    ...link,
    get peerId() {
      return link.peerId;
    },
    on(type, listener) {
      if (type !== 'data') return link.on(type, listener);
      listeners.add(listener as (event: PeerLinkEvents['data']) => void);
      return () => listeners.delete(listener as (event: PeerLinkEvents['data']) => void);
    },
    stop: () => (held = []),
    resume() {
      const events = held ?? [];
      held = undefined;
      for (const event of events) listeners.forEach((listener) => listener(event));
    },
  };
}

/** The WebRTC side, as far as localFirst sees it: peers joined by hand, sends counted. */
function fakeRemote(self: string): PeerLink & { join(peer: PeerInfo): void; leave(peerId: string): void; sent: number } {
  const peers = new Map<string, PeerInfo>();
  const listeners = new Map<string, Set<(event: never) => void>>();
  const remote = {
    peerId: self,
    sent: 0,
    peers: () => [...peers.values()],
    async send(peerId: string) {
      if (!peers.has(peerId)) throw new PeerNotConnectedError(peerId);
      remote.sent += 1;
    },
    on(type: string, listener: (event: never) => void) {
      const set = listeners.get(type) ?? new Set();
      set.add(listener);
      listeners.set(type, set);
      return () => set.delete(listener);
    },
    join(peer: PeerInfo) {
      peers.set(peer.peerId, peer);
      for (const listener of listeners.get('joined') ?? []) (listener as (event: PeerInfo) => void)(peer);
    },
    leave(peerId: string) {
      peers.delete(peerId);
      for (const listener of listeners.get('left') ?? []) (listener as (event: PeerLinkEvents['left']) => void)({ peerId, reason: 'cut' });
    },
    members: () => [],
    close() {},
  };
  return remote as PeerLink & { join(peer: PeerInfo): void; leave(peerId: string): void; sent: number };
}
