import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelayProcess, type RelayProcess } from '../support/relay-process';
import { DISCOVERY_TIMEOUT_MS, openDemo, peerIdOf, peerIdsOf, peersOf } from './demo';
import { expect, test } from './fixtures';

/** How long a departed tab may take to be noticed. */
const LEAVE_TIMEOUT_MS = 15_000;

// This test restarts its relay on the same ports with the same key, so it runs its own.
let relay: RelayProcess | undefined;
let dir: string;

test.beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letterbox-network-'));
});
test.afterEach(async () => {
  await relay?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('three pages (two tabs, another browser process) connect directly, see a tab leave, re-join a restarted relay, and a reopened tab keeps its peer id', async ({ profile, otherBrowser }) => {
  test.setTimeout(180_000);
  const keyFile = join(dir, 'relay.key');
  relay = await startRelayProcess(['--key-file', keyFile]);
  const httpPort = new URL(relay.url).port;
  const wsPort = /\/tcp\/(\d+)\/ws\//.exec(relay.multiaddrs[0] ?? '')?.[1];
  expect(wsPort).toBeDefined();
  const cluster = `e2e-${Date.now()}`;

  const started = Date.now();
  const tab1 = await openDemo(profile, relay.url, cluster);
  const tab2 = await openDemo(profile, relay.url, cluster);
  const other = await openDemo(otherBrowser, relay.url, cluster);
  const [id1, id2, id3] = await Promise.all([peerIdOf(tab1), peerIdOf(tab2), peerIdOf(other)]);
  expect(new Set([id1, id2, id3]).size).toBe(3);

  await test.step('all three discover each other and connect directly', async () => {
    const expected = (self: string) => [id1, id2, id3].filter((id) => id !== self).sort();
    for (const [page, self] of [[tab1, id1], [tab2, id2], [other, id3]] as const) {
      await expect.poll(() => peerIdsOf(page), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual(expected(self));
    }
    console.log(`discovery and direct connections of 3 pages: ${Date.now() - started} ms after the first page opened`);
    // The demo draws each peer as a node linked to this tab.
    for (const page of [tab1, tab2, other]) await expect(page.locator('#map g.peer')).toHaveCount(2);
    // Its links are solid: each pair's brokers exchange bytes worker to worker, also across browser processes.
    for (const page of [tab1, tab2, other]) await expect(page.locator('#map line[data-path="worker"]')).toHaveCount(2);
    for (const page of [tab1, tab2, other]) {
      for (const peer of await peersOf(page)) {
        expect(peer.limited).toBe(false);
        expect(peer.remoteAddr).toMatch(/\/webrtc\/p2p\/\w+$/);
        expect(peer.remoteAddr).not.toContain('p2p-circuit');
      }
      const stats = await page.evaluate(() => window.demo.letterbox.networkStats());
      console.log(`dials: ${stats.attempts} attempts, ${stats.retries} retries, ${stats.failures} failures; connect ms ${stats.connectMs.map(Math.round).join(', ')}`);
    }
  });

  await test.step('a closed tab is seen leaving by the other two', async () => {
    const closedAt = Date.now();
    await tab2.close();
    for (const page of [tab1, other]) {
      await expect.poll(() => peerIdsOf(page), { timeout: LEAVE_TIMEOUT_MS }).not.toContain(id2);
    }
    console.log(`leave noticed by both within ${Date.now() - closedAt} ms`);
  });

  await test.step('after a relay restart the pages re-join without a reload', async () => {
    await relay!.stop();
    await expect.poll(() => tab1.evaluate(() => window.demo.state.relay), { timeout: LEAVE_TIMEOUT_MS }).toBe(false);
    const restartedAt = Date.now();
    relay = await startRelayProcess(['--port', httpPort, '--ws-port', wsPort!, '--key-file', keyFile]);
    for (const page of [tab1, other]) {
      await expect.poll(() => page.evaluate(() => window.demo.state.relay), { timeout: DISCOVERY_TIMEOUT_MS }).toBe(true);
    }
    console.log(`re-joined the restarted relay within ${Date.now() - restartedAt} ms`);
    // The direct connection did not need the relay.
    expect(await peerIdsOf(tab1)).toEqual([id3]);
  });

  await test.step('a reopened tab has the same peer id and finds the members through the restarted relay', async () => {
    const reopened = await openDemo(profile, relay!.url, cluster);
    expect(await peerIdOf(reopened)).toBe(id2);
    await expect.poll(() => peerIdsOf(reopened), { timeout: DISCOVERY_TIMEOUT_MS }).toEqual([id1, id3].sort());
    for (const page of [tab1, other]) {
      await expect.poll(() => peerIdsOf(page), { timeout: DISCOVERY_TIMEOUT_MS }).toContain(id2);
    }
  });
});
