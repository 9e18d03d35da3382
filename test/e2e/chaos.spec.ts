import { PREFERRED_LEADER_DELAY_ELECTIONS } from '../../src/node/replicas';
import { brokerNamesOf, controllerOf, openBroker, placementOf, recordsTimeoutMs, registered, reopenBroker, LOCK_RELEASE_TIMEOUT_MS } from './cluster-tabs';
import { expect, test, type KillableBrowser } from './fixtures';
import { clusterInfosOf, createLedBy, ELECTION_TIMEOUT_MS, FAILOVER_TIMEOUT_MS, fourBrokers, judge, leadersOf, METADATA_TIMEOUT_MS, PARTITIONS, POLL, printRun, REGISTER_TIMEOUT_MS, type Tab } from './failover-tabs';
import { firstAckWithout, producerDone, producerProgressOf, startConsumer, startProducer, stopProducer } from './history-tabs';
import { LAUNCH_TIMEOUT_MS } from '../support/killable-chromium';

// Issue 20's chaos test: leaders killed again and again while records are produced with acks -1
// and consumed. Real Chromium, the relay, four brokers of one cluster (failover-tabs.ts): tabs
// A1, A2, A3 of one browser profile and B, a page of a second browser process. A topic of
// PARTITIONS partitions, three replicas each. An idempotent producer (the default) sends with
// acks -1 from one tab of A and a consumer group reads from another; neither tab is ever killed.
// The victims are the third tab of A and B, each killed only while it leads a partition, in
// turn (TURNS):
// - close: A's tab closed (its slot lock released: its partitions elect at once), then a new
//   tab of the same profile opened, which takes the freed slot — the same broker, from its disk;
// - sigkill: B's browser process group killed (SIGKILL), then relaunched on the same profile
//   and its page opened again — the same broker, from what the kill left on its disk;
// - sigstop: B's process group paused (SIGSTOP) until another replica leads its partitions, then
//   resumed (SIGCONT): the old leader steps down (failover.spec.ts checks how; here its image
//   must come to name the leaders the others do).
// After each kill: a new leader for the victim's partitions, the producer acknowledged again
// (a send invoked after the kill, to every partition, answered without the victim: a closed
// tab's worker may still answer for a moment), the victim back and every replica in sync
// before the next round; the preferred-leader rebalance (Kafka's auto.leader.rebalance.enable)
// gives a victim back the partitions it leads by placement, which makes it a leader to kill
// again. At the end: end markers, the consumer reads every acknowledged record, a final read,
// and the history checker with idempotent producers: no acknowledged record lost, none written
// twice, one record per offset. The run prints each kill's timings and the kills of each kind.
//
// Every wait is on a condition, bounded by the protocol (BROWSER_TIMING through failover-tabs.ts):
// LEADS_AGAIN_TIMEOUT_MS: a victim back in sync leads its preferred partitions again — a leader
//   hands a partition to its preferred replica once that has been in sync for
//   PREFERRED_LEADER_DELAY_MS, the transfer takes at most an election timeout, and the new
//   leader's report reaches the producer's image (METADATA_TIMEOUT_MS);
// FAILOVER_TIMEOUT_MS: a new leader of the victim's partitions in every other tab's image;
// NEXT_ACK_TIMEOUT_MS: the producer's send in flight at the kill ends (acknowledged through the
//   new leader, or past its own SEND_TIMEOUT_MS), and the next is acknowledged, after a failover;
// BACK_TIMEOUT_MS: the victim's tab or process reopened (its slot lock released, or Chromium
//   relaunched) and its broker registered again;
// inSyncTimeoutMs(n): the victim's replicas catch up n records, after an image change.

