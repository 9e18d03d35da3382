import type { BrowserContext, Page } from '@playwright/test';
import { clusterInfoOf, createTopic, LOCK_RELEASE_TIMEOUT_MS, NO_RELAY, nodeInfoOf, openClientTab, ORIGIN, recordsTimeoutMs, registered, REOPEN_SLOT_WAIT_MS, reopenBroker, startBroker, type StartOptions } from './cluster-tabs';
import { leadersOf, METADATA_TIMEOUT_MS, REGISTER_TIMEOUT_MS } from './failover-tabs';
import { expect, test } from './fixtures';
import type { History, LogRecord, Op } from '../sim/history';
import { acknowledged, expectConsistent, finalRead, historyOf, producerDone, producerProgressOf, producerRunOf, startConsumer, startProducer, stopConsumer, stopProducer, unreadOf } from './history-tabs';

// Issue 21's slot adoption, end to end: two tabs of one origin, brokers of its cluster over the
// local transport, a topic with replication factor 2 (a raft group of two: one tab alone is no
// quorum). A tab closing mid-stream leaves its slot's lock to the other tab, which runs the
// closed tab's broker in a worker of its own on the closed tab's database: the same raft member
// restarting, so the partitions are writable again and the producer in the surviving tab goes
// on. The closed tab reopened (its slot remembered in sessionStorage, as a restored tab has it)
// asks for its slot and gets it back. Both ways round; the history checker judges what both
// producers saw against a final read.
//
// Bounds come from the protocol: a closed tab's lock is released within LOCK_RELEASE_TIMEOUT_MS,
// an adopted broker registers again within REGISTER_TIMEOUT_MS, a hand-back takes a hand-over
// (an election timeout) and a close, well within the reopened tab's SLOT_WAIT_MS.
const TOPIC = 'adopted';
const PARTITIONS = 2;
const RECORDS = 2_000;
const BATCH = 20;
const SLOT_WAIT_MS = 10_000;
const START: StartOptions = { adoptSlots: 2, slotWaitMs: SLOT_WAIT_MS };

/** Under-replicated and offline partitions as admin.describeCluster() counts them, and the last `letterbox.replication_health` event heard. */
const replicationHealthOf = (page: Page) =>
  page.evaluate(async () => {
    const { underReplicatedPartitions, offlinePartitions } = await window.admin.describeCluster();
    return { underReplicated: underReplicatedPartitions, offline: offlinePartitions, event: window.replicationHealth };
  });
const adoptedOf = (page: Page) => page.evaluate(() => window.broker.adoptedSlots().sort((a, b) => a.slot - b.slot));
/** Which broker's tab runs broker `brokerId`, as admin.describeCluster() on `page` says (undefined: its own tab). */
const hostOf = (page: Page, brokerId: number | undefined) => page.evaluate(async (id) => (await window.admin.describeCluster()).brokers.find((b) => b.nodeId === id)?.hostedBy ?? null, brokerId);

/** `count` tabs, brokers of the origin's cluster, and a topic of PARTITIONS partitions replicated on all of them. */
async function openTabs(context: BrowserContext, count: number, where: Where = ORIGIN_CLUSTER): Promise<Page[]> {
  const pages = await Promise.all(Array.from({ length: count }, async () => {
    const page = await openClientTab(context);
    await startBroker(page, where.cluster, where.relay, START);
    return page;
  }));
  await Promise.all(pages.map((page) => registered(page, REGISTER_TIMEOUT_MS)));
  expect(await createTopic(pages[0]!, { topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: count })).toEqual({ created: true });
  for (const page of pages) await expect.poll(() => leadersOf(page, TOPIC), { timeout: METADATA_TIMEOUT_MS }).toHaveLength(PARTITIONS);
  return pages;
}

