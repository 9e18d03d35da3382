import type { BrowserContext, Page } from '@playwright/test';
import { BROWSER_TIMING } from '../../src/node/membership';
import {
  NO_RELAY,
  ORIGIN,
  brokerNamesOf,
  clusterInfoOf,
  clusterViewOf,
  controllerOf,
  createTopic,
  expectDataPath,
  openBroker,
  placementOf,
  registered,
  reopenBroker,
  startBroker,
  type ClusterView,
  type PartitionPlace,
  type Registered,
} from './cluster-tabs';
import { DISCOVERY_TIMEOUT_MS } from './demo';
import { expect, test } from './fixtures';

// Issue 18: the tabs become one cluster. Brokers that reach each other (through the relay, or
// over the local transport between an origin's tabs) form one cluster under one name, whose
// metadata (brokers, topics and where their partitions live) every tab reads from its own image.
// Issue 25, on the same pages: the data path across them (expectDataPath, cluster-tabs.ts) —
// RECORDS keyed records with acks -1 to a topic of PARTITIONS partitions led by every broker,
// read from the leaders, and a consumer group whose members run in different tabs — through
// the relay with four pages, and over the local transport with three tabs.
//
// Every wait below is on a condition, bounded by what the protocol allows (BROWSER_TIMING,
// src/node/membership.ts), never a sleep:
// REGISTER_TIMEOUT_MS: a broker meets the others (across browser processes: discovery through
//   the relay and a WebRTC dial, DISCOVERY_TIMEOUT_MS on a loaded machine), listens for the
//   formation rounds and registers with the active controller (one request);
// METADATA_TIMEOUT_MS: an admin change is committed and reaches every follower's image — the
//   broker's own bound for a change to be applied here (CLUSTER_ADMIN_TIMEOUT_MS, broker.ts);
// FENCE_TIMEOUT_MS: a broker silent for the session timeout is fenced at the controller's next
//   tick, and that record reaches every image;
// FAILOVER_TIMEOUT_MS: a closed controller is noticed (an election timeout of its followers, at
//   once in its own browser through its slot lock, and within the session timeout whatever
//   happens), a new one elected and active, and every image names it;
// LOCK_RELEASE_TIMEOUT_MS (cluster-tabs.ts): a closed tab's worker ends and its slot lock is released.
const FORMATION_MS = BROWSER_TIMING.formationRounds * BROWSER_TIMING.sessionTickMs;
const REGISTER_TIMEOUT_MS = DISCOVERY_TIMEOUT_MS + FORMATION_MS + BROWSER_TIMING.requestTimeoutMs;
const METADATA_TIMEOUT_MS = 30_000;
const FENCE_TIMEOUT_MS = BROWSER_TIMING.sessionTimeoutMs + BROWSER_TIMING.controllerTickMs + METADATA_TIMEOUT_MS;
const FAILOVER_TIMEOUT_MS = BROWSER_TIMING.sessionTimeoutMs + METADATA_TIMEOUT_MS;
const PARTITIONS = 6;
const RECORDS = 10_000;

// The two tests share nothing: each may take a worker of its own.
test.describe.configure({ mode: 'parallel' });

interface Tab {
  name: string;
  context: BrowserContext;
  page: Page;
  broker: Registered;
}

const ids = (tabs: readonly Tab[]) => tabs.map((t) => t.broker.brokerId).sort((a, b) => a - b);

/** Waits until every tab's describeCluster names exactly `tabs`' brokers, one controller among them, in `clusterId`; returns that view. */
async function expectOneCluster(tabs: readonly Tab[], clusterId: string, timeoutMs = METADATA_TIMEOUT_MS): Promise<ClusterView> {
  const brokerIds = ids(tabs);
  for (const { name, page } of tabs) {
    try {
      await expect
        .poll(async () => {
          const view = await clusterViewOf(page);
          return 'failed' in view ? view : { ...view, controller: view.controller !== null && brokerIds.includes(view.controller) };
        }, { timeout: timeoutMs })
        .toEqual({ brokerIds, controller: true, clusterId });
    } catch (error) {
      // What every broker's image and links say, to tell a lost request from a lost link.
      const infos = await Promise.all(tabs.map(async (t) => `${t.name}: ${await clusterInfoOf(t.page).catch(String)}`));
      throw new Error(`${name} does not see one cluster of brokers ${brokerIds.join(', ')}:\n${infos.join('\n')}`, { cause: error });
    }
  }
  // One controller, the same for all (each saw it in its own image, so read them again together).
  const views = (await Promise.all(tabs.map(({ page }) => clusterViewOf(page)))) as ClusterView[];
  expect(new Set(views.map((v) => v.controller)).size).toBe(1);
  return views[0]!;
}

