/// <reference path="./pages/peer-net-api.ts" />
import type { BrowserContext, Page } from '@playwright/test';
import { tabHeap } from '../support/tab-heap';
import { DISCOVERY_TIMEOUT_MS, openDemo, peerIdOf, peerIdsOf, peersOf, showPageLogs } from './demo';
import { RELAY_PING_INTERVAL_MS, RELAY_PING_TIMEOUT_MS } from '../../src/relay/libp2p-node';
import { expect, test } from './fixtures';
import { echo, freezeWorker, type EchoOutcome } from './peer-steps';

// Peer RPC between the brokers of two tabs, through the real relay and direct WebRTC, driven
// through the demo page.

/** How long a tab's page thread is kept busy, so its broker hears nothing: a peer that is connected but does not answer. */
const FREEZE_MS = 6_000;

/** Opens the network-only test page (test/e2e/pages/peer-net.ts) at `url` and waits until it is running. */
async function openPeerNet(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await showPageLogs(page);
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset['ready'] === 'true', undefined, { timeout: DISCOVERY_TIMEOUT_MS });
  return page;
}

/** Opens the demo in each context (a tab each) and waits until the two are directly connected to each other. */
async function connectedPair(contexts: [BrowserContext, BrowserContext], url: string, cluster: string): Promise<{ pages: [Page, Page]; ids: [string, string] }> {
  const pages: [Page, Page] = [await openDemo(contexts[0], url, cluster), await openDemo(contexts[1], url, cluster)];
  const ids: [string, string] = [await peerIdOf(pages[0]), await peerIdOf(pages[1])];
  await expect.poll(() => peerIdsOf(pages[0]), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([ids[1]]);
  await expect.poll(() => peerIdsOf(pages[1]), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([ids[0]]);
  // Broker bytes go worker to worker on the direct channel, not through the pages.
  for (const page of pages) expect((await peersOf(page)).map((peer) => peer.dataPath)).toEqual(['worker']);
  return { pages, ids };
}


test('peer RPC between two tabs: requests both ways, a peer that stops answering times out, a cancelled request stops, a vanished peer fails', async ({ profile, relay }) => {
  test.setTimeout(120_000);
  const {
    pages: [tab1, tab2],
    ids: [id1, id2],
  } = await connectedPair([profile, profile], relay.url, `rpc-${Date.now()}`);

  await test.step('requests both ways', async () => {
    expect(await echo(tab1, id2, [1, 2, 3])).toMatchObject({ ok: true, bytes: [1, 2, 3] });
    expect(await echo(tab2, id1, [4, 5])).toMatchObject({ ok: true, bytes: [4, 5] });
    const rtts = await tab1.evaluate(async (peerId) => {
      const letterbox = window.demo.letterbox;
      const times: number[] = [];
      for (let i = 0; i < 200; i++) {
        const started = performance.now();
        await letterbox.echo(peerId, new Uint8Array(32));
        times.push(performance.now() - started);
      }
      return times.sort((a, b) => a - b);
    }, id2);
    // The pages' long tasks (over 50 ms) during a bulk run: the data plane crosses both main threads.
    const watchLongTasks = () => {
      const state = window as unknown as { longTasks: number };
      state.longTasks = 0;
      new PerformanceObserver((list) => (state.longTasks += list.getEntries().length)).observe({ type: 'longtask' });
    };
    await Promise.all([tab1.evaluate(watchLongTasks), tab2.evaluate(watchLongTasks)]);
    // 16 MiB: several times what the data channel buffers (2 MiB), so the writer waits for many drains.
    // The closing echo waits behind all of it: its bound is the transfer's, not one request's
    // (RPC_TIMEOUT_MS, 10 s, was passed on a busy 2-core machine at ~1.6 MB/s).
    const probe = await tab1.evaluate(
      (peerId) => window.demo.letterbox.probePeer(peerId, { messageBytes: 64 * 1024, count: 256, timeoutMs: 60_000 }).catch((e: Error) => `${e.name}: ${e.message}`),
      id2,
    );
    expect(probe).toMatchObject({ bytes: 256 * 64 * 1024 });
    const longTasks = await Promise.all([tab1, tab2].map((page) => page.evaluate(() => (window as unknown as { longTasks: number }).longTasks)));
    console.log(`bulk one-way 64 KiB messages over peer RPC: ${(probe as { mbps: number }).mbps.toFixed(1)} MB/s (16 MiB); long tasks sender ${longTasks[0]}, receiver ${longTasks[1]}`);
    console.log(`echo over peer RPC from the page, 32 B: p50 ${rtts[100]!.toFixed(2)} ms, p99 ${rtts[198]!.toFixed(2)} ms`);
  });

  await test.step('a peer that stops answering: the request times out with TimeoutError; a cancelled one stops with AbortedError', async () => {
    // Busy the second tab's worker: its broker hears nothing, though the connection stays up.
    await freezeWorker(tab2, FREEZE_MS);
    const [timedOut, cancelled] = await Promise.all([echo(tab1, id2, [1], { timeoutMs: 1_500 }), echo(tab1, id2, [2], { timeoutMs: 60_000, abortAfterMs: 500 })]);
    expect(timedOut).toMatchObject({ ok: false, name: 'TimeoutError', code: 'REQUEST_TIMED_OUT' });
    expect(timedOut.ms).toBeGreaterThanOrEqual(1_400);
    expect(timedOut.ms).toBeLessThan(FREEZE_MS);
    expect(cancelled).toMatchObject({ ok: false, name: 'AbortError', code: 'ABORTED' });
    expect(cancelled.ms).toBeLessThan(FREEZE_MS);
    // Once the tab runs again, the peer answers new requests.
    await expect.poll(async () => (await echo(tab1, id2, [3], { timeoutMs: 2_000 })).ok, { timeout: FREEZE_MS * 3 }).toBe(true);
  });

  await test.step('a peer that vanished: the request fails with a typed error, never hangs', async () => {
    await tab2.close();
    const outcome = await echo(tab1, id2, [4], { timeoutMs: 3_000 });
    expect(outcome.ok).toBe(false);
    expect(['REQUEST_TIMED_OUT', 'PEER_NOT_CONNECTED']).toContain((outcome as { code: string }).code);
    expect(outcome.ms).toBeLessThan(4_000);
  });
});

/** A run of requests from one page, each settled as an answer or a typed error (or, if neither, as `untyped`). */
interface RequestRun {
  sent: number;
  ok: number;
  typed: Record<string, number>;
  untyped: string[];
  wrongAnswers: number;
  slowestMs: number;
}

/**
 * Starts, in `page`, a request to `peerId` every `everyMs` for `forMs`, each with its own
 * bytes; `window.requestRun` settles once every one of them has. Not awaited one by one, so
 * requests keep being sent while earlier ones wait.
 */
const startRequests = (page: Page, peerId: string, forMs: number, everyMs: number) =>
  page.evaluate(
    ({ peerId, forMs, everyMs }) => {
      const run: RequestRun = { sent: 0, ok: 0, typed: {}, untyped: [], wrongAnswers: 0, slowestMs: 0 };
      const settled: Array<Promise<void>> = [];
      const send = () => {
        const id = run.sent++;
        const bytes = new Uint8Array([id & 0xff, id >> 8, 7]);
        const started = performance.now();
        settled.push(
          window.demo.letterbox.echo(peerId, bytes).then(
            (back) => {
              run.ok++;
              if (back.length !== 3 || back[0] !== bytes[0] || back[1] !== bytes[1]) run.wrongAnswers++;
              run.slowestMs = Math.max(run.slowestMs, performance.now() - started);
            },
            (error: unknown) => {
              const { name, code } = error as { name?: string; code?: string };
              if (typeof code === 'string' && typeof name === 'string' && name.endsWith('Error')) run.typed[`${name} ${code}`] = (run.typed[`${name} ${code}`] ?? 0) + 1;
              else run.untyped.push(String(error));
            },
          ),
        );
      };
      const until = performance.now() + forMs;
      (window as unknown as { requestRun: Promise<RequestRun> }).requestRun = new Promise<void>((resolve) => {
        const tick = () => {
          if (performance.now() >= until) return resolve();
          send();
          setTimeout(tick, everyMs);
        };
        tick();
      }).then(async () => {
        await Promise.all(settled);
        return run;
      });
    },
    { peerId, forMs, everyMs },
  );
const requestRun = (page: Page) => page.evaluate(() => (window as unknown as { requestRun: Promise<RequestRun> }).requestRun);

/** Counts, in `page`, the peer_joined and peer_left events from now on (`window.linkChanges`). */
const countLinkChanges = (page: Page) =>
  page.evaluate(() => {
    const changes: string[] = [];
    (window as unknown as { linkChanges: string[] }).linkChanges = changes;
    for (const type of ['letterbox.peer_joined', 'letterbox.peer_left'] as const) window.demo.letterbox.on(type, (event) => changes.push(`${type} ${event.payload.peerId}`));
  });
const linkChanges = (page: Page) => page.evaluate(() => (window as unknown as { linkChanges: string[] }).linkChanges);

test('a tab busy for 2 s (its page and its worker) keeps its direct link, and every request to and from it is answered', async ({ profile, relay }) => {
  test.setTimeout(120_000);
  const busyMs = 2_000;
  const {
    pages: [busy, other],
    ids: [busyId, otherId],
  } = await connectedPair([profile, profile], relay.url, `busy-${Date.now()}`);
  expect(await echo(busy, otherId, [1], { timeoutMs: 10_000 })).toMatchObject({ ok: true });
  expect(await echo(other, busyId, [2], { timeoutMs: 10_000 })).toMatchObject({ ok: true });
  const linksBefore = [await peersOf(busy), await peersOf(other)];
  await Promise.all([countLinkChanges(busy), countLinkChanges(other)]);

  // Requests both ways from before the freeze until well after it (each with the default 10 s timeout).
  const loadMs = busyMs * 3;
  await Promise.all([startRequests(busy, otherId, loadMs, 20), startRequests(other, busyId, loadMs, 20)]);
  // Both threads of the busy tab spin at once: its worker (the broker), then its page (libp2p, the pings).
  await freezeWorker(busy, busyMs);
  const pageBusyMs = await busy.evaluate((ms) => {
    const started = performance.now();
    while (performance.now() - started < ms);
    return performance.now() - started;
  }, busyMs);
  expect(pageBusyMs).toBeGreaterThanOrEqual(busyMs);

  const [fromBusy, toBusy] = [await requestRun(busy), await requestRun(other)];
  console.log(`tab busy ${busyMs} ms (page and worker): requests from it ${JSON.stringify(fromBusy)}; to it ${JSON.stringify(toBusy)}`);
  for (const run of [fromBusy, toBusy]) {
    // None lost: each was answered, or failed with a typed error.
    expect(run.untyped).toEqual([]);
    expect(run.ok + Object.values(run.typed).reduce((sum, n) => sum + n, 0)).toBe(run.sent);
    // And since the link held, none failed at all, and each answer was its own.
    expect(run.typed).toEqual({});
    expect(run.wrongAnswers).toBe(0);
  }
  // Requests to the busy tab waited for it: the freeze was real.
  expect(toBusy.slowestMs).toBeGreaterThanOrEqual(busyMs / 2);
  // The link held: no peer left or joined on either side, and the same connection carries the bytes, worker to worker.
  expect([await linkChanges(busy), await linkChanges(other)]).toEqual([[], []]);
  const linksAfter = [await peersOf(busy), await peersOf(other)];
  expect(linksAfter.map((peers) => peers.map((p) => [p.peerId, p.since, p.dataPath]))).toEqual(linksBefore.map((peers) => peers.map((p) => [p.peerId, p.since, 'worker'])));
});

test('a tab frozen past the relay’s ping bound leaves the cluster, and gets its link back by itself once it runs again', async ({ profile, relay }) => {
  test.setTimeout(180_000);
  // Long enough that one of the relay's pings surely goes unanswered for its whole timeout.
  const frozenMs = RELAY_PING_INTERVAL_MS + RELAY_PING_TIMEOUT_MS + 2_000;
  const {
    pages: [frozen, other],
    ids: [frozenId, otherId],
  } = await connectedPair([profile, profile], relay.url, `frozen-${Date.now()}`);
  await countLinkChanges(other);
  await frozen.evaluate((ms) => {
    const started = performance.now();
    while (performance.now() - started < ms);
  }, frozenMs);
  const thawed = Date.now();
  // The other tab heard from the relay that it left, and dropped its link.
  await expect.poll(() => linkChanges(other), { timeout: DISCOVERY_TIMEOUT_MS }).toContain(`letterbox.peer_left ${frozenId}`);
  await expect.poll(() => peerIdsOf(other), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([frozenId]);
  await expect.poll(() => peerIdsOf(frozen), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([otherId]);
  const backMs = Date.now() - thawed;
  expect(await echo(other, frozenId, [1], { timeoutMs: 10_000 })).toMatchObject({ ok: true, bytes: [1] });
  expect(await echo(frozen, otherId, [2], { timeoutMs: 10_000 })).toMatchObject({ ok: true, bytes: [2] });
  console.log(`tab frozen ${frozenMs} ms: dropped by the relay; link back ${backMs} ms after it ran again; events seen by the other tab: ${(await linkChanges(other)).map((c) => c.split(' ')[0]).join(', ')}`);
});

test('peer RPC between a tab and a separate browser process: requests both ways and a bulk transfer', async ({ profile, otherBrowser, relay }) => {
  test.setTimeout(120_000);
  const {
    pages: [tab, other],
    ids: [tabId, otherId],
  } = await connectedPair([profile, otherBrowser], relay.url, `xproc-${Date.now()}`);
  expect(await echo(tab, otherId, [1, 2, 3], { timeoutMs: 10_000 })).toMatchObject({ ok: true, bytes: [1, 2, 3] });
  expect(await echo(other, tabId, [4, 5], { timeoutMs: 10_000 })).toMatchObject({ ok: true, bytes: [4, 5] });
  const probe = await other.evaluate(
    (peerId) => window.demo.letterbox.probePeer(peerId, { messageBytes: 64 * 1024, count: 256, timeoutMs: 30_000 }).catch((e: Error) => `${e.name}: ${e.message}`),
    tabId,
  );
  expect(probe).toMatchObject({ bytes: 256 * 64 * 1024 });
  console.log(`bulk one-way 64 KiB messages over peer RPC between two browser processes: ${(probe as { mbps: number }).mbps.toFixed(1)} MB/s (16 MiB)`);
});

test('cutting the direct connection: RPCs fail with a typed error and never take the relay; a broker stream on a relayed connection is refused', async ({ profile, baseURL, relay }) => {
  test.setTimeout(120_000);
  const cluster = `cut-${Date.now()}`;
  const open = () => openPeerNet(profile, `${baseURL}test/e2e/pages/peer-net.html?relay=${encodeURIComponent(relay.url)}&cluster=${cluster}`);
  const [a, b] = [await open(), await open()];
  const [idA, idB] = await Promise.all([a.evaluate(() => window.peerNet!.peerId), b.evaluate(() => window.peerNet!.peerId)]);
  const peersOf = (page: Page) => page.evaluate(() => window.peerNet!.peers());
  const echoTo = (page: Page, peerId: string, timeoutMs: number) => page.evaluate(([p, t]) => window.peerNet!.echo(p, t), [peerId, timeoutMs] as const);
  await expect.poll(() => peersOf(a), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([idB]);
  await expect.poll(() => peersOf(b), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([idA]);
  await expect.poll(async () => (await echoTo(a, idB, 2_000)).ok, { timeout: 15_000 }).toBe(true);

  // No direct connection can form again: only the relay's path is left.
  await Promise.all([a, b].map((page) => page.evaluate(() => window.peerNet!.blockWebRtc(true))));
  expect(await a.evaluate((peer) => window.peerNet!.cut(peer), idB)).toBeGreaterThan(0);
  await expect.poll(() => peersOf(a), { timeout: 15_000 }).toEqual([]);
  // A relayed connection to the peer (the network's redials leave one; else dial one): broker traffic could take it, and must not.
  const relayedToB = async () => (await a.evaluate((peer) => window.peerNet!.connections(peer), idB)).some((c) => c.limited);
  const ensureRelayed = () =>
    expect
      .poll(async () => (await relayedToB()) || (await a.evaluate((peer) => window.peerNet!.dialRelayed(peer), idB).catch(() => ({ limited: false }))).limited, { timeout: 45_000 })
      .toBe(true);
  await ensureRelayed();
  // Requests fail, typed, however long this lasts (two of the network's redial rounds).
  const cutUntil = Date.now() + 7_000;
  const outcomes = new Set<string>();
  while (Date.now() < cutUntil) {
    const outcome = await echoTo(a, idB, 1_000);
    expect(outcome.ok).toBe(false);
    outcomes.add(`${(outcome as { name: string }).name} ${(outcome as { code: string }).code}`);
  }
  expect([...outcomes].every((o) => ['PeerNotConnectedError PEER_NOT_CONNECTED', 'TimeoutError REQUEST_TIMED_OUT'].includes(o))).toBe(true);
  expect(await a.evaluate((peer) => window.peerNet!.connections(peer), idB)).toContainEqual(expect.objectContaining({ limited: true }));
  console.log(`while cut: ${[...outcomes].join(', ')}; connections A→B ${JSON.stringify(await a.evaluate((peer) => window.peerNet!.connections(peer), idB))}`);

  // Direct again: requests flow, and no broker stream ever sat on a limited connection.
  await Promise.all([a, b].map((page) => page.evaluate(() => window.peerNet!.blockWebRtc(false))));
  await expect.poll(async () => (await echoTo(a, idB, 2_000)).ok, { timeout: DISCOVERY_TIMEOUT_MS }).toBe(true);
  for (const page of [a, b]) expect(await page.evaluate(() => window.peerNet!.brokerStreamsOnLimitedMax())).toBe(0);
  // And a node that opens one anyway on the relayed connection (last: it counts there) is refused by the peer.
  await ensureRelayed();
  const attempt = await a.evaluate((peer) => window.peerNet!.brokerStreamOnRelay(peer), idB);
  console.log(`a broker stream opened on the relayed connection: ${attempt}`);
  expect(attempt).toMatch(/^(reset|aborted|closed|\w+Error)$/);
});

test('where a page cannot open a direct channel, broker bytes go through the pages: both ways, also to a peer that could', async ({ profile, baseURL, relay }) => {
  test.setTimeout(120_000);
  const cluster = `paths-${Date.now()}`;
  const open = (direct: boolean) =>
    openPeerNet(profile, `${baseURL}test/e2e/pages/peer-net.html?relay=${encodeURIComponent(relay.url)}&cluster=${cluster}${direct ? '' : '&direct=0'}`);
  // b opens its direct channel and hears nothing on it: it falls back after DIRECT_HANDSHAKE_TIMEOUT_MS.
  const [a, b] = [await open(false), await open(true)];
  const [idA, idB] = await Promise.all([a.evaluate(() => window.peerNet!.peerId), b.evaluate(() => window.peerNet!.peerId)]);
  await expect.poll(() => a.evaluate(() => window.peerNet!.peers()), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([idB]);
  await expect.poll(() => b.evaluate(() => window.peerNet!.peers()), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([idA]);
  for (const page of [a, b]) expect(await page.evaluate(() => window.peerNet!.dataPaths())).toEqual(['page']);
  const echoTo = (page: Page, peerId: string) => page.evaluate((p) => window.peerNet!.echo(p, 5_000), peerId);
  expect(await echoTo(a, idB)).toMatchObject({ ok: true });
  expect(await echoTo(b, idA)).toMatchObject({ ok: true });
});

test('a hostile peer floods and sends unknown, oversized, truncated and random frames: the node keeps serving a well-behaved peer, its memory stays bounded, and it stops answering the attacker', async ({ profile, baseURL, relay }) => {
  test.setTimeout(180_000);
  const cluster = `hostile-${Date.now()}`;
  const target = await openDemo(profile, relay.url, cluster);
  const good = await openDemo(profile, relay.url, cluster);
  // The attacker: the network layer alone, whose link sends whatever it is given.
  const hostile = await openPeerNet(profile, `${baseURL}test/e2e/pages/peer-net.html?relay=${encodeURIComponent(relay.url)}&cluster=${cluster}`);
  const [idT, idG, idH] = [await peerIdOf(target), await peerIdOf(good), await hostile.evaluate(() => window.peerNet!.peerId)];
  await expect.poll(() => peerIdsOf(target), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([idG, idH].sort());
  // Admitted first (it knows the secret): what follows comes from a member.
  await expect.poll(async () => (await hostile.evaluate((p) => window.peerNet!.echo(p, 2_000), idT)).ok, { timeout: 15_000 }).toBe(true);

  const heap = await tabHeap(profile, target);
  const before = await heap();
  let outcome: { sentBytes: number; stoppedBy: string } | undefined;
  void hostile.evaluate((p) => window.peerNet!.attack(p), idT).then((o) => (outcome = o));
  const echoes: EchoOutcome[] = [];
  let peak = before;
  while (outcome === undefined) {
    echoes.push(await echo(good, idT, [1, 2, 3], { timeoutMs: 5_000 }));
    const now = await heap();
    peak = { pageBytes: Math.max(peak.pageBytes, now.pageBytes), workerBytes: Math.max(peak.workerBytes, now.workerBytes) };
  }
  const growth = peak.pageBytes + peak.workerBytes - before.pageBytes - before.workerBytes;
  const slowest = Math.max(...echoes.map((e) => e.ms));
  console.log(`hostile peer: sent ${(outcome.sentBytes / 2 ** 20).toFixed(1)} MiB, stopped by ${outcome.stoppedBy}; the good peer's ${echoes.length} echoes meanwhile, slowest ${slowest.toFixed(0)} ms; target's memory +${(growth / 2 ** 20).toFixed(1)} MiB`);
  expect(echoes.length).toBeGreaterThan(0);
  expect(echoes.filter((e) => !e.ok)).toEqual([]);
  // What the target may hold for one peer: a frame being decoded (at most 8 MiB), its queues (4 MiB), plus the runtimes' own growth.
  expect(growth).toBeLessThan(32 * 2 ** 20);
  // The target cut the attacker off (too many corrupt frames): it reads and drops its bytes, and answers nothing more.
  expect(await hostile.evaluate((p) => window.peerNet!.echo(p, 1_500), idT)).toMatchObject({ ok: false, code: 'REQUEST_TIMED_OUT' });
  expect(await echo(good, idT, [4], { timeoutMs: 2_000 })).toMatchObject({ ok: true, bytes: [4] });
});

test('a peer that stops reading: the sender waits, then fails with TimeoutError, and its memory stays under its bound', async ({ profile, relay }) => {
  test.setTimeout(120_000);
  const {
    pages: [sender, reader],
    ids: [, readerId],
  } = await connectedPair([profile, profile], relay.url, `stall-${Date.now()}`);
  expect(await echo(sender, readerId, [1], { timeoutMs: 10_000 })).toMatchObject({ ok: true });
  const heap = await tabHeap(profile, sender);
  const before = await heap();

  // The reader's worker is busy: its data channel's messages queue in its tab, and its broker consumes nothing.
  const stallMs = 20_000;
  await freezeWorker(reader, stallMs);
  // 64 MiB offered, each message given 3 s to find room.
  const started = Date.now();
  const probe = sender.evaluate(
    (peerId) =>
      window.demo.letterbox
        .probePeer(peerId, { messageBytes: 64 * 1024, count: 1024, timeoutMs: 3_000 })
        .then(() => 'finished', (e: { name: string; code: string; message: string }) => `${e.name} ${e.code}: ${e.message}`),
    readerId,
  );
  let outcome: string | undefined;
  void probe.then((o) => (outcome = o));
  let peak = before;
  while (outcome === undefined && Date.now() - started < stallMs - 5_000) {
    const now = await heap();
    peak = { pageBytes: Math.max(peak.pageBytes, now.pageBytes), workerBytes: Math.max(peak.workerBytes, now.workerBytes) };
  }
  // A one-way message found no room within its timeout: the sender waited. (Without flow control
  // the reader's tab took all 64 MiB and only the probe's closing request timed out.)
  expect(outcome).toMatch(/^TimeoutError REQUEST_TIMED_OUT: echo message to /);
  const growth = { page: peak.pageBytes - before.pageBytes, worker: peak.workerBytes - before.workerBytes };
  console.log(`sender memory while its peer read nothing (64 MiB offered): page +${(growth.page / 2 ** 20).toFixed(1)} MiB, worker +${(growth.worker / 2 ** 20).toFixed(1)} MiB (live, after GC)`);
  // What the sender may hold for one peer, in its worker: its RPC queue (4 MiB) and the data
  // channel's buffer (2 MiB, plus a frame) — or, where the bytes go through the page, the bridge
  // window (2 MiB) and the stream's write buffer (1 MiB) there — plus the runtimes' own growth
  // under load (measured: 13 MiB in all through the page).
  const boundBytes = 16 * 2 ** 20;
  expect(growth.worker + growth.page).toBeLessThan(boundBytes);
  // Once the reader runs again, requests flow.
  await expect.poll(async () => (await echo(sender, readerId, [3], { timeoutMs: 2_000 })).ok, { timeout: stallMs * 2 }).toBe(true);
});

test('a page with the wrong cluster secret is refused, with a clear error on both sides', async ({ profile, relay }) => {
  test.setTimeout(120_000);
  const cluster = `secret-${Date.now()}`;
  const tab1 = await openDemo(profile, relay.url, cluster, 'sesame');
  const tab2 = await openDemo(profile, relay.url, cluster, 'sesame');
  const intruder = await openDemo(profile, relay.url, cluster, 'guess');
  const [id1, id2, id3] = await Promise.all([peerIdOf(tab1), peerIdOf(tab2), peerIdOf(intruder)]);
  // Connected directly (discovery is open), but not admitted.
  await expect.poll(() => peerIdsOf(tab1), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([id2, id3].sort());
  await expect.poll(() => peerIdsOf(intruder), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([id1, id2].sort());

  expect(await echo(tab1, id2, [1], { timeoutMs: 10_000 })).toMatchObject({ ok: true, bytes: [1] });
  for (const [page, peer] of [[tab1, id3], [intruder, id1], [intruder, id2]] as const) {
    expect(await echo(page, peer, [2], { timeoutMs: 10_000 })).toMatchObject({ ok: false, name: 'PeerError', code: 'CLUSTER_AUTHORIZATION_FAILED' });
  }
  const refusedBy1 = await tab1.evaluate(() => window.demo.letterbox.refusedPeers());
  expect(refusedBy1).toEqual([{ peerId: id3, reason: expect.stringMatching(/could not prove it knows the cluster secret|refused this node/) }]);
  const refusedByIntruder = await intruder.evaluate(() => window.demo.letterbox.refusedPeers());
  expect(refusedByIntruder.map((r) => r.peerId).sort()).toEqual([id1, id2].sort());
  console.log(`refusals seen by the intruder: ${refusedByIntruder.map((r) => r.reason).join(' | ')}`);
});
