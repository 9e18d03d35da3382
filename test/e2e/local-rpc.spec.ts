import type { BrowserContext, Page } from '@playwright/test';
import { DISCOVERY_TIMEOUT_MS, openDemo, peerIdOf, peerIdsOf, peersOf } from './demo';
import { tabHeap } from '../support/tab-heap';
import { expect, openClientPage, test } from './fixtures';
import { echo, freezeWorker } from './peer-steps';

// The local transport between tabs of one origin, with no relay at all: each tab's Letterbox
// names a relay that never listens, and its worker meets the other tabs over BroadcastChannel.
// The same peer RPC steps as rpc.spec.ts runs over WebRTC.

/** A relay address where nothing listens: the page's libp2p keeps failing to reach it. */
const NO_RELAY = 'http://127.0.0.1:9';
/** How long a tab's worker is kept busy: it hears nothing meanwhile, though its tab lives. */
const FREEZE_MS = 6_000;

/**
 * Opens the ES client page in a new tab and starts a Letterbox of `cluster` on it as
 * `window.demo.letterbox` (what ./demo.ts reads). Its relay is NO_RELAY, or with `relay: 'origin'`
 * the default, the page's own origin: a static server where no relay runs.
 */
async function openTab(context: BrowserContext, cluster: string, secret = 'sesame', { relay = 'none' }: { relay?: 'none' | 'origin' } = {}): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  await openClientPage(page);
  await page.evaluate(
    async ({ cluster, secret, relay }) => {
      const letterbox = new window.lb.Letterbox({ clientId: 'local', cluster, secret, ...(relay === undefined ? {} : { relay }) });
      (window as unknown as { demo: { letterbox: unknown } }).demo = { letterbox };
      await letterbox.peerId();
    },
    { cluster, secret, relay: relay === 'none' ? NO_RELAY : undefined },
  );
  return page;
}