/**
 * Creates `topic` (`numPartitions`) from `from` and waits until every tab shows it; expects the
 * same placement everywhere, each partition led by a broker of the cluster, and returns it.
 */
async function createAndSee(from: Tab, tabs: readonly Tab[], topic: string, numPartitions: number): Promise<{ placement: PartitionPlace[]; ms: number }> {
  const started = Date.now();
  expect(await createTopic(from.page, { topic, numPartitions })).toEqual({ created: true });
  for (const { page } of tabs) {
    await expect
      .poll(async () => {
        const placement = await placementOf(page, topic);
        return 'failed' in placement ? placement.failed.code : placement.length;
      }, { timeout: METADATA_TIMEOUT_MS })
      .toBe(numPartitions);
  }
  const ms = Date.now() - started;
  const placements = await Promise.all(tabs.map(({ page }) => placementOf(page, topic)));
  const [first] = placements as PartitionPlace[][];
  for (const [i, placement] of placements.entries()) expect(placement, `${tabs[i]!.name}'s placement of ${topic}`).toEqual(first);
  const brokerIds = ids(tabs);
  for (const partition of first!) {
    expect(brokerIds).toContain(partition.leader);
    // One replica per data partition until replicated partitions land (issue 18).
    expect(partition.replicas).toEqual([partition.leader]);
    expect(partition.isr).toEqual([partition.leader]);
  }
  return { placement: first!, ms };
}

/** Registers each page's broker and names it. */
async function tabsOf(pages: ReadonlyArray<readonly [string, BrowserContext, Page]>): Promise<Tab[]> {
  return Promise.all(pages.map(async ([name, context, page]) => ({ name, context, page, broker: await registered(page, REGISTER_TIMEOUT_MS) })));
}