/** Reads every acknowledged record of `history` back and judges the whole history with a final read. */
async function expectNothingLost(reader: Page, historyWith: (final: readonly LogRecord[]) => Promise<History>, records: number): Promise<void> {
  const sent = acknowledged(await historyWith([]));
  expect(sent.size).toBe(records);
  await startConsumer(reader, 'reader', TOPIC, `${TOPIC}-readers`);
  await expect.poll(async () => (await unreadOf(reader, 'reader', [...sent.keys()])).count, { timeout: recordsTimeoutMs(records) }).toBe(0);
  await stopConsumer(reader, 'reader');
  const ends = new Map<number, number>();
  for (const { partition, offset } of sent.values()) ends.set(partition, Math.max(ends.get(partition) ?? -1, offset));
  const final = await finalRead(reader, TOPIC, `${TOPIC}-final`, ends);
  const report = expectConsistent(await historyWith(final), 'adoption');
  expect(report.counts.acknowledged).toBe(records);
}

/** Reopens the tab on `slot`, and checks it got its slot back: the same broker, from its own disk. */
async function reopenOwn(context: BrowserContext, closed: { slot: number; brokerId?: number }, where: Where = ORIGIN_CLUSTER): Promise<Page> {
  const page = await reopenBroker(context, closed.slot, where.cluster, where.relay);
  const back = await registered(page, REOPEN_SLOT_WAIT_MS + REGISTER_TIMEOUT_MS);
  expect({ slot: (await nodeInfoOf(page)).slot, brokerId: back.brokerId }).toEqual({ slot: closed.slot, brokerId: closed.brokerId });
  return page;
}

/** The cluster the tabs join, and its relay: by default their origin's, with no relay. */
interface Where {
  cluster: string;
  relay: string;
}
const ORIGIN_CLUSTER: Where = { cluster: ORIGIN, relay: NO_RELAY };

test('two tabs, replication factor 2: either closing mid-stream has its slot adopted by the other, whose producer (acks -1) goes on; reopened, it gets its slot back; nothing acknowledged lost (history checker)', async ({ profile }) => {
  test.setTimeout(2 * REGISTER_TIMEOUT_MS + 4 * (LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS + METADATA_TIMEOUT_MS) + 4 * recordsTimeoutMs(RECORDS));
  const pages = await openTabs(profile, 2);
  /** What the producers did, taken from each tab before it closes (its history goes with it). */
  const saved: Op[] = [];

  for (const closing of [1, 0]) {
    const survivor = pages[1 - closing]!;
    const name = `p${closing}`;
    const closed = await nodeInfoOf(pages[closing]!);
    await startProducer(survivor, { name, topic: TOPIC, partitions: [0, 1], count: RECORDS, batch: BATCH });
    await survivor.evaluate(() => {
      const seen: number[][] = ((window as unknown as { adoptions: number[][] }).adoptions = []);
      window.broker.on('letterbox.slots_adopted', ({ payload }) => seen.push(payload.adopted.map((s) => s.slot)));
    });
    await expect.poll(async () => (await producerRunOf(survivor, name)).acked, { timeout: recordsTimeoutMs(RECORDS / 4) }).toBeGreaterThanOrEqual(RECORDS / 4);
    saved.push(...(await historyOf([pages[closing]!], [])).ops);
    await pages[closing]!.close();
    // The survivor runs the closed tab's broker, which rejoins under its own broker id.
    await expect.poll(() => adoptedOf(survivor), { timeout: LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS }).toEqual([{ slot: closed.slot, brokerId: closed.brokerId }]);
    // And the cluster knows where it runs: admin names the survivor's broker as its host.
    const host = (await nodeInfoOf(survivor)).brokerId;
    await expect.poll(() => hostOf(survivor, closed.brokerId), { timeout: METADATA_TIMEOUT_MS }).toBe(host);
    const run = await producerDone(survivor, name, recordsTimeoutMs(RECORDS) + METADATA_TIMEOUT_MS);
    console.log(`tab on slot ${closed.slot} (broker ${closed.brokerId}) closed mid-stream and adopted: ${run.acked} records acknowledged, ${run.failed} failed ${JSON.stringify(run.errors)}`);
    expect(run.failed).toBe(0);

    // Wishes on the slots channel with no tab in line for the lock (bad input from any script of
    // the origin) are ignored: the reopened tab's is the only hand-back the survivor makes.
    await survivor.evaluate((slot) => {
      const channel = new BroadcastChannel('letterbox-slots');
      for (const wish of [{ wanted: slot }, { wanted: String(slot) }, null, 'x', { wanted: slot + 1 }]) channel.postMessage(wish);
      channel.close();
    }, closed.slot);
    // Reopened, it asks for its slot and gets it back.
    pages[closing] = await reopenOwn(profile, closed);
    expect(await adoptedOf(survivor)).toEqual([]);
    await expect.poll(() => hostOf(survivor, closed.brokerId), { timeout: METADATA_TIMEOUT_MS }).toBeNull();
    const adoptions = await survivor.evaluate(() => (window as unknown as { adoptions: number[][] }).adoptions);
    expect(adoptions.filter((slots, i) => i === 0 || slots.join() !== adoptions[i - 1]!.join())).toEqual([[closed.slot], []]);
  }

  const historyWith = async (final: readonly LogRecord[]): Promise<History> => ({ ops: [...saved, ...(await historyOf(pages, final)).ops], final });
  await expectNothingLost(pages[0]!, historyWith, 2 * RECORDS);
});

