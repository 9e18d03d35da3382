import type { BrowserContext, Page } from '@playwright/test';
import type { Admin, Letterbox } from '../../src/client';
import { showPageLogs } from './demo';
import { BROWSER_TIMING } from '../../src/node/membership';
import { expect, openClientPage, test } from './fixtures';

// Tabs whose brokers join one cluster (issue 18), for cluster.spec.ts: each is the ES client
// page (./pages/client.ts, served by Vite) with a `Letterbox` of the cluster as
// `window.broker` and its admin as `window.admin`. Every read returns plain data, and every
// call that may fail returns the typed error's name and code (Playwright keeps only the message).

declare global {
  interface Window {
    broker: Letterbox;
    admin: Admin;
    /** The last `letterbox.replication_health` event the broker emitted. */
    replicationHealth?: { underReplicated: number; offline: number };
    brokerLog: string[];
    brokerMadeAt: number;
  }
}

/** A relay address where nothing listens: tabs of one origin meet only over the local transport. */
export const NO_RELAY = 'http://127.0.0.1:9';
/** For startBroker: no `cluster` option, so the broker is one of its origin's cluster (over the local transport alone). */
export const ORIGIN = '(origin)';

/** A registered broker: its slot, broker id and cluster id. */
export interface Registered {
  slot: number;
  brokerId: number;
  clusterId: string;
}

/** `admin.describeCluster()` with the broker ids sorted (the order is not part of the contract). */
export interface ClusterView {
  brokerIds: number[];
  controller: number | null;
  clusterId: string;
}