test('four pages through the relay (three tabs, another browser process) are one cluster: two tabs started at once, one placement everywhere, 10k records routed to 6 partitions over 4 brokers and a group across tabs, a relay restart, the controller’s tab closed, a reopened tab', async ({ profile, otherBrowser, restartableRelay: relay }) => {
  test.setTimeout(300_000);
  const cluster = `cluster-${Date.now()}`;
  let all: Tab[] = [];
  let clusterId = '';

  // No tab adopts a closed tab's broker here: this test is about another broker taking over (adoption.spec.ts tests adoption).
  const noAdoption = { adoptSlots: 0 };
  await test.step('two tabs opened at the same moment form one cluster', async () => {
    const [a, b] = await Promise.all([openBroker(profile, cluster, relay.url, undefined, noAdoption), openBroker(profile, cluster, relay.url, undefined, noAdoption)]);
    const [tabA, tabB] = await tabsOf([['A', profile, a], ['B', profile, b]]);
    expect(tabB!.broker.clusterId).toBe(tabA!.broker.clusterId);
    expect(tabB!.broker.brokerId).not.toBe(tabA!.broker.brokerId);
    clusterId = tabA!.broker.clusterId;
    all = [tabA!, tabB!];
    await expectOneCluster(all, clusterId);
  });

  await test.step('a page of another browser process and a third tab join it: four brokers, one cluster id, one controller', async () => {
    const [c, d] = await Promise.all([openBroker(otherBrowser, cluster, relay.url, undefined, noAdoption), openBroker(profile, cluster, relay.url, undefined, noAdoption)]);
    all = [...all, ...(await tabsOf([['C (other process)', otherBrowser, c], ['D', profile, d]]))];
    const registrations = await Promise.all(all.map(async (t) => `${t.name}: broker ${t.broker.brokerId} of ${t.broker.clusterId} (slot ${t.broker.slot}) ${await clusterInfoOf(t.page)}`));
    console.log(registrations.join('; '));
    expect(all.map((t) => t.broker.clusterId), registrations.join('; ')).toEqual(all.map(() => clusterId));
    expect(new Set(ids(all)).size, registrations.join('; ')).toBe(4);
    await expectOneCluster(all, clusterId);
  });

  const [tabA, tabB, tabC, tabD] = all as [Tab, Tab, Tab, Tab];
  let orders: PartitionPlace[] = [];
  await test.step(`a topic of ${PARTITIONS} partitions created in tab A is seen with the same placement in every tab`, async () => {
    const { placement, ms } = await createAndSee(tabA, all, 'orders', PARTITIONS);
    console.log(`createTopics in A until visible in 4 tabs: ${ms} ms; placement ${placement.map((p) => `${p.partitionId}→${p.leader}`).join(' ')}`);
    orders = placement;
  });

  // Issue 25's data path: B's records reach every partition's leader, the page of the other
  // process reads them all, and a group spans it and tab D (whose tab then reloads).
  await expectDataPath({ producer: tabB, reader: tabC, stayer: tabD, observer: tabA }, 'orders', orders, ids(all), RECORDS, async () => {
    await startBroker(tabD.page, cluster, relay.url, noAdoption);
    return registered(tabD.page, REGISTER_TIMEOUT_MS);
  });

  await test.step('a replication factor above the supported three is refused, typed, and creates nothing', async () => {
    expect(await createTopic(all[3]!.page, { topic: 'wide', numPartitions: 1, replicationFactor: 4 })).toMatchObject({
      failed: { name: 'InvalidConfigError', code: 'INVALID_REPLICATION_FACTOR' },
    });
  });

  await test.step('the relay restarted mid-run: still one cluster, and metadata still reaches every tab', async () => {
    const restartedAt = Date.now();
    await relay.restart();
    // From the page of the other process, whose only way to the tabs is WebRTC set up through the relay.
    const { ms } = await createAndSee(all[2]!, all, 'after-restart', 2);
    console.log(`after a relay restart, createTopics in C visible in 4 tabs ${ms} ms later (${Date.now() - restartedAt} ms after the restart)`);
    await expectOneCluster(all, clusterId);
    for (const { page } of all) expect(await placementOf(page, 'wide')).toMatchObject({ failed: { code: 'UNKNOWN_TOPIC_OR_PARTITION' } });
  });

  let closed: Tab;
  await test.step('the active controller’s page closed: another broker takes over, and a topic can still be created from the others', async () => {
    const controller = await controllerOf(tabA.page);
    closed = all.find((t) => t.broker.brokerId === controller)!;
    expect(closed, `the controller ${controller} is one of the pages' brokers`).toBeDefined();
    const rest = all.filter((t) => t !== closed);
    const closedAt = Date.now();
    await closed.page.close();
    for (const { page } of rest) {
      await expect
        .poll(async () => {
          const now = await controllerOf(page);
          return now !== null && now !== controller && ids(rest).includes(now);
        }, { timeout: FAILOVER_TIMEOUT_MS })
        .toBe(true);
    }
    console.log(`controller ${controller} (${closed.name}) closed; a new one seen by the other 3 after ${Date.now() - closedAt} ms`);
    // The closed broker is fenced (describeCluster lists the 3 others) before the topic is placed:
    // until its session times out the controller counts it live, as Kafka's does, and may place on it.
    await expectOneCluster(rest, clusterId, FENCE_TIMEOUT_MS);
    const { ms } = await createAndSee(rest[rest.length - 1]!, rest, 'after-failover', 2);
    console.log(`createTopics after the failover visible in the other 3 tabs within ${ms} ms (${Date.now() - closedAt} ms after the close)`);
    all = rest;
  });

  await test.step('the closed page reopened (same profile, its slot free again): the same broker id, back in the cluster', async () => {
    const page = await reopenBroker(closed.context, closed.broker.slot, cluster, relay.url);
    const [reopened] = await tabsOf([[`${closed.name} reopened`, closed.context, page]]);
    expect(reopened!.broker).toEqual(closed.broker);
    all = [...all, reopened!];
    await expectOneCluster(all, clusterId, FENCE_TIMEOUT_MS);
    await createAndSee(reopened!, all, 'after-reopen', 1);
  });
});

