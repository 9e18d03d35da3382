/// <reference path="./pages/log-api.ts" />
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from '@playwright/test';
import { launchKillableChromium } from '../support/killable-chromium';
import { expect, test } from './fixtures';

async function logPage(browser: Browser, baseURL: string) {
  const context = browser.contexts()[0] ?? (await browser.newContext());
  const page = await context.newPage();
  await page.goto(`${baseURL}test/e2e/pages/log.html`);
  await page.waitForFunction(() => document.body.dataset['ready'] === 'true');
  await page.evaluate(() => window.logTest.open('crash-test'));
  return page;
}

test('appends reported durable survive the browser being killed right after', async ({ baseURL }) => {
  test.setTimeout(90_000);
  const profile = await mkdtemp(join(tmpdir(), 'letterbox-crash-'));
  try {
    const first = await launchKillableChromium(profile);
    const page = await logPage(first.browser, baseURL!);
    const acknowledged = await page.evaluate(async () => {
      let last = -1;
      for (let round = 0; round < 20; round++) last = await window.logTest.append('durable', 0, 100, 25);
      return last;
    });
    expect(acknowledged).toBe(1999);
    // More appends in flight at the moment of the crash: they may or may not survive.
    void page.evaluate(() => window.logTest.append('durable', 0, 500, 25)).catch(() => undefined);
    await first.kill();

    const second = await launchKillableChromium(profile);
    try {
      const again = await logPage(second.browser, baseURL!);
      const records = await again.evaluate(() => window.logTest.readAll('durable', 0));
      expect(records.length).toBeGreaterThanOrEqual(2000);
      expect(records.slice(0, 2000).map(([offset, , value]) => [offset, value])).toEqual(
        Array.from({ length: 2000 }, (_, i) => [i, `v${i % 100}`]),
      );
      // Whatever survived of the in-flight appends is whole batches in offset order.
      expect(records.map(([offset]) => offset)).toEqual([...Array(records.length).keys()]);
      expect((records.length - 2000) % 25).toBe(0);
    } finally {
      await second.browser.close().catch(() => undefined);
      await second.kill();
    }
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
});