/** A partition's place as `fetchTopicMetadata` gives it. */
export interface PartitionPlace {
  partitionId: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

/** A call's typed failure. */
export interface Failure {
  failed: { name: string; code: string; message: string };
}

/** Opens the client page (no broker yet) in a new tab of `context` (`baseURL` for a context without one: openClientPage). */
export async function openClientTab(context: BrowserContext, baseURL?: string): Promise<Page> {
  const page = await context.newPage();
  await showPageLogs(page);
  await openClientPage(page, baseURL);
  return page;
}

/**
 * Starts a `Letterbox` in `cluster` with `relay` on a client page (the local transport stays
 * on, as by default), its admin connected, and joins the cluster's network; with
 * {@link ORIGIN}, a `Letterbox` without the option: a broker of its origin's cluster.
 * `workerStartTimeoutMs`: the client's bound for its worker to start (default 10 s);
 * `adoptSlots`: how many closed tabs' brokers it may run (default 2, the library's); `slotWaitMs`: how long a
 * reopened tab waits for its slot (default 3 s).
 */
export async function startBroker(page: Page, cluster: string, relay: string, start: StartOptions = {}): Promise<void> {
  await page.evaluate(
    async ({ cluster, relay, origin, start }) => {
      // When its links came and what it warned of, for failure messages (ms since the broker was made).
      window.brokerMadeAt = performance.now();
      window.brokerLog = [];
      const logCreator = () => (entry: { label: string; namespace: string; log: { message: string } & Record<string, unknown> }) => {
        const { message, timestamp: _, logger: __, ...fields } = entry.log;
        window.brokerLog.push(`${entry.label} [${entry.namespace}] ${message} ${JSON.stringify(fields)} @${Math.round(performance.now() - window.brokerMadeAt)} ms`);
      };
      const options = { clientId: 'cluster-e2e', logLevel: 2 as const, logCreator, ...start };
      window.broker = new window.lb.Letterbox(cluster === origin ? options : { ...options, cluster, relay });
      window.broker.on('letterbox.peer_joined', ({ payload }) => window.brokerLog.push(`${payload.peerId.slice(-6)} joined @${Math.round(performance.now() - window.brokerMadeAt)} ms`));
      window.broker.on('letterbox.replication_health', ({ payload }) => (window.replicationHealth = payload));
      window.admin = window.broker.admin();
      await window.admin.connect();
      // Joins the cluster's network now, not at the first call that needs it (the origin's cluster has none: it joined as the node started).
      if (cluster !== origin) await window.broker.peerId();
    },
    { cluster, relay, origin: ORIGIN, start },
  );
}

/** Letterbox options of a test's broker. */
export interface StartOptions {
  workerStartTimeoutMs?: number;
  adoptSlots?: number;
  slotWaitMs?: number;
  reassignAfterMs?: number;
}

/**
 * A new tab of `context` with a broker in `cluster`.
 * @example const page = await openBroker(profile, 'demo', relay.url);
 */
export async function openBroker(context: BrowserContext, cluster: string, relay: string, baseURL?: string, start: StartOptions = {}): Promise<Page> {
  const page = await openClientTab(context, baseURL);
  await startBroker(page, cluster, relay, start);
  return page;
}

/** A closed tab's worker ends and its slot lock is released (0.16–0.74 s measured, README § Tabs of one browser need no relay). */
export const LOCK_RELEASE_TIMEOUT_MS = 10_000;

/** The key under which a Letterbox of these pages remembers its tab's slot (src/client/letterbox.ts; clientId 'cluster-e2e'). */
export const SESSION_SLOT_KEY = 'letterbox:slot:cluster-e2e';
/**
 * How long a reopened tab waits for its slot: for the closed tab's worker to let it go
 * (LOCK_RELEASE_TIMEOUT_MS), or for a tab that adopted it to hand it back (a hand-over, bounded
 * by an election timeout, and a close).
 */
export const REOPEN_SLOT_WAIT_MS = 2 * LOCK_RELEASE_TIMEOUT_MS;

/**
 * A new tab of `context` with a broker in `cluster`, opened where a tab that held `slot` closed:
 * its sessionStorage names the slot, as a restored tab's does, so it waits for that slot (its
 * closed worker letting go, or a tab that adopted it handing it back) — the same broker, from its own disk.
 */
export async function reopenBroker(context: BrowserContext, slot: number, cluster: string, relay: string, baseURL?: string): Promise<Page> {
  const page = await openClientTab(context, baseURL);
  await page.evaluate(({ key, slot }) => sessionStorage.setItem(key, JSON.stringify(slot)), { key: SESSION_SLOT_KEY, slot });
  await startBroker(page, cluster, relay, { slotWaitMs: REOPEN_SLOT_WAIT_MS });
  return page;
}

/** The broker's node info: slot, and broker id and cluster id once registered. */
export const nodeInfoOf = (page: Page): Promise<{ slot: number; brokerId?: number; clusterId?: string }> =>
  page.evaluate(async () => {
    const { slot, brokerId, clusterId } = await window.broker.nodeInfo();
    return { slot, ...(brokerId === undefined ? {} : { brokerId }), ...(clusterId === undefined ? {} : { clusterId }) };
  });

/** Waits (up to `timeoutMs`) until `page`'s broker is registered, and says with which id in which cluster. */
export async function registered(page: Page, timeoutMs: number): Promise<Registered> {
  await expect.poll(async () => (await nodeInfoOf(page)).brokerId !== undefined && (await nodeInfoOf(page)).clusterId !== undefined, { timeout: timeoutMs }).toBe(true);
  await page.evaluate(() => window.brokerLog.push(`registered (seen) @${Math.round(performance.now() - window.brokerMadeAt)} ms`));
  return (await nodeInfoOf(page)) as Registered;
}

/** `admin.describeCluster()` on `page`, or its typed failure. */
export const clusterViewOf = (page: Page): Promise<ClusterView | Failure> =>
  page.evaluate(async () => {
    try {
      const { brokers, controller, clusterId } = await window.admin.describeCluster();
      return { brokerIds: brokers.map((b) => b.nodeId).sort((a, b) => a - b), controller, clusterId };
    } catch (error) {
      const { name, code, message } = error as { name: string; code: string; message: string };
      return { failed: { name, code, message } };
    }
  });

/** The active controller's broker id as `page` sees it: null while there is none (or on a failure). */
export const controllerOf = async (page: Page): Promise<number | null> => {
  const view = await clusterViewOf(page);
  return 'failed' in view ? null : view.controller;
};

/** Each partition of `topic` as `page`'s broker places it (from its local metadata image), or the typed failure (an unknown topic). */
export const placementOf = (page: Page, topic: string): Promise<PartitionPlace[] | Failure> =>
  page.evaluate(async (topic) => {
    try {
      const { topics } = await window.admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics.find((t) => t.name === topic)?.partitions ?? [];
      return partitions
        .map(({ partitionId, leader, replicas, isr }) => ({ partitionId, leader, replicas: [...replicas], isr: [...isr] }))
        .sort((a, b) => a.partitionId - b.partitionId);
    } catch (error) {
      const { name, code, message } = error as { name: string; code: string; message: string };
      return { failed: { name, code, message } };
    }
  }, topic);

/** `admin.createTopics` of one topic from `page`: its result, or the typed failure. */
export const createTopic = (page: Page, topic: { topic: string; numPartitions?: number; replicationFactor?: number }): Promise<{ created: boolean } | Failure> =>
  page.evaluate(async (topic) => {
    try {
      return { created: await window.admin.createTopics({ topics: [topic] }) };
    } catch (error) {
      const { name, code, message } = error as { name: string; code: string; message: string };
      return { failed: { name, code, message } };
    }
  }, topic);

/** The node's cluster as its image shows it (NodeApi.clusterInfo): for failure messages, with the peers it is connected to. */
export const clusterInfoOf = (page: Page): Promise<string> =>
  page.evaluate(async () => {
    const info = await (await window.broker.node()).clusterInfo();
    const peers = (await window.broker.peers()).map((p) => `${p.peerId.slice(-6)}/${p.dataPath ?? '?'}`);
    const refused = (await window.broker.refusedPeers()).map((p) => `${p.peerId.slice(-6)}: ${p.reason}`);
    return JSON.stringify({ ...info, brokers: info?.brokers.map((b) => `${b.brokerId}${b.fenced ? ' fenced' : ''}`), peers, refused, log: window.brokerLog });
  });


// ——— The data path across brokers (issue 25): records routed to their partitions' leaders,
// read from them, and a consumer group whose members run in different tabs ———
//
// Its waits are bounded by what the protocol allows:
// REBALANCE_TIMEOUT_MS: a member notices a rebalance at its next heartbeat (HEARTBEAT_MS), the
//   group's members rejoin (each join forwarded to the coordinator), within a group call's 30 s bound;
// recordsTimeoutMs(n): n records produced or consumed at FLOOR_RECORDS_PER_S, after a
//   rebalance's bound (a member's first fetch waits for its generation).
export const HEARTBEAT_MS = 300;
export const REBALANCE_TIMEOUT_MS = 30_000;
/**
 * The slowest the data path may go, records/s: about a tenth of what one tab produces to or
 * reads from leaders in other tabs with acks -1 on a 2-core machine running another
 * browser test at the same time (1.5–3k records/s measured, 100 small records per send).
 */
export const FLOOR_RECORDS_PER_S = 250;
export const recordsTimeoutMs = (records: number): number => REBALANCE_TIMEOUT_MS + Math.ceil((records * 1_000) / FLOOR_RECORDS_PER_S);

/** A record as sent or read: its partition, offset and key. */
export interface Placed {
  partition: number;
  offset: number;
  key: string;
}

/**
 * Sends `count` keyed records to `topic` (of `partitions` partitions) from `page` with acks -1,
 * 100 per send, record i (key `key-<from + i>`) to partition i mod `partitions`; each record
 * where `send` said it went (a partition's base offset, then one per record in send order).
 * Partitions led by other brokers are written at their leaders: the producer's REQUEST events
 * count each broker its tab's broker sent a Produce to, in window.produceRequests.
 */
export const produceKeyed = (page: Page, topic: string, partitions: number, count: number, from = 0): Promise<Placed[]> =>
  page.evaluate(
    async ({ topic, partitions, count, from }) => {
      const producer = window.broker.producer();
      const produceRequests: Record<string, number> = {};
      window.produceRequests = produceRequests;
      producer.on(producer.events.REQUEST, ({ payload }) => {
        if (payload.apiName === 'Produce') produceRequests[payload.broker] = (produceRequests[payload.broker] ?? 0) + 1;
      });
      await producer.connect();
      const placed: Array<{ partition: number; offset: number; key: string }> = [];
      try {
        for (let i = 0; i < count; i += 100) {
          const messages = Array.from({ length: Math.min(100, count - i) }, (_, j) => ({ key: `key-${from + i + j}`, value: `value-${from + i + j}`, partition: (i + j) % partitions }));
          const results = await producer.send({ topic, acks: -1, messages });
          const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]));
          for (const { key, partition } of messages) {
            const offset = next.get(partition)!;
            next.set(partition, offset + 1);
            placed.push({ partition, offset, key });
          }
        }
      } finally {
        await producer.disconnect();
      }
      return placed;
    },
    { topic, partitions, count, from },
  );

