import type { BrowserContext, Page } from '@playwright/test';
import { BROWSER_TIMING } from '../../src/node/membership';
import { brokerNamesOf, clusterInfoOf, controllerOf, createTopic, nodeInfoOf, openBroker, placementOf, recordsTimeoutMs, registered, type Registered } from './cluster-tabs';
import { DISCOVERY_TIMEOUT_MS } from './demo';
import { expect, test, type KillableBrowser } from './fixtures';
import type { History, Report } from '../sim/history';
import { acknowledged, expectConsistent, finalRead, historyOf, producerDone, producerRunOf, startConsumer, startProducer, stopConsumer, stopProducer, unreadOf, type ProducerRun, type SendLog } from './history-tabs';

// Issue 19's failover, end to end: real Chromium, the relay, four pages — three tabs of one
// browser process and a page of another — brokers of one cluster; a topic of PARTITIONS
// partitions with three replicas each (raft groups whose logs are the partitions' IndexedDB
// logs). One tab produces with acks -1 while another consumes, each recording what it did (a
// send's records and their outcome; each poll's records; rebalances), and a leader is lost
// mid-stream: its tab closed, its browser process killed (SIGKILL of its process group), or
// its process group paused (SIGSTOP) until another replica leads, then resumed (SIGCONT).
// The client's own retries keep producing; the project's history checker (test/sim/history)
// judges the merged history with a final read of every partition: every acknowledged record
// at its acknowledged offset, one record per offset, no poll skipping over records, no
// record read that the log later lost. Duplicates from retried sends are counted (the
// idempotence issue removes them).
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
const REGISTER_TIMEOUT_MS = DISCOVERY_TIMEOUT_MS + FORMATION_MS + BROWSER_TIMING.requestTimeoutMs;
const METADATA_TIMEOUT_MS = 30_000;
const FAILOVER_TIMEOUT_MS = BROWSER_TIMING.sessionTimeoutMs + METADATA_TIMEOUT_MS;
/** A raft election timeout of a partition's replicas (ms). */
const ELECTION_TIMEOUT_MS = BROWSER_TIMING.electionTicks * BROWSER_TIMING.tickMs;
const PARTITIONS = 3;
const RECORDS = 10_000;
const BATCH = 100;
/** Poll often: failover times are measured on these polls. */
const POLL = { intervals: [100] };

interface Tab {
  name: string;
  context: BrowserContext;
  page: Page;
  broker: Registered;
}

/**
 * Four brokers of one new cluster through `relay`: tabs A1, A2, A3 of `profile` and B, a page
 * of the killable browser process; once every tab's metadata group has its three voters (so
 * losing one leaves a majority).
 */
async function fourBrokers(profile: BrowserContext, other: KillableBrowser, relay: string, baseURL: string): Promise<{ tabs: Tab[]; b: Tab }> {
  const cluster = `failover-${Date.now()}`;
  const open = async (name: string, context: BrowserContext, base?: string): Promise<Tab> => {
    const page = await openBroker(context, cluster, relay, base);
    return { name, context, page, broker: await registered(page, REGISTER_TIMEOUT_MS) };
  };
  // One tab first: it bootstraps the cluster, the others join it.
  const a1 = await open('A1', profile);
  const [a2, a3, b] = await Promise.all([open('A2', profile), open('A3', profile), open('B (other process)', other.context, baseURL)]);
  const all = [a1, a2, a3, b];
  const infos = async () => (await Promise.all(all.map(async (t) => `${t.name}: ${await clusterInfoOf(t.page).catch(String)}`))).join('\n');
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
    throw new Error(`not one cluster of four brokers:\n${await infos()}`, { cause: error });
  }
  for (const [i, node] of (await ids()).entries()) all[i]!.broker = node as Registered;
  for (const t of all) {
    await expect.poll(() => t.page.evaluate(async () => (await (await window.broker.node()).clusterInfo())?.voters.length), { timeout: METADATA_TIMEOUT_MS, message: await infos() }).toBe(3);
  }
  console.log(all.map((t) => `${t.name}: broker ${t.broker.brokerId}`).join(', '));
  return { tabs: [a1, a2, a3], b: b! };
}

/** The leader of each partition of `topic` as `page`'s metadata names it. */
async function leadersOf(page: Page, topic: string): Promise<number[]> {
  const placement = await placementOf(page, topic);
  if ('failed' in placement) throw new Error(`${topic}: ${placement.failed.code}`);
  return placement.map((p) => p.leader);
}

/**
 * Creates `topic` (PARTITIONS partitions, three replicas) from `tab` and waits until every
 * tab's metadata names the same leader for each partition; returns the leaders.
 */
