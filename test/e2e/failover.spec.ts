import { BROWSER_TIMING } from '../../src/node/membership';
import { brokerNamesOf, controllerOf, placementOf, recordsTimeoutMs, type PartitionPlace } from './cluster-tabs';
import { expect, test } from './fixtures';
import { createLedBy, createReplicated, ELECTION_TIMEOUT_MS, FAILOVER_TIMEOUT_MS, fourBrokers, judge, leadersOf, longestAckGap, METADATA_TIMEOUT_MS, PARTITIONS, POLL, printRun, REGISTER_TIMEOUT_MS, type Tab } from './failover-tabs';
import { acknowledged, producerDone, producerRunOf, startConsumer, startProducer, stopProducer, type SendLog } from './history-tabs';

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
// Every wait is on a condition, bounded by the protocol (failover-tabs.ts).
const RECORDS = 10_000;
const BATCH = 100;
/** Records of the re-replication test: written before and while its broker is gone, all read after. */
const MOVED_RECORDS = 2_000;
/** The re-replication test's brokers move a fenced broker's replicas after this (the Letterbox option; 30 s by default). */
const REASSIGN_AFTER_MS = 5_000;
/**
 * A broker gone for good is fenced (its session times out), its replicas are moved once it has
 * been fenced REASSIGN_AFTER_MS, each new replica catches up (recordsTimeoutMs) and is promoted,
 * and the leaders' reports reach the metadata (METADATA_TIMEOUT_MS).
 */
const REASSIGN_TIMEOUT_MS = BROWSER_TIMING.sessionTimeoutMs + REASSIGN_AFTER_MS + recordsTimeoutMs(MOVED_RECORDS) + METADATA_TIMEOUT_MS;

