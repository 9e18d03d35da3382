import { afterEach, describe, expect, it, vi } from 'vitest';
import { realClock } from '../../src/clock';
import { InvalidConfigError, NotLeaderOrFollowerError } from '../../src/errors';
import { createLocalLink, createPeerRpc, type PeerRpc } from '../../src/network/worker';
import { createBrokerNode, type ClusterInfo, type NodeApi } from '../../src/node';
import { BROWSER_TIMING } from '../../src/node/membership';
import { encodeBatch } from '../../src/protocol';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage';
import { fakePort } from '../support/fake-port';
import { createMemoryLocks, type MemoryLocks } from '../support/memory-locks';
import { createFakeLocks } from './fake-locks';

// Broker nodes of one origin forming one cluster over the local transport (BroadcastChannel
// and Web Locks in memory), as tabs do: formation, registration, topics created through the
// active controller and placed in every broker's image, the controller's tab closing, a
// reopened tab keeping its broker id, and peers' bad input refused.

let clusters = 0;
const newCluster = () => `node-cluster-${process.pid}-${++clusters}`;
/** Formation (listening rounds), an election and a few heartbeats: what the protocol takes, with room for a busy machine. */
const FORM_BOUND_MS = BROWSER_TIMING.formationRounds * BROWSER_TIMING.sessionTickMs + 20_000;

interface Tab {
  readonly node: NodeApi;
  readonly peerId: string;
  readonly lockClient: ReturnType<MemoryLocks['client']>;
  readonly databases: Map<string, MemoryStorage>;
}

const open: Tab[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((tab) => tab.node.close()));
});

/** A tab's broker on its own slot database (`databases`, kept to reopen it), attached to cluster `cluster`. */
async function openTab(locks: MemoryLocks, cluster: string, peerId: string, databases = new Map<string, MemoryStorage>()): Promise<Tab> {
  const lockClient = locks.client();
  let ids = 0;
  const node = createBrokerNode({
    openStorage: async (name) => {
      const storage = databases.get(name)?.reopen() ?? createMemoryStorage();
      databases.set(name, storage);
      return storage;
    },
    locks: createFakeLocks(),
    clock: realClock,
    randomId: () => `${peerId}-${ids++}`,
    localLocks: lockClient,
  });
  await node.start({ clientId: peerId, slotWaitMs: 50, knownIncarnations: {}, onStorageLost: 'fail' });
  const port = fakePort();
  // The port stands for the page's end of the bridge (a MessagePort in the worker).
  node.attachNetwork(port as unknown as MessagePort, { cluster, deviceId: 'device-1' });
  port.fromPage({ type: 'self', peerId });
  const tab = { node, peerId, lockClient, databases };
  open.push(tab);
  return tab;
}

async function closeTab(tab: Tab): Promise<void> {
  open.splice(open.indexOf(tab), 1);
  await tab.node.close();
  tab.lockClient.end();
}

const infos = (tabs: readonly Tab[]) => Promise.all(tabs.map(async (tab) => (await tab.node.clusterInfo())!));

/** Waits until every tab's broker is registered in one cluster whose image lists them all, live, and names a controller. */
async function oneCluster(tabs: readonly Tab[]): Promise<ClusterInfo[]> {
  return vi.waitFor(
    async () => {
      const all = await infos(tabs);
      const ids = new Set(all.map((i) => i.clusterId));
      expect(ids.size).toBe(1);
      expect([...ids][0]).toBeDefined();
      for (const info of all) {
        expect(info.brokers.filter((b) => !b.fenced).map((b) => b.brokerId).sort()).toEqual(all.map((i) => i.brokerId).sort());
        expect(info.controller).not.toBeNull();
      }
      return all;
    },
    { timeout: FORM_BOUND_MS, interval: 50 },
  );
}

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

    // Each broker holds the partitions placed on it; another's partition is a typed, retriable refusal.
    for (const [i, tab] of tabs.entries()) {
      const own = expected.find((p) => p.leader === all[i]!.brokerId)!;
      const other = expected.find((p) => p.leader !== all[i]!.brokerId)!;
      const [result] = await tab.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'orders', partition: own.partition, bytes: batch() }] });
      expect(result!.baseOffset).toBe(0);
      const refused = tab.node.produce({ acks: -1, allowAutoTopicCreation: false, batches: [{ topic: 'orders', partition: other.partition, bytes: batch() }] });
      await expect(refused).rejects.toBeInstanceOf(NotLeaderOrFollowerError);
      await expect(refused).rejects.toMatchObject({ leader: other.leader, retriable: true });
    }

    // A second create of the name is not a new topic; a replication factor beyond one replica is refused, typed.
    await expect(tabs[2]!.node.createTopics([{ topic: 'orders' }], false)).resolves.toEqual([false]);
    await expect(tabs[0]!.node.createTopics([{ topic: 'wide', replicationFactor: 3 }], false)).rejects.toMatchObject({ code: 'INVALID_REPLICATION_FACTOR' });
    await expect(tabs[0]!.node.createTopics([{ topic: 'wide', replicationFactor: 3 }], false)).rejects.toBeInstanceOf(InvalidConfigError);

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

  it('refuses peers’ bad input: another cluster’s requests, raft messages claiming a registered broker’s id', async () => {
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
      // Nothing applied: the cluster keeps its controller and term.
      const after = await oneCluster(tabs);
      expect(after.map((i) => i.clusterId)).toEqual(all.map((i) => i.clusterId));
    } finally {
      rpc.close();
      link.close();
      rogueLocks.end();
    }
  });
});

