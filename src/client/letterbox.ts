import { proxy } from 'comlink';
import { AbortedError, InvalidArgumentError, NotConnectedError, StorageLostError } from '../errors';
import { CLUSTER_NAME_PATTERN } from '../discovery';
import type { DialStats, NetworkEvent, PeerInfo, PeerNetwork } from '../network';
import { loadJoinCluster } from './load-network';
import type { ClusterEvent, NodeInfo } from '../node';
import { Admin } from './admin';
import { Consumer, type ConsumerConfig } from './consumer';
import type { ClientContext, RemoteNode } from './context';
import { consoleLogCreator, createLogger, logLevel, type LogCreator, type Logger, type LogLevel } from './logger';
import { connectNode, type NodeConnection } from './node-connection';
import * as check from './validate';
import { Producer, type ProducerConfig } from './producer';
import { PeerRequestReports } from './requests';
import { SlotAdopter, type AdoptedSlot } from './slot-adopter';

export interface LetterboxConfig {
  /** Names this client in logs and slot bookkeeping. Default `letterbox`. */
  clientId?: string;
  /** As in KafkaJS: `logLevel.NOTHING` (default: quiet), `ERROR`, `WARN`, `INFO`, `DEBUG`. */
  logLevel?: LogLevel;
  /** Receives structured log entries; default: one console line each. */
  logCreator?: LogCreator;
  /** How long the worker may take to start before WorkerStartError. Default 10000. */
  workerStartTimeoutMs?: number;
  /** How long a reloaded tab waits for its previous worker to release its slot. Default 3000. */
  slotWaitMs?: number;
  /** What to do when this slot's database was evicted or wiped: `fail` (default) or `continue` afresh. */
  onStorageLost?: 'fail' | 'continue';
  /**
   * The cluster this instance's broker belongs to. Default: its origin's cluster
   * ({@link ORIGIN_CLUSTER}), which every instance and tab of this origin without the option
   * joins over the local transport, with no relay (README § Clusters). A name (1 to 64 of
   * A-Z a-z 0-9 . _ -): that cluster, met over `relay` too, so it spans browsers and devices.
   * `false`: a private broker that shares nothing.
   */
  cluster?: string | false;
  /** The relay that introduces the cluster's nodes: its HTTP URL or a multiaddr ending in `/p2p/<id>`. Default: this page's origin. */
  relay?: string;
  /** STUN/TURN servers for WebRTC. Default: none for a relay on a loopback/private address, else libp2p's. */
  iceServers?: RTCIceServer[];
  /**
   * The cluster's shared secret: a node admits only peers that prove they know it (a
   * challenge-response bound to both peer ids), and is refused by peers with another one.
   * Without it, only peers without a secret admit each other.
   */
  secret?: string;
  /**
   * Meet this origin's other tabs of the cluster directly, worker to worker, with no relay
   * (they form a cluster offline too); a peer reachable both ways is used that way. Default
   * true; false reaches every peer over WebRTC.
   */
  localPeers?: boolean;
  /**
   * How many closed tabs' brokers of its origin's cluster this tab may run on (adopt), each in a
   * worker of its own on the closed tab's database, until that tab comes back: the same raft
   * member restarting, so a partition replicated on two tabs stays writable when either closes.
   * Default 2 (each costs a worker and its database connection); 0 turns adoption off. An adopted
   * broker is met over the local transport only: by this browser's tabs, not (yet) by other
   * devices over the relay.
   */
  adoptSlots?: number;
  /**
   * How long a broker stays fenced (its tab closed and not adopted, its device asleep or gone)
   * before the controller moves its replicas to live brokers, restoring each partition's
   * replication factor (re-replication). Default 30000; the active controller's tab's setting applies.
   */
  reassignAfterMs?: number;
}

/** The cluster a Letterbox without a `cluster` option joins: its origin's, over the local transport. */
export const ORIGIN_CLUSTER = 'origin';

