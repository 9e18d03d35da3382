import { describe, expect, it, vi } from 'vitest';
import { realClock } from '../../src/clock';
import { GroupError, NotCoordinatorError } from '../../src/errors';
import { coordinatorPartition } from '../../src/group';
import { createLocalLink, createPeerRpc } from '../../src/network/worker';
import type { JoinGroupRequest, NodeApi, OffsetCommit } from '../../src/node';
import { createPeerFrameCodec, encodeBatch, PEER_MESSAGE_TYPES, type FrameResult, type GroupMessage, type PeerMessageTypes } from '../../src/protocol';
import { createMemoryLocks } from '../support/memory-locks';
import { rawFrame } from '../support/raw-frame';
import { closeTab, FORM_BOUND_MS, newCluster, oneCluster, openTab, type Tab } from './cluster-tabs';

// Consumer groups across tabs: a group is one group whichever tab's broker its members call.
// Its coordinator is the leader of the group's partition of __consumer_offsets (created on
// the first group call), its committed offsets records of that partition; brokers forward
// group calls to the coordinator and answer forwarded calls only for groups they coordinate.

const OFFSETS_TOPIC = '__consumer_offsets';

const join = (node: NodeApi, clientId: string, memberId: string | null = null, groupId = 'app') =>
  node.joinGroup({ groupId, memberId, clientId, sessionTimeoutMs: 30_000, rebalanceTimeoutMs: 20_000, topics: ['orders'], assignors: ['range'] } satisfies JoinGroupRequest);

