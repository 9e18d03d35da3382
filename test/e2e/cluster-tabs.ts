import type { BrowserContext, Page } from '@playwright/test';
import type { Admin, Letterbox } from '../../src/client';
import { showPageLogs } from './demo';
import { expect, openClientPage } from './fixtures';

// Tabs whose brokers join one cluster (issue 18), for cluster.spec.ts: each is the ES client
// page (./pages/client.ts, served by Vite) with a `Letterbox` of the cluster as
// `window.broker` and its admin as `window.admin`. Every read returns plain data, and every
// call that may fail returns the typed error's name and code (Playwright keeps only the message).

declare global {
  interface Window {
    broker: Letterbox;
    admin: Admin;
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

/** Opens the client page (no broker yet) in a new tab of `context`. */
export async function openClientTab(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await showPageLogs(page);
  await openClientPage(page);
  return page;
}

/**
 * Starts a `Letterbox` in `cluster` with `relay` on a client page (the local transport stays
 * on, as by default), its admin connected, and joins the cluster's network; with
 * {@link ORIGIN}, a `Letterbox` without the option: a broker of its origin's cluster.
 */
export async function startBroker(page: Page, cluster: string, relay: string): Promise<void> {
  await page.evaluate(
    async ({ cluster, relay, origin }) => {
      window.broker = new window.lb.Letterbox(cluster === origin ? { clientId: 'cluster-e2e' } : { clientId: 'cluster-e2e', cluster, relay });
      // When its links came, for failure messages (ms since the broker was made).
      window.brokerMadeAt = performance.now();
      window.brokerLog = [];
      window.broker.on('letterbox.peer_joined', ({ payload }) => window.brokerLog.push(`${payload.peerId.slice(-6)} joined @${Math.round(performance.now() - window.brokerMadeAt)} ms`));
      window.admin = window.broker.admin();
      await window.admin.connect();
      // Joins the cluster's network now, not at the first call that needs it (the origin's cluster has none: it joined as the node started).
      if (cluster !== origin) await window.broker.peerId();
    },
    { cluster, relay, origin: ORIGIN },
  );
}

/**
 * A new tab of `context` with a broker in `cluster`.
 * @example const page = await openBroker(profile, 'demo', relay.url);
 */
export async function openBroker(context: BrowserContext, cluster: string, relay: string): Promise<Page> {
  const page = await openClientTab(context);
  await startBroker(page, cluster, relay);
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

/** Whether the Web Lock `name` is held in `page`'s origin (of its browser profile). */
export const lockHeld = (page: Page, name: string): Promise<boolean> =>
  page.evaluate(async (name) => ((await navigator.locks.query()).held ?? []).some((lock) => lock.name === name), name);

/** The node's cluster as its image shows it (NodeApi.clusterInfo): for failure messages, with the peers it is connected to. */
export const clusterInfoOf = (page: Page): Promise<string> =>
  page.evaluate(async () => {
    const info = await (await window.broker.node()).clusterInfo();
    const peers = (await window.broker.peers()).map((p) => `${p.peerId.slice(-6)}/${p.dataPath ?? '?'}`);
    return JSON.stringify({ ...info, brokers: info?.brokers.map((b) => `${b.brokerId}${b.fenced ? ' fenced' : ''}`), peers, log: window.brokerLog });
  });

/** A record as sent or read: its partition, offset and key. */
export interface Placed {
  partition: number;
  offset: number;
  key: string;
}

/**
 * Sends `count` keyed records to `topic` (of `partitions` partitions) from `page` with acks -1,
 * 100 per send, record i to partition i mod `partitions`; each record where `send` said it
 * went (a partition's base offset, then one per record in send order). Partitions led by
 * other brokers are written at their leaders.
 */
export const produceKeyed = (page: Page, topic: string, partitions: number, count: number): Promise<Placed[]> =>
  page.evaluate(
    async ({ topic, partitions, count }) => {
      const producer = window.broker.producer();
      await producer.connect();
      const placed: Array<{ partition: number; offset: number; key: string }> = [];
      try {
        for (let from = 0; from < count; from += 100) {
          const messages = Array.from({ length: Math.min(100, count - from) }, (_, i) => ({ key: `key-${from + i}`, value: `value-${from + i}`, partition: (from + i) % partitions }));
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
    { topic, partitions, count },
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
