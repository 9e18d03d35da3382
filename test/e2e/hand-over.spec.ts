import type { Page } from '@playwright/test';
import { createTopic, NO_RELAY, openBroker, ORIGIN, recordsTimeoutMs, registered } from './cluster-tabs';
import { leadersOf as leadersOfTopic, METADATA_TIMEOUT_MS, REGISTER_TIMEOUT_MS } from './failover-tabs';
import { expect, test } from './fixtures';
import { acknowledged, expectConsistent, finalRead, historyOf, producerDone, producerRunOf, startConsumer, startProducer, stopConsumer, unreadOf } from './history-tabs';

// Issue 20's graceful hand-over, end to end: three tabs of one browser, brokers of their
// origin's cluster over the local transport; a topic of three partitions with three replicas.
// The tab leading most partitions hands them over (on pagehide; letterbox.close() does the same
// first) while another tab produces with acks -1 and the third consumes: while it is still open, its followers lead
// every partition it led and the controller's seat if it held it; then it closes. The history
// checker judges what the producer saw against a final read: nothing acknowledged lost, no
// duplicate (the idempotent producer), one record per offset.
//
// Bounds come from the protocol (failover-tabs.ts): a broker meets the others and registers;
// a hand-over is bounded by an election timeout (the raft core gives a transfer up then);
// metadata reaches every image within METADATA_TIMEOUT_MS.
const PARTITIONS = 3;
const RECORDS = 3_000;
const BATCH = 30;
const TOPIC = 'handed';

const leadersOf = (page: Page): Promise<number[]> => leadersOfTopic(page, TOPIC);
const votersOf = (page: Page) => page.evaluate(async () => (await (await window.broker.node()).clusterInfo())?.voters.length ?? 0);

test('a tab leading partitions going away (pagehide, then letterbox.close()) hands them to in-sync followers first: they lead while it is still open, the producer in another tab goes on, nothing acknowledged lost (history checker)', async ({ profile }) => {
  test.setTimeout(3 * REGISTER_TIMEOUT_MS + 3 * METADATA_TIMEOUT_MS + 2 * recordsTimeoutMs(RECORDS));
  const pages = await Promise.all([0, 1, 2].map(() => openBroker(profile, ORIGIN, NO_RELAY)));
  const brokers = await Promise.all(pages.map((page) => registered(page, REGISTER_TIMEOUT_MS)));
  // Three voters in every metadata group: the closing tab then leaves a majority of them.
  for (const page of pages) await expect.poll(() => votersOf(page), { timeout: METADATA_TIMEOUT_MS }).toBe(3);
  expect(await createTopic(pages[0]!, { topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3 })).toEqual({ created: true });
  const leaders = await leadersOf(pages[0]!);
  for (const page of pages) await expect.poll(() => leadersOf(page), { timeout: METADATA_TIMEOUT_MS }).toEqual(leaders);
  const led = (i: number) => leaders.filter((l) => l === brokers[i]!.brokerId).length;
  const victim = [0, 1, 2].sort((a, b) => led(b) - led(a))[0]!;
  const producer = pages[(victim + 1) % 3]!;
  const reader = pages[(victim + 2) % 3]!;
  const victimId = brokers[victim]!.brokerId;
  const moved = leaders.flatMap((l, p) => (l === victimId ? [p] : []));
  expect(moved.length).toBeGreaterThan(0);

  await startConsumer(reader, 'reader', TOPIC, `${TOPIC}-readers`);
  await startProducer(producer, { name: 'p', topic: TOPIC, partitions: [0, 1, 2], count: RECORDS, batch: BATCH });
  await expect.poll(async () => (await producerRunOf(producer, 'p')).acked, { timeout: recordsTimeoutMs(RECORDS / 5) }).toBeGreaterThanOrEqual(RECORDS / 5);
  const controller = await producer.evaluate(async () => (await (await window.broker.node()).clusterInfo())?.controller ?? null);
  // The page going away (pagehide, as the browser fires it when a tab closes) starts the hand-over.
  await pages[victim]!.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false })));
  // Still open, it leads none of them: the producer's metadata names its followers.
  await expect.poll(async () => (await leadersOf(producer)).filter((l) => l === victimId), { timeout: METADATA_TIMEOUT_MS }).toEqual([]);
  if (controller === victimId) await expect.poll(() => producer.evaluate(async () => (await (await window.broker.node()).clusterInfo())?.controller), { timeout: METADATA_TIMEOUT_MS }).not.toBe(victimId);
  console.log(`broker ${victimId} led partitions ${moved.join(', ')}${controller === victimId ? ' and the controller' : ''}: its followers lead them while it is still open`);
  await pages[victim]!.evaluate(() => window.broker.close());

  const run = await producerDone(producer, 'p', recordsTimeoutMs(RECORDS) + METADATA_TIMEOUT_MS);
  console.log(`hand-over: ${run.sends} sends, ${run.acked} records acknowledged, ${run.failed} failed ${JSON.stringify(run.errors)}`);
  expect(run.failed).toBe(0);
  expect(run.lastAckedSend).toBe(run.sends);
  const sent = acknowledged(await historyOf([producer], []));
  await expect.poll(async () => (await unreadOf(reader, 'reader', [...sent.keys()])).count, { timeout: recordsTimeoutMs(RECORDS) }).toBe(0);
  await stopConsumer(reader, 'reader');
  const ends = new Map<number, number>();
  for (const { partition, offset } of sent.values()) ends.set(partition, Math.max(ends.get(partition) ?? -1, offset));
  const final = await finalRead(reader, TOPIC, `${TOPIC}-final`, ends);
  const report = expectConsistent(await historyOf([producer, reader], final), 'hand-over');
  expect(report.counts.acknowledged).toBe(RECORDS);
  expect(report.counts.duplicates).toBe(0);
});