/** Consumes `topic` from the beginning on `page` (group `groupId`) until `count` records came; each as eachMessage saw it, in arrival order. */
export const consumeAll = (page: Page, topic: string, groupId: string, count: number): Promise<Placed[]> =>
  page.evaluate(
    async ({ topic, groupId, count }) => {
      const consumer = window.broker.consumer({ groupId });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen: Array<{ partition: number; offset: number; key: string }> = [];
      try {
        await new Promise<void>((resolve, reject) => {
          consumer
            .run({
              eachMessage: async ({ partition, message }) => {
                seen.push({ partition, offset: Number(message.offset), key: new TextDecoder().decode(message.key!) });
                if (seen.length === count) resolve();
              },
            })
            .catch(reject);
        });
      } finally {
        await consumer.disconnect();
      }
      return seen;
    },
    { topic, groupId, count },
  );

/** A record's identity: its place (keys repeat across produceKeyed calls given the same `from`). */
export const placeOf = (r: Placed): string => `${r.partition}/${r.offset}`;

/** Each read record that is not where `send` put it, or read more than once, and each sent record never read: [] when `read` is exactly `sent`. */
export function misplaced(sent: readonly Placed[], read: readonly Placed[]): string[] {
  const byKey = new Map(sent.map((r) => [r.key, r]));
  const problems: string[] = [];
  const readKeys = new Set<string>();
  for (const r of read) {
    const s = byKey.get(r.key);
    if (s === undefined || s.partition !== r.partition || s.offset !== r.offset) problems.push(`${r.key} read at ${placeOf(r)}, sent to ${s === undefined ? 'nowhere' : placeOf(s)}`);
    if (readKeys.has(r.key)) problems.push(`${r.key} read twice`);
    readKeys.add(r.key);
  }
  for (const s of sent) if (!readKeys.has(s.key)) problems.push(`${s.key} (${placeOf(s)}) never read`);
  return problems.slice(0, 20);
}

