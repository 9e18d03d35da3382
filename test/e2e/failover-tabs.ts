import type { BrowserContext, Page } from '@playwright/test';
import { BROWSER_TIMING } from '../../src/node/membership';
import { clusterInfoOf, createTopic, nodeInfoOf, openBroker, placementOf, recordsTimeoutMs, registered, type Registered, type StartOptions } from './cluster-tabs';
import { DISCOVERY_TIMEOUT_MS } from './demo';
import { expect, type KillableBrowser } from './fixtures';
import type { History, Report } from '../sim/history';
import { acknowledged, expectConsistent, finalRead, historyOf, producerDone, startProducer, stopConsumer, unreadOf, type ProducerRun } from './history-tabs';

// Failover of replicated partitions across browser processes (issues 19 and 20), shared by
// failover.spec.ts and chaos.spec.ts: four brokers of one cluster through the relay — tabs
// A1, A2, A3 of one browser profile and B, a page of a browser process the test may kill or
// pause — a topic of PARTITIONS partitions with three replicas each, and the judgement of a
// run: end markers, every acknowledged record consumed, a final read, the history checker.
//
// Every wait is on a condition, bounded by the protocol (BROWSER_TIMING, src/node/membership.ts):
// REGISTER_TIMEOUT_MS: a broker meets the others (across processes through the relay and a
//   WebRTC dial, DISCOVERY_TIMEOUT_MS on a loaded machine), listens for the formation rounds
//   and registers with the active controller;
// METADATA_TIMEOUT_MS: an admin change is committed and reaches every image (the broker's own
//   bound for applying one here);
// FAILOVER_TIMEOUT_MS: a lost leader is noticed (an election timeout of its followers; at the
//   latest the controller's session timeout), a new one elected and reported to the active
//   controller (itself possibly elected anew), and every image names it;
// recordsTimeoutMs(n): n records produced or consumed at the data path's floor rate.
const FORMATION_MS = BROWSER_TIMING.formationRounds * BROWSER_TIMING.sessionTickMs;
export const REGISTER_TIMEOUT_MS = DISCOVERY_TIMEOUT_MS + FORMATION_MS + BROWSER_TIMING.requestTimeoutMs;
export const METADATA_TIMEOUT_MS = 30_000;
export const FAILOVER_TIMEOUT_MS = BROWSER_TIMING.sessionTimeoutMs + METADATA_TIMEOUT_MS;
/** A raft election timeout of a partition's replicas (ms). */
export const ELECTION_TIMEOUT_MS = BROWSER_TIMING.electionTicks * BROWSER_TIMING.tickMs;
/** The partitions of a failover topic (three replicas each). */
export const PARTITIONS = 3;
/** Poll often: failover times are measured on these polls. */
export const POLL = { intervals: [100] };

/** A broker's page; a reopened page (or a relaunched process's) takes the place of the one that closed. */
export interface Tab {
  name: string;
  context: BrowserContext;
  page: Page;
  broker: Registered;
}

/**
 * Opens a page of `context` with a broker of `cluster` and waits until it is registered. Its
 * tab adopts no closed tab's broker: these tests are about failover to the other replicas
 * (adoption.spec.ts tests a closed tab's broker running on in another tab).
 */
export async function openTab(name: string, context: BrowserContext, cluster: string, relay: string, baseURL?: string, start: StartOptions = {}): Promise<Tab> {
  const page = await openBroker(context, cluster, relay, baseURL, { adoptSlots: 0, ...start });
  return { name, context, page, broker: await registered(page, REGISTER_TIMEOUT_MS) };
}

/** Each tab's cluster as its image shows it, for failure messages. */
export const clusterInfosOf = async (tabs: readonly Tab[]): Promise<string> => (await Promise.all(tabs.map(async (t) => `${t.name}: ${await clusterInfoOf(t.page).catch(String)}`))).join('\n');

/**
 * Four brokers of one new cluster (named `name` and the time) through `relay`: tabs A1, A2,
 * A3 of `profile` and B, a page of the killable browser process; once every tab's metadata
 * group has its three voters (so losing one leaves a majority).
 */
export async function fourBrokers(name: string, profile: BrowserContext, other: KillableBrowser, relay: string, baseURL: string, start: StartOptions = {}): Promise<{ tabs: Tab[]; b: Tab; cluster: string }> {
  const cluster = `${name}-${Date.now()}`;
  // One tab first: it bootstraps the cluster, the others join it.
  const a1 = await openTab('A1', profile, cluster, relay, undefined, start);
  const [a2, a3, b] = await Promise.all([openTab('A2', profile, cluster, relay, undefined, start), openTab('A3', profile, cluster, relay, undefined, start), openTab('B (other process)', other.context, cluster, relay, baseURL, start)]);
  const all = [a1, a2, a3, b];
  // One cluster of four brokers. On a loaded machine B may bootstrap a cluster of its own before
  // its dial to A1 succeeds; when they meet, A1's (then a cluster of A1 alone) joins B's as a new
  // broker, as the formation rule says (README § Clusters): wait for that, within a registration.
  const ids = async () => Promise.all(all.map((t) => nodeInfoOf(t.page)));
  try {
    await expect
      .poll(async () => {
        const nodes = await ids();
        return { clusters: new Set(nodes.map((n) => n.clusterId)).size, brokers: new Set(nodes.map((n) => n.brokerId)).size };
      }, { timeout: REGISTER_TIMEOUT_MS })
      .toEqual({ clusters: 1, brokers: 4 });
  } catch (error) {
    throw new Error(`not one cluster of four brokers:\n${await clusterInfosOf(all)}`, { cause: error });
  }
  for (const [i, node] of (await ids()).entries()) all[i]!.broker = node as Registered;
  for (const t of all) {
    await expect.poll(() => t.page.evaluate(async () => (await (await window.broker.node()).clusterInfo())?.voters.length), { timeout: METADATA_TIMEOUT_MS, message: await clusterInfosOf(all) }).toBe(3);
  }
  console.log(all.map((t) => `${t.name}: broker ${t.broker.brokerId}`).join(', '));
  return { tabs: [a1, a2, a3], b: b!, cluster };
}