/** `page`'s peers once they are exactly `ids`, each over the local transport. */
async function expectPeers(page: Page, ids: string[]) {
  await expect.poll(() => peerIdsOf(page), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([...ids].sort());
  expect((await peersOf(page)).map((peer) => peer.dataPath)).toEqual(ids.map(() => 'local'));
}

test('three tabs with no relay find each other and exchange peer RPC over the local transport; timeouts, cancel, a stalled reader, hostile frames, a closed tab', async ({ profile }) => {
  test.setTimeout(120_000);
  const cluster = `local-${Date.now()}`;
  const tabs = [await openTab(profile, cluster), await openTab(profile, cluster), await openTab(profile, cluster)] as const;
  const ids = (await Promise.all(tabs.map(peerIdOf))) as [string, string, string];
  const [a, b, c] = tabs;
  const [idA, idB, idC] = ids;

  await test.step('the brokers find each other, over the local transport', async () => {
    await expectPeers(a, [idB, idC]);
    await expectPeers(b, [idA, idC]);
    await expectPeers(c, [idA, idB]);
  });

  await test.step('requests both ways between every pair', async () => {
    for (const [from, to] of [[a, idB], [b, idA], [a, idC], [c, idA], [b, idC], [c, idB]] as const) {
      expect(await echo(from, to, [1, 2, 3], { timeoutMs: 10_000 })).toMatchObject({ ok: true, bytes: [1, 2, 3] });
    }
    const probe = await a.evaluate((peerId) => window.demo.letterbox.probePeer(peerId, { messageBytes: 64 * 1024, count: 256, timeoutMs: 30_000 }), idB);
    expect(probe).toMatchObject({ bytes: 256 * 64 * 1024 });
    console.log(`bulk one-way 64 KiB messages over peer RPC, local transport: ${probe.mbps.toFixed(1)} MB/s (16 MiB)`);
  });

  await test.step('a peer that stops answering: TimeoutError; a cancelled request: AbortedError; it answers again afterwards', async () => {
    await freezeWorker(b, FREEZE_MS);
    const [timedOut, cancelled] = await Promise.all([echo(a, idB, [1], { timeoutMs: 1_500 }), echo(a, idB, [2], { timeoutMs: 60_000, abortAfterMs: 500 })]);
    expect(timedOut).toMatchObject({ ok: false, name: 'TimeoutError', code: 'REQUEST_TIMED_OUT' });
    expect(timedOut.ms).toBeGreaterThanOrEqual(1_400);
    expect(timedOut.ms).toBeLessThan(FREEZE_MS);
    expect(cancelled).toMatchObject({ ok: false, name: 'AbortError', code: 'ABORTED' });
    await expect.poll(async () => (await echo(a, idB, [3], { timeoutMs: 2_000 })).ok, { timeout: FREEZE_MS * 3 }).toBe(true);
  });

  await test.step('a peer that stops reading: the sender waits for its window, then times out, its memory under its bound; the peer is served again afterwards', async () => {
    const heap = await tabHeap(profile, a);
    const before = await heap();
    const stallMs = 12_000;
    await freezeWorker(c, stallMs);
    // 64 MiB offered, each message given 3 s to find room.
    const started = Date.now();
    let outcome: string | undefined;
    void a
      .evaluate(
        (peerId) => window.demo.letterbox.probePeer(peerId, { messageBytes: 64 * 1024, count: 1024, timeoutMs: 3_000 }).then(() => 'finished', (e: { name: string; code: string }) => `${e.name} ${e.code}`),
        idC,
      )
      .then((o) => (outcome = o));
    let peak = before;
    while (outcome === undefined && Date.now() - started < stallMs) {
      const now = await heap();
      peak = { pageBytes: Math.max(peak.pageBytes, now.pageBytes), workerBytes: Math.max(peak.workerBytes, now.workerBytes) };
    }
    expect(outcome).toBe('TimeoutError REQUEST_TIMED_OUT');
    const growth = peak.pageBytes - before.pageBytes + (peak.workerBytes - before.workerBytes);
    console.log(`sender memory while its local peer read nothing (64 MiB offered): +${(growth / 2 ** 20).toFixed(1)} MiB (live, after GC)`);
    // What the sender may hold for one peer: its RPC queue (4 MiB) and the window in flight (2 MiB), plus the runtime's own growth under load (the same bound as over WebRTC).
    expect(growth).toBeLessThan(16 * 2 ** 20);
    await expect.poll(async () => (await echo(a, idC, [4], { timeoutMs: 2_000 })).ok, { timeout: stallMs * 3 }).toBe(true);
  });

  await test.step('hostile frames on a pair channel, and forged discovery messages: typed errors, the others still served', async () => {
    // Any script of the origin can post on the channels. It injects frames into B's stream to A
    // (claiming B's session): garbage and unknown types that A answers with errors, then
    // enough corrupt frames that A stops reading B. And it forges discovery messages.
    const sessionOf = async (page: Page, peerId: string) => (await peersOf(page)).find((peer) => peer.peerId === peerId)!.remoteAddr.split('/').at(-1)!;
    const [sessionA, sessionB] = [await sessionOf(b, idA), await sessionOf(a, idB)];
    await a.evaluate(
      ({ cluster, sessionA, sessionB, idA, idB }) => {
        const pair = new BroadcastChannel(`letterbox/local/1/${cluster}/${sessionA < sessionB ? `${sessionA}+${sessionB}` : `${sessionB}+${sessionA}`}`);
        const frame = (typeId: number, requestId: number, body: number[]) => {
          const out = new Uint8Array(12 + body.length);
          const view = new DataView(out.buffer);
          view.setUint32(0, out.length - 4);
          view.setUint16(4, typeId);
          view.setUint32(8, requestId);
          out.set(body, 12);
          return out.buffer;
        };
        pair.postMessage({ v: 1, type: 'data', from: sessionB, data: frame(999, 1, [1]) });
        pair.postMessage({ v: 1, type: 'data', from: sessionB, data: new ArrayBuffer(1024 * 1024 + 1) }); // over LOCAL_MESSAGE_BYTES_MAX
        pair.postMessage({ v: 1, type: 'data', from: 'f'.repeat(32), data: frame(1, 2, [1]) });
        for (let i = 0; i < 70; i++) pair.postMessage({ v: 1, type: 'data', from: sessionB, data: frame(0, 100 + i, [0xff]) });
        const discovery = new BroadcastChannel(`letterbox/local/1/${cluster}`);
        discovery.postMessage({ v: 1, type: 'hello', cluster: 'another', peerId: 'X', session: 'e'.repeat(32), reply: false });
        discovery.postMessage({ v: 1, type: 'hello', cluster, peerId: idA, session: 'd'.repeat(32), reply: false });
        discovery.postMessage({ v: 1, type: 'hello', cluster, peerId: 'nobody', session: 'c'.repeat(32), reply: false });
        discovery.postMessage({ v: 1, type: 'bye', cluster, peerId: idB, session: sessionB });
        discovery.postMessage('garbage');
      },
      { cluster, sessionA, sessionB, idA, idB },
    );
    // A stopped reading B (its stream was corrupted), and B's requests to A fail, typed.
    await expect.poll(async () => (await echo(b, idA, [5], { timeoutMs: 1_000 })).ok, { timeout: 10_000 }).toBe(false);
    // A still serves C, both ways, and no forged peer was added or removed.
    expect(await echo(c, idA, [6], { timeoutMs: 5_000 })).toMatchObject({ ok: true, bytes: [6] });
    expect(await echo(a, idC, [7], { timeoutMs: 5_000 })).toMatchObject({ ok: true, bytes: [7] });
    expect(await peerIdsOf(a)).toEqual([idB, idC].sort());
    expect(await peerIdsOf(c)).toEqual([idA, idB].sort());
  });

  await test.step('a closed tab is seen gone at once, and requests to it fail, typed', async () => {
    const closed = Date.now();
    await c.close();
    await expect.poll(() => peerIdsOf(a), { timeout: 5_000 }).toEqual([idB]);
    await expect.poll(() => peerIdsOf(b), { timeout: 5_000 }).toEqual([idA]);
    console.log(`a closed tab seen gone by both others after ${Date.now() - closed} ms`);
    expect(await echo(a, idC, [8], { timeoutMs: 3_000 })).toMatchObject({ ok: false, code: 'PEER_NOT_CONNECTED' });
  });
});

test('with no relay (the default, the page origin, where none runs), a tab with another secret is refused on both sides; a tab of another cluster is never met', async ({ profile }) => {
  test.setTimeout(60_000);
  const cluster = `local-secret-${Date.now()}`;
  const open = (secret: string, name = cluster) => openTab(profile, name, secret, { relay: 'origin' });
  const [a, b] = [await open('sesame'), await open('sesame')];
  const intruder = await open('guess');
  const stranger = await open('sesame', `${cluster}-other`);
  const [idA, idB, idIntruder, idStranger] = (await Promise.all([a, b, intruder, stranger].map(peerIdOf))) as [string, string, string, string];
  await expectPeers(a, [idB, idIntruder]);
  expect(await echo(a, idB, [1], { timeoutMs: 10_000 })).toMatchObject({ ok: true });
  expect(await echo(a, idIntruder, [1], { timeoutMs: 10_000 })).toMatchObject({ ok: false, name: 'PeerError', code: 'CLUSTER_AUTHORIZATION_FAILED' });
  expect(await echo(intruder, idA, [1], { timeoutMs: 10_000 })).toMatchObject({ ok: false, name: 'PeerError', code: 'CLUSTER_AUTHORIZATION_FAILED' });
  await expect.poll(() => a.evaluate(() => window.demo.letterbox.refusedPeers()), { timeout: 10_000 }).toContainEqual(expect.objectContaining({ peerId: idIntruder }));
  expect(await peerIdsOf(stranger)).toEqual([]);
  expect(await peerIdsOf(a)).not.toContain(idStranger);
});

test('demo tabs reachable both ways (same origin, and WebRTC through the relay) use the local transport, and the demo draws it; a closed tab’s broker adopted by the other is drawn beside it, and the partitions shown whole', async ({ profile, relay }) => {
  test.setTimeout(90_000);
  const cluster = `both-${Date.now()}`;
  const [a, b] = [await openDemo(profile, relay.url, cluster, undefined, { localPeers: true }), await openDemo(profile, relay.url, cluster, undefined, { localPeers: true })];
  const [idA, idB] = [await peerIdOf(a), await peerIdOf(b)];
  // The WebRTC connection forms as well (whichever tab dials counts it); the worker keeps the local path.
  const webRtcDials = async () => (await Promise.all([a, b].map((page) => page.evaluate(() => window.demo.letterbox.networkStats())))).reduce((sum, stats) => sum + stats.connectMs.length, 0);
  await expect.poll(webRtcDials, { timeout: DISCOVERY_TIMEOUT_MS }).toBeGreaterThan(0);
  await expectPeers(a, [idB]);
  await expectPeers(b, [idA]);
  expect(await echo(a, idB, [9], { timeoutMs: 10_000 })).toMatchObject({ ok: true, bytes: [9] });
  for (const page of [a, b]) await expect(page.locator('#map line[data-path="local"]')).toHaveCount(1);

  // Tab b closes: tab a adopts its slot, runs its broker, and draws it beside itself (a dashed circle) with a line saying so.
  const slotOfB = await b.evaluate(async () => (await window.demo.letterbox.nodeInfo()).slot);
  await expect.poll(() => b.evaluate(async () => (await window.demo.letterbox.nodeInfo()).brokerId), { timeout: DISCOVERY_TIMEOUT_MS }).toBeDefined();
  await b.close();
  await expect(a.locator(`#map g.adopted[data-slot="${slotOfB}"]`)).toHaveCount(1, { timeout: DISCOVERY_TIMEOUT_MS });
  await expect(a.locator('#adopted')).toContainText(`on slot ${slotOfB}`);
  // With b's broker running again, every partition is whole, and the demo says so.
  await expect(a.locator('#health.whole')).toHaveText('Every partition has a live leader and all its replicas in sync.', { timeout: DISCOVERY_TIMEOUT_MS });
});