/** The partitions whose records `read` gave out of offset order: [] when each partition came in order. */
export function outOfOrder(read: readonly Placed[]): number[] {
  const last = new Map<number, number>();
  const wrong = new Set<number>();
  for (const { partition, offset } of read) {
    if (offset <= (last.get(partition) ?? -1)) wrong.add(partition);
    last.set(partition, offset);
  }
  return [...wrong].sort((a, b) => a - b);
}

/** What a tab's consumer of a group did: each record it processed, each assignment it got, each commit it made. */
export interface ConsumerLog {
  seen: Placed[];
  assignments: number[][];
  commits: Array<{ partition: number; offset: number }>;
  /** Crashes and rebalances, with when (ms since the consumer started): for failure messages. */
  events: string[];
}

declare global {
  interface Window {
    /** The last produceKeyed call's Produce requests by broker (`host:port`, as describeCluster names it), from its producer's REQUEST events. */
    produceRequests: Record<string, number>;
    groupLog: ConsumerLog;
    groupConsumer: { disconnect(): Promise<void> } | undefined;
  }
}

/** Starts a consumer of `groupId` on `topic` in `page` (from the beginning where the group has no offset), logging into window.groupLog. */
export const startGroupConsumer = (page: Page, topic: string, groupId: string): Promise<void> =>
  page.evaluate(
    async ({ topic, groupId, heartbeatInterval }) => {
      window.groupLog = { seen: [], assignments: [], commits: [], events: [] };
      const started = performance.now();
      const note = (event: string) => window.groupLog.events.push(`${event} @${Math.round(performance.now() - started)} ms`);
      const consumer = window.broker.consumer({ groupId, heartbeatInterval, sessionTimeout: 10_000 });
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => window.groupLog.assignments.push([...(payload.memberAssignment[topic] ?? [])].sort((a, b) => a - b)));
      consumer.on(consumer.events.CRASH, ({ payload }) => note(`crash ${payload.error.name}: ${payload.error.message} (restart ${payload.restart})`));
      consumer.on(consumer.events.REBALANCING, () => note('rebalancing'));
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => note(`joined generation of ${payload.memberId}: ${JSON.stringify(payload.memberAssignment)}`));
      consumer.on(consumer.events.COMMIT_OFFSETS, ({ payload }) => {
        for (const t of payload.topics) for (const p of t.partitions) window.groupLog.commits.push({ partition: p.partition, offset: Number(p.offset) });
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          window.groupLog.seen.push({ partition, offset: Number(message.offset), key: new TextDecoder().decode(message.key!) });
        },
      });
      window.groupConsumer = consumer;
    },
    { topic, groupId, heartbeatInterval: HEARTBEAT_MS },
  );