export interface LetterboxEvents {
  /** The slot's database was found evicted or wiped: with onStorageLost 'continue' a new one was started (its incarnation given), with 'fail' the start failed with StorageLostError. */
  'letterbox.storage_lost': { slot: number; incarnation?: string };
  /** The node started in its worker. */
  'letterbox.connect': NodeInfo;
  /** A cluster member is directly connected (WebRTC). */
  'letterbox.peer_joined': PeerInfo;
  /** A directly connected member went away (`reason` says how it was noticed). */
  'letterbox.peer_left': { peerId: string; reason: string };
  /** A ping round trip to a peer, every few seconds. */
  'letterbox.peer_quality': { peerId: string; rttMs: number };
  /** Registered in the cluster on the relay, or lost it (the network reconnects by itself with backoff). */
  'letterbox.relay': { connected: boolean; error?: string };
  /** This tab's broker joined the cluster (or bootstrapped it), or came back on its stored broker id. */
  'letterbox.cluster_joined': { clusterId: string; brokerId: number; bootstrap: boolean };
  /**
   * This tab's cluster met a larger one of the same name (they bootstrapped apart: a tab opened
   * offline, a relay restart) and reports ClusterIdMismatchError. When this tab's broker was its
   * cluster's only one (`joinsOther`), it joins the larger one and offers it its topics, data
   * kept (a name the other has: `letterbox.cluster_topic_clash`, and that topic stays this
   * broker's own). Otherwise the two stay apart; remedy: give one side another `cluster` name,
   * or clear the smaller side's site data.
   */
  'letterbox.cluster_mismatch': { clusterName: string; clusterId: string; otherClusterId: string; message: string; joinsOther?: boolean };
  /** A topic this tab's broker had before it joined the cluster could not join it (the cluster has that name): it stays this broker's own, untouched. */
  'letterbox.cluster_topic_clash': { topic: string; message: string };
  /** The closed tabs' slots whose brokers this tab runs now (config `adoptSlots`), after one was adopted or handed back. */
  'letterbox.slots_adopted': { adopted: AdoptedSlot[] };
  /**
   * The cluster's under-replicated partitions (a live leader, fewer live in-sync replicas than
   * replicas) and offline ones (no live leader), as this tab's metadata shows them: once it has
   * the cluster's metadata, then whenever they change
   * (Kafka's UnderReplicatedPartitions and OfflinePartitionsCount); also in `admin.describeCluster()`.
   */
  'letterbox.replication_health': { underReplicated: number; offline: number };
}

const LETTERBOX_EVENTS = ['letterbox.storage_lost', 'letterbox.connect', 'letterbox.peer_joined', 'letterbox.peer_left', 'letterbox.peer_quality', 'letterbox.relay', 'letterbox.cluster_joined', 'letterbox.cluster_mismatch', 'letterbox.cluster_topic_clash', 'letterbox.slots_adopted', 'letterbox.replication_health'] as const satisfies ReadonlyArray<keyof LetterboxEvents>;

type Listener<E extends keyof LetterboxEvents> = (event: { type: E; timestamp: number; payload: LetterboxEvents[E] }) => void;

const SESSION_SLOT_KEY = (clientId: string) => `letterbox:slot:${clientId}`;
const INCARNATIONS_KEY = 'letterbox:incarnations';
/** Slots held by Letterbox instances of this page, which a new instance must not wait for. */
const heldByThisPage = new Set<number>();

