/// <reference path="./pages/log-api.ts" />
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures';

async function openLogPage(page: Page, db: string) {
  await page.goto('test/e2e/pages/log.html');
  await page.waitForFunction(() => document.body.dataset['ready'] === 'true');
  await page.evaluate((name) => window.logTest.open(name), db);
}

const unique = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

test('100k records appended in a worker are all there after a reload, in order, at the same offsets', async ({ page }) => {
  test.setTimeout(120_000);
  const db = unique('hundred-k');
  await openLogPage(page, db);
  const last = await page.evaluate(() => window.logTest.append('events', 0, 100_000, 500));
  expect(last).toBe(99_999);
  await page.reload();
  await openLogPage(page, db);
  const check = await page.evaluate(async () => {
    const records = await window.logTest.readAll('events', 0);
    let misplaced = 0;
    records.forEach(([offset, , value], i) => {
      if (offset !== i || value !== `v${i}`) misplaced++;
    });
    return { count: records.length, misplaced, offsets: await window.logTest.offsets('events', 0) };
  });
  expect(check).toEqual({ count: 100_000, misplaced: 0, offsets: { logStartOffset: 0, logEndOffset: 100_000, highWatermark: 100_000 } });
});

test('a corrupted tail is truncated at the next open', async ({ page }) => {
  const db = unique('corrupt');
  await openLogPage(page, db);
  for (let i = 0; i < 4; i++) await page.evaluate(() => window.logTest.append('t', 0, 10, 10));
  await page.evaluate(() => window.logTest.corrupt('t', 0, 30));
  await page.reload();
  await openLogPage(page, db);
  expect(await page.evaluate(() => window.logTest.offsets('t', 0))).toEqual({ logStartOffset: 0, logEndOffset: 30, highWatermark: 30 });
  const values = await page.evaluate(() => window.logTest.readAll('t', 0));
  expect(values.map(([o]) => o)).toEqual([...Array(30).keys()]);
  // The log keeps working where the good part ended.
  expect(await page.evaluate(() => window.logTest.append('t', 0, 1, 1))).toBe(30);
});

test('group commit: concurrent appends to several partitions share transactions', async ({ page }) => {
  await openLogPage(page, unique('group'));
  const result = await page.evaluate(async () => {
    const before = await window.logTest.transactions();
    // 4 partitions × 20 batches, all in flight at once.
    const lasts = await Promise.all([0, 1, 2, 3].map((p) => window.logTest.append('g', p, 200, 10)));
    const offsets = await Promise.all([0, 1, 2, 3].map((p) => window.logTest.offsets('g', p)));
    return { lasts, ends: offsets.map((o) => o.logEndOffset), transactions: (await window.logTest.transactions()) - before };
  });
  expect(result.lasts).toEqual([199, 199, 199, 199]);
  expect(result.ends).toEqual([200, 200, 200, 200]);
  // 80 batches from 4 partitions: fewer transactions than partitions proves they were shared.
  expect(result.transactions).toBeGreaterThan(0);
  expect(result.transactions).toBeLessThan(4);
});

test('retention and compaction run on a real database and survive a reload', async ({ page }) => {
  const db = unique('cleanup');
  await openLogPage(page, db);
  const now = Date.now();
  await page.evaluate(
    ([t]) => window.logTest.append('ret', 0, 30, 10, { timestamp: t - 120_000, config: { retentionMs: 60_000 } }),
    [now] as const,
  );
  await page.evaluate(([t]) => window.logTest.append('ret', 0, 10, 10, { timestamp: t }), [now] as const);
  await page.evaluate(() => window.logTest.append('cmp', 0, 100, 10, { keys: 7, config: { cleanupPolicy: 'compact' } }));
  await page.evaluate(([t]) => window.logTest.maintain(t), [now] as const);

  await page.reload();
  await openLogPage(page, db);
  expect(await page.evaluate(() => window.logTest.offsets('ret', 0))).toEqual({ logStartOffset: 30, logEndOffset: 40, highWatermark: 40 });
  const compacted = await page.evaluate(() => window.logTest.readAll('cmp', 0));
  // The latest record of each of the 7 keys, at its original offset.
  expect(compacted).toEqual([93, 94, 95, 96, 97, 98, 99].map((o) => [o, `k${o % 7}`, `v${o}`]));
  expect(await page.evaluate(() => window.logTest.offsets('cmp', 0))).toMatchObject({ logEndOffset: 100 });
});

test('out of quota: a typed error, nothing lost, and appends work again once space is freed', async ({ profile }) => {
  test.setTimeout(90_000);
  const page = profile.pages()[0] ?? (await profile.newPage());
  await page.goto('test/e2e/pages/log.html');
  // Chromium's IndexedDB caches the space it may use once writing starts, so the quota is
  // set before the first write.
  const cdp = await profile.newCDPSession(page);
  const origin = new URL(page.url()).origin;
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 8 * 1024 * 1024 });
  await openLogPage(page, unique('quota'));
  await page.evaluate(() => window.logTest.append('keep', 0, 100, 10));

  const outcomes: Array<Awaited<ReturnType<typeof window.logTest.appendBlob>>> = [];
  for (let i = 0; i < 40; i++) {
    const outcome = await page.evaluate(() => window.logTest.appendBlob('filler', 0, 1024 * 1024));
    outcomes.push(outcome);
    if (outcome.outcome === 'error') break;
  }
  const failure = outcomes.at(-1);
  expect(failure).toEqual({ outcome: 'error', name: 'StorageFullError', code: 'KAFKA_STORAGE_ERROR', retriable: true });
  const stored = outcomes.length - 1;
  expect(stored).toBeGreaterThan(0);

  // Nothing already stored was lost, and the failed append left no trace.
  expect((await page.evaluate(() => window.logTest.readAll('keep', 0))).length).toBe(100);
  expect(await page.evaluate(() => window.logTest.offsets('filler', 0))).toMatchObject({ logEndOffset: stored });

  await page.evaluate(() => window.logTest.deletePartition('filler', 0));
  expect(await page.evaluate(() => window.logTest.appendBlob('keep', 0, 1024 * 1024))).toEqual({ outcome: 'ok' });
  expect(await page.evaluate(() => window.logTest.offsets('keep', 0))).toMatchObject({ logEndOffset: 101 });
  expect((await page.evaluate(() => window.logTest.readAll('keep', 0))).length).toBe(101);
});
