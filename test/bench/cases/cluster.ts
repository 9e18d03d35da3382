import { Letterbox } from '../../../src/client';
import { slotLockName as slotLock } from '../../../src/node/slots';
import { readable } from '../pipe';
import type { BenchCase, BenchFigure } from '../types';

// The tabs as one cluster (issue 18): four tabs of this browser, each a broker of one cluster
// (over the local transport; no relay), driven from the bench page, which hosts no broker of
// theirs. The tabs are bench pages this page opens (`?cluster-tab=…`): each starts a
// Letterbox in the cluster and answers on a BroadcastChannel. They stay open across runs and
// from one case to the next (the runner closes what a case left open once the case is done).
//
// Baselines, measured in the same run just before the figure (so both see the same load on a
// shared machine; the raw figures alone moved 2–3× minutes apart, see ./local.ts):
// - cluster.metadata.propagation.base: createTopics on a broker that is a cluster of its own
//   (this page's; no peer), until its own fetchTopicMetadata shows the topic. The same code path
//   (request, controller, metadata log, image) with no other broker: the ratio is what
//   spreading a change to four tabs costs over committing it alone.
// - cluster.controller.failover.base: the same metadata change (createTopics from the same tab
//   of the four, until it resolves) while the controller is alive, measured just before it is
//   closed: the ratio is what losing the controller costs over a normal change.

/** How many tabs the cluster has. */
const TABS = 4;
/** The bench page asks every tab this often whether it sees a topic (a message each way: no timer in the tabs, which may be in the background). */
const POLL_MS = 5;
/**
 * Bounds of the set-up (tabs starting their worker, meeting each other, the formation rounds of
 * ~1.5 s and registering, on a loaded 2-core machine) and of one measured change (a failover:
 * noticing the closed controller, an election, then the change).
 */
const SETUP_TIMEOUT_MS = 60_000;
const RUN_TIMEOUT_MS = 60_000;
/** Nothing listens there: the tabs meet only over the local transport. */
const NO_RELAY = 'http://127.0.0.1:9';

/** Messages on the swarm's BroadcastChannel: requests from the bench page (`to` a tab, or all), answers from the tabs. */
type SwarmMessage =
  | { type: 'ready'; tab: string; slot: number; brokerId: number; clusterId: string }
  | { type: 'failed'; tab: string; error: string }
  | { type: 'create'; to: string; topic: string; ask: number }
  | { type: 'created'; tab: string; ask: number; ok: boolean; error?: string; retriable?: boolean }
  | { type: 'has'; topic: string; ask: number }
  | { type: 'seen'; tab: string; topic: string; ask: number }
  | { type: 'describe'; to: string; ask: number }
  | { type: 'described'; tab: string; ask: number; brokerIds: number[]; controller: number | null; clusterId: string }
  | { type: 'close'; to: string };

let runs = 0;
const freshTopic = (name: string) => `${name}-${Date.now()}-${runs++}`;
const deadlineError = (what: string, ms: number) => new Error(`${what}: not within ${ms} ms`);

/** One bench page's swarm of tabs, kept across runs and cases. */
interface Tab {
  tab: string;
  slot: number;
  brokerId: number;
}
interface Swarm {
  cluster: string;
  channel: BroadcastChannel;
  tabs: Tab[];
  /** Every tab ever opened, with its slot: a replacement waits for a closed one's slot to be free. */
  slots: Set<number>;
}
let swarm: Swarm | undefined;

/** Listeners of the swarm's messages; each returns true once it is done. */
const listeners = new Set<(message: SwarmMessage) => boolean>();
let nextAsk = 1;

/** The first message `match` accepts, within `timeoutMs`. */
function next<T>(match: (message: SwarmMessage) => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const listener = (message: SwarmMessage) => {
      const found = match(message);
      if (found === undefined) return false;
      clearTimeout(timer);
      resolve(found);
      return true;
    };
    const timer = setTimeout(() => {
      listeners.delete(listener);
      reject(deadlineError(what, timeoutMs));
    }, timeoutMs);
    listeners.add(listener);
  });
}

function swarmOf(): Swarm {
  if (swarm !== undefined) return swarm;
  const channel = new BroadcastChannel(`letterbox-bench-cluster-${crypto.randomUUID()}`);
  channel.onmessage = ({ data }: MessageEvent<SwarmMessage>) => {
    for (const listener of [...listeners]) if (listener(data)) listeners.delete(listener);
  };
  swarm = { cluster: `bench-cluster-${crypto.randomUUID()}`, channel, tabs: [], slots: new Set() };
  return swarm;
}

