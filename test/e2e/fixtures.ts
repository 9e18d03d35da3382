import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, test as base, type BrowserContext, type Page } from '@playwright/test';
import { chromiumArgs, findChromium } from '../support/chromium';
import { launchKillableChromium, type KillableChromium } from '../support/killable-chromium';
import { startRelayProcess, startRestartableRelay, type RelayProcess, type RestartableRelay } from '../support/relay-process';

/** A persistent context on a fresh on-disk profile (its own Chromium process); closing it removes the profile. */
async function launchProfile(baseURL: string | undefined): Promise<{ context: BrowserContext; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'letterbox-profile-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: findChromium(),
    headless: true,
    args: chromiumArgs,
    ...(baseURL === undefined ? {} : { baseURL }),
  });
  return {
    context,
    async dispose() {
      await context.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Playwright's `test` with `baseURL` pointing at the pages server from global-setup, and
 * fixtures: `profile`, a context on a real on-disk profile (Playwright's default contexts are
 * incognito, where IndexedDB lives in memory and quotas differ); `otherBrowser`, the same in a
 * separate browser process; `relay`, a relay process on free ports, stopped after the test;
 * `restartableRelay`, one with a key of its own that `restart()` brings back at the same address;
 * `killableBrowser`, a browser process of our own on a fresh profile (its default context, and
 * `kill`, `pause`, `resume` of its process group by PID, `relaunch` on the same profile), for
 * crash and freeze tests.
 */
export const test = base.extend<{ profile: BrowserContext; otherBrowser: BrowserContext; relay: RelayProcess; restartableRelay: RestartableRelay; killableBrowser: KillableBrowser }>({
  baseURL: async ({}, use) => {
    const url = process.env['LETTERBOX_PAGES_URL'];
    if (url === undefined) throw new Error('LETTERBOX_PAGES_URL is unset: run through playwright.config.ts');
    await use(url);
  },
  profile: async ({ baseURL }, use) => {
    const { context, dispose } = await launchProfile(baseURL);
    await use(context);
    await dispose();
  },
  otherBrowser: async ({ baseURL }, use) => {
    const { context, dispose } = await launchProfile(baseURL);
    await use(context);
    await dispose();
  },
  relay: async ({}, use) => {
    const relay = await startRelayProcess();
    await use(relay);
    await relay.stop();
  },
  restartableRelay: async ({}, use) => {
    const relay = await startRestartableRelay();
    await use(relay);
    await relay.stop();
  },
  killableBrowser: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'letterbox-killable-'));
    let current = await launchKillableChromium(dir);
    const contextOf = async (chromium: KillableChromium) => chromium.browser.contexts()[0] ?? (await chromium.browser.newContext());
    let context = await contextOf(current);
    try {
      await use({
        get browser() {
          return current.browser;
        },
        get pid() {
          return current.pid;
        },
        get context() {
          return context;
        },
        kill: () => current.kill(),
        pause: () => current.pause(),
        resume: () => current.resume(),
        async relaunch() {
          current.resume();
          await current.kill();
          current = await launchKillableChromium(dir);
          context = await contextOf(current);
        },
      });
    } finally {
      current.resume(); // a test that failed while it was paused
      await current.kill();
      await rm(dir, { recursive: true, force: true });
    }
  },
});

/**
 * A browser process the test may kill or pause: its default context (on its on-disk profile),
 * and its process group's signals; `relaunch` kills it (if it still runs) and starts another
 * on the same profile — a crashed browser opened again, its disk as the kill left it. `browser`,
 * `pid` and `context` are the current process's.
 */
export interface KillableBrowser extends KillableChromium {
  readonly context: BrowserContext;
  relaunch(): Promise<void>;
}

export { expect } from '@playwright/test';

/**
 * Opens the page that puts the ES client on `window.lb` (test/e2e/pages/client.ts); `baseURL`
 * for a context that has none (a browser attached over CDP, as `killableBrowser`'s).
 */
export async function openClientPage(page: Page, baseURL = ''): Promise<void> {
  await page.goto(`${baseURL}test/e2e/pages/client.html`);
  await page.waitForFunction(() => document.body.dataset['ready'] === 'true');
}
