// The KafkaJS compatibility suite: KafkaJS 2.2.4 documentation examples (test/e2e/kafkajs-compat/,
// each file says where it comes from and what was changed), run as written in real Chromium
// against the built script-tag bundle, each checked against what the docs say it prints or does.
import { readFile } from 'node:fs/promises';
import { expect, test, type Page } from '@playwright/test';
import { startRelayProcess, type RelayProcess } from '../support/relay-process';

let relay: RelayProcess;
test.beforeAll(async () => {
  relay = await startRelayProcess();
});
test.afterAll(async () => {
  await relay.stop();
});

declare global {
  interface Window {
    logged: string[];
  }
}

/**
 * Opens a blank page of the relay's origin with the built bundle loaded by a script tag, records
 * console.log lines (objects as JSON, as a Buffer prints `{ type: 'Buffer', data }` there), and
 * runs the example as the body of an async function (the docs' snippets use top-level await).
 */
async function runExample(page: Page, file: string): Promise<() => Promise<string[]>> {
  const code = await readFile(new URL(`./kafkajs-compat/${file}`, import.meta.url), 'utf8');
  const blank = `${relay.url}kafkajs-compat.html`;
  await page.route(blank, (route) => route.fulfill({ contentType: 'text/html; charset=utf-8', body: '<!doctype html><meta charset="utf-8"><title>KafkaJS examples</title>' }));
  await page.goto(blank);
  await page.addScriptTag({ url: '/letterbox.iife.js' });
  await page.evaluate(() => {
    window.logged = [];
    const log = console.log.bind(console);
    console.log = (...args: unknown[]) => {
      window.logged.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      log(...args);
    };
    // An example's unhandled failure (`run().catch(console.error)`) fails the test too.
    const error = console.error.bind(console);
    console.error = (...args: unknown[]) => {
      window.logged.push(`console.error: ${args.map(String).join(' ')}`);
      error(...args);
    };
  });
  await page.evaluate(async (body) => {
    const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (body: string) => () => Promise<void>;
    await new AsyncFunction(body)();
  }, code);
  return () => page.evaluate(() => [...window.logged]);
}

const buffer = (text: string) => ({ type: 'Buffer', data: [...new TextEncoder().encode(text)] });
const parsed = (lines: string[]) => lines.flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : []));

test('Getting started: the producer creates test-topic, the consumer prints the value as text', async ({ page }) => {
  const logged = await runExample(page, 'getting-started.js');
  await expect.poll(logged, { timeout: 30_000 }).toContain(JSON.stringify({ partition: 0, offset: '0', value: 'Hello KafkaJS user!' }));
  expect((await logged()).filter((line) => line.startsWith('console.error'))).toEqual([]);
});

test('Producing with keys and headers, consuming with eachMessage: keys and values print as text, headers as Buffers', async ({ page }) => {
  const logged = await runExample(page, 'producing-consuming.js');
  await expect.poll(async () => parsed(await logged()).length, { timeout: 30_000 }).toBe(3);
  expect(parsed(await logged())).toEqual([
    { key: 'key1', value: 'hello world', headers: {} },
    { key: 'key2', value: 'hey hey!', headers: {} },
    { key: 'key1', value: 'hello world', headers: { 'correlation-id': buffer('2bfb68bb-893a-423b-a7fa-7b568cad5b67'), 'system-id': buffer('my-system') } },
  ]);
});

test('eachBatch: every message of the batch with its topic, partition and high watermark', async ({ page }) => {
  const logged = await runExample(page, 'each-batch.js');
  await expect.poll(async () => parsed(await logged()).length, { timeout: 30_000 }).toBe(3);
  const lines = parsed(await logged()) as Array<{ topic: string; partition: number; highWatermark: string; message: { offset: string; key: string; value: string } }>;
  // Keys spread the three messages over partitions (one here: auto-created topics have one).
  expect(lines.map((l) => [l.topic, l.partition, l.highWatermark, l.message.offset, l.message.key, l.message.value])).toEqual([
    ['batch-topic', 0, '3', '0', 'a', '1'],
    ['batch-topic', 0, '3', '1', 'b', '2'],
    ['batch-topic', 0, '3', '2', 'c', '3'],
  ]);
});

