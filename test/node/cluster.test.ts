import { describe, expect, it, vi } from 'vitest';
import { realClock } from '../../src/clock';
import { InvalidConfigError, OutOfOrderSequenceNumberError, UnknownProducerIdError } from '../../src/errors';
import { createLocalLink, createPeerRpc, type PeerRpc } from '../../src/network/worker';
import { encodeBatch, readBatchHeader } from '../../src/protocol';
import { PRODUCER_ID_BLOCK_SIZE } from '../../src/cluster';
import { createMemoryLocks } from '../support/memory-locks';
import { closeTab, FORM_BOUND_MS, infos, newCluster, oneCluster, openTab, type Tab } from './cluster-tabs';

// Broker nodes of one origin forming one cluster over the local transport (BroadcastChannel
// and Web Locks in memory), as tabs do: formation, registration, topics created through the
// active controller and placed in every broker's image, the controller's tab closing, a
// reopened tab keeping its broker id, and peers' bad input refused.

const placement = async (tab: Tab, topic: string) => (await tab.node.describeTopics([topic]))[0]!.partitions.map(({ partition, leader, replicas }) => ({ partition, leader, replicas }));

const batch = () => encodeBatch({ baseTimestamp: 1, records: [{ value: new TextEncoder().encode('v') }] });