test('three tabs, replication factor 3, closing one after another down to one: the last runs both closed brokers and its producer (acks -1) goes on; a new tab takes one back, the other reopened gets its own; nothing acknowledged lost (history checker)', async ({ profile }) => {
  test.setTimeout(3 * REGISTER_TIMEOUT_MS + 4 * (LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS + METADATA_TIMEOUT_MS) + 3 * recordsTimeoutMs(RECORDS));
  const pages = await openTabs(profile, 3);
  const last = pages[0]!;
  const closed = [await nodeInfoOf(pages[2]!), await nodeInfoOf(pages[1]!)];
  // The producer runs until stopped, so both tabs close while it sends, however fast it goes.
  await startProducer(last, { name: 'p', topic: TOPIC, partitions: [0, 1], count: Infinity, batch: BATCH });
  for (const [i, closing] of [pages[2]!, pages[1]!].entries()) {
    await expect.poll(async () => (await producerProgressOf(last, 'p')).acked, { timeout: recordsTimeoutMs(RECORDS / 4) }).toBeGreaterThanOrEqual(((i + 1) * RECORDS) / 4);
    await closing.close();
  }
  // The last tab runs both: the second to close may have adopted the first, and its own slot and that one came to the last.
  const both = closed.map(({ slot, brokerId }) => ({ slot, brokerId })).sort((a, b) => a.slot - b.slot);
  await expect.poll(() => adoptedOf(last), { timeout: 2 * (LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS) }).toEqual(both);
  // It goes on writing with both brokers adopted.
  const adoptedAt = (await producerProgressOf(last, 'p')).acked;
  await expect.poll(async () => (await producerProgressOf(last, 'p')).acked, { timeout: recordsTimeoutMs(RECORDS / 2) + METADATA_TIMEOUT_MS }).toBeGreaterThanOrEqual(adoptedAt + RECORDS / 2);
  await stopProducer(last, 'p');
  const run = await producerDone(last, 'p', METADATA_TIMEOUT_MS);
  console.log(`two of three tabs closed mid-stream, both adopted by the last: ${run.acked} records acknowledged, ${run.failed} failed ${JSON.stringify(run.errors)}`);
  expect(run.failed).toBe(0);
  // A new tab (no slot of its own to ask for) relieves the last one: it asks for an adopted slot
  // (the lowest) and gets it, the same broker from its disk; the other closed tab reopens on its own.
  const fresh = await openClientTab(profile);
  await startBroker(fresh, ORIGIN, NO_RELAY, START);
  const taken = await registered(fresh, SLOT_WAIT_MS + REGISTER_TIMEOUT_MS);
  expect({ slot: (await nodeInfoOf(fresh)).slot, brokerId: taken.brokerId }).toEqual(both[0]);
  await expect.poll(() => adoptedOf(last), { timeout: SLOT_WAIT_MS }).toEqual([both[1]]);
  pages[2] = fresh;
  pages[1] = await reopenOwn(profile, both[1]!);
  expect(await adoptedOf(last)).toEqual([]);
  await expectNothingLost(pages[1]!, async (final) => historyOf(pages, final), run.acked);
});