export const groupLogOf = (page: Page): Promise<ConsumerLog> => page.evaluate(() => window.groupLog);
/** How many records the page's group consumer processed. */
const processedOf = (page: Page): Promise<number> => page.evaluate(() => window.groupLog.seen.length);
const lastAssignment = (page: Page): Promise<number[] | undefined> => page.evaluate(() => window.groupLog.assignments.at(-1));
const stopGroupConsumer = (page: Page): Promise<void> => page.evaluate(() => window.groupConsumer!.disconnect());

/** The group's committed offsets of `topic` by partition, as `page`'s admin reads them (from the coordinator, wherever it is), or the typed failure's code. */
export const committedOf = (page: Page, topic: string, groupId: string): Promise<number[] | string> =>
  page.evaluate(
    async ({ topic, groupId }) => {
      try {
        const [offsets] = await window.admin.fetchOffsets({ groupId, topics: [topic] });
        return (offsets?.partitions ?? []).sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
      } catch (error) {
        // A reloaded tab's broker knows the topic once its image caught up.
        return (error as { code: string }).code;
      }
    },
    { topic, groupId },
  );

/** The high watermark of each partition of `topic` as `page`'s admin reads them from the leaders. */
const highWatermarksOf = (page: Page, topic: string): Promise<number[]> =>
  page.evaluate(async (topic) => (await window.admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition).map((p) => Number(p.high)), topic);