// Each test waits on several protocol bounds in a row (formation, failover, reopen).
describe('brokers of one origin form one cluster', { timeout: 4 * FORM_BOUND_MS }, () => {
  it('three tabs: one cluster, a topic created in one is placed alike in all, produce goes to the partition’s broker', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['p1', 'p2', 'p3'].map((peerId) => openTab(locks, cluster, peerId)));
    const all = await oneCluster(tabs);
    expect(new Set(all.map((i) => i.brokerId)).size).toBe(3);

    await expect(tabs[1]!.node.createTopics([{ topic: 'orders', numPartitions: 6 }], false)).resolves.toEqual([true]);
    // The creating tab has applied it when createTopics resolves; the others within the propagation bound.
    const expected = await placement(tabs[1]!, 'orders');
    expect(new Set(expected.map((p) => p.leader)).size).toBe(3); // spread over the three brokers
    for (const tab of tabs) await vi.waitFor(async () => expect(await placement(tab, 'orders')).toEqual(expected), { timeout: FORM_BOUND_MS, interval: 50 });

    // Every tab produces to every partition: those placed on other brokers are appended at their leaders.
    for (const tab of tabs) {
      const results = await tab.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: expected.map(({ partition }) => ({ topic: 'orders', partition, bytes: batch() })) });
      expect(results.map((r) => r.partition)).toEqual(expected.map((p) => p.partition));
    }
    // Each partition's three records, at offsets 0..2, read from any tab; offsets listed at the leaders.
    const fetched = await tabs[0]!.node.fetch({ requestId: 1, maxWaitMs: 10_000, minBytes: 1, maxBytes: 1 << 20, partitions: expected.map(({ partition }) => ({ topic: 'orders', partition, fetchOffset: 0, maxBytes: 1 << 20 })) });
    expect(fetched.map((p) => p.partition)).toEqual(expected.map((p) => p.partition));
    const latest = await tabs[2]!.node.listOffsets(expected.map(({ partition }) => ({ topic: 'orders', partition, query: 'latest' as const })));
    expect(latest).toEqual(expected.map(() => 3));
    const described = (await tabs[1]!.node.describeTopics(['orders']))[0]!.partitions;
    expect(described.map((p) => p.highWatermark)).toEqual(expected.map(() => 3));
    for (const { partition } of expected) {
      const records: number[] = [];
      let offset = 0;
      while (offset < 3) {
        const [part] = await tabs[2]!.node.fetch({ requestId: 2, maxWaitMs: 10_000, minBytes: 1, maxBytes: 1 << 20, partitions: [{ topic: 'orders', partition, fetchOffset: offset, maxBytes: 1 << 20 }] });
        expect(part!.errorCode).toBeUndefined();
        for (const bytes of part!.batches) {
          const base = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigInt64(0));
          records.push(base);
          offset = base + 1;
        }
      }
      expect(records).toEqual([0, 1, 2]);
    }

    // A second create of the name is not a new topic; a replication factor beyond the live brokers is refused, typed.
    await expect(tabs[2]!.node.createTopics([{ topic: 'orders' }], false)).resolves.toEqual([false]);
    await expect(tabs[0]!.node.createTopics([{ topic: 'wide', replicationFactor: 4 }], false)).rejects.toMatchObject({ code: 'INVALID_REPLICATION_FACTOR' });
    await expect(tabs[0]!.node.createTopics([{ topic: 'wide', replicationFactor: 4 }], false)).rejects.toBeInstanceOf(InvalidConfigError);

    // Replicated on all three: acknowledged with acks -1 once the replicas have it, read at the leader from any tab.
    await expect(tabs[0]!.node.createTopics([{ topic: 'replicated', numPartitions: 2, replicationFactor: 3 }], false)).resolves.toEqual([true]);
    const replicated = await placement(tabs[0]!, 'replicated');
    expect(replicated.every((p) => p.replicas?.length === 3)).toBe(true);
    for (const tab of tabs) {
      const results = await tab.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [0, 1].map((partition) => ({ topic: 'replicated', partition, bytes: batch() })) });
      expect(results.map((r) => r.baseOffset >= 1)).toEqual([true, true]);
    }
    for (const tab of tabs) {
      for (const partition of [0, 1]) {
        // One partition a fetch: the first part of a routed fetch to bring data ends it.
        const [fetched] = await tab.node.fetch({ requestId: 3, maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, partitions: [{ topic: 'replicated', partition, fetchOffset: 0, maxBytes: 1 << 20 }] });
        // Three records, after the leader's no-op (a control batch).
        expect(fetched!.batches.filter((b) => !readBatchHeader(b).isControl)).toHaveLength(3);
      }
    }

    // Deleted through the controller from any tab: gone from every broker.
    await tabs[0]!.node.deleteTopics(['orders']);
    for (const tab of tabs) await vi.waitFor(async () => expect(await tab.node.listTopics()).not.toContain('orders'), { timeout: FORM_BOUND_MS, interval: 50 });
  });

  it('the active controller’s tab closes: another takes over and topics can still be created; a reopened tab keeps its broker id', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['q1', 'q2', 'q3'].map((peerId) => openTab(locks, cluster, peerId)));
    await oneCluster(tabs);
    // Three voters (the controller promotes learners one at a time): a quorum survives one tab.
    const all = await vi.waitFor(
      async () => {
        const now = await infos(tabs);
        for (const info of now) expect(info.voters).toHaveLength(3);
        return now;
      },
      { timeout: FORM_BOUND_MS, interval: 50 },
    );
    const controllerAt = all.findIndex((i) => i.brokerId === i.controller);
    const controller = tabs[controllerAt]!;
    const { brokerId } = all[controllerAt]!;
    await closeTab(controller);
    const rest = tabs.filter((t) => t !== controller);
    // The closed tab's slot lock went: fenced at once, and a new controller elected among the other two.
    await vi.waitFor(
      async () => {
        for (const info of await infos(rest)) {
          expect(info.controller).not.toBeNull();
          expect(info.controller).not.toBe(brokerId);
          expect(info.brokers.find((b) => b.brokerId === brokerId)?.fenced).toBe(true);
        }
      },
      { timeout: FORM_BOUND_MS, interval: 50 },
    );
    await expect(rest[0]!.node.createTopics([{ topic: 'after-failover' }], false)).resolves.toEqual([true]);

    const reopened = await openTab(locks, cluster, controller.peerId, controller.databases);
    const again = await oneCluster([reopened, ...rest]);
    expect(again[0]!.brokerId).toBe(brokerId);
    expect(again[0]!.clusterId).toBe(all[0]!.clusterId);
  });

  it('a private broker’s topics join the cluster where their names are free, data kept; a clash is reported and the topic stays its own', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const [first] = [await openTab(locks, cluster, 's1')];
    await oneCluster([first!]);
    await first!.node.createTopics([{ topic: 'taken', numPartitions: 2 }], false);
    const second = await openTab(locks, cluster, 's2', undefined, async (node) => {
      await node.createTopics([{ topic: 'mine', numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '60000' }] }, { topic: 'taken' }], false);
      await node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [0, 1, 1].map((partition) => ({ topic: 'mine', partition, bytes: batch() })) });
      await node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'taken', partition: 0, bytes: batch() }] });
      await node.commitOffsets({ groupId: 'readers', memberId: null, generationId: -1, offsets: [{ topic: 'mine', partition: 1, offset: 2, metadata: 'kept' }, { topic: 'taken', partition: 0, offset: 1, metadata: null }] });
    });
    const [, joined] = await oneCluster([first!, second]);
    // 'mine' is the cluster's now, placed on the broker that had it, its records and config kept, read from the other tab.
    await vi.waitFor(async () => expect(await placement(first!, 'mine')).toEqual([0, 1].map((partition) => ({ partition, leader: joined!.brokerId, replicas: [joined!.brokerId] }))), { timeout: FORM_BOUND_MS, interval: 50 });
    expect(await first!.node.listOffsets([0, 1].map((partition) => ({ topic: 'mine', partition, query: 'latest' as const })))).toEqual([1, 2]);
    expect((await first!.node.describeTopics(['mine']))[0]!.config.retentionMs).toBe(60_000);
    // 'taken' was the cluster's already: reported, and the private one left as it was (one record, one partition).
    await vi.waitFor(() => expect(second.events).toContainEqual(expect.objectContaining({ type: 'cluster_topic_clash', topic: 'taken' })), { timeout: FORM_BOUND_MS, interval: 50 });
    expect((await first!.node.describeTopics(['taken']))[0]!.numPartitions).toBe(2);
    expect(await second.node.listOffsets([{ topic: 'taken', partition: 0, query: 'latest' }])).toEqual([1]);
    expect((await second.node.describeTopics(['taken']))[0]!.numPartitions).toBe(1);
    expect(second.events).toContainEqual(expect.objectContaining({ type: 'cluster_joined', brokerId: joined!.brokerId, bootstrap: false }));
    // Its group's committed offset of the joined topic is the cluster group's, read from the other tab; the private topic's is not.
    await vi.waitFor(async () => expect(await first!.node.fetchOffsets('readers')).toEqual([{ topic: 'mine', partition: 1, offset: 2, metadata: 'kept' }]), { timeout: FORM_BOUND_MS, interval: 50 });
  });

  it('a node started for a cluster answers nothing as a private broker: calls made before it joined wait, then go through the cluster', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const first = await openTab(locks, cluster, 'u1');
    await oneCluster([first]);
    let early: Promise<boolean[]> | undefined;
    const second = await openTab(locks, cluster, 'u2', undefined, async (node) => {
      // Before attachNetwork: these must not create or answer anything as a broker of its own.
      early = node.createTopics([{ topic: 'early', numPartitions: 2 }], false);
    }, { startedFor: true });
    await expect(early).resolves.toEqual([true]);
    // 'early' is the cluster's: the first tab sees it placed over both brokers.
    await vi.waitFor(async () => expect(new Set((await placement(first, 'early')).map((p) => p.leader)).size).toBe(2), { timeout: FORM_BOUND_MS, interval: 50 });
    expect(second.events.some((e) => e.type === 'cluster_topic_clash')).toBe(false);
  });

  it('the origin’s cluster, over the local transport alone: tabs form it within its shorter formation, share topics, and a reopened tab keeps its broker id', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['o1', 'o2', 'o3'].map((name) => openTab(locks, cluster, name, undefined, undefined, { localOnly: true })));
    const all = await oneCluster(tabs);
    expect(new Set(all.map((i) => i.brokerId)).size).toBe(3);
    // Each broker's address is its storage incarnation on the local transport: no libp2p peer id.
    expect(all.map((i) => i.brokers.find((b) => b.brokerId === i.brokerId)?.endpoints[0]).sort()).toEqual(tabs.map((t) => t.peerId).sort());
    expect(tabs.every((t) => t.events.some((e) => e.type === 'cluster_joined'))).toBe(true);

    await expect(tabs[0]!.node.createTopics([{ topic: 'shared', numPartitions: 3 }], false)).resolves.toEqual([true]);
    const expected = await placement(tabs[0]!, 'shared');
    for (const tab of tabs) await vi.waitFor(async () => expect(await placement(tab, 'shared')).toEqual(expected), { timeout: FORM_BOUND_MS, interval: 50 });
    const [result] = await tabs[2]!.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'shared', partition: 0, bytes: batch() }] });
    expect(result).toMatchObject({ partition: 0, baseOffset: 0 });

    // A broker that joins later, on which no partition of the topic is placed, knows it from its first call.
    const late = await openTab(locks, cluster, 'o4', undefined, undefined, { localOnly: true });
    expect(await late.node.listTopics()).toEqual(['shared']);
    expect((await late.node.describeTopics(['shared']))[0]!.partitions.map((p) => p.highWatermark)).toEqual([1, 0, 0]);
    await closeTab(late);

    const leaving = tabs[1]!;
    const { brokerId } = all[1]!;
    await closeTab(leaving);
    const reopened = await openTab(locks, cluster, 'o2', leaving.databases, undefined, { localOnly: true });
    expect(reopened.peerId).toBe(leaving.peerId);
    const again = await oneCluster([tabs[0]!, reopened, tabs[2]!]);
    expect(again[1]!.brokerId).toBe(brokerId);
  });

  it('a reopened broker keeps its cluster topics’ data: it acts on its image only once that has caught up with what it acted on before', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const first = await openTab(locks, cluster, 'k1', undefined, undefined, { localOnly: true });
    await oneCluster([first]);
    await first.node.createTopics([{ topic: 'kept', numPartitions: 2 }], false);
    await first.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [0, 1, 1].map((partition) => ({ topic: 'kept', partition, bytes: batch() })) });
    await closeTab(first);
    // Reopened alone: its image restarts empty (no snapshot yet) and replays once it leads again.
    const reopened = await openTab(locks, cluster, 'k1', first.databases, undefined, { localOnly: true });
    // The first calls wait for that, then see the topic with its records, not an unknown or emptied one.
    await expect(reopened.node.listOffsets([0, 1].map((partition) => ({ topic: 'kept', partition, query: 'latest' as const })))).resolves.toEqual([1, 2]);
    expect(await reopened.node.listTopics()).toEqual(['kept']);
  });

  it('a broker that bootstrapped its cluster alone, meeting a larger one of its name, joins it with its topics: data kept, a name the other has reported and kept apart', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    // Opened alone (offline, say): it bootstraps a cluster of its own and writes to two topics.
    const alone = await openTab(locks, cluster, 'm1', undefined, undefined, { localOnly: true });
    const [own] = await oneCluster([alone]);
    await alone.node.createTopics([{ topic: 'mine', numPartitions: 2 }, { topic: 'both' }], false);
    await alone.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [0, 1, 1].map((partition) => ({ topic: 'mine', partition, bytes: batch() })) });
    await closeTab(alone);
    // Meanwhile two others bootstrapped another cluster under the name, with a topic 'both' of its own.
    const others = await Promise.all(['m2', 'm3'].map((name) => openTab(locks, cluster, name, undefined, undefined, { localOnly: true })));
    const [larger] = await oneCluster(others);
    expect(larger!.clusterId).not.toBe(own!.clusterId);
    await others[0]!.node.createTopics([{ topic: 'both', numPartitions: 3 }], false);

    const back = await openTab(locks, cluster, 'm1', alone.databases, undefined, { localOnly: true });
    const all = await oneCluster([back, ...others]);
    expect(all[0]!.clusterId).toBe(larger!.clusterId);
    expect(back.events).toContainEqual(expect.objectContaining({ type: 'cluster_mismatch', clusterId: own!.clusterId, otherClusterId: larger!.clusterId, joinsOther: true }));
    // 'mine' joined the larger cluster, on this broker, with its records; 'both' is the larger cluster's, and this broker's own stays private.
    const [joined] = all;
    await vi.waitFor(async () => expect(await placement(others[1]!, 'mine')).toEqual([0, 1].map((partition) => ({ partition, leader: joined!.brokerId, replicas: [joined!.brokerId] }))), { timeout: FORM_BOUND_MS, interval: 50 });
    expect(await others[1]!.node.listOffsets([0, 1].map((partition) => ({ topic: 'mine', partition, query: 'latest' as const })))).toEqual([1, 2]);
    expect(back.events).toContainEqual(expect.objectContaining({ type: 'cluster_topic_clash', topic: 'both' }));
    expect((await placement(others[0]!, 'both')).length).toBe(3);
  });

  it('refuses peers’ bad input: another cluster’s requests, raft messages claiming a registered broker’s id, requests forwarded at a stale leader epoch, fetches above the log end, a partition’s raft frame from a non-replica', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['r1', 'r2'].map((peerId) => openTab(locks, cluster, peerId)));
    const all = await oneCluster(tabs);
    // A rogue tab on the transport: admitted (no secret), but not a broker of the cluster.
    const rogueLocks = locks.client();
    const link = createLocalLink({ cluster, peerId: 'rogue', clock: realClock, locks: rogueLocks });
    const rpc: PeerRpc = createPeerRpc(link, { admission: { secret: '' } });
    try {
      await vi.waitFor(() => expect(link.peers().map((p) => p.peerId)).toContain('r1'), { timeout: FORM_BOUND_MS, interval: 20 });
      const [target] = tabs;
      // A registration naming another cluster: refused, nothing registered.
      const answer = await rpc.request('r1', 'controller', {
        kind: 'request',
        request: { clusterId: 'another', type: 'register', brokerId: undefined, incarnation: 'x', deviceId: 'd', endpoints: ['rogue'] },
      });
      expect(answer).toMatchObject({ kind: 'reply', reply: { type: 'error', error: { code: 'INCONSISTENT_CLUSTER_ID' } } });
      // Raft messages as the other broker (its real member id) from another peer: refused before the raft core sees them.
      const info = (await target!.node.clusterInfo())!;
      const self = info.brokers.find((b) => b.brokerId === info.brokerId)!;
      const victim = info.brokers.find((b) => b.brokerId !== info.brokerId)!;
      const before = info.refusedMessages;
      const forged = { type: 'timeoutNow' as const, from: `${victim.brokerId}.${victim.incarnation}`, to: `${self.brokerId}.${self.incarnation}`, term: 1_000_000 };
      expect(rpc.trySend('r1', 'raft', { clusterId: info.clusterId!, messages: [{ group: '__cluster_metadata', message: forged }] })).toBe(true);
      await vi.waitFor(async () => expect((await target!.node.clusterInfo())!.refusedMessages).toBeGreaterThan(before), { timeout: FORM_BOUND_MS, interval: 20 });
      // Forwarded data requests: served only where the partition is held; another cluster's refused; a corrupt batch refused; nothing appended.
      await tabs[1]!.node.createTopics([{ topic: 'routed', numPartitions: 4 }], false);
      const placed = await vi.waitFor(async () => {
        const partitions = await placement(target!, 'routed');
        expect(partitions).toHaveLength(4);
        return partitions;
      });
      const elsewhere = placed.find((p) => p.leader !== info.brokerId)!;
      const held = placed.find((p) => p.leader === info.brokerId)!;
      const produce = (clusterId: string, partition: number, bytes: Uint8Array, leaderEpoch = 0) =>
        rpc.request('r1', 'produce', { kind: 'request', clusterId, acks: -1, timeoutMs: 5_000, batches: [{ topic: 'routed', partition, leaderEpoch, bytes }] });
      await expect(produce(info.clusterId!, elsewhere.partition, batch())).resolves.toMatchObject({ kind: 'response', results: [{ error: { code: 'NOT_LEADER_OR_FOLLOWER' } }] });
      await expect(produce(info.clusterId!, held.partition, new Uint8Array(70).fill(7))).resolves.toMatchObject({ kind: 'response', results: [{ error: { code: 'CORRUPT_MESSAGE' } }] });
      await expect(produce('another', held.partition, batch())).rejects.toMatchObject({ code: 'INCONSISTENT_CLUSTER_ID' });
      // A partition the topic does not have, a topic the cluster does not have: refused, typed.
      await expect(produce(info.clusterId!, 99, batch())).resolves.toMatchObject({ kind: 'response', results: [{ error: { code: 'UNKNOWN_TOPIC_OR_PARTITION' } }] });
      await expect(rpc.request('r1', 'produce', { kind: 'request', clusterId: info.clusterId!, acks: 1, timeoutMs: 5_000, batches: [{ topic: 'nowhere', partition: 0, leaderEpoch: -1, bytes: batch() }] })).resolves.toMatchObject({
        kind: 'response',
        results: [{ error: { code: 'UNKNOWN_TOPIC_OR_PARTITION' } }],
      });
      // A fetch of a partition led elsewhere answers its error code, and reads nothing.
      const fetched = rpc.request('r1', 'fetch', { kind: 'request', clusterId: info.clusterId!, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, partitions: [{ topic: 'routed', partition: elsewhere.partition, leaderEpoch: 0, fetchOffset: 0, maxBytes: 1024 }] });
      await expect(fetched).resolves.toMatchObject({ kind: 'response', partitions: [{ errorCode: 'NOT_LEADER_OR_FOLLOWER', batches: [] }] });
      // A leader epoch this broker has not seen (its partitions are at epoch 0): refused, retriable.
      await expect(produce(info.clusterId!, held.partition, batch(), 5)).resolves.toMatchObject({ kind: 'response', results: [{ error: { code: 'UNKNOWN_LEADER_EPOCH', retriable: true } }] });
      await expect(target!.node.listOffsets([{ topic: 'routed', partition: held.partition, query: 'latest' }])).resolves.toEqual([0]);
      // A replicated partition (on both tabs, led by raft): requests forwarded at a stale leader epoch
      // (0: raft's terms start at 1) are fenced, nothing appended; a fetch above the log end is out of
      // range, and one at the high watermark gets nothing — through the peer RPC and the client API alike.
      await tabs[1]!.node.createTopics([{ topic: 'pair', replicationFactor: 2 }], false);
      const pairBatch = { topic: 'pair', partition: 0, bytes: batch() };
      await vi.waitFor(() => target!.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [pairBatch] }), { timeout: FORM_BOUND_MS, interval: 50 });
      const pairLeader = (await placement(target!, 'pair'))[0]!.leader;
      const leaderPeer = (await target!.node.clusterInfo())!.brokers.find((b) => b.brokerId === pairLeader)!.endpoints[0]!;
      const [end] = await target!.node.listOffsets([{ topic: 'pair', partition: 0, query: 'latest' }]);
      const fencedProduce = rpc.request(leaderPeer, 'produce', { kind: 'request', clusterId: info.clusterId!, acks: -1, timeoutMs: 5_000, batches: [{ ...pairBatch, leaderEpoch: 0 }] });
      await expect(fencedProduce).resolves.toMatchObject({ kind: 'response', results: [{ baseOffset: -1, error: { code: 'FENCED_LEADER_EPOCH', retriable: true } }] });
      const fetchAt = (leaderEpoch: number, fetchOffset: number) =>
        rpc.request(leaderPeer, 'fetch', { kind: 'request', clusterId: info.clusterId!, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, partitions: [{ topic: 'pair', partition: 0, leaderEpoch, fetchOffset, maxBytes: 1024 }] });
      await expect(fetchAt(0, 0)).resolves.toMatchObject({ kind: 'response', partitions: [{ errorCode: 'FENCED_LEADER_EPOCH', batches: [] }] });
      await expect(fetchAt(-1, end! + 1)).resolves.toMatchObject({ kind: 'response', partitions: [{ errorCode: 'OFFSET_OUT_OF_RANGE', batches: [], highWatermark: end }] });
      await expect(fetchAt(-1, end!)).resolves.toEqual({ kind: 'response', partitions: [{ topic: 'pair', partition: 0, highWatermark: end, logStartOffset: 0, batches: [] }] });
      for (const tab of tabs) {
        const fetch = (fetchOffset: number) => tab.node.fetch({ requestId: 9, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, partitions: [{ topic: 'pair', partition: 0, fetchOffset, maxBytes: 1024 }] });
        await expect(fetch(end! + 1)).resolves.toMatchObject([{ errorCode: 'OFFSET_OUT_OF_RANGE', batches: [] }]);
        await expect(fetch(1_000_000)).resolves.toMatchObject([{ errorCode: 'OFFSET_OUT_OF_RANGE', batches: [] }]);
        await expect(fetch(end!)).resolves.toMatchObject([{ highWatermark: end, batches: [] }]);
        await expect(tab.node.listOffsets([{ topic: 'pair', partition: 0, query: 'latest' }])).resolves.toEqual([end]);
      }
      // A raft frame for the partition's group from a broker holding no replica of it (an unknown
      // member id), at a far higher term: dropped before raft. Followed, it would have raised the
      // follower's term, deposed the leader and moved the partition's epoch past 1,000.
      const [pairTopic] = await target!.node.describeTopics(['pair']);
      const pairFollower = (await target!.node.clusterInfo())!.brokers.find((b) => b.brokerId !== pairLeader)!;
      const forgedAppend = { type: 'append' as const, from: '99.forged', to: `${pairFollower.brokerId}.${pairFollower.incarnation}`, term: 1_000_000, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 };
      const group = `partition/${info.clusterId!}/${pairTopic!.topicId!}/0`;
      expect(rpc.trySend(pairFollower.endpoints[0]!, 'raft', { clusterId: info.clusterId!, messages: [{ group, message: forgedAppend }] })).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await vi.waitFor(() => target!.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [pairBatch] }), { timeout: FORM_BOUND_MS, interval: 50 });
      const nowLeading = (await placement(target!, 'pair'))[0]!.leader;
      const nowLeaderPeer = (await target!.node.clusterInfo())!.brokers.find((b) => b.brokerId === nowLeading)!.endpoints[0]!;
      const farAhead = rpc.request(nowLeaderPeer, 'fetch', { kind: 'request', clusterId: info.clusterId!, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, partitions: [{ topic: 'pair', partition: 0, leaderEpoch: 1_000, fetchOffset: 0, maxBytes: 1024 }] });
      await expect(farAhead).resolves.toMatchObject({ kind: 'response', partitions: [{ errorCode: 'UNKNOWN_LEADER_EPOCH' }] });
      // Nothing applied: the cluster keeps its controller and term.
      const after = await oneCluster(tabs);
      expect(after.map((i) => i.clusterId)).toEqual(all.map((i) => i.clusterId));
    } finally {
      rpc.close();
      link.close();
      rogueLocks.end();
    }
  });

  it('idempotent producers across brokers: ids from the brokers’ blocks (KIP-730), a forwarded retry answered with its offset, a gap, a stale epoch and a forged id refused through the peer RPC, nothing written', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['i1', 'i2'].map((peerId) => openTab(locks, cluster, peerId)));
    await oneCluster(tabs);
    const rogueLocks = locks.client();
    const link = createLocalLink({ cluster, peerId: 'rogue', clock: realClock, locks: rogueLocks });
    const rpc: PeerRpc = createPeerRpc(link, { admission: { secret: '' } });
    try {
      // Each broker hands ids from its own block: distinct across brokers.
      const ids = await Promise.all(tabs.map((tab) => tab.node.initProducerId()));
      expect(new Set(ids.map((i) => i.producerId)).size).toBe(2);
      await tabs[0]!.node.createTopics([{ topic: 'idem', replicationFactor: 2 }], false);
      const { producerId } = ids[1]!;
      const idem = (epoch: number, sequence: number, id = producerId) => encodeBatch({ baseTimestamp: 1, producerId: id, producerEpoch: epoch, baseSequence: sequence, records: [{ value: new TextEncoder().encode(`s${sequence}`) }] });
      const first = await vi.waitFor(() => tabs[0]!.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'idem', partition: 0, bytes: idem(0, 0) }] }), { timeout: FORM_BOUND_MS, interval: 50 });
      const info = (await tabs[0]!.node.clusterInfo())!;
      /** Leadership moving meanwhile (a loaded machine's late heartbeat): asked again at the leader the metadata names then. */
      const moving = new Set(['NOT_LEADER_OR_FOLLOWER', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH', 'LEADER_NOT_AVAILABLE', 'NOT_ENOUGH_REPLICAS']);
      const forward = (bytes: () => Uint8Array) =>
        vi.waitFor(
          async () => {
            const leader = (await placement(tabs[0]!, 'idem'))[0]!.leader;
            const leaderPeer = info.brokers.find((b) => b.brokerId === leader)!.endpoints[0]!;
            const answer = (await rpc.request(leaderPeer, 'produce', { kind: 'request', clusterId: info.clusterId!, acks: -1, timeoutMs: 5_000, batches: [{ topic: 'idem', partition: 0, leaderEpoch: -1, bytes: bytes() }] })) as { results: ReadonlyArray<{ baseOffset: number; error?: { code: string } }> };
            if (moving.has(answer.results[0]?.error?.code ?? '')) throw new Error(`leadership moving: ${answer.results[0]!.error!.code}`);
            return answer;
          },
          { timeout: FORM_BOUND_MS, interval: 50 },
        );
      const refusal = (tab: Tab, bytes: () => Uint8Array) =>
        vi.waitFor(
          async () => {
            const error = await tab.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'idem', partition: 0, bytes: bytes() }] }).then(
              () => undefined,
              (e: unknown) => e as { code: string },
            );
            if (error !== undefined && moving.has(error.code)) throw new Error(`leadership moving: ${error.code}`);
            return error;
          },
          { timeout: FORM_BOUND_MS, interval: 50 },
        );
      await vi.waitFor(() => expect(link.peers().length).toBeGreaterThanOrEqual(2), { timeout: FORM_BOUND_MS, interval: 20 });
      // The retry, forwarded to the leader: the original offset, not appended again.
      await expect(forward(() => idem(0, 0))).resolves.toMatchObject({ kind: 'response', results: [{ baseOffset: first[0]!.baseOffset }] });
      await expect(forward(() => idem(0, 3))).resolves.toMatchObject({ kind: 'response', results: [{ baseOffset: -1, error: { code: 'OUT_OF_ORDER_SEQUENCE_NUMBER', name: 'OutOfOrderSequenceNumberError', expected: 1, sequence: 3 } }] });
      await expect(forward(() => idem(0, 1, 50_000_000))).resolves.toMatchObject({ kind: 'response', results: [{ baseOffset: -1, error: { code: 'UNKNOWN_PRODUCER_ID' } }] });
      await vi.waitFor(() => tabs[0]!.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'idem', partition: 0, bytes: idem(1, 0) }] }), { timeout: FORM_BOUND_MS, interval: 50 });
      await expect(forward(() => idem(0, 1))).resolves.toMatchObject({ kind: 'response', results: [{ baseOffset: -1, error: { code: 'INVALID_PRODUCER_EPOCH' } }] });
      // Through each tab's API (routed to the leader when it is elsewhere): the same typed errors.
      for (const tab of tabs) {
        expect(await refusal(tab, () => idem(1, 5))).toBeInstanceOf(OutOfOrderSequenceNumberError);
        expect(await refusal(tab, () => idem(0, 0, 60_000_000))).toBeInstanceOf(UnknownProducerIdError);
      }
      // Nothing written: the first batch and the epoch-1 one, after the leader's no-op.
      for (const tab of tabs) await expect(tab.node.listOffsets([{ topic: 'idem', partition: 0, query: 'latest' }])).resolves.toEqual([first[0]!.baseOffset + 2]);

      // A producer id handed out just now, whose block the leader's metadata may not show yet:
      // the leader waits for it rather than refusing, so a producer's batches are written in the
      // order they came (refused and retried, the first could land after the next one: a producer
      // new to a partition is taken at any sequence). The id is the first of the next block,
      // which tab i1 takes once its own is used up: its first batch is sent before that, its
      // second as soon as the id is handed out.
      const future = Math.max(...ids.map((i) => i.producerId)) + PRODUCER_ID_BLOCK_SIZE;
      for (let i = 1; i < PRODUCER_ID_BLOCK_SIZE; i++) await tabs[0]!.node.initProducerId();
      const send = (sequence: number) => tabs[1]!.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'idem', partition: 0, bytes: idem(0, sequence, future) }] });
      const zero = send(0);
      expect(await tabs[0]!.node.initProducerId()).toEqual({ producerId: future, producerEpoch: 0 });
      const one = await send(1);
      expect(one[0]!.baseOffset).toBe((await zero)[0]!.baseOffset + 1);
    } finally {
      rpc.close();
      link.close();
      rogueLocks.end();
    }
  });

  it('a producer’s batch that arrives while an earlier one waits for its producer id goes after it, also once the leader’s image shows the id before the wait ends', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['w1', 'w2'].map((peerId) => openTab(locks, cluster, peerId)));
    const [info] = await oneCluster(tabs);
    // The partition is led by the active controller's broker: its image shows a block of ids
    // before the controller answers the allocation (it answers once it applied the record).
    const controllerTab = tabs[(await infos(tabs)).findIndex((i) => i.brokerId === info!.controller)]!;
    await tabs[0]!.node.createTopics([{ topic: 'line', numPartitions: 2, replicationFactor: 2 }], false);
    const partition = await vi.waitFor(
      async () => {
        const led = (await placement(tabs[0]!, 'line')).find((p) => p.leader === info!.controller);
        expect(led).toBeDefined();
        return led!.partition;
      },
      { timeout: FORM_BOUND_MS, interval: 50 },
    );
    // The next block of ids after this tab's: handed out below, while a batch of its first id waits.
    const { producerId: taken } = await tabs[0]!.node.initProducerId();
    for (let i = 1; i < PRODUCER_ID_BLOCK_SIZE; i++) await tabs[0]!.node.initProducerId();
    const future = Math.max(taken, (await tabs[1]!.node.initProducerId()).producerId) + PRODUCER_ID_BLOCK_SIZE;
    // The leader brings its topics in line with each new image (a write of its own) before the
    // produce waits for an id end: held here, so the image shows the id while the wait goes on.
    const storage = [...controllerTab.databases.values()].at(-1)!;
    const write = storage.write.bind(storage);
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    storage.write = async (writes) => {
      if (writes.some((w) => w.kind === 'putValue' && w.key.startsWith('cluster-synced:'))) await held;
      return write(writes);
    };
    const send = (sequence: number) =>
      controllerTab.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'line', partition, bytes: encodeBatch({ baseTimestamp: 1, producerId: future, producerEpoch: 0, baseSequence: sequence, records: [{ value: new TextEncoder().encode(`s${sequence}`) }] }) }] });
    try {
      const zero = send(0);
      expect(await tabs[0]!.node.initProducerId()).toEqual({ producerId: future, producerEpoch: 0 });
      const one = send(1);
      // Every step of the produce on the leader's own node up to its check is a resolved
      // promise: one turn of the event loop has it checked (and, wrongly, appended ahead).
      await new Promise((resolve) => setImmediate(resolve));
      release();
      const [first, second] = await Promise.all([zero, one]);
      expect(second[0]!.baseOffset).toBe(first[0]!.baseOffset + 1);
    } finally {
      release();
      storage.write = write;
    }
  });
});