/** The leader of each partition of `topic` as `page`'s metadata names it. */
export async function leadersOf(page: Page, topic: string): Promise<number[]> {
  const placement = await placementOf(page, topic);
  if ('failed' in placement) throw new Error(`${topic}: ${placement.failed.code}`);
  return placement.map((p) => p.leader);
}

/**
 * Creates `topic` (PARTITIONS partitions, three replicas) from `tab` and waits until every
 * tab's metadata names the same leader for each partition; returns the leaders.
 */
export async function createReplicated(from: Tab, tabs: readonly Tab[], topic: string): Promise<number[]> {
  expect(await createTopic(from.page, { topic, numPartitions: PARTITIONS, replicationFactor: 3 })).toEqual({ created: true });
  const leaders = await leadersOf(from.page, topic);
  for (const t of tabs) await expect.poll(() => leadersOf(t.page, topic).catch(String), { timeout: METADATA_TIMEOUT_MS }).toEqual(leaders);
  return leaders;
}

/**
 * A topic named `topic` (or, if `leader` leads none of its partitions, `<topic>-2`: placement
 * walks the brokers device by device, so a second topic, placed from where the first ended,
 * gives it one) created as createReplicated does; its name and leaders.
 */
export async function createLedBy(leader: Tab, from: Tab, tabs: readonly Tab[], topic: string): Promise<{ topic: string; leaders: number[] }> {
  let leaders = await createReplicated(from, tabs, topic);
  if (!leaders.includes(leader.broker.brokerId)) {
    topic = `${topic}-2`;
    leaders = await createReplicated(from, tabs, topic);
  }
  expect(leaders, `${leader.name} is broker ${leader.broker.brokerId}`).toContain(leader.broker.brokerId);
  return { topic, leaders };
}

/**
 * Sends one record to each partition from `producer` (recorded as `<topic>-end-*`) after the
 * faults: each must be acknowledged; their offsets are where the final read may stop.
 */
async function endMarkers(producer: Tab, topic: string): Promise<Map<number, number>> {
  const name = `${topic}-end`;
  await startProducer(producer.page, { name, topic, partitions: Array.from({ length: PARTITIONS }, (_, i) => i), count: PARTITIONS, batch: PARTITIONS });
  const run = await producerDone(producer.page, name, FAILOVER_TIMEOUT_MS);
  expect(run.acked, `the end markers: ${JSON.stringify(run.errors)}`).toBe(PARTITIONS);
  const history = await historyOf([producer.page], []);
  const ends = new Map<number, number>();
  for (const [value, { partition, offset }] of acknowledged(history)) if (value.startsWith(name)) ends.set(partition, offset);
  return ends;
}

/**
 * After the producers ended: the end markers, the consumer (`reader`) reads every acknowledged
 * record, the final read of the whole log, and the history checker's judgement of it all —
 * with `idempotent` producers, a record written twice is an anomaly.
 */
export async function judge(what: string, topic: string, producers: readonly Tab[], consumer: Tab, { idempotent = false } = {}): Promise<{ report: Report; history: History }> {
  const ends = await endMarkers(producers[0]!, topic);
  const acked = [...acknowledged(await historyOf(producers.map((p) => p.page), [])).keys()];
  try {
    await expect.poll(async () => (await unreadOf(consumer.page, 'reader', acked)).count, { timeout: recordsTimeoutMs(acked.length) }).toBe(0);
  } finally {
    const { polls, rebalances, events } = await stopConsumer(consumer.page, 'reader');
    console.log(`${what}: the consumer in ${consumer.name} polled ${polls} batches, ${rebalances} rebalances (${events.slice(-8).join('; ')}); unread ${JSON.stringify(await unreadOf(consumer.page, 'reader', acked))}`);
  }
  const final = await finalRead(consumer.page, topic, `${topic}-final`, ends);
  const history = { ...(await historyOf([...producers.map((p) => p.page), consumer.page], final)), idempotent };
  return { report: expectConsistent(history, what), history };
}

/** The producer's run, printed. */
export function printRun(what: string, name: string, run: ProducerRun): void {
  console.log(`${what}: producer ${name}: ${run.sends} sends of ${run.sent} records, ${run.acked} acknowledged, ${run.failed} failed ${JSON.stringify(run.errors)}; Produce requests by broker ${JSON.stringify(run.requests)}`);
}

/**
 * The longest time the producer on `page` went without an acknowledgement after `from` (ms
 * since the epoch): what the failover cost it (from the ops it recorded).
 */
export const longestAckGap = (page: Page, from: number): Promise<number> =>
  page.evaluate((from) => {
    const acks = (window.historyOps ?? []).filter(({ t, op }) => op.kind === 'ack' && t >= from).map(({ t }) => t);
    let longest = 0;
    let previous = from;
    for (const t of acks) {
      longest = Math.max(longest, t - previous);
      previous = t;
    }
    return longest;
  }, from);