function readJson<T>(storage: Storage | undefined, key: string, fallback: T): T {
  try {
    const raw = storage?.getItem(key);
    return raw === null || raw === undefined ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}
const webStorage = (kind: 'sessionStorage' | 'localStorage'): Storage | undefined => {
  try {
    return globalThis[kind];
  } catch {
    return undefined; // storage disabled (e.g. sandboxed iframe)
  }
};

const DEVICE_KEY = 'letterbox-device';

/** This browser profile's id (localStorage, shared by its tabs): the controller places a partition's replicas on distinct devices. */
function deviceId(): string {
  const local = webStorage('localStorage');
  try {
    const known = local?.getItem(DEVICE_KEY);
    if (known) return known;
    const id = crypto.randomUUID();
    local?.setItem(DEVICE_KEY, id);
    return id;
  } catch {
    // localStorage refused (an opaque origin): this tab counts as a device of its own.
    return crypto.randomUUID();
  }
}

/**
 * The entry point, like KafkaJS's `Kafka`: one broker node in a Web Worker, its data in
 * IndexedDB. Several instances on one page each get their own node and slot.
 *
 * Instances of one origin (on one page or in several tabs) are brokers of one cluster, as
 * two KafkaJS clients of one Kafka cluster share it: a topic created through one is there in
 * the other, and a group spans them. `cluster: false` keeps a private broker.
 * @example const letterbox = new Letterbox({ clientId: 'my-app' });
 */
export class Letterbox implements ClientContext {
  readonly clientId: string;
  readonly #config: Required<Omit<LetterboxConfig, 'clientId' | 'logLevel' | 'logCreator' | 'cluster' | 'relay' | 'iceServers' | 'secret' | 'localPeers' | 'reassignAfterMs'>>;
  /** The node's own default (30 s) when not given. */
  readonly #reassignAfterMs: number | undefined;
  /** This tab's own broker id once it joined its cluster: the host the brokers it adopts register. */
  #brokerId: number | undefined;
  #adopter: SlotAdopter | undefined;
  readonly #logger: Logger;
  #connection: Promise<NodeConnection> | undefined;
  #closed = false;
  readonly #listeners = new Map<keyof LetterboxEvents, Set<Listener<keyof LetterboxEvents>>>();
  readonly #persisted: Promise<boolean>;
  /** The cluster the broker joins; undefined: a private broker. */
  readonly #clusterName: string | undefined;
  /** A named cluster's relay network; undefined for the origin's cluster and a private broker. */
  readonly #cluster: { cluster: string; relay: string; iceServers?: RTCIceServer[]; secret?: string; localPeers?: boolean } | undefined;
  #network: Promise<PeerNetwork> | undefined;
  /** @internal Where the broker's reports of the clients' traced calls go (KafkaJS's request events). */
  readonly peerReports = new PeerRequestReports();
  /** Key of the last echo call, unique per instance, so it can be cancelled in the worker. */
  #peerRequestKey = 0;

  constructor(config: LetterboxConfig = {}) {
    const c = check.object(config, 'Letterbox config', true);
    this.clientId = check.string(c['clientId'], 'clientId', true) ?? 'letterbox';
    const logCreator = check.func<LogCreator>(c['logCreator'], 'logCreator', true) ?? consoleLogCreator;
    this.#logger = createLogger(check.oneOf(c['logLevel'], 'logLevel', Object.values(logLevel), logLevel.NOTHING), logCreator);
    this.#config = {
      workerStartTimeoutMs: check.integer(c['workerStartTimeoutMs'], 'workerStartTimeoutMs', 1, undefined, 10_000),
      slotWaitMs: check.integer(c['slotWaitMs'], 'slotWaitMs', 0, undefined, 3_000),
      onStorageLost: check.oneOf(c['onStorageLost'], 'onStorageLost', ['fail', 'continue'] as const, 'fail'),
      adoptSlots: check.integer(c['adoptSlots'], 'adoptSlots', 0, 8, 2),
    };
    this.#reassignAfterMs = check.integer(c['reassignAfterMs'], 'reassignAfterMs', 0, undefined, undefined);
    const cluster = c['cluster'] === false ? false : check.string(c['cluster'], 'cluster', true);
    this.#clusterName = cluster === false ? undefined : (cluster ?? ORIGIN_CLUSTER);
    const secret = c['secret'] === undefined ? undefined : typeof c['secret'] === 'string' ? c['secret'] : check.string(c['secret'], 'secret');
    const relay = check.string(c['relay'], 'relay', true) ?? globalThis.location?.origin;
    const iceServers = check.array(c['iceServers'], 'iceServers', true) as RTCIceServer[] | undefined;
    if (cluster !== undefined && cluster !== false) {
      if (!CLUSTER_NAME_PATTERN.test(cluster)) throw new InvalidArgumentError('cluster must be 1 to 64 of A-Z a-z 0-9 . _ -');
      if (typeof relay !== 'string' || relay === '' || relay === 'null') throw new InvalidArgumentError('relay must be the relay’s URL or multiaddr');
      const localPeers = check.boolean(c['localPeers'], 'localPeers', true);
      this.#cluster = { cluster, relay, localPeers, ...(iceServers === undefined ? {} : { iceServers }), ...(secret === undefined ? {} : { secret }) };
    }
    // Only the page may ask; without it the browser may evict the data under storage pressure.
    this.#persisted = navigator.storage?.persist?.().catch(() => false) ?? Promise.resolve(false);
  }

  /**
   * A producer, as in KafkaJS.
   * @example const producer = letterbox.producer(); await producer.connect(); await producer.send({ topic: 'events', messages: [{ value: 'hi' }] });
   */
  producer(config: ProducerConfig = {}): Producer {
    return new Producer(this, config, this.#logger.namespace('Producer'));
  }

  /**
   * A consumer, as in KafkaJS.
   * @example const consumer = letterbox.consumer({ groupId: 'readers' });
   */
  consumer(config: ConsumerConfig): Consumer {
    return new Consumer(this, config, this.#logger.namespace('Consumer'));
  }

  /**
   * An admin client, as in KafkaJS.
   * @example const admin = letterbox.admin(); await admin.createTopics({ topics: [{ topic: 'events', numPartitions: 3 }] });
   */
  admin(): Admin {
    return new Admin(this, this.#logger.namespace('Admin'));
  }

  /**
   * Whether the browser granted persistent storage (asked for at construction).
   * @example if (!(await letterbox.storagePersisted())) warnUser();
   */
  storagePersisted(): Promise<boolean> {
    return this.#persisted;
  }

  /**
   * The node's slot and database, starting the node if needed; with a cluster, its broker id and cluster id once it joined.
   * @example const { slot, brokerId } = await letterbox.nodeInfo();
   */
  async nodeInfo(): Promise<NodeInfo> {
    const { info, node } = await this.#connectOnce();
    const cluster = await node.clusterInfo();
    return cluster?.brokerId === undefined ? info : { ...info, brokerId: cluster.brokerId, clusterId: cluster.clusterId! };
  }

  /**
   * This node's libp2p peer id (the slot's, so the same after reopening the tab); starts the node and joins the cluster if needed.
   * @example const me = await letterbox.peerId();
   */
  async peerId(): Promise<string> {
    return (await this.#joined()).peerId;
  }

  /**
   * The cluster's members this node is directly connected to (as its worker knows them).
   * @example for (const peer of await letterbox.peers()) console.log(peer.peerId, peer.rttMs);
   */
  async peers(): Promise<PeerInfo[]> {
    await this.#joined();
    return (await this.node()).peers();
  }

  /**
   * A round trip to a peer's broker over peer RPC (an `echo` request): `bytes` come back
   * unchanged. A liveness check, and what the network tests and benchmarks measure.
   * Rejects with TimeoutError (default timeout 10 s), AbortedError (through `signal`),
   * PeerError (the peer's error answer) or a PEER_NOT_CONNECTED error.
   * @example const rttMs = performance.now(); await letterbox.echo(peerId, new Uint8Array(32), { timeoutMs: 2_000 });
   */
  async echo(peerId: string, bytes: Uint8Array, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const o = check.object(options, 'echo options', true);
    const { signal } = check.callOptions(options, 'echo options');
    const timeoutMs = check.integer(o['timeoutMs'], 'timeoutMs', 1, undefined, undefined);
    check.string(peerId, 'peerId');
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`bytes must be a Uint8Array, got ${check.describe(bytes)}`);
    await this.#joined();
    const node = await this.node();
    if (signal?.aborted === true) throw new AbortedError('echo was cancelled', { cause: signal.reason });
    this.#peerRequestKey += 1;
    const requestKey = this.#peerRequestKey;
    const onAbort = () => void node.cancelPeerRequest(requestKey);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await node.echoPeer({ requestKey, peerId, bytes, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Measures peer RPC throughput to a peer: `count` one-way messages of `messageBytes`, sent
   * from this node's worker and taken by the peer's, as `iperf` would. A diagnostic, and the
   * `net.rpc.throughput` benchmark.
   * @example const { mbps } = await letterbox.probePeer(peerId, { messageBytes: 65_536, count: 256 });
   */
  async probePeer(peerId: string, options: { messageBytes: number; count: number; timeoutMs?: number }): Promise<{ bytes: number; ms: number; mbps: number }> {
    const o = check.object(options, 'probePeer options');
    check.string(peerId, 'peerId');
    const messageBytes = check.integer(o['messageBytes'], 'messageBytes', 0);
    const count = check.integer(o['count'], 'count', 1);
    const timeoutMs = check.integer(o['timeoutMs'], 'timeoutMs', 1, undefined, undefined);
    await this.#joined();
    const { ms } = await (await this.node()).probePeer({ peerId, bytes: new Uint8Array(messageBytes), count, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    const bytes = messageBytes * count;
    return { bytes, ms, mbps: bytes / 1e6 / (ms / 1000) };
  }

  /**
   * Measures peer RPC round trips to a peer: `rounds` `echo` requests of `messageBytes`, one at
   * a time, timed in this node's worker (from its send to the peer's answer, without the
   * page↔worker hop of {@link echo}). A diagnostic, and the `net.rpc.rtt` benchmark.
   * @example const { rttMs } = await letterbox.probePeerRtt(peerId, { messageBytes: 32, rounds: 100 });
   */
  async probePeerRtt(peerId: string, options: { messageBytes: number; rounds: number; timeoutMs?: number }): Promise<{ rttMs: number[] }> {
    const o = check.object(options, 'probePeerRtt options');
    check.string(peerId, 'peerId');
    const messageBytes = check.integer(o['messageBytes'], 'messageBytes', 0);
    const rounds = check.integer(o['rounds'], 'rounds', 1);
    const timeoutMs = check.integer(o['timeoutMs'], 'timeoutMs', 1, undefined, undefined);
    await this.#joined();
    return (await this.node()).probePeerRtt({ peerId, bytes: new Uint8Array(messageBytes), rounds, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }

  /**
   * Peers refused admission to this node's cluster (a different secret, or none), by this node or by them, with why.
   * @example for (const { peerId, reason } of await letterbox.refusedPeers()) console.warn(peerId, reason);
   */
  async refusedPeers(): Promise<Array<{ peerId: string; reason: string }>> {
    await this.#joined();
    return (await this.node()).refusedPeers();
  }

  /**
   * Dial counters of the cluster network (attempts, retries, failures, time to connect), for diagnostics.
   * @example const { retries } = await letterbox.networkStats();
   */
  async networkStats(): Promise<DialStats> {
    return (await this.#joined()).dialStats();
  }

  /**
   * The client's logger, as KafkaJS's `kafka.logger()`.
   * @example letterbox.logger().info('started', { tab: 1 });
   */
  logger(): Logger {
    return this.#logger;
  }

  /**
   * Listens to an event; returns a function that stops listening.
   * @example const off = letterbox.on('letterbox.storage_lost', (e) => console.warn(e.payload));
   */
  on<E extends keyof LetterboxEvents>(type: E, listener: Listener<E>): () => void {
    check.listener(type, listener, LETTERBOX_EVENTS);
    const set = this.#listeners.get(type) ?? new Set();
    set.add(listener as Listener<keyof LetterboxEvents>);
    this.#listeners.set(type, set);
    return () => set.delete(listener as Listener<keyof LetterboxEvents>);
  }

  /**
   * Stops the node and its worker; this instance and its clients cannot be used afterwards.
   * @example await letterbox.close();
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    globalThis.removeEventListener?.('pagehide', this.#handOver);
    await this.#adopter?.stop();
    // Leaderships move to in-sync followers first, while the network still carries the transfers.
    await (await this.#connection?.catch(() => undefined))?.node.handOver().catch(() => undefined);
    await (await this.#network?.catch(() => undefined))?.stop();
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection === undefined) return;
    const settled = await connection.catch(() => undefined);
    if (settled === undefined) return;
    heldByThisPage.delete(settled.info.slot);
    await settled.close();
  }

  /**
   * A page going away hands its broker's leaderships over as close() does, as far as the
   * browser lets the worker run (not always: a closed tab's worker may stop at once). A page
   * kept in the back-forward cache (`persisted`) may come back: it only goes quiet, as a busy tab does.
   */
  readonly #handOver = (event: PageTransitionEvent): void => {
    if (event.persisted) return;
    void this.#connection?.then((connection) => connection.node.handOver()).catch(() => undefined);
  };

  /** @internal The running node, started on first use. */
  async node(): Promise<RemoteNode> {
    return (await this.#connectOnce()).node;
  }

  #emit<E extends keyof LetterboxEvents>(type: E, payload: LetterboxEvents[E]): void {
    for (const listener of this.#listeners.get(type) ?? []) listener({ type, timestamp: Date.now(), payload });
  }

  async #joined(): Promise<PeerNetwork> {
    if (this.#cluster === undefined) throw new InvalidArgumentError('this Letterbox has no relay network: pass new Letterbox({ cluster, relay })');
    await this.#connectOnce();
    if (this.#network === undefined) throw new NotConnectedError('this Letterbox instance was closed');
    return this.#network;
  }

  /** Joins the broker to its cluster: over the relay network for a named one, over the local transport for the origin's. */
  #joinCluster(connection: NodeConnection, clusterName: string): void {
    const log = this.#logger.namespace('Network');
    const onEvent = (event: NetworkEvent | ClusterEvent) => {
      const { type, ...payload } = event;
      if (type === 'relay') log[event.connected ? 'info' : 'warn'](event.connected ? 'joined the cluster on the relay' : 'lost the relay; reconnecting', payload);
      else if (type === 'cluster_mismatch' || type === 'cluster_topic_clash') log.error(event.message, payload);
      else if (type === 'cluster_joined') {
        this.#brokerId = event.brokerId;
        log.info(event.bootstrap ? 'bootstrapped the cluster' : 'broker of the cluster', payload);
      }
      else if (type === 'replication_health') log[event.underReplicated + event.offline > 0 ? 'warn' : 'info'](event.underReplicated + event.offline > 0 ? 'partitions under-replicated or offline' : 'every partition fully replicated', payload);
      else if (type !== 'peer_quality') log.info(type === 'peer_joined' ? 'peer joined' : 'peer left', type === 'peer_joined' ? { peerId: event.peer.peerId } : payload);
      if (type === 'peer_joined') this.#emit('letterbox.peer_joined', event.peer);
      else this.#emit(`letterbox.${type}`, payload as LetterboxEvents[`letterbox.${typeof type}`]);
    };
    const device = deviceId();
    const reassignAfterMs = this.#reassignAfterMs;
    const cluster = this.#cluster;
    if (cluster === undefined) {
      void connection.node.joinLocalCluster({ cluster: clusterName, deviceId: device, ...(reassignAfterMs === undefined ? {} : { reassignAfterMs }) }, proxy(onEvent));
      return;
    }
    this.#network = loadJoinCluster().then((joinCluster) => joinCluster(connection.node, { ...cluster, deviceId: device, ...(reassignAfterMs === undefined ? {} : { reassignAfterMs }), onEvent }));
    // peerId() and peers() report a failed start; listeners hear of it too.
    this.#network.catch((error: unknown) => this.#emit('letterbox.relay', { connected: false, error: String(error) }));
  }

  /** Watches the other tabs' slots of the origin's cluster, to run the broker of one that closes (config `adoptSlots`). */
  #adoptSlots(ownSlot: number): void {
    const cluster = this.#clusterName;
    // Over the local transport: an adopted broker is met by this browser's tabs (not over the relay, yet).
    if (this.#config.adoptSlots === 0 || cluster === undefined || this.#cluster?.localPeers === false || typeof navigator === 'undefined' || navigator.locks === undefined) return;
    const device = deviceId();
    this.#adopter = new SlotAdopter({
      ownSlot,
      knownSlots: () => Object.keys(readJson<Record<string, string>>(webStorage('localStorage'), INCARNATIONS_KEY, {})).map(Number).filter(Number.isInteger).sort((a, b) => a - b),
      maxAdopted: this.#config.adoptSlots,
      start: async (slot) => {
        heldByThisPage.add(slot);
        const init = { clientId: `${this.clientId}-adopted-${slot}`, preferredSlot: slot, adopt: true, slotWaitMs: 0, knownIncarnations: {}, onStorageLost: 'fail' as const, cluster };
        const connection = await connectNode(init, this.#config.workerStartTimeoutMs).finally(() => heldByThisPage.delete(slot));
        return {
          join: (onJoined) => {
            const onEvent = (event: ClusterEvent) => event.type === 'cluster_joined' && onJoined(event.brokerId);
            const hostedBy = this.#brokerId;
            const options = { cluster, deviceId: device, ...(this.#reassignAfterMs === undefined ? {} : { reassignAfterMs: this.#reassignAfterMs }), ...(hostedBy === undefined ? {} : { hostedBy }) };
            connection.node.joinLocalCluster(options, proxy(onEvent));
          },
          handOver: () => connection.node.handOver(),
          close: () => connection.close(),
        };
      },
      logger: this.#logger.namespace('Slots'),
      onChange: (adopted) => this.#emit('letterbox.slots_adopted', { adopted: [...adopted] }),
    });
  }

  /**
   * The closed tabs' slots whose brokers this tab runs (config `adoptSlots`), with their broker ids once they rejoined.
   * @example const hosted = letterbox.adoptedSlots(); // [{ slot: 1, brokerId: 2 }]
   */
  adoptedSlots(): AdoptedSlot[] {
    return this.#adopter?.adopted() ?? [];
  }

  #connectOnce(): Promise<NodeConnection> {
    if (this.#closed) return Promise.reject(new NotConnectedError('this Letterbox instance was closed'));
    this.#connection ??= this.#start();
    return this.#connection;
  }

  async #start(): Promise<NodeConnection> {
    const session = webStorage('sessionStorage');
    const local = webStorage('localStorage');
    const remembered = readJson<number | undefined>(session, SESSION_SLOT_KEY(this.clientId), undefined);
    const preferredSlot = remembered !== undefined && !heldByThisPage.has(remembered) ? remembered : undefined;
    const knownIncarnations = readJson<Record<number, string>>(local, INCARNATIONS_KEY, {});
    try {
      const connection = await connectNode(
        {
          clientId: this.clientId,
          ...(preferredSlot === undefined ? {} : { preferredSlot }),
          slotWaitMs: this.#config.slotWaitMs,
          knownIncarnations,
          onStorageLost: this.#config.onStorageLost,
          ...(this.#clusterName !== undefined && { cluster: this.#clusterName }),
        },
        this.#config.workerStartTimeoutMs,
      );
      const { slot, incarnation, storageLost } = connection.info;
      heldByThisPage.add(slot);
      session?.setItem(SESSION_SLOT_KEY(this.clientId), JSON.stringify(slot));
      local?.setItem(INCARNATIONS_KEY, JSON.stringify({ ...readJson<Record<number, string>>(local, INCARNATIONS_KEY, {}), [slot]: incarnation }));
      this.#logger.info('node started', { slot, incarnation, databaseName: connection.info.databaseName });
      if (storageLost) {
        this.#logger.warn('the slot’s database was lost; started afresh', { slot });
        this.#emit('letterbox.storage_lost', { slot, incarnation });
      }
      globalThis.addEventListener?.('pagehide', this.#handOver);
      this.#emit('letterbox.connect', connection.info);
      if (this.#clusterName !== undefined) this.#joinCluster(connection, this.#clusterName);
      this.#adoptSlots(slot);
      return connection;
    } catch (error) {
      this.#connection = undefined; // a later call may try again
      this.#logger.error('node failed to start', { error: error instanceof Error ? error.message : String(error) });
      if (error instanceof StorageLostError) this.#emit('letterbox.storage_lost', { slot: error.slot });
      throw error;
    }
  }
}