test('three tabs of one origin with no relay and no cluster option form its cluster over the local transport, with the same data path; another instance on a page is a broker of it too, one with cluster: false is not', async ({ profile }) => {
  test.setTimeout(210_000);
  const started = Date.now();
  // Opened at the same moment: the formation rule must still give one cluster.
  const pages = await Promise.all([0, 1, 2].map(() => openBroker(profile, ORIGIN, NO_RELAY)));
  const tabs = await tabsOf(pages.map((page, i) => [`tab ${i + 1}`, profile, page] as const));
  console.log(`three tabs registered ${Date.now() - started} ms after they were opened`);
  const clusterId = tabs[0]!.broker.clusterId;
  for (const tab of tabs) expect(tab.broker.clusterId, `${tab.name}'s cluster id`).toBe(clusterId);
  expect(new Set(ids(tabs)).size).toBe(3);
  await expectOneCluster(tabs, clusterId);
  const { placement, ms } = await createAndSee(tabs[1]!, tabs, 'local-orders', PARTITIONS);
  console.log(`createTopics in one tab visible in all 3 over the local transport: ${ms} ms; placement ${placement.map((p) => `${p.partitionId}→${p.leader}`).join(' ')}`);
  // Issue 25's data path over the local transport: tab 2 produces, tab 3 reads, a group spans tabs 1 and 3, tab 1 reloads.
  const [tab1, tab2, tab3] = tabs as [Tab, Tab, Tab];
  const records = await expectDataPath({ producer: tab2, reader: tab3, stayer: tab1, observer: tab2 }, 'local-orders', placement, ids(tabs), RECORDS, async () => {
    await startBroker(tab1.page, ORIGIN, NO_RELAY);
    return registered(tab1.page, REGISTER_TIMEOUT_MS);
  });
  // From a tab that does not lead partition 0: at least one of its broker's requests goes to another.
  await expectRequestEvents(tabs.find((t) => t.broker.brokerId !== placement[0]!.leader)!, 'local-orders', placement);

  // As two KafkaJS clients of one cluster: a second instance on tab 1's page is a fourth broker
  // that reads what tab 2 produced; a private one (cluster: false) has no such topic.
  const seen = await tabs[0]!.page.evaluate(async () => {
    const second = new window.lb.Letterbox({ clientId: 'second-instance' });
    const admin = second.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets('local-orders');
    const { brokers } = await admin.describeCluster();
    const alone = new window.lb.Letterbox({ clientId: 'private', cluster: false });
    const privateAdmin = alone.admin();
    await privateAdmin.connect();
    const privateTopics = await privateAdmin.listTopics();
    await Promise.all([second.close(), alone.close()]);
    return { offsets, brokers: brokers.length, privateTopics };
  });
  // The data path's records and the traced send's one per partition.
  expect(seen.offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(records + placement.length);
  expect(seen.brokers).toBe(4);
  expect(seen.privateTopics).toEqual([]);
});

declare global {
  interface Window {
    requests: Array<{ broker: string; clientId: string; apiName: string; apiKey: number; size: number; correlationId: number; pendingDuration: number; duration: number }>;
  }
}

/**
 * KafkaJS's REQUEST events of a send to every partition of `topic` from `from`: the producer's
 * call to its tab's broker, and that broker's Produce request to each other partition leader,
 * each naming its broker as admin.describeCluster() does. Bounded by one peer request's timeout.
 */
async function expectRequestEvents(from: Tab, topic: string, placement: PartitionPlace[]): Promise<void> {
  const others = new Set(placement.map((p) => p.leader).filter((leader) => leader !== from.broker.brokerId));
  const leaders = [from.broker.brokerId, ...others];
  // A broker that just restarted (the data path reloads one) may not yet be in this tab's metadata.
  let names = new Map<number, string>();
  await expect
    .poll(async () => {
      names = await brokerNamesOf(from.page);
      return leaders.filter((id) => !names.has(id));
    }, { timeout: BROWSER_TIMING.requestTimeoutMs })
    .toEqual([]);
  const expected = leaders.map((id) => names.get(id)).sort();
  await from.page.evaluate(
    async ({ topic, partitions }) => {
      window.requests = [];
      const producer = window.broker.producer();
      producer.on(producer.events.REQUEST, ({ payload }) => window.requests.push(payload));
      await producer.connect();
      await producer.send({ topic, messages: Array.from({ length: partitions }, (_, partition) => ({ partition, value: 'traced' })) });
    },
    { topic, partitions: placement.length },
  );
  const produced = () => from.page.evaluate(() => window.requests.filter((r) => r.apiName === 'Produce'));
  // Each broker once or more (a part refused retriably, by a leader moving, is sent again).
  await expect.poll(async () => [...new Set((await produced()).map((r) => r.broker))].sort(), { timeout: BROWSER_TIMING.requestTimeoutMs }).toEqual(expected);
  for (const request of await produced()) {
    expect(request).toMatchObject({ apiKey: 0, clientId: 'cluster-e2e' });
    expect(request.size).toBeGreaterThan(0);
    expect(Math.min(request.duration, request.pendingDuration)).toBeGreaterThanOrEqual(0);
  }
}