/** Leader kills to make. */
const KILLS = 20;
/** The kinds of kill in turn: B alternately killed and paused, A's tab closed in between, so that each victim has a round to lead again. */
const TURNS = ['close', 'sigkill', 'close', 'sigstop'] as const;
type Kind = (typeof TURNS)[number];
/** Records per send: two per partition, so that every send needs every partition's leader. */
const BATCH = 2 * PARTITIONS;
/** The producer's send timeout (the client's default, said here because bounds derive from it). */
const SEND_TIMEOUT_MS = 30_000;
/** How long a preferred replica is in sync before its partition's leader hands it back (src/node/replicas.ts). */
const PREFERRED_LEADER_DELAY_MS = PREFERRED_LEADER_DELAY_ELECTIONS * ELECTION_TIMEOUT_MS;
const LEADS_AGAIN_TIMEOUT_MS = PREFERRED_LEADER_DELAY_MS + ELECTION_TIMEOUT_MS + METADATA_TIMEOUT_MS;
const NEXT_ACK_TIMEOUT_MS = SEND_TIMEOUT_MS + FAILOVER_TIMEOUT_MS;
/** The longer way back: Chromium launched (LAUNCH_TIMEOUT_MS, more than a slot lock's release), its worker started (the same bound), the broker registered. */
const BACK_TIMEOUT_MS = Math.max(LOCK_RELEASE_TIMEOUT_MS, LAUNCH_TIMEOUT_MS) + LAUNCH_TIMEOUT_MS + REGISTER_TIMEOUT_MS;
const inSyncTimeoutMs = (records: number) => METADATA_TIMEOUT_MS + recordsTimeoutMs(records);
/** A round's bounds that do not depend on how many records it produced. */
const ROUND_TIMEOUT_MS = LEADS_AGAIN_TIMEOUT_MS + FAILOVER_TIMEOUT_MS + NEXT_ACK_TIMEOUT_MS + BACK_TIMEOUT_MS;

/** One kill: its kind, victim and the partitions it led, and when (ms after the kill) each step of the recovery was seen. */
interface Kill {
  kind: Kind;
  victim: string;
  /** The victim was the active controller too. */
  wasController: boolean;
  partitions: number[];
  /** How long the round waited for the victim to lead (ms). */
  waitedToLeadMs: number;
  newLeaderMs: number;
  nextAckMs: number;
  backMs: number;
  inSyncMs: number;
}

/** The partitions of `topic` that `victim` leads, as both the producer's image and its own name it. */
async function ledBy(victim: Tab, producer: Tab, topic: string): Promise<number[]> {
  const [seen, own] = await Promise.all([leadersOf(producer.page, topic), leadersOf(victim.page, topic)]);
  return seen.flatMap((leader, p) => (leader === victim.broker.brokerId && own[p] === leader ? [p] : []));
}

/** What keeps `topic` from being whole in `tabs`' images: a partition with a replica out of sync, or a tab naming another leader than the first does ([] when none). */
async function notInSync(tabs: readonly Tab[], topic: string): Promise<string[]> {
  const placements = await Promise.all(tabs.map((t) => placementOf(t.page, topic)));
  const [first] = placements;
  if (first === undefined || 'failed' in first) return [`${tabs[0]!.name}: ${JSON.stringify(first)}`];
  const problems = first.filter((p) => p.isr.length < p.replicas.length).map((p) => `partition ${p.partitionId}: isr ${p.isr.join(',')} of ${p.replicas.join(',')}`);
  for (const [i, placement] of placements.entries()) {
    const leaders = 'failed' in placement ? placement.failed.code : placement.map((p) => p.leader).join(',');
    if (leaders !== first.map((p) => p.leader).join(',')) problems.push(`${tabs[i]!.name} names leaders ${leaders}, ${tabs[0]!.name} ${first.map((p) => p.leader).join(',')}`);
  }
  return problems;
}

/** The median of `values`. */
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

