import { afterEach, describe, expect, it } from 'vitest';
import { realClock } from '../../src/clock';
import { GroupError, NotCoordinatorError } from '../../src/errors';
import { coordinatorPartition } from '../../src/group';
import { createLogManager, defaultLogConfig, type PartitionLog } from '../../src/log';
import type { PeerRpc } from '../../src/network/worker';
import { Executor } from '../../src/node';
import { ClusterGroups, type GroupHost } from '../../src/node/group-routing';
import type { Route } from '../../src/node/routing';
import type { GroupMessage } from '../../src/protocol';
import { createMemoryStorage } from '../../src/storage';

// The forwarder's side of group routing, against a scripted cluster: a call goes where the
// image points, a NOT_COORDINATOR answer makes it look again, and the offsets topic is
// created once however many first calls race for it.

const PARTITIONS = 8;
const GROUP = 'app';

interface Scripted {
  groups: ClusterGroups;
  /** Where the group's offsets partition is led, as the broker's image says now, and at which leader epoch. */
  route: Route;
  epoch: number;
  /** The group calls sent to other brokers, with the peer asked. */
  sent: Array<{ peerId: string; body: GroupMessage }>;
  /** Answers the next forwarded call (after which the test may move the route). */
  answer: (body: GroupMessage) => GroupMessage;
  created: number;
  exists: boolean;
}

const stops: Array<() => void> = [];
afterEach(() => stops.splice(0).forEach((stop) => stop()));

/** The group's offsets partition, shared by every scripted broker of a test as if replicated. */
async function offsetsPartition(): Promise<{ log: PartitionLog; executor: Executor }> {
  const logs = createLogManager(createMemoryStorage(), { clock: realClock });
  const log = await logs.open({ topic: '__consumer_offsets', partition: coordinatorPartition(GROUP, PARTITIONS) }, { ...defaultLogConfig, cleanupPolicy: 'compact' });
  const executor = new Executor({ nodeId: 'n', clock: realClock, committer: logs.committer, sendFrame: () => false, tickMs: 100, heartbeatFlushTicks: 0 });
  executor.start();
  stops.push(() => executor.stop());
  return { log, executor };
}

async function scripted(shared?: { log: PartitionLog; executor: Executor }): Promise<Scripted> {
  const { log, executor } = shared ?? (await offsetsPartition());
  const partition = coordinatorPartition(GROUP, PARTITIONS);
  const state: Omit<Scripted, 'groups'> = { route: { here: false, leader: 2 }, epoch: 0, sent: [], answer: () => ({ kind: 'response', answer: { type: 'done' } }), created: 0, exists: true };
  const rpc = {
    request: async (peerId: string, _type: 'group', body: GroupMessage) => {
      state.sent.push({ peerId, body });
      return state.answer(body);
    },
  } as unknown as PeerRpc;
  const host: GroupHost = {
    clusterId: 'c',
    rpc,
    clock: realClock,
    offsetsPartitions: () => (state.exists ? PARTITIONS : undefined),
    offsetsRoute: () => state.route,
    offsetsLeaderEpoch: () => state.epoch,
    offsetsLog: (p) => (p === partition && state.route.here ? log : undefined),
    appendOffsets: (_p, bytes) => log.append(bytes),
    topicPartitions: () => ({ orders: 2 }),
    addressOf: (brokerId) => `peer-${brokerId}`,
    otherBrokers: () => [2],
    createOffsetsTopic: async () => {
      state.created++;
      await Promise.resolve();
      state.exists = true;
    },
  };
  const groups = new ClusterGroups(host, executor, 'i');
  stops.push(() => groups.stop());
  return Object.assign(state, { groups }) as Scripted;
}

/** The scripted broker's image: it leads the group's partition at `epoch`, or `leader` does. */
const lead = (s: Scripted, epoch: number) => Object.assign(s, { route: { here: true }, epoch });
const follow = (s: Scripted, leader: number, epoch: number) => Object.assign(s, { route: { here: false, leader }, epoch });

