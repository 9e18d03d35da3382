import type { Page } from '@playwright/test';

// Steps of the peer RPC tests on a page whose Letterbox is `window.demo.letterbox` (./demo.ts):
// shared by the tests of each transport (rpc.spec.ts over WebRTC, local-rpc.spec.ts between an
// origin's tabs).

/** The outcome of an echo run in the page: the bytes back, or the typed error's name and code. */
export type EchoOutcome = { ok: true; bytes: number[]; ms: number } | { ok: false; name: string; code: string; ms: number };

/** An `echo` request from `page`'s broker to `peerId`'s, optionally cancelled after `abortAfterMs`; never throws. */
export const echo = (page: Page, peerId: string, bytes: number[], options: { timeoutMs?: number; abortAfterMs?: number } = {}) =>
  page.evaluate(
    async ({ peerId, bytes, timeoutMs, abortAfterMs }): Promise<EchoOutcome> => {
      const controller = new AbortController();
      if (abortAfterMs !== undefined) setTimeout(() => controller.abort(), abortAfterMs);
      const started = performance.now();
      try {
        const back = await window.demo.letterbox.echo(peerId, new Uint8Array(bytes), { ...(timeoutMs === undefined ? {} : { timeoutMs }), signal: controller.signal });
        return { ok: true, bytes: [...back], ms: performance.now() - started };
      } catch (error) {
        const { name, code } = error as { name: string; code: string };
        return { ok: false, name, code, ms: performance.now() - started };
      }
    },
    { peerId, bytes, ...options },
  );

/**
 * Keeps the broker's worker of `page` busy for `ms`, from when this resolves: its broker reads
 * and answers nothing meanwhile, though its connections stay up. The worker says it started
 * on a BroadcastChannel, which reaches the page while the worker spins.
 */
export async function freezeWorker(page: Page, ms: number): Promise<void> {
  const [worker] = page.workers();
  if (worker === undefined) throw new Error('the page has no worker');
  const channel = `letterbox-test-freeze-${Math.random()}`;
  await page.evaluate((channel) => {
    const frozen = new Promise<void>((resolve) => {
      const listener = new BroadcastChannel(channel);
      listener.onmessage = () => {
        listener.close();
        resolve();
      };
    });
    (window as unknown as { frozen: Promise<void> }).frozen = frozen;
  }, channel);
  void worker
    .evaluate(
      ({ channel, ms }) => {
        new BroadcastChannel(channel).postMessage('frozen');
        const end = Date.now() + ms;
        while (Date.now() < end);
      },
      { channel, ms },
    )
    .catch(() => undefined);
  await page.evaluate(() => (window as unknown as { frozen: Promise<void> }).frozen);
}