test('chaos: leaders killed 20 times — tabs closed, the other browser process SIGKILLed and SIGSTOPped — during acks -1 production with a consumer reading: no acknowledged record lost, none twice, one record per offset (history checker)', async ({ profile, killableBrowser, relay, baseURL }) => {
  test.setTimeout(REGISTER_TIMEOUT_MS * 3 + METADATA_TIMEOUT_MS * 2 + KILLS * ROUND_TIMEOUT_MS);
  const { tabs, b, cluster } = await fourBrokers('chaos', profile, killableBrowser, relay.url, baseURL!);
  const all = [...tabs, b];
  const { topic, leaders } = await createLedBy(b, tabs[0]!, all, 'chaos');
  // A's victim is a tab of A leading a partition by placement (two do: placement alternates devices); the other two produce and read.
  const a = tabs.find((t) => leaders.includes(t.broker.brokerId))!;
  const [producer, consumer] = tabs.filter((t) => t !== a) as [Tab, Tab];
  const placement = await placementOf(producer.page, topic);
  console.log(`chaos: topic ${topic}, replicas ${JSON.stringify('failed' in placement ? placement : placement.map((p) => p.replicas))}; victims ${a.name} (broker ${a.broker.brokerId}, slot ${a.broker.slot}) and ${b.name} (broker ${b.broker.brokerId}); ${producer.name} produces, ${consumer.name} consumes`);

  /** Each broker's name (`host:port`) as the producer's REQUEST events give it: stable across a victim's restarts (its slot keeps its network key). */
  const names = await brokerNamesOf(producer.page);
  await startConsumer(consumer.page, 'reader', topic, `${topic}-readers`);
  await startProducer(producer.page, { name: 'p', topic, partitions: Array.from({ length: PARTITIONS }, (_, i) => i), count: Infinity, batch: BATCH, timeoutMs: SEND_TIMEOUT_MS });
  await expect.poll(async () => (await producerProgressOf(producer.page, 'p')).acked, { timeout: recordsTimeoutMs(BATCH), ...POLL }).toBeGreaterThan(0);

  const kills: Kill[] = [];
  const started = Date.now();
  for (let round = 0; round < KILLS; round++) {
    const kind = TURNS[round % TURNS.length]!;
    const victim = kind === 'close' ? a : b;
    const waitStarted = Date.now();
    let partitions: number[] = [];
    await expect
      .poll(async () => (partitions = await ledBy(victim, producer, topic)).length, { timeout: LEADS_AGAIN_TIMEOUT_MS, ...POLL, message: `${victim.name} leads a partition of ${topic} again` })
      .toBeGreaterThan(0);
    const waitedToLeadMs = Date.now() - waitStarted;
    const ackedBefore = (await producerProgressOf(producer.page, 'p')).acked;
    // A victim that is the active controller too costs more: the new leaders' reports wait for another controller.
    const controller = await controllerOf(producer.page);
    const wasController = controller === victim.broker.brokerId;

    const killedAt = Date.now();
    await killOf(kind, killableBrowser, victim);
    // Another replica leads each of its partitions, as every other tab's image shows (when each did: where a slow failover was slow).
    const seenMs = new Map<string, number>();
    const others = all.filter((t) => t !== victim);
    await expect
      .poll(
        async () => {
          for (const t of others.filter((t) => !seenMs.has(t.name))) {
            if ((await leadersOf(t.page, topic)).every((leader, p) => !partitions.includes(p) || leader !== victim.broker.brokerId)) seenMs.set(t.name, Date.now() - killedAt);
          }
          return others.filter((t) => !seenMs.has(t.name)).map((t) => t.name);
        },
        { timeout: FAILOVER_TIMEOUT_MS, ...POLL, message: `a new leader of ${victim.name}'s partitions ${partitions.join(',')} after ${kind}` },
      )
      .toEqual([]);
    const newLeaderMs = seenMs.get(producer.name)!;
    if (kind === 'sigstop') killableBrowser.resume();
    // The producer is acknowledged again: a send after the kill (to every partition) without the victim.
    let ackedAt: number | undefined;
    const victimName = names.get(victim.broker.brokerId)!;
    await expect.poll(async () => (ackedAt = await firstAckWithout(producer.page, 'p', killedAt, victimName)), { timeout: NEXT_ACK_TIMEOUT_MS, ...POLL, message: `an acknowledgement without ${victim.name} after ${kind}` }).toBeDefined();
    const nextAckMs = ackedAt! - killedAt;

    await backAfter(kind, killableBrowser, victim, cluster, relay.url, baseURL!);
    const backMs = Date.now() - killedAt;
    // Every replica in sync again (the victim caught up what was produced meanwhile) and every
    // image naming the same leaders (a resumed victim's too: it stepped down, or leads again by
    // the preferred-leader rebalance — which may come before a poll saw it step down) before the next kill.
    const producedMeanwhile = (await producerProgressOf(producer.page, 'p')).acked - ackedBefore;
    test.setTimeout(test.info().timeout + inSyncTimeoutMs(producedMeanwhile));
    try {
      await expect.poll(() => notInSync(all, topic), { timeout: inSyncTimeoutMs(producedMeanwhile), ...POLL }).toEqual([]);
    } catch (error) {
      throw new Error(`not in sync after ${kind} of ${victim.name}:\n${await clusterInfosOf(all)}`, { cause: error });
    }
    const inSyncMs = Date.now() - killedAt;

    const kill: Kill = { kind, victim: victim.name, wasController, partitions, waitedToLeadMs, newLeaderMs, nextAckMs, backMs, inSyncMs };
    kills.push(kill);
    console.log(
      `kill ${round + 1}/${KILLS} (${Math.round((Date.now() - started) / 1000)} s): ${kind} ${victim.name} (broker ${victim.broker.brokerId}) leading partition(s) ${partitions.join(',')}${wasController ? ', the active controller too' : `; the active controller broker ${controller}`} (waited ${waitedToLeadMs} ms for it to lead): ` +
        `new leader in ${newLeaderMs} ms (seen by ${[...seenMs].map(([name, ms]) => `${name} ${ms}`).join(', ')}), next acknowledgement ${nextAckMs} ms, back ${backMs} ms, every replica in sync ${inSyncMs} ms after the kill; ${producedMeanwhile} records acknowledged meanwhile`,
    );
  }

  await stopProducer(producer.page, 'p');
  const run = await producerDone(producer.page, 'p', SEND_TIMEOUT_MS);
  printRun('chaos', 'p', run);
  const counts = Object.fromEntries([...new Set(TURNS)].map((kind) => [kind, kills.filter((k) => k.kind === kind).length]));
  console.log(`chaos: ${kills.length} leader kills in ${Math.round((Date.now() - started) / 1000)} s — ${Object.entries(counts).map(([kind, n]) => `${kind} ${n}`).join(', ')} (${kills.filter((k) => k.wasController).length} of them of the active controller too)`);
  for (const kind of [...new Set(TURNS)]) {
    const of = kills.filter((k) => k.kind === kind);
    if (of.length > 0)
      console.log(`chaos: ${kind}: median (max) ms after the kill — new leader ${median(of.map((k) => k.newLeaderMs))} (${Math.max(...of.map((k) => k.newLeaderMs))}), next acknowledgement ${median(of.map((k) => k.nextAckMs))} (${Math.max(...of.map((k) => k.nextAckMs))}), back ${median(of.map((k) => k.backMs))}, in sync ${median(of.map((k) => k.inSyncMs))}`);
  }

  test.setTimeout(test.info().timeout + FAILOVER_TIMEOUT_MS + 2 * recordsTimeoutMs(run.acked));
  const { report, history } = await judge('chaos', topic, [producer], consumer, { idempotent: true });
  expect(report.counts.acknowledged).toBe(run.acked + PARTITIONS);
  expect(report.counts.duplicates, 'records written twice').toBe(0);
  // One record per offset in the final read (the checker's inconsistent offsets say so too).
  const held = new Map<string, Set<string>>();
  for (const { partition, offset, value } of history.final!) held.set(`${partition}/${offset}`, (held.get(`${partition}/${offset}`) ?? new Set()).add(value));
  expect([...held].filter(([, values]) => values.size > 1).slice(0, 20), 'offsets holding more than one record').toEqual([]);
  expect(kills.length).toBeGreaterThanOrEqual(KILLS);
  for (const kind of [...new Set(TURNS)]) expect(counts[kind], `kills by ${kind}`).toBeGreaterThan(0);
});

