import { afterEach, expect, vi } from 'vitest';
import { realClock } from '../../src/clock';
import { createBrokerNode, type ClusterEvent, type ClusterInfo, type NodeApi } from '../../src/node';
import { BROWSER_TIMING } from '../../src/node/membership';
import type { MemoryStorage } from '../../src/storage';
import { fakePort } from '../support/fake-port';
import type { MemoryLocks } from '../support/memory-locks';
import { openFrom } from './databases';
import { createFakeLocks } from './fake-locks';

// Tabs' broker nodes of one origin on the local transport (BroadcastChannel and Web Locks in
// memory), for the cluster tests: a tab is a node on its own slot database, attached to a
// cluster; the tabs a test opened are closed after it.

let clusters = 0;
export const newCluster = () => `node-cluster-${process.pid}-${++clusters}`;
/** Formation (listening rounds), an election and a few heartbeats: what the protocol takes, with room for a busy machine. */
export const FORM_BOUND_MS = BROWSER_TIMING.formationRounds * BROWSER_TIMING.sessionTickMs + 20_000;

export interface Tab {
  readonly node: NodeApi;
  readonly peerId: string;
  readonly lockClient: ReturnType<MemoryLocks['client']>;
  readonly databases: Map<string, MemoryStorage>;
  readonly events: ClusterEvent[];
}

const open: Tab[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((tab) => tab.node.close()));
});

/**
 * A tab's broker on its own slot database (`databases`, kept to reopen it), attached to
 * cluster `cluster` once `before` (what it does as a private broker) is done; its cluster events in `events`.
 */
export async function openTab(
  locks: MemoryLocks,
  cluster: string,
  peerId: string,
  databases = new Map<string, MemoryStorage>(),
  before: (node: NodeApi) => Promise<void> = async () => undefined,
  how: {
    /** Started for the cluster (NodeStartInit.cluster), as a Letterbox starts its node. */
    startedFor?: boolean;
    /** Joined over the local transport alone (joinLocalCluster: the origin's cluster), not the page's network. */
    localOnly?: boolean;
  } = {},
): Promise<Tab> {
  const lockClient = locks.client();
  let ids = 0;
  const node = createBrokerNode({
    openStorage: openFrom(databases),
    locks: createFakeLocks(),
    clock: realClock,
    randomId: () => `${peerId}-${ids++}`,
    localLocks: lockClient,
  });
  const { incarnation } = await node.start({ clientId: peerId, slotWaitMs: 50, knownIncarnations: {}, onStorageLost: 'fail', ...((how.startedFor || how.localOnly) && { cluster }) });
  await before(node);
  const events: ClusterEvent[] = [];
  if (how.localOnly) {
    node.joinLocalCluster({ cluster, deviceId: 'device-1' }, (event) => events.push(event));
    const tab = { node, peerId: `local:${incarnation}`, lockClient, databases, events };
    open.push(tab);
    return tab;
  }
  const port = fakePort();
  // The port stands for the page's end of the bridge (a MessagePort in the worker).
  node.attachNetwork(port as unknown as MessagePort, { cluster, deviceId: 'device-1' }, (event) => events.push(event));
  port.fromPage({ type: 'self', peerId });
  // As a page whose relay lists no other member (these tabs meet over the local transport).
  port.fromPage({ type: 'members', peerIds: [] });
  const tab = { node, peerId, lockClient, databases, events };
  open.push(tab);
  return tab;
}

export async function closeTab(tab: Tab): Promise<void> {
  open.splice(open.indexOf(tab), 1);
  await tab.node.close();
  tab.lockClient.end();
}

export const infos = (tabs: readonly Tab[]) => Promise.all(tabs.map(async (tab) => (await tab.node.clusterInfo())!));

/** Waits until every tab's broker is registered in one cluster whose image lists them all, live, and names a controller. */
export async function oneCluster(tabs: readonly Tab[]): Promise<ClusterInfo[]> {
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