test('a cluster met over the relay: the closed tab’s broker, adopted, runs under the address it registered (this browser’s tabs reach it over the local transport), and the producer (acks -1) goes on; reopened, it gets its slot back', async ({ profile, relay }) => {
  test.setTimeout(2 * REGISTER_TIMEOUT_MS + 2 * (LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS + METADATA_TIMEOUT_MS) + 2 * recordsTimeoutMs(RECORDS));
  const where = { cluster: `adoption-${test.info().workerIndex}-${Date.now()}`, relay: relay.url };
  const [survivor, closing] = (await openTabs(profile, 2, where)) as [Page, Page];
  const closed = await nodeInfoOf(closing);
  await startProducer(survivor, { name: 'p', topic: TOPIC, partitions: [0, 1], count: RECORDS, batch: BATCH });
  await expect.poll(async () => (await producerRunOf(survivor, 'p')).acked, { timeout: recordsTimeoutMs(RECORDS / 4) }).toBeGreaterThanOrEqual(RECORDS / 4);
  await closing.close();
  await expect.poll(() => adoptedOf(survivor), { timeout: LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS }).toEqual([{ slot: closed.slot, brokerId: closed.brokerId }]);
  const run = await producerDone(survivor, 'p', recordsTimeoutMs(RECORDS) + METADATA_TIMEOUT_MS);
  expect(run.failed).toBe(0);
  const reopened = await reopenOwn(profile, closed, where);
  expect(await adoptedOf(survivor)).toEqual([]);
  await expectNothingLost(reopened, async (final) => historyOf([survivor, reopened], final), RECORDS);
});

test('all tabs closed: the first tab opened adopts the other closed tab’s slot (free, its database a broker of the cluster), so partitions of replication factor 2 are writable again, and nothing acknowledged before or after is lost (history checker)', async ({ profile }) => {
  test.setTimeout(2 * REGISTER_TIMEOUT_MS + 2 * (LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS + METADATA_TIMEOUT_MS) + 2 * recordsTimeoutMs(RECORDS));
  const pages = await openTabs(profile, 2);
  const closed = (await Promise.all(pages.map(nodeInfoOf))).map(({ slot, brokerId }) => ({ slot, brokerId })).sort((a, b) => a.slot - b.slot);
  await startProducer(pages[0]!, { name: 'before', topic: TOPIC, partitions: [0, 1], count: RECORDS / 2, batch: BATCH });
  expect((await producerDone(pages[0]!, 'before', recordsTimeoutMs(RECORDS))).failed).toBe(0);
  const saved = (await historyOf(pages, [])).ops;
  // Both close at once: neither is left to adopt the other.
  await Promise.all(pages.map((page) => page.close()));

  // A new tab takes the lowest free slot as its own and adopts the other: two voters of each group run again.
  const first = await openClientTab(profile);
  await startBroker(first, ORIGIN, NO_RELAY, START);
  await registered(first, REGISTER_TIMEOUT_MS);
  expect({ slot: (await nodeInfoOf(first)).slot, brokerId: (await nodeInfoOf(first)).brokerId }).toEqual(closed[0]);
  try {
    await expect.poll(() => adoptedOf(first), { timeout: LOCK_RELEASE_TIMEOUT_MS + REGISTER_TIMEOUT_MS }).toEqual([closed[1]]);
  } catch (error) {
    throw new Error(`slot ${closed[1]!.slot} not adopted; the tab's log: ${await clusterInfoOf(first)}`, { cause: error });
  }
  await startProducer(first, { name: 'after', topic: TOPIC, partitions: [0, 1], count: RECORDS / 2, batch: BATCH });
  const run = await producerDone(first, 'after', recordsTimeoutMs(RECORDS) + METADATA_TIMEOUT_MS);
  console.log(`all tabs closed, the first reopened adopted slot ${closed[1]!.slot}: ${run.acked} records acknowledged, ${run.failed} failed ${JSON.stringify(run.errors)}`);
  expect(run.failed).toBe(0);
  // Every partition whole again, as admin and the tab's event say.
  await expect.poll(() => replicationHealthOf(first), { timeout: METADATA_TIMEOUT_MS }).toEqual({ underReplicated: 0, offline: 0, event: { underReplicated: 0, offline: 0 } });
  await expectNothingLost(first, async (final) => ({ ops: [...saved, ...(await historyOf([first], final)).ops], final }), RECORDS);
});