/** Heartbeats `memberId` until the coordinator says the group is rebalancing (another member joined or left). */
async function untilRebalancing(node: NodeApi, memberId: string, generationId: number): Promise<void> {
  await vi.waitFor(
    async () => {
      const refused = await node.heartbeat({ groupId: 'app', memberId, generationId }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(GroupError);
      expect(refused).toMatchObject({ code: 'REBALANCE_IN_PROGRESS' });
    },
    { timeout: FORM_BOUND_MS, interval: 20 },
  );
}

const partitionsOf = (assignment: Record<string, number[]>) => [...(assignment['orders'] ?? [])].sort((a, b) => a - b);

/** The tab whose broker leads `groupId`'s partition of the offsets topic, as `from` sees it. */
async function coordinatorTab(tabs: readonly Tab[], from: Tab, groupId: string): Promise<Tab> {
  const [offsets] = await from.node.describeTopics([OFFSETS_TOPIC]);
  const leader = offsets!.partitions[coordinatorPartition(groupId, offsets!.numPartitions)]!.leader;
  const ids = await Promise.all(tabs.map(async (tab) => (await tab.node.clusterInfo())!.brokerId));
  return tabs[ids.indexOf(leader)]!;
}

describe('consumer groups across the brokers of a cluster', { timeout: 4 * FORM_BOUND_MS }, () => {
  it('members on two brokers are one group: they split the partitions, a leaver’s go to the other; offsets committed through one broker are read through another, also after the coordinator restarts', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['g1', 'g2', 'g3'].map((peerId) => openTab(locks, cluster, peerId)));
    await oneCluster(tabs);
    const [a, b, c] = tabs as [Tab, Tab, Tab];
    await a.node.createTopics([{ topic: 'orders', numPartitions: 4 }], false);
    await vi.waitFor(async () => expect(await b.node.listTopics()).toContain('orders'), { timeout: FORM_BOUND_MS, interval: 50 });

    // The first group call creates the offsets topic through the controller: 8 partitions, compacted, placed on the brokers.
    const first = await join(a.node, 'a');
    expect(first.generationId).toBe(1);
    const [offsetsTopic] = await a.node.describeTopics([OFFSETS_TOPIC]);
    expect(offsetsTopic!.numPartitions).toBe(8);
    expect(offsetsTopic!.config.cleanupPolicy).toBe('compact');
    // (Spread over all three unless one was fenced at that moment: a loaded machine can starve a broker's heartbeats.)
    const brokerIds = await Promise.all(tabs.map(async (tab) => (await tab.node.clusterInfo())!.brokerId));
    for (const { leader } of offsetsTopic!.partitions) expect(brokerIds).toContain(leader);
    // Internal: described by name, not listed; users can neither create nor delete it.
    expect(await a.node.listTopics()).toEqual(['orders']);
    expect((await b.node.describeTopics()).map((t) => t.name)).toEqual(['orders']);
    await expect(a.node.createTopics([{ topic: OFFSETS_TOPIC }], false)).rejects.toMatchObject({ code: 'INVALID_TOPIC_EXCEPTION' });
    await expect(a.node.deleteTopics([OFFSETS_TOPIC])).rejects.toMatchObject({ code: 'INVALID_TOPIC_EXCEPTION' });
    await expect(a.node.createPartitions([{ topic: OFFSETS_TOPIC, count: 9 }])).rejects.toMatchObject({ code: 'INVALID_TOPIC_EXCEPTION' });
    const record = encodeBatch({ baseTimestamp: 1, records: [{ key: Uint8Array.of(0, 9), value: Uint8Array.of(1) }] });
    for (const partition of [0, 1, 2]) {
      await expect(a.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: OFFSETS_TOPIC, partition, bytes: record.slice() }] })).rejects.toMatchObject({ code: 'INVALID_TOPIC_EXCEPTION' });
    }

    // A member joining through another broker: the same group, which rebalances; A rejoins.
    const joiningB = join(b.node, 'b');
    await untilRebalancing(a.node, first.memberId, first.generationId);
    const [rejoinedA, joinedB] = await Promise.all([join(a.node, 'a', first.memberId), joiningB]);
    expect(joinedB.generationId).toBe(2);
    expect(rejoinedA).toMatchObject({ generationId: 2, memberId: first.memberId });
    expect([...joinedB.members].sort()).toEqual([first.memberId, joinedB.memberId].sort());
    const [syncA, syncB] = await Promise.all([
      a.node.syncGroup({ groupId: 'app', memberId: first.memberId, generationId: 2 }),
      b.node.syncGroup({ groupId: 'app', memberId: joinedB.memberId, generationId: 2 }),
    ]);
    expect(partitionsOf(syncA.assignment)).toHaveLength(2);
    expect(partitionsOf(syncB.assignment)).toHaveLength(2);
    expect([...partitionsOf(syncA.assignment), ...partitionsOf(syncB.assignment)].sort()).toEqual([0, 1, 2, 3]);
    // Every broker describes the one group, with both members.
    for (const tab of tabs) {
      const [described] = await tab.node.describeGroups(['app']);
      expect(described).toMatchObject({ state: 'Stable', generationId: 2 });
      expect(described!.members.map((m) => m.memberId).sort()).toEqual([first.memberId, joinedB.memberId].sort());
    }

    // B commits through its broker; any broker reads the offsets. A commit of a stale generation is refused and changes nothing.
    const committed: OffsetCommit[] = partitionsOf(syncB.assignment).map((partition, i) => ({ topic: 'orders', partition, offset: 10 + i, metadata: i === 0 ? 'note' : null }));
    await b.node.commitOffsets({ groupId: 'app', memberId: joinedB.memberId, generationId: 2, offsets: committed });
    for (const tab of tabs) expect(await tab.node.fetchOffsets('app')).toEqual(committed);
    const stale = b.node.commitOffsets({ groupId: 'app', memberId: joinedB.memberId, generationId: 1, offsets: [{ topic: 'orders', partition: committed[0]!.partition, offset: 99, metadata: null }] });
    await expect(stale).rejects.toBeInstanceOf(GroupError);
    await expect(stale).rejects.toMatchObject({ code: 'ILLEGAL_GENERATION' });
    expect(await c.node.fetchOffsets('app')).toEqual(committed);
    expect(await c.node.listGroups()).toContainEqual({ groupId: 'app', state: 'Stable' });

    // B leaves: A is told to rejoin and then owns every partition.
    await b.node.leaveGroup({ groupId: 'app', memberId: joinedB.memberId });
    await untilRebalancing(a.node, first.memberId, 2);
    const alone = await join(a.node, 'a', first.memberId);
    expect(alone).toMatchObject({ generationId: 3, members: [first.memberId] });
    const all = await a.node.syncGroup({ groupId: 'app', memberId: first.memberId, generationId: 3 });
    expect(partitionsOf(all.assignment)).toEqual([0, 1, 2, 3]);

    // The coordinator's tab closes and reopens on its storage: it loads the group's offsets from its partition again.
    const coordinator = await coordinatorTab(tabs, a, 'app');
    await closeTab(coordinator);
    const reopened = await openTab(locks, cluster, coordinator.peerId, coordinator.databases);
    const live = [...tabs.filter((t) => t !== coordinator), reopened];
    await oneCluster(live);
    for (const tab of live) {
      await vi.waitFor(async () => expect(await tab.node.fetchOffsets('app')).toEqual(committed), { timeout: FORM_BOUND_MS, interval: 50 });
    }
  });

  it('refuses peers’ bad group calls: a group this broker does not coordinate, another cluster’s, a malformed frame — nothing applied', async () => {
    const locks = createMemoryLocks();
    const cluster = newCluster();
    const tabs = await Promise.all(['h1', 'h2'].map((peerId) => openTab(locks, cluster, peerId)));
    const [info] = await oneCluster(tabs);
    const [target, other] = tabs as [Tab, Tab];
    await target.node.createTopics([{ topic: 'orders', numPartitions: 2 }], false);
    // Two admin-committed groups (no members): one coordinated by the target's broker, one elsewhere.
    const [offsetsTopic] = await (async () => {
      await target.node.fetchOffsets('any'); // creates the offsets topic
      return target.node.describeTopics([OFFSETS_TOPIC]);
    })();
    const leaderOf = (groupId: string) => offsetsTopic!.partitions[coordinatorPartition(groupId, offsetsTopic!.numPartitions)]!.leader;
    const candidates = Array.from({ length: 64 }, (_, i) => `group-${i}`);
    const here = candidates.find((g) => leaderOf(g) === info!.brokerId)!;
    const elsewhere = candidates.find((g) => leaderOf(g) !== info!.brokerId)!;
    const offsets = [{ topic: 'orders', partition: 1, offset: 5, metadata: null }];
    for (const groupId of [here, elsewhere]) await other.node.commitOffsets({ groupId, memberId: null, generationId: -1, offsets });

    const rogueLocks = locks.client();
    const link = createLocalLink({ cluster, peerId: 'rogue', clock: realClock, locks: rogueLocks });
    const rpc = createPeerRpc(link, { admission: { secret: '' } });
    const codec = createPeerFrameCodec();
    const decoder = codec.createStreamDecoder();
    const answers: FrameResult<PeerMessageTypes>[] = [];
    link.on('data', ({ peerId, bytes }) => peerId === target.peerId && answers.push(...decoder.push(bytes)));
    try {
      await vi.waitFor(() => expect(link.peers().map((p) => p.peerId)).toContain(target.peerId), { timeout: FORM_BOUND_MS, interval: 20 });
      const call = (clusterId: string, groupId: string, offset: number): GroupMessage => ({
        kind: 'request',
        clusterId,
        call: { type: 'commit', groupId, memberId: null, generationId: -1, offsets: [{ topic: 'orders', partition: 1, offset, metadata: null }] },
      });
      // A group coordinated elsewhere: NotCoordinatorError, typed, and the target does not forward it.
      const refused = await rpc.request(target.peerId, 'group', call(info!.clusterId!, elsewhere, 6));
      expect(refused).toMatchObject({ kind: 'response', answer: { type: 'error', error: { code: 'NOT_COORDINATOR', retriable: true, groupId: elsewhere } } });
      expect((refused as { answer: { error: unknown } }).answer.error).toBeInstanceOf(NotCoordinatorError);
      // Another cluster's call: refused with the error answer.
      await expect(rpc.request(target.peerId, 'group', call('another', here, 7))).rejects.toMatchObject({ code: 'INCONSISTENT_CLUSTER_ID' });
      // A malformed group frame (a commit cut short): answered CORRUPT_MESSAGE, never handled.
      const body = PEER_MESSAGE_TYPES.group.encode(call(info!.clusterId!, here, 8), 0);
      await link.send(target.peerId, rawFrame(PEER_MESSAGE_TYPES.group.id, 0x7fff_0001, body.subarray(0, body.length - 1)));
      await vi.waitFor(() => expect(answers.some((a) => a.ok && a.frame.requestId === 0x7fff_0001)).toBe(true), { timeout: FORM_BOUND_MS, interval: 20 });
      const answer = answers.find((a) => a.ok && a.frame.requestId === 0x7fff_0001)!;
      expect(answer.ok && answer.frame.type === 'error' && answer.frame.body.code).toBe('CORRUPT_MESSAGE');
      // Nothing applied: both groups keep the offsets committed through the cluster.
      for (const tab of tabs) for (const groupId of [here, elsewhere]) expect(await tab.node.fetchOffsets(groupId)).toEqual(offsets);
      // A well-formed call to the coordinator from the same peer is served (the refusals did not cut it off).
      await expect(rpc.request(target.peerId, 'group', call(info!.clusterId!, here, 9))).resolves.toEqual({ kind: 'response', answer: { type: 'done' } });
      expect(await other.node.fetchOffsets(here)).toEqual([{ ...offsets[0]!, offset: 9 }]);
    } finally {
      rpc.close();
      link.close();
      rogueLocks.end();
    }
  });
});