/** Whether this origin's Web Lock `name` is held (by any tab of this browser profile). */
async function lockHeld(name: string): Promise<boolean> {
  return ((await navigator.locks.query()).held ?? []).some((lock) => lock.name === name);
}

/** Waits until `condition` holds, checking every POLL_MS, within `timeoutMs`. */
async function until(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const giveUpAt = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > giveUpAt) throw deadlineError(what, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** `describeCluster` of one tab. */
async function describe(s: Swarm, tab: Tab): Promise<Extract<SwarmMessage, { type: 'described' }>> {
  const ask = nextAsk++;
  const answer = next((m) => (m.type === 'described' && m.ask === ask ? m : undefined), SETUP_TIMEOUT_MS, `describeCluster of broker ${tab.brokerId}`);
  s.channel.postMessage({ type: 'describe', to: tab.tab, ask } satisfies SwarmMessage);
  return answer;
}

/** Whether `tab` is live: it answers (true), or its slot lock is freed (false), whichever comes first. */
async function isLive(s: Swarm, tab: Tab): Promise<boolean> {
  let answered = false;
  const answer = describe(s, tab).then(
    () => void (answered = true),
    () => undefined,
  );
  const giveUpAt = performance.now() + SETUP_TIMEOUT_MS;
  while (!answered) {
    if (!(await lockHeld(slotLock(tab.slot)))) return false;
    if (performance.now() > giveUpAt) throw deadlineError(`broker ${tab.brokerId} answering or gone`, SETUP_TIMEOUT_MS);
    await Promise.race([answer, new Promise((resolve) => setTimeout(resolve, POLL_MS))]);
  }
  return true;
}

/**
 * The swarm with TABS live, registered tabs that all list each other as the cluster's brokers:
 * opens tabs where some are missing (at first, after a case closed one, or after the runner
 * closed them), each once the slot of every closed one is free again, so that a reopened tab
 * takes its slot back and is the same broker.
 */
async function liveSwarm(): Promise<Swarm> {
  const s = swarmOf();
  // A tab lives as long as it holds its slot's lock (its worker holds it). The runner closes the
  // tabs a case left open once the case is done, and their locks go a moment later: a tab is
  // live once it answers, gone once its lock is free, whichever comes first.
  const alive = await Promise.all(s.tabs.map((tab) => isLive(s, tab)));
  s.tabs = s.tabs.filter((_, i) => alive[i]);
  // A reopened tab takes the lowest free slot: wait for every closed tab's slot to be free, so that each takes its own back.
  const live = new Set(s.tabs.map((t) => t.slot));
  const closed = [...s.slots].filter((slot) => !live.has(slot));
  await until(async () => (await Promise.all(closed.map((slot) => lockHeld(slotLock(slot))))).every((h) => !h), SETUP_TIMEOUT_MS, 'closed tabs’ slots freed');
  while (s.tabs.length < TABS) {
    const ready = next((m) => (m.type === 'ready' || m.type === 'failed') && !s.tabs.some((t) => t.tab === m.tab) ? m : undefined, SETUP_TIMEOUT_MS, 'a cluster tab registered');
    const url = new URL(location.href);
    url.search = new URLSearchParams({ 'cluster-tab': s.channel.name, cluster: s.cluster }).toString();
    window.open(url, '_blank', 'noopener');
    const message = await ready;
    if (message.type === 'failed') throw new Error(`a cluster tab failed: ${message.error}`);
    if (message.type !== 'ready') throw new Error('unreachable');
    s.tabs.push({ tab: message.tab, slot: message.slot, brokerId: message.brokerId });
    s.slots.add(message.slot);
  }
  const brokerIds = s.tabs.map((t) => t.brokerId).sort((a, b) => a - b);
  await until(
    async () => {
      const views = await Promise.all(s.tabs.map((tab) => describe(s, tab)));
      return views.every((v) => v.controller !== null && v.controller === views[0]!.controller && v.brokerIds.join() === brokerIds.join());
    },
    SETUP_TIMEOUT_MS,
    `every tab listing the ${TABS} brokers and one controller`,
  );
  return s;
}

/** createTopics of `topic` from `tab`, once; its outcome. */
async function createFrom(s: Swarm, tab: Tab, topic: string): Promise<Extract<SwarmMessage, { type: 'created' }>> {
  const ask = nextAsk++;
  const answer = next((m) => (m.type === 'created' && m.ask === ask ? m : undefined), RUN_TIMEOUT_MS, `createTopics from broker ${tab.brokerId}`);
  s.channel.postMessage({ type: 'create', to: tab.tab, topic, ask } satisfies SwarmMessage);
  return answer;
}

/** createTopics of `topic` from `tab`, again while it fails retriably (a controller away), until it commits; ms from the call. */
async function committedFrom(s: Swarm, tab: Tab, topic: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    const outcome = await createFrom(s, tab, topic);
    if (outcome.ok) return performance.now() - started;
    if (outcome.retriable !== true) throw new Error(`createTopics from broker ${tab.brokerId} failed: ${outcome.error}`);
    if (performance.now() - started > RUN_TIMEOUT_MS) throw deadlineError(`createTopics of ${topic} committed`, RUN_TIMEOUT_MS);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Resolves once every tab of `tabs` has `topic` in its metadata image: asks them all every POLL_MS. */
async function seenByAll(s: Swarm, tabs: readonly Tab[], topic: string): Promise<void> {
  const seen = new Set<string>();
  const listener = (m: SwarmMessage) => {
    if (m.type === 'seen' && m.topic === topic) seen.add(m.tab);
    return false;
  };
  listeners.add(listener);
  try {
    await until(
      () => {
        if (tabs.every((t) => seen.has(t.tab))) return true;
        s.channel.postMessage({ type: 'has', topic, ask: nextAsk++ } satisfies SwarmMessage);
        return false;
      },
      RUN_TIMEOUT_MS,
      `${topic} seen by ${tabs.length} tabs`,
    );
  } finally {
    listeners.delete(listener);
  }
}

/** This page's own broker, a cluster of its own (no peer reaches it), for the propagation baseline. */
let alone: Promise<{ letterbox: Letterbox; admin: ReturnType<Letterbox['admin']> }> | undefined;
async function createAlone(): Promise<number> {
  alone ??= (async () => {
    const letterbox = new Letterbox({ clientId: 'bench-cluster-alone', cluster: `bench-alone-${crypto.randomUUID()}`, relay: NO_RELAY, localPeers: false });
    const admin = letterbox.admin();
    await admin.connect();
    await until(async () => (await letterbox.nodeInfo()).brokerId !== undefined, SETUP_TIMEOUT_MS, 'the lone broker registered');
    // Registered is not yet active: the first change waited for its controller (~2 s, once) before this.
    await until(async () => (await admin.describeCluster()).controller !== null, SETUP_TIMEOUT_MS, 'the lone broker its own active controller');
    return { letterbox, admin };
  })();
  const { admin } = await alone;
  const topic = freshTopic('alone');
  const started = performance.now();
  await admin.createTopics({ topics: [{ topic }] }).catch((error: unknown) => {
    throw readable(error);
  });
  await until(async () => (await admin.fetchTopicMetadata({ topics: [topic] }).then(() => true, () => false)), RUN_TIMEOUT_MS, `${topic} seen by the lone broker`);
  return performance.now() - started;
}

/** A bench page opened as a cluster tab: a broker in the cluster, answering the bench page on the channel until told to close. */
function serveClusterTab(channelName: string, cluster: string): void {
  const tab = crypto.randomUUID();
  const channel = new BroadcastChannel(channelName);
  const post = (message: SwarmMessage) => channel.postMessage(message);
  // No adoption: the failover cases measure the survivors taking over, not a closed tab's broker run on elsewhere.
  const letterbox = new Letterbox({ clientId: 'bench-cluster-tab', cluster, relay: NO_RELAY, adoptSlots: 0 });
  const admin = letterbox.admin();
  const seen = new Set<string>();
  const looking = new Set<string>();
  const errorText = (error: unknown) => {
    const { name, code, message } = error as { name?: string; code?: string; message?: string };
    return `${name} ${code ?? ''}: ${message}`;
  };
  channel.onmessage = async ({ data }: MessageEvent<SwarmMessage>) => {
    try {
      if (data.type === 'has') {
        // One look at a time: asks that come while one is out are answered by it, so the broker is not flooded.
        if (!seen.has(data.topic) && !looking.has(data.topic)) {
          looking.add(data.topic);
          const { topics } = await admin.fetchTopicMetadata({ topics: [data.topic] }).catch(() => ({ topics: [] })).finally(() => looking.delete(data.topic));
          if (topics.some((t) => t.name === data.topic && t.partitions.length > 0)) seen.add(data.topic);
        }
        if (seen.has(data.topic)) post({ type: 'seen', tab, topic: data.topic, ask: data.ask });
      } else if (data.type === 'create' && data.to === tab) {
        try {
          await admin.createTopics({ topics: [{ topic: data.topic }] });
          post({ type: 'created', tab, ask: data.ask, ok: true });
        } catch (error) {
          post({ type: 'created', tab, ask: data.ask, ok: false, error: errorText(error), retriable: (error as { retriable?: boolean }).retriable === true });
        }
      } else if (data.type === 'describe' && data.to === tab) {
        const { brokers, controller, clusterId } = await admin.describeCluster();
        post({ type: 'described', tab, ask: data.ask, brokerIds: brokers.map((b) => b.nodeId).sort((a, b) => a - b), controller, clusterId });
      } else if (data.type === 'close' && data.to === tab) {
        channel.close();
        window.close();
      }
    } catch (error) {
      post({ type: 'failed', tab, error: errorText(error) });
    }
  };
  void (async () => {
    try {
      await admin.connect();
      await letterbox.peerId();
      const giveUpAt = performance.now() + SETUP_TIMEOUT_MS;
      for (;;) {
        const info = await letterbox.nodeInfo();
        if (info.brokerId !== undefined && info.clusterId !== undefined) {
          post({ type: 'ready', tab, slot: info.slot, brokerId: info.brokerId, clusterId: info.clusterId });
          return;
        }
        if (performance.now() > giveUpAt) throw deadlineError('registration', SETUP_TIMEOUT_MS);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } catch (error) {
      post({ type: 'failed', tab, error: errorText(error) });
    }
  })();
}

// A page opened by liveSwarm serves as a cluster tab (the bench page loads every case module).
const clusterTab = new URLSearchParams(location.search);
if (clusterTab.get('cluster-tab') !== null) serveClusterTab(clusterTab.get('cluster-tab')!, clusterTab.get('cluster')!);

export const cases: BenchCase[] = [
  {
    id: 'cluster.metadata.propagation',
    title: `createTopics in one of ${TABS} tabs of one cluster (local transport) until all ${TABS} see it (ms); .base: createTopics on a broker that is a cluster of its own until it sees it, just before`,
    runs: 5,
    async run(): Promise<BenchFigure[]> {
      const s = await liveSwarm();
      const base = await createAlone();
      const topic = freshTopic('propagation');
      const started = performance.now();
      const [outcome] = await Promise.all([createFrom(s, s.tabs[0]!, topic), seenByAll(s, s.tabs, topic)]);
      const ms = performance.now() - started;
      if (!outcome.ok) throw new Error(`createTopics failed: ${outcome.error}`);
      return [
        { id: 'cluster.metadata.propagation', value: ms, unit: 'ms', better: 'lower', baseline: 'cluster.metadata.propagation.base' },
        { id: 'cluster.metadata.propagation.base', value: base, unit: 'ms (a cluster of one broker, same run)', better: 'lower' },
      ];
    },
  },
  {
    id: 'cluster.controller.failover',
    title: `the active controller's tab of ${TABS} closed → the next metadata change (createTopics from another tab) committed (ms), timed from when its slot lock is released (its worker ended); .base: the same change just before, controller alive`,
    runs: 5,
    async run(): Promise<BenchFigure[]> {
      const s = await liveSwarm();
      const { controller } = await describe(s, s.tabs[0]!);
      const victim = s.tabs.find((t) => t.brokerId === controller);
      if (victim === undefined) throw new Error(`the controller ${controller} is none of the tabs' brokers (${s.tabs.map((t) => t.brokerId).join(', ')})`);
      const from = s.tabs.find((t) => t !== victim)!;
      const base = await committedFrom(s, from, freshTopic('before-failover'));
      const rest = s.tabs.filter((t) => t !== victim);
      s.channel.postMessage({ type: 'close', to: victim.tab } satisfies SwarmMessage);
      // Timed from the moment the controller is surely gone: its worker ended and let its slot go.
      await until(async () => !(await lockHeld(slotLock(victim.slot))), SETUP_TIMEOUT_MS, 'the closed controller’s slot freed');
      s.tabs = rest;
      const ms = await committedFrom(s, from, freshTopic('after-failover'));
      // All remaining tabs agree on a new controller (not part of the figure).
      const views = await Promise.all(rest.map((t) => describe(s, t)));
      if (views.some((v) => v.controller === controller || v.controller !== views[0]!.controller)) {
        throw new Error(`after the failover the tabs name controllers ${views.map((v) => v.controller).join(', ')} (was ${controller})`);
      }
      return [
        { id: 'cluster.controller.failover', value: ms, unit: 'ms', better: 'lower', baseline: 'cluster.controller.failover.base' },
        { id: 'cluster.controller.failover.base', value: base, unit: 'ms (createTopics with the controller alive, same run)', better: 'lower' },
      ];
    },
  },
];

