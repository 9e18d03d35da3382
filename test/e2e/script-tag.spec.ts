import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test, type Page } from '@playwright/test';
import { startRelayProcess, type RelayProcess } from '../support/relay-process';

// The built script-tag bundle (dist/lib/letterbox.iife.js), served by the relay as `npm start` does.
let relay: RelayProcess;
const sites: Server[] = [];
test.beforeAll(async () => {
  relay = await startRelayProcess();
});
test.afterAll(async () => {
  await relay.stop();
  for (const site of sites) site.close();
});

/**
 * Serves public/script-tag.html from a second origin (another port), its script tag pointing
 * at the relay, as a site embedding Letterbox would; `headers` go with the page.
 */
async function fromSecondOrigin(page: Page, headers: Record<string, string> = {}) {
  const scriptOrigin = new URL(relay.url).origin;
  const html = (await (await fetch(`${relay.url}script-tag.html`)).text()).replace('src="/letterbox.iife.js"', `src="${scriptOrigin}/letterbox.iife.js"`);
  const site = createServer((_, response) => response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...headers }).end(html));
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  sites.push(site);
  const { port } = site.address() as AddressInfo;
  await page.goto(`http://127.0.0.1:${port}/script-tag.html`);
  expect(new URL(page.url()).origin).not.toBe(scriptOrigin);
}

test('the script-tag example runs with the script served from a second origin, and keeps its data', async ({ page }) => {
  await fromSecondOrigin(page);
  await expect(page.locator('#status')).toHaveAttribute('data-received', '1', { timeout: 15_000 });
  await expect(page.locator('#received li')).toHaveText([/^#0: hello at /]);
  // After a reload the record is still there (the new one gets offset 1), and the example's
  // consumer group resumes after what it committed: it receives only the new greeting.
  await page.reload();
  await expect(page.locator('#status')).toHaveAttribute('data-received', '1', { timeout: 15_000 });
  await expect(page.locator('#received li')).toHaveText([/^#1: hello at /]);
});

test('a page whose CSP forbids blob: workers gets a typed error that says so', async ({ page }) => {
  const scriptOrigin = new URL(relay.url).origin;
  await fromSecondOrigin(page, { 'content-security-policy': `script-src 'unsafe-inline' ${scriptOrigin}; worker-src 'self'` });
  await expect(page.locator('#status')).toHaveAttribute('data-error', 'WORKER_START_FAILED', { timeout: 15_000 });
  await expect(page.locator('#status')).toContainText('worker-src blob:');
});

test('the ES build, served as files: a Letterbox without a cluster never loads the network chunk; one that joins a cluster loads it and connects', async ({ page }) => {
  const requested: string[] = [];
  page.on('request', (request) => requested.push(new URL(request.url()).pathname));
  // Any page of the relay's origin will do (the demo runs its own, script-tag, Letterbox beside these).
  await page.goto(relay.url);
  const networkChunk = () => requested.filter((path) => /^\/network-[\w-]+\.js$/.test(path));
  const alone = await page.evaluate(async () => {
    const { Letterbox } = (await import('/letterbox.js' as string)) as typeof import('../../src/client');
    const letterbox = new Letterbox({ clientId: 'es-alone' });
    const producer = letterbox.producer();
    await producer.connect();
    const [sent] = await producer.send({ topic: 'es-build', messages: [{ value: 'hello' }] });
    return sent?.baseOffset;
  });
  expect(alone).toBe('0');
  expect(networkChunk()).toEqual([]);
  const relayEvent = await page.evaluate(async () => {
    const { Letterbox } = (await import('/letterbox.js' as string)) as typeof import('../../src/client');
    const letterbox = new Letterbox({ clientId: 'es-cluster', cluster: `es-${Date.now()}` });
    return new Promise<boolean>((resolve) => {
      letterbox.on('letterbox.relay', (event) => resolve(event.payload.connected));
      void letterbox.peerId();
    });
  });
  expect(relayEvent).toBe(true);
  expect(networkChunk()).toHaveLength(1);
});