describe('group calls at their coordinator', () => {
  it('go to the broker the image names; a NOT_COORDINATOR answer sends them where it names next (here: served by this broker)', async () => {
    const s = await scripted();
    s.answer = () => {
      s.route = { here: true }; // the image now says this broker leads the group's partition
      return { kind: 'response', answer: { type: 'error', error: new NotCoordinatorError(GROUP) } };
    };
    const reply = await s.groups.joinGroup({ groupId: GROUP, memberId: null, clientId: 'k', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, topics: ['orders'], assignors: ['range'] });
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0]).toMatchObject({ peerId: 'peer-2', body: { kind: 'request', clusterId: 'c', call: { type: 'join', groupId: GROUP } } });
    expect(reply).toMatchObject({ generationId: 1, members: [reply.memberId] });
    // Served here from now on, its offsets in this broker's partition of the offsets topic.
    await s.groups.commitOffsets({ groupId: GROUP, memberId: reply.memberId, generationId: 1, offsets: [{ topic: 'orders', partition: 1, offset: 4, metadata: null }] });
    expect(await s.groups.fetchOffsets(GROUP)).toEqual([{ topic: 'orders', partition: 1, offset: 4, metadata: null }]);
    expect(s.sent).toHaveLength(1);
  });

  it('give the coordinator’s typed errors back as they are, without asking again; an answer of the wrong type is a typed error', async () => {
    const s = await scripted();
    s.answer = () => ({ kind: 'response', answer: { type: 'error', error: new GroupError(GROUP, 'ILLEGAL_GENERATION', 'rejoin') } });
    const stale = s.groups.commitOffsets({ groupId: GROUP, memberId: 'm', generationId: 1, offsets: [] });
    await expect(stale).rejects.toBeInstanceOf(GroupError);
    await expect(stale).rejects.toMatchObject({ code: 'ILLEGAL_GENERATION', groupId: GROUP });
    expect(s.sent).toHaveLength(1);
    s.answer = () => ({ kind: 'response', answer: { type: 'groups', groups: [] } });
    await expect(s.groups.syncGroup({ groupId: GROUP, memberId: 'm', generationId: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(s.sent).toHaveLength(2);
  });

  it('create the offsets topic once for concurrent first calls', async () => {
    const s = await scripted();
    s.exists = false;
    s.answer = () => ({ kind: 'response', answer: { type: 'offsets', offsets: [] } });
    await Promise.all([s.groups.fetchOffsets(GROUP), s.groups.fetchOffsets(GROUP), s.groups.describeGroups([GROUP, 'other'])].map((p) => p.catch((e: unknown) => e)));
    expect(s.created).toBe(1);
  });

  it('list every broker’s groups: this one’s and each other live broker’s', async () => {
    const s = await scripted();
    s.route = { here: true };
    await s.groups.commitOffsets({ groupId: GROUP, memberId: null, generationId: -1, offsets: [{ topic: 'orders', partition: 0, offset: 1, metadata: null }] });
    s.answer = () => ({ kind: 'response', answer: { type: 'groups', groups: [{ groupId: 'elsewhere', state: 'Stable' }] } });
    expect(await s.groups.listGroups()).toEqual([
      { groupId: GROUP, state: 'Empty' },
      { groupId: 'elsewhere', state: 'Stable' },
    ]);
    expect(s.sent.map((c) => c.body)).toEqual([{ kind: 'request', clusterId: 'c', call: { type: 'list' } }]);
  });

  it('are served from the partition’s records again when its leadership comes back: commits another coordinator took meanwhile are there, its members are not', async () => {
    const partition = await offsetsPartition();
    const [a, b] = [await scripted(partition), await scripted(partition)];
    const commit = (s: Scripted, offset: number, member?: { memberId: string; generationId: number }) =>
      s.groups.commitOffsets({ groupId: GROUP, memberId: member?.memberId ?? null, generationId: member?.generationId ?? -1, offsets: [{ topic: 'orders', partition: 0, offset, metadata: null }] });
    lead(a, 0);
    follow(b, 1, 0);
    const member = await a.groups.joinGroup({ groupId: GROUP, memberId: null, clientId: 'k', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, topics: ['orders'], assignors: ['range'] });
    await commit(a, 5, member);
    // The leadership moves to b, which a learns only later: b loads the records and takes a commit.
    lead(b, 1);
    await commit(b, 9);
    expect(await b.groups.fetchOffsets(GROUP)).toEqual([{ topic: 'orders', partition: 0, offset: 9, metadata: null }]);
    // Back at a, at a later epoch: a reloads rather than serving what it held.
    follow(b, 0, 2);
    lead(a, 2);
    expect(await a.groups.fetchOffsets(GROUP)).toEqual([{ topic: 'orders', partition: 0, offset: 9, metadata: null }]);
    await expect(a.groups.heartbeat({ groupId: GROUP, memberId: member.memberId, generationId: member.generationId })).rejects.toMatchObject({ code: 'UNKNOWN_MEMBER_ID' });
    expect(await a.groups.describeGroups([GROUP])).toMatchObject([{ state: 'Empty', members: [] }]);
  });

  it('are refused as NOT_COORDINATOR by a broker that no longer leads the group’s partition, whatever it held', async () => {
    const s = await scripted();
    lead(s, 0);
    await s.groups.commitOffsets({ groupId: GROUP, memberId: null, generationId: -1, offsets: [{ topic: 'orders', partition: 0, offset: 1, metadata: null }] });
    follow(s, 2, 1);
    s.answer = () => ({ kind: 'response', answer: { type: 'groups', groups: [] } });
    expect(await s.groups.listGroups()).toEqual([]);
    s.answer = () => ({ kind: 'response', answer: { type: 'offsets', offsets: [] } });
    expect(await s.groups.fetchOffsets(GROUP)).toEqual([]);
    expect(s.sent.map((c) => c.body.kind === 'request' && c.body.call.type)).toEqual(['list', 'fetchOffsets']);
    expect(s.groups.runtimes()).toEqual([]);
  });
});