test.describe('failover of replicated partitions across browser processes', () => {
  test('the tab leading most partitions closes while another produces 10k records with acks -1: producing resumes by itself, every acknowledged record consumed at its offset (history checker)', async ({ profile, killableBrowser, relay, baseURL }) => {
    test.setTimeout(REGISTER_TIMEOUT_MS * 3 + METADATA_TIMEOUT_MS + FAILOVER_TIMEOUT_MS + recordsTimeoutMs(RECORDS) * 2);
    const { tabs, b } = await fourBrokers('failover', profile, killableBrowser, relay.url, baseURL!);
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
    const { tabs, b } = await fourBrokers('failover', profile, killableBrowser, relay.url, baseURL!);
    const all = [...tabs, b];
    // B must lead a partition.
    const { topic, leaders } = await createLedBy(b, tabs[0]!, all, 'killed-leader');
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
    const { tabs, b } = await fourBrokers('failover', profile, killableBrowser, relay.url, baseURL!);
    const all = [...tabs, b];
    const { topic, leaders } = await createLedBy(b, tabs[0]!, all, 'paused-leader');
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

    // It steps down: its own metadata comes to name the leader the others' does (the new one; or B
    // again at a later epoch, if the preferred-leader rebalance handed the partition back to it
    // first — it must have caught up for that), and its producer's sends go to the new leader.
    const names = await brokerNamesOf(producer.page);
    await expect
      .poll(async () => {
        const [its, others] = await Promise.all([leadersOf(b.page, topic), leadersOf(producer.page, topic)]);
        return its[partition] === others[partition];
      }, { timeout: FAILOVER_TIMEOUT_MS, ...POLL })
      .toBe(true);
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
    // In flight across the pause: invoked before the resume (nothing is invoked while the process
    // is stopped; SIGSTOP lands some ms after pausedAt on a busy machine, so a send invoked in
    // between was frozen too) and ended after it.
    const across = ended.filter((send) => send.invokedAt < resumedAt);
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
    const gapA = await longestAckGap(producer.page, pausedAt);
    console.log(`paused leader: producer a (${producer.name}, to every partition, B's too): its longest wait for an acknowledgement after the pause ${gapA} ms (election timeout ${ELECTION_TIMEOUT_MS} ms)`);
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

  test('a broker of another browser process gone for good: past reassignAfterMs (the option, 5 s here) its replicas move to live brokers (a learner catches up, is promoted, the dead one removed), the under-replicated count returns to 0, and every acknowledged record is read (history checker)', async ({ profile, killableBrowser, relay, baseURL }) => {
    test.setTimeout(REGISTER_TIMEOUT_MS * 3 + METADATA_TIMEOUT_MS + REASSIGN_TIMEOUT_MS + recordsTimeoutMs(MOVED_RECORDS) * 3);
    const { tabs, b } = await fourBrokers('rereplicate', profile, killableBrowser, relay.url, baseURL!, { reassignAfterMs: REASSIGN_AFTER_MS });
    const topic = 'rereplicated';
    await createReplicated(tabs[0]!, [...tabs, b], topic);
    const [producer, consumer] = tabs as [Tab, Tab, Tab];
    const before = (await placementOf(producer.page, topic)) as PartitionPlace[];
    const moved = before.filter((p) => p.replicas.includes(b.broker.brokerId)).map((p) => p.partitionId);
    expect(moved.length, JSON.stringify(before)).toBeGreaterThan(0);

    await startConsumer(consumer.page, 'reader', topic, `${topic}-readers`);
    await startProducer(producer.page, { name: 'p', topic, partitions: [0, 1, 2], count: MOVED_RECORDS, batch: 20 });
    await expect.poll(async () => (await producerRunOf(producer.page, 'p')).acked, { timeout: recordsTimeoutMs(MOVED_RECORDS / 2), ...POLL }).toBeGreaterThanOrEqual(MOVED_RECORDS / 2);
    const killedAt = Date.now();
    await killableBrowser.kill();
    // Two replicas of three in sync still commit: producing goes on while the partitions are under-replicated.
    const run = await producerDone(producer.page, 'p', recordsTimeoutMs(MOVED_RECORDS) + FAILOVER_TIMEOUT_MS);
    printRun('re-replication', 'p', run);
    expect(run.failed).toBe(0);

    // Re-replicated: three replicas again, none on B, all in sync, as admin and the event say.
    const health = async () => {
      const placement = (await placementOf(producer.page, topic)) as PartitionPlace[];
      const { underReplicatedPartitions, offlinePartitions } = await producer.page.evaluate(() => window.admin.describeCluster());
      return { underReplicatedPartitions, offlinePartitions, onB: placement.filter((p) => p.replicas.includes(b.broker.brokerId)).map((p) => p.partitionId), factors: placement.map((p) => `${p.replicas.length}/${p.isr.length}`) };
    };
    await expect.poll(health, { timeout: REASSIGN_TIMEOUT_MS, intervals: [500] }).toEqual({ underReplicatedPartitions: 0, offlinePartitions: 0, onB: [], factors: before.map(() => '3/3') });
    // The option took effect: with the default the controller would not even have begun by now.
    expect(Date.now() - killedAt).toBeLessThan(BROWSER_TIMING.sessionTimeoutMs + BROWSER_TIMING.reassignAfterMs);
    const after = (await placementOf(producer.page, topic)) as PartitionPlace[];
    console.log(`re-replication: ${b.name} (broker ${b.broker.brokerId}) killed; partitions ${moved.join(', ')} moved off it within ${Date.now() - killedAt} ms (reassignAfterMs ${REASSIGN_AFTER_MS}, session timeout ${BROWSER_TIMING.sessionTimeoutMs}): replicas ${JSON.stringify(before.map((p) => p.replicas))} → ${JSON.stringify(after.map((p) => p.replicas))}`);
    // Each new replica holds its partition's log: its own high watermark is the leader's.
    for (const partition of moved) {
      const added = after[partition]!.replicas.find((id) => !before[partition]!.replicas.includes(id))!;
      const host = tabs.find((t) => t.broker.brokerId === added)!;
      const leader = tabs.find((t) => t.broker.brokerId === after[partition]!.leader)!;
      const localHighWatermark = (t: Tab) => t.page.evaluate(async ({ topic, partition }) => (await (await window.broker.node()).describeTopics([topic]))[0]!.partitions[partition]!.highWatermark, { topic, partition });
      await expect.poll(async () => (await localHighWatermark(host)) - (await localHighWatermark(leader)), { timeout: METADATA_TIMEOUT_MS }).toBe(0);
    }

    const { report } = await judge('re-replication', topic, [producer], consumer);
    expect(report.counts.acknowledged).toBe(run.acked + PARTITIONS);
  });
});