async function createReplicated(from: Tab, tabs: readonly Tab[], topic: string): Promise<number[]> {
  expect(await createTopic(from.page, { topic, numPartitions: PARTITIONS, replicationFactor: 3 })).toEqual({ created: true });
  const leaders = await leadersOf(from.page, topic);
  for (const t of tabs) await expect.poll(() => leadersOf(t.page, topic).catch(String), { timeout: METADATA_TIMEOUT_MS }).toEqual(leaders);
  return leaders;
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
 * After the producers ended: the end markers, the consumer reads every acknowledged record,
 * the final read of the whole log, and the history checker's judgement of it all.
 */
async function judge(what: string, topic: string, producers: readonly Tab[], consumer: Tab): Promise<{ report: Report; history: History }> {
  const ends = await endMarkers(producers[0]!, topic);
  const acked = [...acknowledged(await historyOf(producers.map((p) => p.page), [])).keys()];
  try {
    await expect.poll(async () => (await unreadOf(consumer.page, 'reader', acked)).count, { timeout: recordsTimeoutMs(acked.length) }).toBe(0);
  } finally {
    const { polls, rebalances, events } = await stopConsumer(consumer.page, 'reader');
    console.log(`${what}: the consumer in ${consumer.name} polled ${polls} batches, ${rebalances} rebalances (${events.slice(-8).join('; ')}); unread ${JSON.stringify(await unreadOf(consumer.page, 'reader', acked))}`);
  }
  const final = await finalRead(consumer.page, topic, `${topic}-final`, ends);
  const history = await historyOf([...producers.map((p) => p.page), consumer.page], final);
  return { report: expectConsistent(history, what), history };
}

/** The producer's run, printed. */
function printRun(what: string, name: string, run: ProducerRun): void {
  console.log(`${what}: producer ${name}: ${run.sends} sends of ${run.sent} records, ${run.acked} acknowledged, ${run.failed} failed ${JSON.stringify(run.errors)}; Produce requests by broker ${JSON.stringify(run.requests)}`);
}

/**
 * The longest time the producer on `page` went without an acknowledgement after `from` (ms
 * since the epoch): what the failover cost it (from the ops it recorded).
 */
const longestAckGap = (page: Page, from: number): Promise<number> =>
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

test.describe('failover of replicated partitions across browser processes', () => {
  test('the tab leading most partitions closes while another produces 10k records with acks -1: producing resumes by itself, every acknowledged record consumed at its offset (history checker)', async ({ profile, killableBrowser, relay, baseURL }) => {
    test.setTimeout(REGISTER_TIMEOUT_MS * 3 + METADATA_TIMEOUT_MS + FAILOVER_TIMEOUT_MS + recordsTimeoutMs(RECORDS) * 2);
    const { tabs, b } = await fourBrokers(profile, killableBrowser, relay.url, baseURL!);
    const topic = 'closed-leader';
    const leaders = await createReplicated(tabs[0]!, [...tabs, b], topic);
    // The tab of this browser leading most partitions closes; of the other two, one produces and one reads.
    const led = (t: Tab) => leaders.filter((l) => l === t.broker.brokerId).length;
    const closing = [...tabs].sort((x, y) => led(y) - led(x))[0]!;
    const [producer, consumer] = tabs.filter((t) => t !== closing) as [Tab, Tab];
    const lost = leaders.flatMap((l, p) => (l === closing.broker.brokerId ? [p] : []));
    expect(lost.length, `leaders ${leaders.join(', ')}`).toBeGreaterThan(0);
    console.log(`leaders ${leaders.join(', ')}: ${closing.name} (broker ${closing.broker.brokerId}) leads partitions ${lost.join(', ')} and closes; ${producer.name} produces, ${consumer.name} consumes`);

    await startConsumer(consumer.page, 'reader', topic, `${topic}-readers`);
    const started = Date.now();
    await startProducer(producer.page, { name: 'p', topic, partitions: [0, 1, 2], count: RECORDS, batch: BATCH });
    // Mid-stream: a fifth of the records acknowledged.
    await expect.poll(async () => (await producerRunOf(producer.page, 'p')).acked, { timeout: recordsTimeoutMs(RECORDS / 5), ...POLL }).toBeGreaterThanOrEqual(RECORDS / 5);
    const ackedBefore = (await producerRunOf(producer.page, 'p')).acked;
    const closedAt = Date.now();
    await closing.page.close();
    // Another replica leads each of its partitions, as the producer's metadata shows.
    await expect.poll(async () => (await leadersOf(producer.page, topic)).filter((l, p) => lost.includes(p) && l === closing.broker.brokerId), { timeout: FAILOVER_TIMEOUT_MS, ...POLL }).toEqual([]);
    const newLeadersMs = Date.now() - closedAt;
    const run = await producerDone(producer.page, 'p', recordsTimeoutMs(RECORDS) + FAILOVER_TIMEOUT_MS);
    const producedMs = Date.now() - started;
    printRun('closed tab', 'p', run);
    // Producing resumed without the test doing anything: the sends after the close were acknowledged, the last one too.
    expect(run.acked).toBeGreaterThan(ackedBefore);
    expect(run.lastAckedSend).toBe(run.sends);
    const gap = await longestAckGap(producer.page, closedAt);
    console.log(`closed tab: ${ackedBefore} records acknowledged before ${closing.name} closed; new leaders in the metadata ${newLeadersMs} ms after the close; the producer's longest wait for an acknowledgement after it ${gap} ms (election timeout ${ELECTION_TIMEOUT_MS} ms); ${RECORDS} records in ${producedMs} ms`);

    const { report } = await judge('closed tab', topic, [producer], consumer);
    expect(report.counts.acknowledged).toBe(run.acked + PARTITIONS);
  });

  test('the browser process of a partition leader is killed (SIGKILL) while another tab produces 10k records with acks -1: producing resumes by itself, every acknowledged record consumed at its offset (history checker)', async ({ profile, killableBrowser, relay, baseURL }) => {
    test.setTimeout(REGISTER_TIMEOUT_MS * 3 + 2 * METADATA_TIMEOUT_MS + FAILOVER_TIMEOUT_MS + recordsTimeoutMs(RECORDS) * 2);
    const { tabs, b } = await fourBrokers(profile, killableBrowser, relay.url, baseURL!);
    const all = [...tabs, b];
    // B must lead a partition: placement walks the brokers device by device, so a second topic
    // (placed from where the first ended) gives B one if the first did not.
    let topic = 'killed-leader';
    let leaders = await createReplicated(tabs[0]!, all, topic);
    if (!leaders.includes(b.broker.brokerId)) {
      topic = 'killed-leader-2';
      leaders = await createReplicated(tabs[0]!, all, topic);
    }
    const lost = leaders.flatMap((l, p) => (l === b.broker.brokerId ? [p] : []));
    expect(lost.length, `leaders ${leaders.join(', ')}; B is broker ${b.broker.brokerId}`).toBeGreaterThan(0);
    const [producer, consumer] = tabs as [Tab, Tab, Tab];
    console.log(`leaders ${leaders.join(', ')}: ${b.name} (broker ${b.broker.brokerId}) leads partitions ${lost.join(', ')}; its browser process is killed; ${producer.name} produces, ${consumer.name} consumes`);

    await startConsumer(consumer.page, 'reader', topic, `${topic}-readers`);
    const started = Date.now();
    await startProducer(producer.page, { name: 'p', topic, partitions: [0, 1, 2], count: RECORDS, batch: BATCH });
    await expect.poll(async () => (await producerRunOf(producer.page, 'p')).acked, { timeout: recordsTimeoutMs(RECORDS / 5), ...POLL }).toBeGreaterThanOrEqual(RECORDS / 5);
    const ackedBefore = (await producerRunOf(producer.page, 'p')).acked;
    const killedAt = Date.now();
    await killableBrowser.kill();
    await expect.poll(async () => (await leadersOf(producer.page, topic)).filter((l, p) => lost.includes(p) && l === b.broker.brokerId), { timeout: FAILOVER_TIMEOUT_MS, ...POLL }).toEqual([]);
    const newLeadersMs = Date.now() - killedAt;
    const run = await producerDone(producer.page, 'p', recordsTimeoutMs(RECORDS) + FAILOVER_TIMEOUT_MS);
    const producedMs = Date.now() - started;
    printRun('killed process', 'p', run);
    expect(run.acked).toBeGreaterThan(ackedBefore);
    expect(run.lastAckedSend).toBe(run.sends);
    const gap = await longestAckGap(producer.page, killedAt);
    console.log(`killed process: ${ackedBefore} records acknowledged before ${b.name}'s process was killed; new leaders in the metadata ${newLeadersMs} ms after the kill; the producer's longest wait for an acknowledgement after it ${gap} ms (election timeout ${ELECTION_TIMEOUT_MS} ms); ${RECORDS} records in ${producedMs} ms`);

    const { report } = await judge('killed process', topic, [producer], consumer);
    expect(report.counts.acknowledged).toBe(run.acked + PARTITIONS);
  });

  test('a leader in another browser process paused (SIGSTOP) until another replica leads, then resumed (SIGCONT): it acknowledges no acks -1 write after the election and steps down (history checker)', async ({ profile, killableBrowser, relay, baseURL }) => {
    test.setTimeout(REGISTER_TIMEOUT_MS * 3 + 2 * METADATA_TIMEOUT_MS + 2 * FAILOVER_TIMEOUT_MS + recordsTimeoutMs(RECORDS) * 2);
    const { tabs, b } = await fourBrokers(profile, killableBrowser, relay.url, baseURL!);
    const all = [...tabs, b];
    let topic = 'paused-leader';
    let leaders = await createReplicated(tabs[0]!, all, topic);
    if (!leaders.includes(b.broker.brokerId)) {
      topic = 'paused-leader-2';
      leaders = await createReplicated(tabs[0]!, all, topic);
    }
    const partition = leaders.indexOf(b.broker.brokerId);
    expect(partition, `leaders ${leaders.join(', ')}; B is broker ${b.broker.brokerId}`).toBeGreaterThanOrEqual(0);
    const [producer, consumer] = tabs as [Tab, Tab, Tab];
    console.log(`leaders ${leaders.join(', ')}: ${b.name} (broker ${b.broker.brokerId}) leads partition ${partition} and is paused; ${producer.name} and ${b.name} produce, ${consumer.name} consumes`);

    await startConsumer(consumer.page, 'reader', topic, `${topic}-readers`);
    // A producer in A1 to every partition, and one in B to the partition B leads (served by B's own broker).
    await startProducer(producer.page, { name: 'a', topic, partitions: [0, 1, 2], count: Infinity, batch: 30 });
    await startProducer(b.page, { name: 'b', topic, partitions: [partition], count: Infinity, batch: 10 });
    await expect.poll(async () => (await producerRunOf(b.page, 'b')).acked, { timeout: recordsTimeoutMs(200), ...POLL }).toBeGreaterThanOrEqual(200);
    await expect.poll(async () => (await producerRunOf(producer.page, 'a')).acked, { timeout: recordsTimeoutMs(600), ...POLL }).toBeGreaterThanOrEqual(600);

    const before = await producerRunOf(b.page, 'b');
    const controllerBefore = await controllerOf(producer.page);
    const pausedAt = Date.now();
    killableBrowser.pause();
    let resumedAt = 0;
    let newLeader = -1;
    /** When this browser's metadata first named another active controller, if B was it (ms after the pause). */
    let controllerMovedMs: number | undefined;
    try {
      // Until another replica leads B's partition, as the metadata of this browser's tabs shows (never a sleep).
      await expect
        .poll(async () => {
          if (controllerMovedMs === undefined && controllerBefore === b.broker.brokerId && ![null, controllerBefore].includes(await controllerOf(producer.page))) controllerMovedMs = Date.now() - pausedAt;
          return (await leadersOf(producer.page, topic))[partition];
        }, { timeout: FAILOVER_TIMEOUT_MS, ...POLL })
        .not.toBe(b.broker.brokerId);
      newLeader = (await leadersOf(producer.page, topic))[partition]!;
    } finally {
      resumedAt = Date.now();
      killableBrowser.resume();
    }
    const electedMs = resumedAt - pausedAt;
    const controllerNote = controllerBefore === b.broker.brokerId ? `B was the active controller too (another in the metadata ${controllerMovedMs ?? '-'} ms after the pause)` : `the active controller was broker ${controllerBefore}`;
    console.log(`paused leader: ${b.name} paused with ${before.acked} of its records acknowledged; broker ${newLeader} leads partition ${partition} in the metadata ${electedMs} ms after the pause (${controllerNote}); resumed`);

    // It steps down: its own metadata names the new leader, and its producer's sends go to it and are acknowledged there.
    const names = await brokerNamesOf(producer.page);
    await expect.poll(async () => (await leadersOf(b.page, topic))[partition], { timeout: FAILOVER_TIMEOUT_MS, ...POLL }).toBe(newLeader);
    const steppedDownMs = Date.now() - resumedAt;
    const redirected = (await producerRunOf(b.page, 'b')).requests[names.get(newLeader)!] ?? 0;
    await expect.poll(async () => (await producerRunOf(b.page, 'b')).requests[names.get(newLeader)!] ?? 0, { timeout: FAILOVER_TIMEOUT_MS, ...POLL }).toBeGreaterThan(redirected);
    const ackedAtResume = (await producerRunOf(b.page, 'b')).acked;
    await expect.poll(async () => (await producerRunOf(b.page, 'b')).acked, { timeout: FAILOVER_TIMEOUT_MS, ...POLL }).toBeGreaterThanOrEqual(ackedAtResume + 100);
    await stopProducer(b.page, 'b');
    await stopProducer(producer.page, 'a');
    const [runB, runA] = [await producerDone(b.page, 'b', FAILOVER_TIMEOUT_MS), await producerDone(producer.page, 'a', FAILOVER_TIMEOUT_MS)];
    printRun('paused leader', 'b (in the paused process)', runB);
    printRun('paused leader', 'a', runA);

    const { report, history } = await judge('paused leader', topic, [producer, b], consumer);
    expect(report.counts.acknowledged).toBe(runA.acked + runB.acked + PARTITIONS);
    // What B acknowledged after it resumed: each at its offset in the final log (the checker's
    // lost writes and inconsistent offsets say so for all); none of them at the old leader
    // epoch, which the new leader's log replaced.
    // B acknowledged nothing after the election (the checker judged every acknowledgement's
    // offset against the final log above): each of its sends invoked after the resume that was
    // acknowledged went through the new leader (a Produce request answered by it); one in flight
    // across the pause (invoked before it: its own broker, the old leader, held it frozen) ended
    // unknown, through the new leader, or acknowledged by the old leader before it learned of the
    // election — then committed in the old epoch (its followers had answered before they voted),
    // so below where the new leader's epoch starts: its no-op, the offset the final log skips.
    const newLeaderName = names.get(newLeader)!;
    const ended = runB.log.filter((send) => send.endedAt >= resumedAt);
    const across = ended.filter((send) => send.invokedAt < pausedAt);
    const after = ended.filter((send) => send.invokedAt >= resumedAt);
    const ownOnly = (send: SendLog) => send.outcome === 'ack' && !send.brokers.includes(newLeaderName);
    // Each send of B's is 10 records, b-<10k>..b-<10k + 9> for its k-th: its last record's offset.
    const offsets = acknowledged(history);
    const lastOffsetOf = (send: SendLog) => offsets.get(`b-${runB.log.indexOf(send) * 10 + 9}`)!.offset;
    const ackedBeforePause = Math.max(...runB.log.filter((send) => send.outcome === 'ack' && send.endedAt < pausedAt).map(lastOffsetOf));
    const held = new Set(history.final!.filter((r) => r.partition === partition).map((r) => r.offset));
    const gaps = Array.from({ length: Math.max(...held) }, (_, offset) => offset).filter((offset) => !held.has(offset));
    const newEpochStart = gaps.find((offset) => offset > ackedBeforePause)!;
    const acrossOldEpoch = across.filter(ownOnly).map(lastOffsetOf);
    const gap = await longestAckGap(b.page, pausedAt);
    console.log(
      `paused leader: ${b.name}'s producer: ${across.length} send(s) in flight across the pause (${across.map((s) => `${s.outcome} via ${s.brokers.map((b) => (b === newLeaderName ? 'new leader' : 'own broker')).join(' → ')}`).join('; ')}; acknowledged by the old leader at offsets ≤ ${acrossOldEpoch.join(', ') || '-'}); ` +
        `the new leader's epoch starts at offset ${newEpochStart} (control batches at ${gaps.join(', ')}); ${after.length} sends invoked after the resume, ${after.filter((s) => s.outcome === 'ack').length} acknowledged, ${after.filter(ownOnly).length} of them by its own broker alone (only in a later epoch: B leading again after the preferred-leader rebalance); ` +
        `its metadata named the new leader ${steppedDownMs} ms after the resume; its longest wait for an acknowledgement ${gap} ms`,
    );
    // B may lead again after the resume — the partition's preferred replica, handed leadership
    // back once it has been in sync for a while (the preferred-leader rebalance) — at a newer
    // epoch: a send its own broker acknowledged after the resume must lie in such a later epoch,
    // never in the one the election ended.
    const laterEpochStart = gaps.find((offset) => offset > newEpochStart) ?? Infinity;
    for (const offset of after.filter(ownOnly).map(lastOffsetOf)) expect(offset, 'a send invoked after the resume acknowledged by the old leader in its old epoch').toBeGreaterThan(laterEpochStart);
    for (const offset of acrossOldEpoch) expect(offset, 'a send acknowledged by the old leader after the resume was committed in its epoch').toBeLessThan(newEpochStart);
    // The pause froze a send of B's (its loop is never between sends for long).
    expect(across.length).toBeGreaterThan(0);
  });
});
