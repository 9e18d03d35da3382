import type { BrowserContext, Page } from '@playwright/test';
import type { DialStats, PeerInfo } from '../../src/client';

// The demo page (public/index.html, served by the real relay process and loading the built
// script-tag library) exposes its Letterbox as `window.demo.letterbox`: what the network and
// peer RPC tests use of it, and how they open it.
declare global {
  interface Window {
    demo: {
      letterbox: {
        peerId(): Promise<string>;
        nodeInfo(): Promise<{ slot: number; brokerId?: number }>;
        peers(): Promise<PeerInfo[]>;
        networkStats(): Promise<DialStats>;
        echo(peerId: string, bytes: Uint8Array, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Uint8Array>;
        refusedPeers(): Promise<Array<{ peerId: string; reason: string }>>;
        probePeer(peerId: string, options: { messageBytes: number; count: number; timeoutMs?: number }): Promise<{ bytes: number; ms: number; mbps: number }>;
        on(type: 'letterbox.peer_joined' | 'letterbox.peer_left', listener: (event: { type: string; timestamp: number; payload: { peerId: string } }) => void): () => void;
      };
      state: { relay: boolean };
    };
  }
}

/** How long tabs may take to find each other: generous for a loaded 2-core machine. */
export const DISCOVERY_TIMEOUT_MS = 45_000;

export const peerIdOf = (page: Page) => page.evaluate(() => window.demo.letterbox.peerId());
export const peersOf = (page: Page) => page.evaluate(() => window.demo.letterbox.peers());
export const peerIdsOf = async (page: Page) => (await peersOf(page)).map((p) => p.peerId).sort();

/**
  * Prints `page`'s errors and, with LETTERBOX_DEBUG set to a `debug` pattern (such as
  * `libp2p:connection-monitor*`), its console (workers' too) with libp2p's logs that match.
  */
export async function showPageLogs(page: Page): Promise<void> {
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  const debug = process.env['LETTERBOX_DEBUG'];
  if (debug === undefined) return;
  await page.addInitScript((pattern) => localStorage.setItem('debug', pattern), debug);
  page.on('console', (message) => console.log(`[page] ${message.text()}`));
}

/**
 * Opens the demo in a new tab of `context`, in `cluster` (with `secret`, if given). Its tabs
 * reach each other over WebRTC, as another device's would, unless `localPeers` (then the tabs
 * of one browser meet worker to worker, over the local transport).
 */
export async function openDemo(context: BrowserContext, url: string, cluster: string, secret?: string, { localPeers = false } = {}): Promise<Page> {
  const page = await context.newPage();
  await showPageLogs(page);
  await page.goto(`${url}?cluster=${cluster}${secret === undefined ? '' : `&secret=${secret}`}${localPeers ? '' : '&local=0'}`);
  await page.waitForFunction(() => (window as Partial<Window>).demo !== undefined);
  return page;
}