/** Each broker's name as describeCluster gives it on `page` (`host:port`), by broker id. */
export const brokerNamesOf = async (page: Page): Promise<Map<number, string>> =>
  new Map(await page.evaluate(async () => (await window.admin.describeCluster()).brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`] as const)));

/** A registered broker's tab, for the data path. */
export interface BrokerTab {
  name: string;
  page: Page;
  broker: Registered;
}

/** The tabs' parts in {@link expectDataPath}. */
export interface DataPathRoles {
  /** Sends the records. */
  producer: BrokerTab;
  /** Reads them all (outside the group), and is the group member that leaves. */
  reader: BrokerTab;
  /** The group member that stays, takes all partitions, and whose tab reloads. */
  stayer: BrokerTab;
  /** Reads the group's committed offsets while the stayer's tab reloads. */
  observer: BrokerTab;
}

/**
 * Issue 25's data path on a topic just created (`placement`, each of `brokerIds` leading at
 * least one partition): consumers of one group in the stayer's and the reader's tabs split its
 * partitions; the producer sends `count` keyed records with acks -1 (each at its partition's
 * leader: the producer's broker sent Produce requests to every other leader); the reader's
 * member leaves mid-stream and the stayer takes all partitions; the reader reads every record,
 * in order per partition, at the offsets `send` returned; the group processed every record,
 * duplicates only from the leaver's uncommitted window (counted); then the stayer's tab
 * reloads (`restart` starts its broker again and waits until it is registered): the group's
 * committed offsets are still there and a consumer there resumes after them.
 * Returns how many records it sent to `topic`.
 */
export async function expectDataPath(roles: DataPathRoles, topic: string, placement: readonly PartitionPlace[], brokerIds: readonly number[], count: number, restart: () => Promise<Registered>): Promise<number> {
  const { producer, reader, stayer, observer } = roles;
  const partitions = placement.length;
  const all = Array.from({ length: partitions }, (_, i) => i);
  const groupId = `${topic}-group`;
  expect(new Set(placement.map((p) => p.leader)), `every broker leads a partition of ${topic}: ${placement.map((p) => `${p.partitionId}→${p.leader}`).join(' ')}`).toEqual(new Set(brokerIds));

  await test.step(`consumers of one group in ${stayer.name} and ${reader.name} split the ${partitions} partitions`, async () => {
    await startGroupConsumer(stayer.page, topic, groupId);
    await expect.poll(() => lastAssignment(stayer.page), { timeout: REBALANCE_TIMEOUT_MS }).toEqual(all);
    await startGroupConsumer(reader.page, topic, groupId);
    await expect
      .poll(async () => {
        const [ofStayer, ofReader] = [await lastAssignment(stayer.page), await lastAssignment(reader.page)];
        return ofStayer !== undefined && ofReader !== undefined && ofReader.length > 0 ? [...ofStayer, ...ofReader].sort((x, y) => x - y) : undefined;
      }, { timeout: REBALANCE_TIMEOUT_MS })
      .toEqual(all);
    const [ofStayer, ofReader] = [(await lastAssignment(stayer.page))!, (await lastAssignment(reader.page))!];
    expect(ofStayer).toHaveLength(partitions / 2);
    console.log(`group split: ${stayer.name} ${ofStayer.join(',')}, ${reader.name} ${ofReader.join(',')}`);
  });

  let sent: Placed[] = [];
  let leaverPartitions: number[] = [];
  let leaverCommitted = new Map<number, number>();
  await test.step(`${producer.name} sends ${count} keyed records with acks -1, each at its partition's leader; meanwhile ${reader.name}'s member leaves the group mid-stream and ${stayer.name}'s takes all ${partitions}`, async () => {
    const started = Date.now();
    const leaveAfter = Math.floor(count / 10);
    const [produced] = await Promise.all([
      produceKeyed(producer.page, topic, partitions, count).then((placed) => ({ placed, ms: Date.now() - started })),
      (async () => {
        // Once the leaver has processed a tenth of the records (of its half), wherever the producer is by then.
        await expect.poll(() => processedOf(reader.page), { timeout: recordsTimeoutMs(count) }).toBeGreaterThanOrEqual(leaveAfter);
        leaverPartitions = (await lastAssignment(reader.page))!;
        await stopGroupConsumer(reader.page);
        // Its last commit of each of its partitions: where the stayer resumes them (its uncommitted window is what the stayer may process again).
        const left = await groupLogOf(reader.page);
        leaverCommitted = new Map(left.commits.map((commit) => [commit.partition, commit.offset]));
        const uncommitted = left.seen.filter((r) => r.offset >= (leaverCommitted.get(r.partition) ?? 0)).length;
        console.log(`${reader.name}'s member left after ${Date.now() - started} ms, having processed ${left.seen.length} records, ${uncommitted} of them after its last commit`);
      })(),
    ]);
    sent = produced.placed;
    console.log(`${producer.name} sent ${count} records with acks -1 to ${partitions} partitions in ${produced.ms} ms: ${Math.round((count * 1000) / produced.ms)} records/s`);
    await expect.poll(() => lastAssignment(stayer.page), { timeout: REBALANCE_TIMEOUT_MS }).toEqual(all);
    // Each record at its partition's leader: each send made a Produce request to every leader
    // (its tab's broker's own, and one to each other leader, whose events came before the send
    // resolved; the own call's right after, within a peer request's bound), and each partition
    // holds what was sent to it, once.
    const names = await brokerNamesOf(producer.page);
    const leaders = [...new Set([producer.broker.brokerId, ...placement.map((p) => p.leader)])];
    const sends = Math.ceil(count / 100);
    const requests = () => producer.page.evaluate(() => window.produceRequests);
    await expect
      .poll(async () => {
        const byBroker = await requests();
        return { brokers: Object.keys(byBroker).sort(), eachSendToEach: Object.values(byBroker).every((n) => n >= sends) };
      }, { timeout: BROWSER_TIMING.requestTimeoutMs })
      .toEqual({ brokers: leaders.map((id) => names.get(id)).sort(), eachSendToEach: true });
    console.log(`${producer.name}'s Produce requests by broker: ${JSON.stringify(await requests())}`);
    const perPartition = all.map((p) => sent.filter((r) => r.partition === p).length);
    expect(await highWatermarksOf(observer.page, topic)).toEqual(perPartition);
  });

  await test.step(`${reader.name} reads all ${count} records, in order per partition, at the offsets send returned`, async () => {
    const started = Date.now();
    const read = await consumeAll(reader.page, topic, `${topic}-reader`, count);
    const ms = Date.now() - started;
    console.log(`${reader.name} read ${count} records from ${partitions} leaders in ${ms} ms: ${Math.round((count * 1000) / ms)} records/s`);
    expect(misplaced(sent, read)).toEqual([]);
    expect(outOfOrder(read)).toEqual([]);
  });

  await test.step(`the group processed every record; duplicates only from ${reader.name}'s uncommitted window, counted`, async () => {
    const union = async () => new Set([...(await groupLogOf(stayer.page)).seen, ...(await groupLogOf(reader.page)).seen].map(placeOf)).size;
    try {
      await expect.poll(union, { timeout: recordsTimeoutMs(count) }).toBe(count);
    } catch (error) {
      const log = await groupLogOf(stayer.page);
      const reached = new Map<number, number>();
      for (const r of log.seen) reached.set(r.partition, Math.max(reached.get(r.partition) ?? -1, r.offset));
      throw new Error(`${stayer.name} processed ${log.seen.length} records, up to offsets ${JSON.stringify([...reached].sort())}; commits ${JSON.stringify(log.commits.slice(-12))}; ${log.events.slice(-20).join('; ')}`, { cause: error });
    }
    const [ofStayer, ofLeaver] = [await groupLogOf(stayer.page), await groupLogOf(reader.page)];
    // Each record where send put it, and in order per partition within each member.
    const placed = new Map(sent.map((r) => [placeOf(r), r]));
    const wrong = [...ofStayer.seen, ...ofLeaver.seen].filter((r) => placed.get(placeOf(r))?.key !== r.key);
    expect(wrong.slice(0, 20)).toEqual([]);
    expect(outOfOrder(ofStayer.seen), `${stayer.name}'s member, partitions out of order`).toEqual([]);
    expect(outOfOrder(ofLeaver.seen), `${reader.name}'s member, partitions out of order`).toEqual([]);
    const byLeaver = new Set(ofLeaver.seen.map(placeOf));
    const duplicates = ofStayer.seen.filter((r) => byLeaver.has(placeOf(r)));
    for (const record of duplicates) {
      expect(leaverPartitions, `duplicate ${placeOf(record)} is of a partition ${reader.name} owned`).toContain(record.partition);
      expect(record.offset, `duplicate ${placeOf(record)} is at or after ${reader.name}'s last commit of partition ${record.partition}`).toBeGreaterThanOrEqual(leaverCommitted.get(record.partition) ?? 0);
    }
    // Within a tab, no record twice (the stayer kept its own partitions throughout).
    expect(new Set(ofStayer.seen.map(placeOf)).size).toBe(ofStayer.seen.length);
    expect(new Set(ofLeaver.seen.map(placeOf)).size).toBe(ofLeaver.seen.length);
    console.log(`group: ${ofStayer.seen.length + ofLeaver.seen.length} records processed for ${count} sent (${stayer.name} ${ofStayer.seen.length}, ${reader.name} ${ofLeaver.seen.length}); duplicates from ${reader.name}'s uncommitted window: ${duplicates.length}`);
    test.info().annotations.push({ type: 'duplicates', description: String(duplicates.length) });
  });

  const after = 60;
  await test.step(`${stayer.name}'s member stops; its tab reloads: the group's committed offsets are still there, and a consumer there resumes after them`, async () => {
    await stopGroupConsumer(stayer.page);
    const ends = all.map((p) => sent.filter((r) => r.partition === p).length);
    await expect.poll(() => committedOf(observer.page, topic, groupId), { timeout: REBALANCE_TIMEOUT_MS }).toEqual(ends);
    const reloadedAt = Date.now();
    await openClientPage(stayer.page); // the same tab navigates again: a reload, its slot kept in sessionStorage
    expect((await restart()).brokerId).toBe(stayer.broker.brokerId);
    await expect.poll(() => committedOf(stayer.page, topic, groupId), { timeout: REBALANCE_TIMEOUT_MS }).toEqual(ends);
    console.log(`${stayer.name} reloaded: its broker registered again and read the group's committed offsets ${Date.now() - reloadedAt} ms later`);
    await startGroupConsumer(stayer.page, topic, groupId);
    const thirdSent = await produceKeyed(producer.page, topic, partitions, after, count);
    const wanted = thirdSent.map(placeOf);
    let seen: Placed[] = [];
    await expect
      .poll(async () => {
        seen = (await groupLogOf(stayer.page)).seen;
        const places = new Set(seen.map(placeOf));
        return wanted.filter((place) => !places.has(place));
      }, { timeout: recordsTimeoutMs(after) })
      .toEqual([]);
    // Nothing committed before the reload is processed again, and nothing sent after it is in
    // the log twice: a send whose part for the reloaded broker's partitions was refused while
    // it caught up resends only that part (the first copy of a batch would sit below the offsets send returned).
    for (const record of seen) expect(record.offset, `${placeOf(record)} is after the committed offset`).toBeGreaterThanOrEqual(ends[record.partition]!);
    expect([...new Set(seen.map(placeOf))].sort()).toEqual([...wanted].sort());
    expect(misplaced(thirdSent, seen)).toEqual([]);
    console.log(`after the reload ${stayer.name} processed ${seen.length} records at ${new Set(seen.map(placeOf)).size} places, the ${thirdSent.length} sent after it among them`);
    await stopGroupConsumer(stayer.page);
  });
  return count + after;
}