/** Kills `victim` as `kind` says: its tab closed, or its browser process group SIGKILLed or SIGSTOPped. */
async function killOf(kind: Kind, killable: KillableBrowser, victim: Tab): Promise<void> {
  if (kind === 'close') await victim.page.close();
  else if (kind === 'sigkill') await killable.kill();
  else killable.pause();
}

/**
 * Brings `victim` back after `kind` (a paused process was resumed already): a new tab of its
 * profile in its freed slot, or its browser relaunched on its profile with its page opened
 * again; either way the same broker, registered again from its own disk.
 */
async function backAfter(kind: Kind, killable: KillableBrowser, victim: Tab, cluster: string, relay: string, baseURL: string): Promise<void> {
  if (kind === 'sigstop') return;
  if (kind === 'close') victim.page = await reopenBroker(victim.context, victim.broker.slot, cluster, relay);
  else {
    await killable.relaunch();
    victim.context = killable.context;
    // Its worker's modules come one by one from the dev server and its databases open after a
    // crash: on a loaded machine more than the client's default 10 s (seen once), within a launch's bound.
    victim.page = await openBroker(victim.context, cluster, relay, baseURL, { workerStartTimeoutMs: LAUNCH_TIMEOUT_MS });
  }
  expect(await registered(victim.page, REGISTER_TIMEOUT_MS), `${victim.name} back as the same broker`).toEqual(victim.broker);
}
