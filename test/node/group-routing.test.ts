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
  /** Where the group's offsets partition is led, as the broker's image says now. */
  route: Route;
  /** The group calls sent to other brokers, with the peer asked. */
  sent: Array<{ peerId: string; body: GroupMessage }>;
  /** Answers the next forwarded call (after which the test may move the route). */
  answer: (body: GroupMessage) => GroupMessage;
  created: number;
  exists: boolean;
}

const stops: Array<() => void> = [];
afterEach(() => stops.splice(0).forEach((stop) => stop()));

async function scripted(): Promise<Scripted> {
  const storage = createMemoryStorage();
  const logs = createLogManager(storage, { clock: realClock });
  const partition = coordinatorPartition(GROUP, PARTITIONS);
  const log: PartitionLog = await logs.open({ topic: '__consumer_offsets', partition }, { ...defaultLogConfig, cleanupPolicy: 'compact' });
  const executor = new Executor({ nodeId: 'n', clock: realClock, committer: logs.committer, sendFrame: () => false, tickMs: 100, heartbeatFlushTicks: 0 });
  executor.start();
  const state: Omit<Scripted, 'groups'> = { route: { here: false, leader: 2 }, sent: [], answer: () => ({ kind: 'response', answer: { type: 'done' } }), created: 0, exists: true };
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
    offsetsLog: (p) => (p === partition && state.route.here ? log : undefined),
    addressOf: (brokerId) => `peer-${brokerId}`,
    otherBrokers: () => [2],
    createOffsetsTopic: async () => {
      state.created++;
      await Promise.resolve();
      state.exists = true;
    },
  };
  const groups = new ClusterGroups(host, executor, 'i', { orders: 2 });
  stops.push(() => groups.stop(), () => executor.stop());
  return Object.assign(state, { groups }) as Scripted;
}

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
});
