/// <reference path="./pages/harness-api.ts" />
import { expect, test } from './fixtures';

test('a page starts a worker that writes and reads IndexedDB through idb, seen via Comlink', async ({ page }) => {
  await page.goto('test/e2e/pages/harness.html');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');

  const scope = await page.evaluate(() => window.harness.scope());
  expect(scope).toBe('DedicatedWorkerGlobalScope');

  const key = `k-${Date.now()}`;
  const written = await page.evaluate(([k]) => window.harness.putAndGet(k, 'hello letterbox'), [key] as const);
  expect(written).toBe('hello letterbox');

  // A reload starts a new worker; the value must come from the database, not memory.
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  expect(await page.evaluate(([k]) => window.harness.get(k), [key] as const)).toBe('hello letterbox');
  expect(await page.evaluate(() => window.harness.get('never-written'))).toBeUndefined();
});