test('Pause & resume: the throttled message is processed again after retryAfter, not before, and the consumer does not crash', async ({ page }) => {
  const logged = await runExample(page, 'pause-resume.js');
  await expect.poll(async () => (await logged()).filter((l) => l.startsWith('dependency call')).length, { timeout: 30_000 }).toBe(2);
  const calls = (await logged()).filter((l) => l.startsWith('dependency call')).map((l) => /^dependency call (\d) for (\S+) at (\d+)$/.exec(l)!);
  expect(calls.map((c) => [c[1], c[2]])).toEqual([
    ['1', 'job-1'],
    ['2', 'job-1'],
  ]);
  // The docs: "Throwing the error will cause the partition to be re-processed after the timeout" (retryAfter: 1 s).
  expect(Number(calls[1]![3]) - Number(calls[0]![3])).toBeGreaterThanOrEqual(1000);
  expect((await logged()).filter((l) => l.startsWith('crash'))).toEqual([]);
});

test('Admin: createTopics, listTopics, fetchTopicOffsets, listGroups and describeGroups right after run(), describeCluster', async ({ page }) => {
  const logged = await runExample(page, 'admin.js');
  const lines = await logged();
  expect(lines).toEqual([
    'created true',
    'topics ["admin-topic"]',
    `offsets ${JSON.stringify([0, 1, 2].map((partition) => ({ partition, offset: '0', high: '0', low: '0' })))}`,
    `groups ${JSON.stringify([{ groupId: 'admin-group', protocolType: 'consumer', state: 'Stable' }])}`,
    'members 1 Stable',
    'brokers 1 true',
  ]);
});

test('Instrumentation events and a custom logger: heartbeats and the group join are reported, the log creator gets ERROR entries only, an unknown event is refused; REQUEST and REQUEST_TIMEOUT carry the docs’ fields', async ({ page }) => {
  const logged = await runExample(page, 'instrumentation-logging.js');
  await expect.poll(async () => (await logged()).filter((l) => l.startsWith('heartbeat at ')).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
  const lines = await logged();
  expect(lines.slice(0, 4)).toEqual(['ERROR [] custom logger {"extra":"data"}', 'ERROR [Consumer] from the consumer {}', 'InvalidArgumentError: unknown event refused', 'joined events-group as leader: true']);
  expect(lines.some((l) => l.includes('below ERROR'))).toBe(false);
  // REQUEST and REQUEST_TIMEOUT carry the docs' payload fields; the idempotent producer's connect
  // takes a producer id (InitProducerId); its first send looks the topic up (Metadata) and produces; the second gives up after its 1 ms timeout, and its
  // late answer is not reported as a REQUEST.
  await expect.poll(async () => (await logged()).includes('send failed: true'), { timeout: 30_000 }).toBe(true);
  const requestFields = 'apiKey apiName apiVersion broker clientId correlationId createdAt duration pendingDuration sentAt size';
  const timeoutFields = 'apiKey apiName apiVersion broker clientId correlationId createdAt pendingDuration sentAt';
  const request = (api: string, key: number) => `request ${api}(key: ${key}, version: 0) to the cluster's broker: true, from my-app, fields ${requestFields}`;
  expect((await logged()).filter((l) => l.startsWith('request'))).toEqual([
    request('InitProducerId', 22),
    request('Metadata', 3),
    request('Metadata', 3),
    request('Produce', 0),
    `request timeout Produce(key: 0, version: 0) to the cluster's broker: true, from my-app, fields ${timeoutFields}`,
  ]);
});

test('Retry and errors: a send before connect is a KafkaJSError; restartOnFailure is asked after each crash and the consumer restarts', async ({ page }) => {
  const logged = await runExample(page, 'errors-retry.js');
  await expect.poll(logged, { timeout: 30_000 }).toContain('processed v1');
  expect(await logged()).toEqual(['not connected: true false', 'restartOnFailure: failure 1', 'restartOnFailure: failure 2', 'processed v1']);
});
