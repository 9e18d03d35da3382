import { expect, test } from '@playwright/test';
import { CLUSTER_ADMIN_TIMEOUT_MS } from '../../src/node/broker';
import { BROWSER_TIMING } from '../../src/node/membership';
import { startRelayProcess, type RelayProcess } from '../support/relay-process';

let relay: RelayProcess;
test.beforeAll(async () => {
  relay = await startRelayProcess();
});
test.afterAll(async () => {
  await relay.stop();
});

test('npm start prints a URL whose demo page loads in Chromium', async ({ page }) => {
  expect(relay.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  const response = await page.goto(relay.url);
  expect(response?.status()).toBe(200);
  await expect(page).toHaveTitle('Letterbox demo');
  await expect(page.locator('h1')).toHaveText('Letterbox');
});

test('the demo draws its partitions with the log, the committed offset and the lag, and they move with events', async ({ page }) => {
  await page.goto(`${relay.url}?cluster=demo-partitions`);
  const rows = page.locator('#partitions g[data-partition]');
  // The topic comes once the tab's broker formed its cluster (the formation rounds) and the
  // controller created it (the broker's bound for an admin change).
  await expect(rows).toHaveCount(3, { timeout: BROWSER_TIMING.formationRounds * BROWSER_TIMING.sessionTickMs + CLUSTER_ADMIN_TIMEOUT_MS });
  const totals = () =>
    rows.evaluateAll((gs) => ({
      high: gs.reduce((sum, g) => sum + Number(g.getAttribute('data-high')), 0),
      lag: gs.reduce((sum, g) => sum + Number(g.getAttribute('data-lag')), 0),
    }));
  await page.getByRole('button', { name: 'Send 100 events' }).click();
  await expect.poll(totals).toEqual({ high: 100, lag: 0 });
  await expect(page.locator('#latest')).toContainText('event ');
  await page.getByRole('button', { name: 'Pause the consumer' }).click();
  await page.getByRole('button', { name: 'Send 100 events' }).click();
  await expect.poll(totals).toEqual({ high: 200, lag: 100 });
  await page.getByRole('button', { name: 'Resume the consumer' }).click();
  await expect.poll(totals).toEqual({ high: 200, lag: 0 });
  // The committed part of each bar is drawn as wide as the log once the lag is gone.
  const widths = await page.locator('#partitions g[data-partition]').evaluateAll((gs) =>
    gs.map((g) => [g.querySelector('.log')!.getAttribute('width'), g.querySelector('.committed')!.getAttribute('width')]),
  );
  for (const [log, committed] of widths) expect(committed).toBe(log);
  // "Close this broker": letterbox.close(), which hands leaderships over first (test/e2e/hand-over.spec.ts); the page says it is closed and stays so.
  await page.getByRole('button', { name: 'Close this broker' }).click();
  await expect(page.locator('#status')).toContainText('This broker is closed', { timeout: CLUSTER_ADMIN_TIMEOUT_MS });
  await expect(page.getByRole('button', { name: 'Send 100 events' })).toBeDisabled();
  expect(await page.evaluate(() => window.demo.letterbox.nodeInfo().then(() => 'open', (error: Error) => error.name))).toBe('NotConnectedError');
});

test('the relay serves nothing outside its folders and answers bad requests plainly', async ({ request }) => {
  for (const path of ['/../package.json', '/%2e%2e/package.json', '/%2e%2e%2fpackage.json', '/missing.html', '/%E0%A4%A']) {
    const response = await request.get(relay.url.replace(/\/$/, '') + path);
    expect(response.status(), path).toBe(404);
  }
  const post = await request.post(relay.url, { data: 'x' });
  expect(post.status()).toBe(405);
});

test('a bad port is refused with a clear message', async () => {
  await expect(startRelayProcess(['--port', 'eighty'])).rejects.toThrow(/--port must be a whole number/);
});

test('an unknown option is refused with the usage line', async () => {
  await expect(startRelayProcess(['--bogus'])).rejects.toThrow(/Unknown option '--bogus'[\s\S]*usage: letterbox relay/);
});
