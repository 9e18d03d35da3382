import type { Clock } from '../clock';
import { isInternalTopic, type ControllerReply, type ControllerRequestBody } from '../cluster';
import {
  InvalidArgumentError,
  InvalidConfigError,
  InvalidTopicError,
  NotConnectedError,
  NotLeaderOrFollowerError,
  OffsetOutOfRangeError,
  SlotNotAdoptableError,
  StorageLostError,
  TimeoutError,
  UnknownProducerIdError,
  UnknownTopicOrPartitionError,
  type LetterboxError,
} from '../errors';
import { checkBatch, createLogManager, defaultLogConfig, isIdempotentBatch, type BackgroundMaintenance, type LogManager, type OpenLogOptions, type PartitionLog } from '../log';
import { createLocalLink, createPeerLink, createPeerRpc, PeerNotConnectedError, type LocalLocks, type PeerLink, type PeerRpc } from '../network/worker';
import type { BatchHeader } from '../protocol';
import type { PartitionId, Storage, StorageWrite } from '../storage';
import type { ClusterEvent, FetchedPartition, FetchRequest, JoinReply, NodeApi, PeerRequestReport, NodeInfo, NodeStartInit, ProduceRequest, ProduceResult, SyncReply, TopicDefinition, TopicSpec } from './api';
import { Executor } from './executor';
import { ClusterGroups } from './group-routing';
import { GROUP_TICK_MS, GroupRuntime } from './groups';
import { claimSlot, type SlotClaim, type SlotLocks } from './slots';
import { BROWSER_TIMING, LOCAL_TIMING, Membership } from './membership';
import type { ClusterTiming } from './cluster';
import { OFFSETS_PARTITIONS, OFFSETS_REPLICATION_FACTOR, OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS } from './offsets-topic';
import { PartitionRaftStore } from './partition-store';
import { isReplicated, partitionGroup, PREFERRED_LEADER_DELAY_ELECTIONS, ReplicaManager } from './replicas';
import { fetchRouted, listOffsetsRouted, produceRouted, serveRouted, type Route, type RoutedBroker } from './routing';
import { tracedCall } from './request-reports';
import { collidingTopic, configEntriesOf, defineTopic, hostedTopics, parseConfigEntries, PARTITIONS_MAX } from './topics';

/** What the node needs from its environment: I/O and the clock, passed in so tests can supply their own. */
export interface BrokerNodeComponents {
  openStorage(name: string): Promise<Storage>;
  locks: SlotLocks;
  /** Time and timers for everything the node runs. */
  clock: Clock;
  randomId(): string;
  /** Receives errors from background work (maintenance). */
  onError?(error: unknown): void;
  /** The Web Locks the local transport watches other tabs by; default navigator.locks. */
  localLocks?: LocalLocks;
}

/** Written once into a new database; its absence where the page remembers one means the data was lost. */
interface DatabaseMarker {
  incarnation: string;
  createdAt: number;
}

/** Node-level storage key of the slot's libp2p private key (protobuf bytes): the slot's peer id. */
const NETWORK_KEY = 'networkKey';

/** Longest a fetch may wait for data: bounds how long a request holds the node's resources. */
const FETCH_WAIT_MAX_MS = 60_000;

interface Running {
  claim: SlotClaim;
  executor: Executor;
  groups: GroupRuntime;
  storage: Storage;
  logs: LogManager;
  topics: Map<string, TopicDefinition>;
  info: NodeInfo;
  maintenance: BackgroundMaintenance;
  fetches: Map<number, AbortController>;
  /** Metadata changes (create, delete, grow, alter) run one at a time, in call order. */
  metadataQueue: Promise<void>;
  /** Topics being deleted (with how many deletes of each are waiting): produce refuses them from the moment a delete is called. */
  deleting: Map<string, number>;
  /** Appends in flight per topic, which a delete of the topic waits for. */
  appending: Map<string, Set<Promise<unknown>>>;
  /** The cluster this node is a broker of, once the network is attached with one (else a private broker). */
  membership: Membership | undefined;
  /** Routes requests for partitions led by other brokers, while this node is a broker of a cluster. */
  router: RoutedBroker | undefined;
  /** The cluster's consumer groups (each coordinated by the leader of its offsets partition), while this node is a broker of a cluster; else `groups` serves them. */
  clusterGroups: ClusterGroups | undefined;
  /** The replicas of the cluster's partitions placed on this broker (raft groups), once it is registered in a cluster. */
  replicas: ReplicaManager | undefined;
  /** Whether the local topics are being brought in line with the image, and whether the image changed since that began. */
  syncing: boolean;
  imageChanged: boolean;
  /** Conditions on the local topics that admin calls wait for, checked after each sync. */
  synced: Set<() => void>;
  /** Private topics offered to the cluster in this run (once each), placed on this broker: adopted when the cluster creates them so. */
  offered: Set<string>;
  /** Whether the committed offsets this broker kept as a private broker are being offered to the cluster's groups. */
  offeringOffsets: boolean;
  /** Tells the page of cluster events (joined, a mismatch, a topic that could not join). */
  clusterEvent: (event: ClusterEvent) => void;
  /** Settles once the node joined the cluster it was started for (NodeStartInit.cluster) and its image caught up; absent for a private broker. */
  joining: JoinGate | undefined;
  /** The image (its records applied) the local topics were last brought in line with: stored, so a restarted broker acts on none older. */
  syncedRecords: number;
  /** The block of producer ids this broker hands out (from the controller, or its own as a private broker), and a refill under way. */
  producerIds: { next: number; end: number; cluster: boolean } | undefined;
  producerIdRefill: Promise<void> | undefined;
  /** A private broker's producer ids below this were handed out (stored under PRODUCER_IDS_KEY). */
  privateProducerIdsEnd: number;
  /** The last produce in line behind a producer id this broker does not know yet (appendHere); undefined when none waits. */
  producerIdLine: Promise<void> | undefined;
}

/** Node-level storage key of a private broker's producer id blocks: one past the last id of the last block. */
const PRODUCER_IDS_KEY = 'producerIds';
/** Ids per block a private broker takes for itself (as the controller's blocks, KIP-730). */
const PRIVATE_PRODUCER_ID_BLOCK = 1000;

/** Opens once: calls that depend on the cluster wait for it. */
interface JoinGate {
  readonly done: Promise<void>;
  /** Whether it opened (read on every call, so an open gate costs no timer). */
  readonly open: boolean;
  joined(): void;
}

/** How long an admin change waits for the active controller and for this broker to apply it (KafkaJS's requestTimeout is 30 s). */
export const CLUSTER_ADMIN_TIMEOUT_MS = 30_000;

export const databaseNameOf = (slot: number) => `letterbox-slot-${slot}`;

/** Node-level key of a topic's definition; the topics are those with partitions in storage (listPartitions). */
const topicKey = (name: string) => `topic:${name}`;
/** Node-level key of the records applied in the image the local topics follow, in cluster `name` (Running.syncedRecords). */
const syncedKey = (name: string) => `cluster-synced:${name}`;
/** Node-level key of the address (peer id) this slot's broker joined cluster `name` under: a tab that adopts the slot runs it there again. */
const addressKey = (name: string) => `cluster-address:${name}`;
/** Where versions before per-topic rows kept all definitions in one value (read once, then moved). */
const LEGACY_TOPICS_KEY = 'topics';
const EMPTY_PARTITION = { logStartOffset: 0, recoveryPoint: 0, highWatermark: 0 };

/** The cluster's timing with the page's `reassignAfterMs`, when it gave one. */
const withReassignAfter = (timing: ClusterTiming, reassignAfterMs: number | undefined): ClusterTiming => (reassignAfterMs === undefined ? timing : { ...timing, reassignAfterMs });

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
const partitionIds = (name: string, from: number, to: number): PartitionId[] => range(from, to).map((partition) => ({ topic: name, partition }));

/**
 * The topic definitions in storage. Partitions left without a definition (a delete cut short
 * by a crash in an earlier version) are deleted; definitions in the legacy single value move to their own rows.
 */
async function loadTopics(storage: Storage): Promise<{ topics: Map<string, TopicDefinition>; stored: PartitionId[] }> {
  const legacy = (await storage.readValue(LEGACY_TOPICS_KEY)) as TopicDefinition[] | undefined;
  if (legacy !== undefined) {
    await storage.write([...legacy.map((d): StorageWrite => ({ kind: 'putValue', key: topicKey(d.name), value: d })), { kind: 'putValue', key: LEGACY_TOPICS_KEY, value: undefined }]);
  }
  const stored = await storage.listPartitions();
  const topics = new Map<string, TopicDefinition>();
  for (const name of new Set(stored.map((id) => id.topic))) {
    const definition = (await storage.readValue(topicKey(name))) as TopicDefinition | undefined;
    if (definition !== undefined) topics.set(name, definition);
  }
  const orphans = stored
    .filter((id) => id.partition >= (topics.get(id.topic)?.numPartitions ?? 0))
    .map((id): StorageWrite => ({ kind: 'deletePartition', id }));
  if (orphans.length > 0) await storage.write(orphans);
  return { topics, stored: stored.filter((id) => id.partition < (topics.get(id.topic)?.numPartitions ?? 0)) };
}

/** A promise and the function that settles it. */
function joinGate(): JoinGate {
  let open = (): void => undefined;
  const done = new Promise<void>((resolve) => (open = resolve));
  const gate = {
    done,
    open: false,
    joined() {
      gate.open = true;
      open();
    },
  };
  return gate;
}

/** Runs a metadata change after those before it: concurrent creates and deletes of one name see each other's outcome. */
function serially<T>(r: Running, change: () => Promise<T>): Promise<T> {
  const result = r.metadataQueue.then(change);
  r.metadataQueue = result.then(
    () => undefined,
    () => undefined,
  );
  return result;
}

/** `changes` as an array naming each topic once (one request changes a topic once, all or nothing). */
function distinct<T extends { topic: string }>(changes: readonly T[], what: string): readonly T[] {
  if (!Array.isArray(changes)) throw new InvalidArgumentError(`${what} takes an array of changes`);
  const names = new Set(changes.map((c) => c.topic));
  if (names.size !== changes.length) throw new InvalidArgumentError(`${what} names a topic more than once`);
  return changes;
}

const partitionCounts = (topics: Map<string, TopicDefinition>) => Object.fromEntries([...topics.values()].map((t) => [t.name, t.numPartitions]));
/** The topics users see listed: internal ones (`__consumer_offsets`) are described only by name, as Kafka's consumers exclude them. */
const userTopics = (r: Running): string[] => [...r.topics.keys()].filter((name) => !isInternalTopic(name));
/** The group runtimes that hold committed offsets: the node's own, and the cluster's while it is a broker of one. */
const groupRuntimes = (r: Running): GroupRuntime[] => [r.groups, ...(r.clusterGroups?.runtimes() ?? [])];

/**
 * A broker node on one slot: topics and their partition logs, produce and fetch. The
 * worker entry exposes it through Comlink; tests drive it directly.
 * @example const node = createBrokerNode(components); await node.start(init);
 */
export function createBrokerNode(components: BrokerNodeComponents): NodeApi {
  let running: Running | undefined;
  let starting = false;
  /** The worker's end of the page's network bridge (attachNetwork), while the page runs one. */
  let peerLink: PeerLink | undefined;
  /** Requests and one-way messages to peers over peerLink. */
  let peerRpc: PeerRpc | undefined;
  /** echoPeer calls in progress, by the caller's key, for cancelPeerRequest. */
  const peerRequests = new Map<number, AbortController>();
  /** Why each refused peer was refused admission, for refusedPeers(). */
  const refused = new Map<string, string>();
  /** Where the peer requests of traced calls are reported (reportPeerRequests), once the page asked: resolves once the page has taken the report. */
  let peerReport: ((report: PeerRequestReport) => Promise<void>) | undefined;
  /** Runs a routed call on `router`: traced, its peer requests reported and taken by the page before it answers. */
  const routed = <T>(router: RoutedBroker, trace: number | undefined, call: (router: RoutedBroker) => Promise<T>): Promise<T> =>
    trace === undefined || peerReport === undefined ? call(router) : tracedCall(router, trace, peerReport, components.clock, call);

  const state = (): Running => {
    if (running === undefined) throw new NotConnectedError('the broker node is not started (or was closed)');
    return running;
  };

  /**
   * The running node, once it has joined the cluster it was started for and its image has
   * caught up: what its topics are depends on the cluster. Rejects with TimeoutError past the
   * admin timeout (no controller answers, or the broker cannot register).
   */
  const joined = async (): Promise<Running> => {
    const gate = state().joining;
    if (gate !== undefined && !gate.open) {
      let cancel = (): void => undefined;
      const timedOut = new Promise<never>((_, reject) => {
        cancel = components.clock.after(CLUSTER_ADMIN_TIMEOUT_MS, () => reject(new TimeoutError(`this broker has not joined its cluster within ${CLUSTER_ADMIN_TIMEOUT_MS} ms (registered with a controller, its metadata caught up)`)));
      });
      try {
        await Promise.race([gate.done, timedOut]);
      } finally {
        cancel();
      }
    }
    return state();
  };

  const logOf = (topic: string, partition: number): PartitionLog => {
    const { topics, logs } = state();
    const definition = topics.get(topic);
    if (definition === undefined || state().deleting.has(topic)) throw new UnknownTopicOrPartitionError(topic);
    const log = logs.get({ topic, partition });
    if (log !== undefined && Number.isInteger(partition)) return log;
    // A partition of the cluster's placed on another broker.
    const placed = definition.topicId === undefined ? undefined : placementOf(topic, partition);
    if (placed !== undefined) throw new NotLeaderOrFollowerError(topic, partition, placed.leader);
    throw new UnknownTopicOrPartitionError(topic, partition);
  };

  /** A partition's placement in the cluster's image: its leader (a broker id, -1 for none), replicas and in-sync replicas. */
  const placementOf = (topic: string, partition: number): { leader: number; replicas: number[]; isr: number[] } | undefined => {
    const info = running?.membership?.image?.topicByName(topic)?.partitions[partition];
    if (info === undefined) return undefined;
    // The leader hint until replicated partitions elect leaders (Cluster II): the only replica.
    return { leader: info.leader >= 0 ? info.leader : (info.replicas[0] ?? -1), replicas: [...info.replicas], isr: [...info.isr] };
  };

  /** A cluster's topic with replicas is replicated (its high watermark follows raft's commit); one of a single replica, or a private broker's, follows its durable end. */
  const logOptionsOf = (definition: TopicDefinition): OpenLogOptions => ({ highWatermark: definition.topicId !== undefined && isReplicated(definition.replicationFactor) ? 'replicated' : 'durable-end' });

  /**
   * Stores topic definitions, each with its new `partitions`, in one
   * transaction (any leftovers under their keys are cleared in it); only then does memory
   * change. A failure (a full disk) changes nothing.
   */
  async function storeTopics(r: Running, changes: ReadonlyArray<{ definition: TopicDefinition; partitions: readonly number[] }>): Promise<void> {
    if (changes.length === 0) return;
    const added = changes.map(({ definition, partitions }) => ({ definition, ids: partitions.map((partition): PartitionId => ({ topic: definition.name, partition })) }));
    await r.storage.write(
      added.flatMap(({ definition, ids }): StorageWrite[] => [
        ...ids.flatMap((id): StorageWrite[] => [{ kind: 'deletePartition', id }, { kind: 'putMeta', id, meta: EMPTY_PARTITION }]),
        { kind: 'putValue', key: topicKey(definition.name), value: definition },
      ]),
    );
    for (const { definition, ids } of added) {
      for (const id of ids) await r.logs.open(id, definition.config, logOptionsOf(definition));
      r.topics.set(definition.name, definition);
    }
    for (const groups of groupRuntimes(r)) groups.topicsChanged(partitionCounts(r.topics));
  }

  /** Creates the topics that do not exist, all or none; per topic, whether it was created. Run serially. */
  async function createTopics(r: Running, definitions: readonly TopicDefinition[]): Promise<boolean[]> {
    const fresh: TopicDefinition[] = [];
    const created = definitions.map((definition) => {
      if (r.topics.has(definition.name)) return false;
      const colliding = collidingTopic(definition.name, [...r.topics.keys(), ...fresh.map((d) => d.name)]);
      if (colliding !== undefined) throw new InvalidTopicError(`topic "${definition.name}" collides with topic "${colliding}" ("." and "_" may not tell topics apart, as in Kafka)`);
      fresh.push(definition);
      return true;
    });
    for (const { name } of fresh) for (const groups of groupRuntimes(r)) await groups.beforeTopicCreated(name);
    await storeTopics(r, fresh.map((definition) => ({ definition, partitions: range(0, definition.numPartitions) })));
    return created;
  }

  /**
   * Deletes topics whose sends are already refused (fenced): waits for their appends in flight,
   * then removes definitions and data in one transaction of deletes only (Chromium lets those
   * through when the disk is full, so a full disk can be freed), and only then from memory. Run serially.
   */
  async function deleteFenced(r: Running, names: readonly string[]): Promise<void> {
    const clusterId = r.membership?.runtime.session.identity?.clusterId;
    const definitions = names.map((name) => {
      const definition = r.topics.get(name);
      if (definition === undefined) throw new UnknownTopicOrPartitionError(name);
      return definition;
    });
    await Promise.all(definitions.flatMap(({ name }) => [...(r.appending.get(name) ?? [])]));
    await r.storage.write(
      definitions.flatMap(({ name, numPartitions, topicId }): StorageWrite[] => [
        { kind: 'putValue', key: topicKey(name), value: undefined },
        ...partitionIds(name, 0, numPartitions).map((id): StorageWrite => ({ kind: 'deletePartition', id })),
        // A replicated partition's raft state (its batches went with the partition).
        ...(topicId === undefined || clusterId === undefined ? [] : range(0, numPartitions).flatMap((partition) => PartitionRaftStore.erase(partitionGroup(clusterId, topicId, partition)))),
      ]),
    );
    for (const { name } of definitions) r.topics.delete(name);
    for (const groups of groupRuntimes(r)) groups.topicsChanged(partitionCounts(r.topics));
    // Waiting fetches end now (they may wait on these logs): their consumers hear of the delete at once.
    for (const controller of r.fetches.values()) controller.abort();
    for (const { name, numPartitions } of definitions) {
      // Drops the open logs (their data went in the transaction above).
      await Promise.all(partitionIds(name, 0, numPartitions).map((id) => r.logs.delete(id).catch(() => undefined)));
      for (const groups of groupRuntimes(r)) await groups.topicDeleted(name);
    }
  }

  // --- a broker of a cluster: its topics follow the metadata image; admin goes through the controller ---

  /** How often replicated partitions compact their raft logs where retention would delete (the log's maintenance round deletes them after). */
  const RAFT_COMPACT_EVERY_MS = 60_000;

  /**
   * The replicas of the partitions placed on this broker of `membership`, on its metadata
   * member's executor (whose frames reach the other brokers); each raft leader reports itself
   * to the controller (alterPartition), so that other brokers route to it.
   */
  function replicaManager(r: Running, membership: Membership, brokerId: number): ReplicaManager {
    const executor = membership.runtime.executor;
    if (executor === undefined) throw new InvalidArgumentError('a registered broker runs its metadata member');
    const { timing } = membership.runtime.init;
    const clusterId = membership.runtime.session.identity?.clusterId;
    if (clusterId === undefined) throw new InvalidArgumentError('a registered broker knows its cluster id');
    const incarnation = r.info.incarnation;
    const manager = new ReplicaManager({
      clusterId,
      executor,
      logs: r.logs,
      storage: r.storage,
      clock: components.clock,
      self: { brokerId, incarnation },
      raft: {
        electionTicks: timing.electionTicks,
        heartbeatTicks: timing.heartbeatTicks,
        // 8 appends of up to 1 MiB out per follower: with 4, a follower catching up in bulk
        // often had all 4 out and unanswered (the leader's progress for it, sampled every 250 ms).
        maxInflightAppends: 8,
        maxEntriesPerAppend: 256,
        maxBytesPerAppend: 1 << 20,
        maxUncommittedEntries: 4096,
        maxApplyBytesPerStep: 1 << 20,
        maxPendingReads: 4,
      },
      seed: brokerId,
      configOf: (topic) => r.topics.get(topic)?.config ?? {},
      reportLeadership: async (report) => {
        const reply = await membership.admin({ type: 'alterPartition', brokerId, incarnation, ...report }, CLUSTER_ADMIN_TIMEOUT_MS);
        if (reply.type === 'error') throw reply.error;
      },
      checkEveryMs: timing.tickMs * timing.heartbeatTicks,
      preferredLeaderDelayMs: PREFERRED_LEADER_DELAY_ELECTIONS * timing.tickMs * timing.electionTicks,
      compactEveryMs: RAFT_COMPACT_EVERY_MS,
    });
    membership.onClose(() => {
      manager.close();
      if (r.replicas === manager) r.replicas = undefined;
    });
    return manager;
  }

  /**
   * Brings the local topics in line with the image, after the queued metadata changes:
   * partitions placed on this broker are created, topics gone from the image (or created
   * again under a new id) are deleted, configs follow. Once more when the image changed meanwhile.
   */
  function imageChanged(r: Running): void {
    r.imageChanged = true;
    if (r.syncing) return;
    r.syncing = true;
    serially(r, async () => {
      while (r.imageChanged) {
        r.imageChanged = false;
        await syncTopics(r);
      }
    })
      .catch((error: unknown) => components.onError?.(error))
      .finally(() => {
        r.syncing = false;
        for (const check of [...r.synced]) check();
        if (r.imageChanged) imageChanged(r);
      });
  }

  async function syncTopics(r: Running): Promise<void> {
    const membership = r.membership;
    const image = membership?.image;
    const brokerId = membership?.runtime.session.identity?.brokerId;
    if (membership === undefined || image === undefined || brokerId === undefined) return;
    if (!caughtUp(r, membership)) return;
    if (image.recordsApplied > r.syncedRecords) {
      // Stored before acting on it: whatever the local topics hold came from an image no newer.
      await r.storage.write([{ kind: 'putValue', key: syncedKey(membership.init.clusterName), value: image.recordsApplied }]);
      r.syncedRecords = image.recordsApplied;
    }
    const wanted = hostedTopics(image, brokerId);
    offerPrivateTopics(r, brokerId);
    const gone = [...r.topics.values()].filter((d) => d.topicId !== undefined && wanted.get(d.name)?.definition.topicId !== d.topicId).map((d) => d.name);
    r.replicas ??= replicaManager(r, membership, brokerId);
    if (gone.length > 0) {
      r.replicas.closeTopics(gone);
      await deleteFenced(r, gone);
    }
    const changes: Array<{ definition: TopicDefinition; partitions: number[] }> = [];
    let altered = false;
    for (const { definition, partitions } of wanted.values()) {
      const current = r.topics.get(definition.name);
      if (current !== undefined && current.topicId === undefined) {
        // A private topic (made before this slot joined the cluster): it becomes the cluster's
        // topic, data kept, when the cluster created it from this broker's offer; else it stays as it is.
        const adopted = r.offered.has(definition.name) && current.numPartitions === definition.numPartitions && partitions.length === definition.numPartitions;
        if (adopted) await r.storage.write([{ kind: 'putValue', key: topicKey(definition.name), value: { ...current, topicId: definition.topicId } }]);
        if (adopted) r.topics.set(definition.name, { ...current, topicId: definition.topicId });
        continue;
      }
      const fresh = partitions.filter((partition) => r.logs.get({ topic: definition.name, partition }) === undefined);
      if (current === undefined) for (const groups of groupRuntimes(r)) await groups.beforeTopicCreated(definition.name);
      const reconfigured = current !== undefined && JSON.stringify(current.config) !== JSON.stringify(definition.config);
      if (fresh.length > 0 || current === undefined || current.numPartitions !== definition.numPartitions || reconfigured) {
        changes.push({ definition, partitions: fresh });
      }
      altered ||= reconfigured;
    }
    await storeTopics(r, changes);
    await r.replicas.follow(image);
    for (const { definition } of changes) {
      for (const partition of wanted.get(definition.name)!.partitions) r.logs.get({ topic: definition.name, partition })?.setConfig(definition.config);
    }
    // A shorter retention altered through any broker applies now, not at the next interval.
    if (altered) r.maintenance.runSoon();
    // Caught up, the local topics follow, and unfenced (registered again after a restart; a
    // broker that left was fenced on its own request): calls waiting for the cluster go on.
    if (image.broker(brokerId)?.fenced === false) r.joining?.joined();
    offerPrivateOffsets(r);
  }

  /**
   * Offers the cluster's groups the offsets this broker committed as a private broker, for
   * topics that joined the cluster with it (adopted): a partition the cluster's group has no
   * offset for gets this one; an offset the cluster has stays (it is the newer truth). The
   * private group is deleted once offered, so it is offered once; a failure leaves it for the
   * next sync. Offsets of topics that stayed private go with it: group calls reach the cluster's groups now.
   */
  function offerPrivateOffsets(r: Running): void {
    const clusterGroups = r.clusterGroups;
    if (clusterGroups === undefined || r.offeringOffsets) return;
    const joinedTopic = (topic: string) => r.topics.get(topic)?.topicId !== undefined;
    const groupIds = r.groups.list().map(({ groupId }) => groupId).filter((groupId) => r.groups.committed(groupId).some((o) => joinedTopic(o.topic)));
    if (groupIds.length === 0) return;
    r.offeringOffsets = true;
    const offer = async (groupId: string) => {
      const mine = r.groups.committed(groupId).filter((o) => joinedTopic(o.topic));
      const theirs = new Set((await clusterGroups.fetchOffsets(groupId)).map((o) => `${o.topic}/${o.partition}`));
      const fresh = mine.filter((o) => !theirs.has(`${o.topic}/${o.partition}`));
      if (fresh.length > 0) await clusterGroups.commitOffsets({ groupId, memberId: null, generationId: -1, offsets: fresh });
      await new Promise((resolve) => r.groups.submit({ type: 'deleteGroup', groupId }, resolve));
    };
    groupIds
      .reduce((done, groupId) => done.then(() => offer(groupId)), Promise.resolve())
      .catch((error: unknown) => components.onError?.(error))
      .finally(() => (r.offeringOffsets = false));
  }

  /**
   * Offers the cluster this broker's private topics (once each per run) placed on this
   * broker, partition for partition, with their configs: where the name is free the cluster
   * creates it and the next sync adopts the local topic, data and all; a name the cluster
   * already has is reported (the event `cluster_topic_clash`) and the topic stays private.
   */
  function offerPrivateTopics(r: Running, brokerId: number): void {
    const membership = r.membership;
    const offers = [...r.topics.values()].filter((d) => d.topicId === undefined && !r.offered.has(d.name) && !r.deleting.has(d.name));
    if (membership === undefined || offers.length === 0) return;
    for (const { name } of offers) r.offered.add(name);
    const topics = offers.map((d) => ({
      name: d.name,
      configs: configEntriesOf(d.config),
      assignments: Array.from({ length: d.numPartitions }, (_, partition) => ({ partition, replicas: [brokerId] })),
    }));
    throughController(membership, { type: 'createTopics', topics }).then(
      (results) => {
        for (const [topic, error] of results) {
          if (error === undefined) continue;
          components.onError?.(error);
          r.clusterEvent({ type: 'cluster_topic_clash', topic, message: `this broker's own topic "${topic}" stays private: ${error.message}` });
        }
      },
      // Not offered after all: offered again at the next sync.
      (error: unknown) => {
        for (const { name } of offers) r.offered.delete(name);
        components.onError?.(error);
      },
    );
  }

  /**
   * Whether every replicated partition of `topic` has a leader that raft elected and the
   * metadata shows (epoch above the placement's 0): a created topic is ready to produce to, as
   * KafkaJS's createTopics waits for leaders.
   */
  function leadersReported(membership: Membership, topic: string): boolean {
    return membership.image?.topicByName(topic)?.partitions.every((p) => !isReplicated(p.replicas.length) || p.leaderEpoch > 0) === true;
  }

  /** Resolves once `done` holds after a sync of the local topics (waits end in the order they began); rejects with TimeoutError past `timeoutMs`. */
  function untilSynced(r: Running, done: () => boolean, what: string, timeoutMs = CLUSTER_ADMIN_TIMEOUT_MS): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        r.synced.delete(check);
        cancel();
        resolve();
      };
      const cancel = components.clock.after(timeoutMs, () => {
        r.synced.delete(check);
        reject(new TimeoutError(`this broker did not apply ${what} within ${timeoutMs} ms`));
      });
      r.synced.add(check);
    });
  }

  /** Sends an admin change to the active controller; per topic, its error (undefined: done). Throws the answer's own error. */
  async function throughController(membership: Membership, request: ControllerRequestBody): Promise<Map<string, LetterboxError | undefined>> {
    const reply: ControllerReply = await membership.admin(request, CLUSTER_ADMIN_TIMEOUT_MS);
    if (reply.type === 'error') throw reply.error;
    if (reply.type !== 'topics') throw new InvalidArgumentError(`the controller answered ${request.type} with ${reply.type}`);
    return new Map(reply.results.map((result) => [result.topic, result.error]));
  }

  /** Per topic, whether it was created; an existing topic is false, any other refusal throws. */
  async function createThroughController(r: Running, membership: Membership, specs: readonly TopicSpec[]): Promise<boolean[]> {
    const results = await throughController(membership, {
      type: 'createTopics',
      topics: specs.map((spec) => ({
        name: spec.topic,
        ...(spec.numPartitions !== undefined && { numPartitions: spec.numPartitions }),
        ...(spec.replicationFactor !== undefined && { replicationFactor: spec.replicationFactor }),
        configs: spec.configEntries ?? [],
      })),
    });
    const created = specs.map(({ topic }) => {
      const error = results.get(topic);
      if (error !== undefined && error.code !== 'TOPIC_ALREADY_EXISTS') throw error;
      return error === undefined;
    });
    await untilSynced(r, () => specs.every(({ topic }) => r.topics.get(topic)?.topicId !== undefined && leadersReported(membership, topic)), `the creation of ${specs.map((s) => s.topic).join(', ')}`);
    return created;
  }

  /** Throws the first topic's refusal. */
  function refusedAny(results: Map<string, LetterboxError | undefined>): void {
    for (const error of results.values()) if (error !== undefined) throw error;
  }

  /**
   * Appends batches to the partitions held here: every batch is checked (`checked` holds
   * headers already checked) before any is appended, so a refused request writes nothing.
   * From the checks to the appends nothing awaits, so a delete of one of these topics either
   * started before (the topic is refused) or waits for these appends.
   */
  async function appendHere(r: Running, acks: ProduceRequest['acks'], batches: ProduceRequest['batches'], checked?: ReadonlyMap<number, BatchHeader>): Promise<ProduceResult[]> {
    const check = () =>
      batches.map(({ topic, partition, bytes }, i) => {
        // Only the coordinators write the offsets topic (a record that does not decode would fail its partition's load).
        if (isInternalTopic(topic)) throw new InvalidTopicError(`${topic} is an internal topic: producers cannot write to it`);
        const log = logOf(topic, partition);
        // Batches of topics created just now are checked again against the created log.
        const header = checked?.get(i) ?? log.check(bytes);
        // A producer id the cluster never handed out is forged (or this broker's metadata is behind: retriable).
        if (isIdempotentBatch(header) && !producerIdIssued(r, header.producerId)) throw new UnknownProducerIdError(topic, partition, header.producerId);
        return { log, bytes, header };
      });
    // A partition of the cluster is written through its raft group, answered as acks asks; a private one directly.
    const start = () => {
      const targets = check();
      const appends = targets.map(({ log, bytes, header }) => {
        const replica = r.replicas?.get(log.id.topic, log.id.partition);
        return replica === undefined ? log.append(bytes, { checked: header }) : replica.produce([bytes], acks);
      });
      return { targets, appends };
    };
    /**
     * Starts this request once those in line ahead of it have started, after `wait`: a request
     * must not overtake one that waits for its producer id (this broker's image may show the id
     * before the waits end), or the later batch would be taken first (a producer new to a
     * partition is taken at any sequence) and the earlier refused as out of order.
     */
    const inLine = (wait: () => Promise<void>) => {
      const started = (r.producerIdLine ?? Promise.resolve()).then(wait).then(start);
      const line = started.then(
        () => undefined,
        () => undefined,
      );
      r.producerIdLine = line;
      void line.then(() => r.producerIdLine === line && (r.producerIdLine = undefined));
      return started;
    };
    let started: ReturnType<typeof start>;
    if (r.producerIdLine !== undefined) {
      started = await inLine(async () => undefined);
    } else {
      try {
        started = start();
      } catch (error) {
        // Started again (nothing awaits from the checks to the appends) once the id is issued here, or its wait ended.
        if (!(error instanceof UnknownProducerIdError)) throw error;
        started = await inLine(() => untilProducerIdIssued(r, error.producerId));
      }
    }
    const { targets, appends } = started;
    const settled = Promise.allSettled(appends);
    for (const topic of new Set(batches.map((b) => b.topic))) {
      const inFlight = r.appending.get(topic) ?? new Set();
      r.appending.set(topic, inFlight.add(settled));
      void settled.then(() => {
        inFlight.delete(settled);
        if (inFlight.size === 0 && r.appending.get(topic) === inFlight) r.appending.delete(topic);
      });
    }
    if (acks === 0) {
      // The caller asked not to hear back: failures are the node's to report.
      for (const append of appends) append.catch((error: unknown) => components.onError?.(error));
      return targets.map(({ log }) => ({ topic: log.id.topic, partition: log.id.partition, baseOffset: -1, logStartOffset: log.logStartOffset }));
    }
    const results: Array<{ baseOffset: number }> = await Promise.all(appends);
    return results.map((result, i): ProduceResult => {
      const { log } = targets[i]!;
      return { topic: log.id.topic, partition: log.id.partition, baseOffset: result.baseOffset, logStartOffset: log.logStartOffset };
    });
  }

  /**
   * Waits, up to an election timeout, until this broker's metadata shows the block of
   * `producerId`: one handed out just now may not have reached it yet (a live member
   * hears every commit within an election timeout). Refusing such a batch would let the
   * producer's next batch, arriving after the block, be taken ahead of it (a producer new to a
   * partition is taken at any sequence); waiting takes them in the order they came, as the waits
   * end in the order they began. A forged id is refused after the wait.
   */
  async function untilProducerIdIssued(r: Running, producerId: number): Promise<void> {
    const timing = r.membership?.runtime.init.timing;
    if (timing === undefined) return; // a private broker's ids are its own: nothing comes later
    await untilSynced(r, () => producerIdIssued(r, producerId), `producer id ${producerId}'s block`, timing.tickMs * timing.electionTicks).catch(() => undefined);
  }

  /** Whether a producer id was handed out: by the cluster (its metadata shows the blocks), or by this private broker. */
  function producerIdIssued(r: Running, producerId: number): boolean {
    const image = r.membership?.image;
    return image !== undefined ? producerId < image.nextProducerId : producerId < r.privateProducerIdsEnd;
  }

  /** A producer id from this broker's block; a new block first when it ran out (or the broker joined a cluster since). */
  async function initProducerId(r: Running): Promise<{ producerId: number; producerEpoch: number }> {
    for (;;) {
      const block = r.producerIds;
      if (block !== undefined && block.next < block.end && block.cluster === (r.membership !== undefined)) return { producerId: block.next++, producerEpoch: 0 };
      r.producerIdRefill ??= refillProducerIds(r).finally(() => {
        r.producerIdRefill = undefined;
      });
      await r.producerIdRefill;
    }
  }

  async function refillProducerIds(r: Running): Promise<void> {
    const membership = r.membership;
    if (membership !== undefined) {
      const brokerId = membership.runtime.session.identity?.brokerId;
      if (brokerId === undefined) throw new NotConnectedError('this broker is not registered in its cluster yet');
      const reply = await membership.admin({ type: 'allocateProducerIds', brokerId, incarnation: r.info.incarnation }, CLUSTER_ADMIN_TIMEOUT_MS);
      if (reply.type === 'error') throw reply.error;
      if (reply.type !== 'producerIds') throw new InvalidArgumentError(`the controller answered allocateProducerIds with ${reply.type}`);
      r.producerIds = { next: reply.firstProducerId, end: reply.firstProducerId + reply.count, cluster: true };
      return;
    }
    const start = r.privateProducerIdsEnd;
    const end = start + PRIVATE_PRODUCER_ID_BLOCK;
    await r.storage.write([{ kind: 'putValue', key: PRODUCER_IDS_KEY, value: end }]);
    r.privateProducerIdsEnd = end;
    r.producerIds = { next: start, end, cluster: false };
  }

  /** Reads partitions held here, waiting until they have minBytes, or maxWaitMs passed, or `signal` aborts. */
  async function fetchHere(r: Running, request: Omit<FetchRequest, 'requestId'>, signal: AbortSignal): Promise<FetchedPartition[]> {
    const ended = new AbortController();
    const stop = () => ended.abort();
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    const cancelTimer = components.clock.after(Math.max(0, Math.min(request.maxWaitMs, FETCH_WAIT_MAX_MS)), stop);
    try {
      for (;;) {
        const results = await readPartitions(request);
        const bytes = results.reduce((sum, p) => sum + p.batches.reduce((n, b) => n + b.length, 0), 0);
        if (bytes >= Math.max(1, request.minBytes) || results.some((p) => p.errorCode !== undefined) || ended.signal.aborted) return results;
        // Wait until any partition's high watermark passes its fetch offset (woken by the
        // append), or moves at all when it already does but cuts the batch there.
        await Promise.race([
          ...request.partitions.flatMap(({ topic, partition, fetchOffset }) => {
            // A partition gone since it was read (its topic is being deleted) is not waited on: the delete ends the wait.
            const log = r.topics.has(topic) && !r.deleting.has(topic) ? r.logs.get({ topic, partition }) : undefined;
            return log === undefined ? [] : [log.waitForData(Math.max(fetchOffset, log.highWatermark), ended.signal)];
          }),
          // With no partitions to wait on (all paused), the wait still ends at maxWait or cancel.
          new Promise<void>((resolve) => ended.signal.addEventListener('abort', () => resolve(), { once: true })),
        ]);
      }
    } finally {
      cancelTimer();
      signal.removeEventListener('abort', stop);
    }
  }

  /** Where a partition is served: here (held here, or a private broker's), or by its leader elsewhere in the cluster. */
  function routeOf(r: Running, topic: string, partition: number): Route {
    const definition = r.topics.get(topic);
    if (definition === undefined || r.deleting.has(topic)) throw new UnknownTopicOrPartitionError(topic);
    if (definition.topicId === undefined) return { here: true };
    const placed = placementOf(topic, partition);
    // A replicated partition is served by its raft leader (its followers hold the log too): as a
    // replica here knows it, else as the metadata's hint says (the leader reports itself there).
    if (placed !== undefined && isReplicated(placed.replicas.length)) {
      const replica = r.replicas?.get(topic, partition);
      if (replica?.isLeader === true) return { here: true };
      const raftLeader = replica?.leaderBroker;
      const leader = raftLeader !== undefined && raftLeader >= 0 ? raftLeader : placed.leader;
      const self = r.membership?.runtime.session.identity?.brokerId;
      // Named here but not leading here (yet, or any more): no leader to route to now.
      return { here: false, leader: leader === self ? -1 : leader };
    }
    if (r.logs.get({ topic, partition }) !== undefined) return { here: true };
    if (placed === undefined) throw new UnknownTopicOrPartitionError(topic, partition);
    return { here: false, leader: placed.leader };
  }

  const node: NodeApi = {
    async start(init: NodeStartInit) {
      if (running !== undefined || starting) throw new InvalidArgumentError('the broker node is already started');
      starting = true;
      try {
        const adopted = init.adopt === true ? init.preferredSlot : undefined;
        if (init.adopt === true && (adopted === undefined || init.cluster === undefined)) throw new InvalidArgumentError('an adopted slot is named (preferredSlot), with its cluster');
        // An adopted slot's lock is the page's, held for as long as it runs this node.
        const claim = adopted !== undefined ? { slot: adopted, release: () => undefined } : await claimSlot(components.locks, init.preferredSlot, init.slotWaitMs, components.clock, init.cluster !== undefined);
        const databaseName = databaseNameOf(claim.slot);
        let storage: Storage;
        try {
          storage = await components.openStorage(databaseName);
        } catch (error) {
          claim.release();
          throw error;
        }
        let marker = (await storage.readValue('marker')) as DatabaseMarker | undefined;
        if (adopted !== undefined && (marker === undefined || !(await Membership.holdsBroker(storage, init.cluster!)))) {
          storage.close();
          throw new SlotNotAdoptableError(adopted, `slot ${adopted} (${databaseName}) holds no broker of cluster ${init.cluster}${marker === undefined ? ': its database is gone' : ''}`);
        }
        const remembered = init.knownIncarnations[claim.slot];
        const lost = remembered !== undefined && marker?.incarnation !== remembered;
        if (lost && init.onStorageLost === 'fail') {
          storage.close();
          claim.release();
          throw new StorageLostError(
            claim.slot,
            `the database of slot ${claim.slot} (${databaseName}) was evicted or wiped: its records are gone. ` +
              `Pass onStorageLost: 'continue' to start afresh.`,
          );
        }
        if (marker === undefined) {
          marker = { incarnation: components.randomId(), createdAt: components.clock.now() };
          await storage.write([{ kind: 'putValue', key: 'marker', value: marker }]);
        }
        const { clock } = components;
        const logs = createLogManager(storage, { clock });
        // The partitions in storage: all of a private broker's topics, those placed on this broker of a cluster's.
        const { topics, stored } = await loadTopics(storage);
        for (const id of stored) await logs.open(id, topics.get(id.topic)!.config, logOptionsOf(topics.get(id.topic)!));
        const info: NodeInfo = { slot: claim.slot, incarnation: marker.incarnation, databaseName, storageLost: lost };
        const maintenance = logs.maintainInBackground(components.onError ? { onError: components.onError } : {});
        // The node's pure cores run on one executor; no raft group runs here yet, so nothing goes to peers.
        const executor = new Executor({
          nodeId: marker.incarnation,
          clock,
          committer: logs.committer,
          sendFrame: () => false,
          tickMs: GROUP_TICK_MS,
          heartbeatFlushTicks: 1,
        });
        const groups = await GroupRuntime.start(executor, storage, components.randomId().slice(0, 8), partitionCounts(topics));
        executor.start();
        running = {
          claim,
          executor,
          groups,
          storage,
          logs,
          topics,
          info,
          maintenance,
          fetches: new Map(),
          metadataQueue: Promise.resolve(),
          deleting: new Map(),
          appending: new Map(),
          membership: undefined,
          router: undefined,
          clusterGroups: undefined,
          replicas: undefined,
          syncing: false,
          imageChanged: false,
          synced: new Set(),
          offered: new Set(),
          clusterEvent: () => undefined,
          joining: init.cluster === undefined ? undefined : joinGate(),
          syncedRecords: 0,
          offeringOffsets: false,
          producerIds: undefined,
          producerIdRefill: undefined,
          privateProducerIdsEnd: ((await storage.readValue(PRODUCER_IDS_KEY)) as number | undefined) ?? 0,
          producerIdLine: undefined,
        };
        return info;
      } finally {
        starting = false;
      }
    },

    async createTopics(specs, validateOnly) {
      const r = await joined();
      if (!Array.isArray(specs)) throw new InvalidArgumentError('createTopics takes an array of topic specs');
      const definitions = specs.map(defineTopic);
      const names: string[] = [];
      for (const d of definitions) {
        const colliding = collidingTopic(d.name, names);
        if (colliding !== undefined) throw new InvalidArgumentError(`topic "${d.name}" ${colliding === d.name ? 'appears twice' : `collides with "${colliding}"`} in one request`);
        names.push(d.name);
      }
      /** Per topic, whether it would be created; a name colliding with an existing topic's is refused. */
      const validated = () =>
        definitions.map((d) => {
          const colliding = r.topics.has(d.name) ? undefined : collidingTopic(d.name, r.topics.keys());
          if (colliding !== undefined) throw new InvalidTopicError(`topic "${d.name}" collides with existing topic "${colliding}"`);
          return !r.topics.has(d.name);
        });
      const membership = r.membership;
      if (membership !== undefined) return validateOnly ? validated() : createThroughController(r, membership, specs);
      return serially(r, async () => (validateOnly ? validated() : createTopics(r, definitions)));
    },

    async listTopics() {
      return userTopics(await joined());
    },

    async describeTopics(names) {
      const r = await joined();
      const chosen = names ?? userTopics(r);
      const described = chosen.map((name) => {
        const definition = r.topics.get(name);
        if (definition === undefined) throw new UnknownTopicOrPartitionError(name);
        const defaults = configEntriesOf(defaultLogConfig);
        return {
          ...definition,
          configEntries: configEntriesOf(definition.config).map((e) => ({ ...e, isDefault: defaults.some((d) => d.name === e.name && d.value === e.value) })),
          partitions: Array.from({ length: definition.numPartitions }, (_, partition) => {
            const log = r.logs.get({ topic: name, partition });
            const placed = definition.topicId === undefined ? undefined : placementOf(name, partition);
            if (placed !== undefined) return { partition, ...placed, logStartOffset: log?.logStartOffset ?? -1, highWatermark: log?.highWatermark ?? -1 };
            const local = logOf(name, partition);
            return { partition, leader: r.info.slot, logStartOffset: local.logStartOffset, highWatermark: local.highWatermark };
          }),
        };
      });
      // Partitions led by other brokers: their offsets from their leaders (left -1 when one cannot be reached).
      const router = r.router;
      const remote = described.flatMap((t) => t.partitions.filter((p) => p.highWatermark === -1 && p.leader !== -1 && t.topicId !== undefined).map((p) => ({ topic: t.name, partition: p })));
      if (router !== undefined && remote.length > 0) {
        const queries = remote.flatMap(({ topic, partition: { partition } }) => [{ topic, partition, query: 'earliest' as const }, { topic, partition, query: 'latest' as const }]);
        // Within one cluster request's bound: a leader that does not answer (paused, cut off) leaves them -1, not the describe waiting.
        const offsets = await listOffsetsRouted(router, queries, r.membership?.runtime.init.timing.requestTimeoutMs).catch(() => []);
        remote.forEach(({ partition }, i) => {
          partition.logStartOffset = offsets[2 * i] ?? -1;
          partition.highWatermark = offsets[2 * i + 1] ?? -1;
        });
      }
      return described;
    },

    async produce(request, trace) {
      const r = await joined();
      if (request.acks !== 0 && request.acks !== 1 && request.acks !== -1) throw new InvalidArgumentError(`acks must be -1, 0 or 1, got ${String(request.acks)}`);
      if (!Array.isArray(request.batches)) throw new InvalidArgumentError('produce takes an array of batches');
      for (const batch of request.batches) {
        if (typeof batch !== 'object' || batch === null || !(batch.bytes instanceof Uint8Array)) throw new InvalidArgumentError('a produced batch is { topic, partition, bytes: Uint8Array }');
      }
      // Every batch is checked before any is appended, and before a topic is created for the
      // request: a request refused for one batch writes nothing.
      const checked = new Map<number, BatchHeader>();
      const toCreate = new Map<string, TopicDefinition>();
      request.batches.forEach(({ topic, partition, bytes }, i) => {
        // Refused here, not at the partition's leader: only the coordinators write the offsets topic.
        if (isInternalTopic(topic)) throw new InvalidTopicError(`${topic} is an internal topic: producers cannot write to it`);
        if (r.topics.has(topic) || !request.allowAutoTopicCreation) {
          // Routed, each batch is checked where it is appended (here, or at its leader).
          if (r.router === undefined) checked.set(i, logOf(topic, partition).check(bytes));
          return;
        }
        const definition = toCreate.get(topic) ?? defineTopic({ topic });
        if (!Number.isInteger(partition) || partition < 0 || partition >= definition.numPartitions) throw new UnknownTopicOrPartitionError(topic, partition);
        checkBatch(definition.config, topic, bytes);
        toCreate.set(topic, definition);
      });
      if (toCreate.size > 0) {
        const membership = r.membership;
        if (membership !== undefined) await createThroughController(r, membership, [...toCreate.keys()].map((topic) => ({ topic })));
        else await serially(r, () => createTopics(r, [...toCreate.values()]));
      }
      if (r.router !== undefined) return routed(r.router, trace, (router) => produceRouted(router, request.acks, request.batches));
      return appendHere(r, request.acks, request.batches, checked);
    },

    async initProducerId() {
      return initProducerId(await joined());
    },

    async fetch(request: FetchRequest, trace?: number) {
      // Cancellable from the call on, also while it waits for the cluster.
      const controller = new AbortController();
      const { fetches } = state();
      fetches.set(request.requestId, controller);
      try {
        const r = await joined();
        return await (r.router === undefined ? fetchHere(r, request, controller.signal) : routed(r.router, trace, (router) => fetchRouted(router, request, controller.signal)));
      } finally {
        fetches.delete(request.requestId);
      }
    },

    async deleteTopics(names) {
      const r = await joined();
      if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new InvalidArgumentError('deleteTopics takes an array of topic names');
      for (const name of names) if (!r.topics.has(name)) throw new UnknownTopicOrPartitionError(name);
      for (const name of names) if (isInternalTopic(name)) throw new InvalidTopicError(`${name} is an internal topic: it cannot be deleted`);
      const membership = r.membership;
      if (membership !== undefined) {
        refusedAny(await throughController(membership, { type: 'deleteTopics', topics: [...new Set(names)] }));
        return untilSynced(r, () => names.every((name) => !r.topics.has(name)), `the deletion of ${names.join(', ')}`);
      }
      // Sends to these topics are refused from now on; those already appending finish first,
      // so each lands before the delete (and goes with it) or fails.
      const fenced = [...new Set(names)];
      for (const name of fenced) r.deleting.set(name, (r.deleting.get(name) ?? 0) + 1);
      try {
        await serially(r, () => deleteFenced(r, fenced));
      } finally {
        for (const name of fenced) {
          const waiting = (r.deleting.get(name) ?? 1) - 1;
          if (waiting > 0) r.deleting.set(name, waiting);
          else r.deleting.delete(name);
        }
      }
    },

    async createPartitions(changes) {
      const r = await joined();
      const grown = () =>
        distinct(changes, 'createPartitions').map(({ topic, count }) => {
          const current = r.topics.get(topic);
          if (current === undefined) throw new UnknownTopicOrPartitionError(topic);
          // More partitions would move groups to other coordinators, their offsets left behind.
          if (isInternalTopic(topic)) throw new InvalidTopicError(`${topic} is an internal topic: its partitions are fixed`);
          if (!Number.isSafeInteger(count) || count <= current.numPartitions || count > PARTITIONS_MAX) {
            throw new InvalidConfigError(`topic "${topic}" has ${current.numPartitions} partitions; the new count must be more, at most ${PARTITIONS_MAX}, got ${String(count)}`, 'INVALID_PARTITIONS');
          }
          return { definition: { ...current, numPartitions: count }, partitions: range(current.numPartitions, count) };
        });
      const checked = grown(); // refused before it waits its turn
      const membership = r.membership;
      if (membership !== undefined) {
        refusedAny(await throughController(membership, { type: 'createPartitions', topics: checked.map(({ definition }) => ({ topic: definition.name, count: definition.numPartitions })) }));
        return untilSynced(r, () => checked.every(({ definition }) => (r.topics.get(definition.name)?.numPartitions ?? 0) >= definition.numPartitions && leadersReported(membership, definition.name)), 'the new partitions');
      }
      await serially(r, () => storeTopics(r, grown()));
    },

    async alterConfigs(changes) {
      const r = await joined();
      const altered = () =>
        distinct(changes, 'alterConfigs').map(({ topic, entries }) => {
          const current = r.topics.get(topic);
          if (current === undefined) throw new UnknownTopicOrPartitionError(topic);
          if (!Array.isArray(entries)) throw new InvalidArgumentError('alterConfigs takes arrays of { name, value }');
          return { ...current, config: parseConfigEntries(entries, current.config) };
        });
      const checked = altered(); // refused before it waits its turn
      const membership = r.membership;
      if (membership !== undefined) {
        refusedAny(await throughController(membership, { type: 'alterConfigs', topics: changes.map(({ topic, entries }) => ({ topic, entries })) }));
        const expected = new Map(checked.map((d) => [d.name, JSON.stringify(d.config)]));
        return untilSynced(r, () => [...expected].every(([name, config]) => JSON.stringify(r.topics.get(name)?.config) === config), 'the new configs');
      }
      await serially(r, async () => {
        const definitions = altered();
        await r.storage.write(definitions.map((d): StorageWrite => ({ kind: 'putValue', key: topicKey(d.name), value: d })));
        for (const definition of definitions) {
          r.topics.set(definition.name, definition);
          for (let partition = 0; partition < definition.numPartitions; partition++) logOf(definition.name, partition).setConfig(definition.config);
        }
      });
      r.maintenance.runSoon(); // a shorter retention applies now, not at the next interval
    },

    async deleteRecords(topic, partitions) {
      await joined();
      if (!Array.isArray(partitions)) throw new InvalidArgumentError('deleteRecords takes an array of { partition, offset }');
      // Every offset is checked before any partition is cut: a request refused for one deletes in none.
      const logs = partitions.map(({ partition, offset }) => {
        const log = logOf(topic, partition);
        if (offset !== -1 && (!Number.isSafeInteger(offset) || offset < 0 || offset > log.highWatermark)) {
          throw new OffsetOutOfRangeError(topic, partition, offset, log.logStartOffset, log.highWatermark);
        }
        return log;
      });
      return Promise.all(partitions.map(({ offset }, i) => logs[i]!.deleteRecordsBefore(offset)));
    },

    async listOffsets(queries, trace) {
      const r = await joined();
      if (r.router !== undefined) return routed(r.router, trace, (router) => listOffsetsRouted(router, queries));
      return Promise.all(queries.map(({ topic, partition, query }) => logOf(topic, partition).offsetFor(query)));
    },

    reportPeerRequests(report) {
      // The page's callback (a Comlink proxy): a page gone meanwhile must not fail the broker.
      peerReport = (event) => Promise.resolve(report(event)).then(
        () => undefined,
        () => undefined,
      );
    },

    // A broker of a cluster routes group calls to each group's coordinator (group-routing.ts); a private broker coordinates them all.
    async joinGroup(request) {
      const r = await joined();
      return r.clusterGroups?.joinGroup(request) ?? r.groups.request<JoinReply>({ type: 'join', ...request });
    },
    async syncGroup(request) {
      const r = await joined();
      return r.clusterGroups?.syncGroup(request) ?? r.groups.request<SyncReply>({ type: 'sync', ...request });
    },
    async heartbeat(request) {
      const r = await joined();
      await (r.clusterGroups?.heartbeat(request) ?? r.groups.request({ type: 'heartbeat', ...request }));
    },
    async leaveGroup(request) {
      const r = await joined();
      await (r.clusterGroups?.leaveGroup(request) ?? r.groups.request({ type: 'leave', ...request }));
    },
    async commitOffsets(request) {
      const r = await joined();
      await (r.clusterGroups?.commitOffsets(request) ?? r.groups.request({ type: 'commit', ...request }));
    },
    async fetchOffsets(groupId) {
      const r = await joined();
      return r.clusterGroups?.fetchOffsets(groupId) ?? r.groups.committed(groupId);
    },
    async listGroups() {
      const r = await joined();
      return r.clusterGroups?.listGroups() ?? r.groups.list();
    },
    async deleteGroups(groupIds) {
      const r = await joined();
      if (r.clusterGroups !== undefined) return r.clusterGroups.deleteGroups(groupIds);
      if (!Array.isArray(groupIds)) throw new InvalidArgumentError('deleteGroups takes an array of group ids');
      const groups = r.groups;
      return Promise.all(
        groupIds.map(
          (groupId: string) =>
            new Promise<Awaited<ReturnType<NodeApi['deleteGroups']>>[number]>((resolve) =>
              groups.submit({ type: 'deleteGroup', groupId }, (reply) => resolve({ groupId, error: reply.ok ? null : { code: reply.error, message: reply.message } })),
            ),
        ),
      );
    },
    async describeGroups(groupIds) {
      const r = await joined();
      return r.clusterGroups?.describeGroups(groupIds) ?? groupIds.map((groupId) => r.groups.describe(groupId) ?? { groupId, state: 'Empty', generationId: 0, assignor: null, members: [] });
    },

    cancel(requestId) {
      running?.fetches.get(requestId)?.abort();
    },

    async networkKey(candidate) {
      const r = state();
      const stored = await r.storage.readValue(NETWORK_KEY);
      if (stored instanceof Uint8Array) return stored;
      await r.storage.write([{ kind: 'putValue', key: NETWORK_KEY, value: candidate }]);
      return candidate;
    },

    attachNetwork(port, options = {}, onEvent) {
      const { cluster, local = true, deviceId, secret, reassignAfterMs } = options;
      connect(secret, (r, joinAs) =>
        createPeerLink(port, {
          clock: components.clock,
          ...(cluster !== undefined && local && { local: { cluster, ...(components.localLocks && { locks: components.localLocks }) } }),
          // The broker's address in the cluster is its peer id: it joins once the page reports it.
          ...(cluster !== undefined && {
            onSelf: (peerId: string) => joinAs({ cluster, peerId, deviceId: deviceId ?? r.info.incarnation, timing: withReassignAfter(BROWSER_TIMING, reassignAfterMs), ...(onEvent && { onEvent }) }),
          }),
        }),
      );
    },

    joinLocalCluster({ cluster, deviceId, reassignAfterMs, hostedBy }, onEvent) {
      const r = state();
      void (async () => {
        // Under the address it had (an adopted slot of a cluster met over the relay too: its peer id), so its registration stands.
        const stored = await r.storage.readValue(addressKey(cluster));
        const peerId = typeof stored === 'string' ? stored : `local:${r.info.incarnation}`;
        if (running !== r) return;
        const joinAs = connect(undefined, () =>
          createLocalLink({ cluster, peerId, clock: components.clock, ...(components.localLocks && { locks: components.localLocks }) }),
        );
        joinAs({ cluster, peerId, deviceId, timing: withReassignAfter(LOCAL_TIMING, reassignAfterMs), ...(hostedBy === undefined ? {} : { hostedBy }), ...(onEvent && { onEvent }) });
      })().catch((error: unknown) => components.onError?.(error));
    },

    async clusterInfo() {
      return state().membership?.info();
    },

    peers() {
      return peerLink?.peers() ?? [];
    },

    async echoPeer({ requestKey, peerId, bytes, timeoutMs }) {
      if (peerRpc === undefined) throw new PeerNotConnectedError(peerId, `no network attached: no connection to peer ${peerId}`);
      const controller = new AbortController();
      peerRequests.set(requestKey, controller);
      try {
        return await peerRpc.request(peerId, 'echo', bytes, { signal: controller.signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
      } finally {
        peerRequests.delete(requestKey);
      }
    },

    async probePeer({ peerId, bytes, count, timeoutMs }) {
      if (peerRpc === undefined) throw new PeerNotConnectedError(peerId, `no network attached: no connection to peer ${peerId}`);
      const options = timeoutMs === undefined ? {} : { timeoutMs };
      const started = components.clock.monotonic();
      // Each message is its own copy: the link may transfer (detach) what it sends.
      for (let i = 0; i < count; i++) await peerRpc.notify(peerId, 'echo', bytes.slice(), options);
      await peerRpc.request(peerId, 'echo', new Uint8Array(0), options);
      return { ms: components.clock.monotonic() - started };
    },

    async probePeerRtt({ peerId, bytes, rounds, timeoutMs }) {
      if (peerRpc === undefined) throw new PeerNotConnectedError(peerId, `no network attached: no connection to peer ${peerId}`);
      const options = timeoutMs === undefined ? {} : { timeoutMs };
      const rttMs: number[] = [];
      // The monotonic clock, not the wall clock: round trips are fractions of a ms.
      for (let round = 0; round < rounds; round++) {
        const started = components.clock.monotonic();
        await peerRpc.request(peerId, 'echo', bytes, options);
        rttMs.push(components.clock.monotonic() - started);
      }
      return { rttMs };
    },

    refusedPeers() {
      return [...refused].map(([peerId, reason]) => ({ peerId, reason }));
    },

    cancelPeerRequest(requestKey) {
      peerRequests.get(requestKey)?.abort();
    },

    async handOver() {
      const membership = running?.membership;
      if (membership === undefined) return { handedOver: 0, kept: 0 };
      running?.replicas?.leave();
      return membership.leave();
    },

    async close() {
      running?.membership?.close();
      peerRpc?.close();
      peerRpc = undefined;
      peerLink?.close();
      peerLink = undefined;
      const r = running;
      if (r === undefined) return;
      running = undefined;
      // Calls waiting for the cluster end now (NotConnectedError).
      r.joining?.joined();
      r.maintenance.stop();
      r.groups.stop();
      r.executor.stop();
      for (const controller of r.fetches.values()) controller.abort();
      // A clean close: the next start's recovery checks only each log's last batch.
      await r.logs.checkpoint().catch((error: unknown) => components.onError?.(error));
      r.storage.close();
      r.claim.release();
    },
  };

  /** How the broker joins a cluster: as `peerId`, of device `deviceId`, run by broker `hostedBy`'s tab when adopted. */
  interface Joining {
    readonly cluster: string;
    readonly peerId: string;
    readonly deviceId: string;
    readonly hostedBy?: number;
    readonly timing: ClusterTiming;
    readonly onEvent?: (event: ClusterEvent) => void;
  }
  /** Joins a cluster over the network connect() made. */
  type JoinAs = (joining: Joining) => void;

  /**
   * Replaces the node's peer network (and membership) with the link `open` makes, and peer
   * RPC over it: a handshake always, so a cluster without a secret proves the empty one, and
   * it and a cluster with one refuse each other. The link joins a cluster through `joinAs`.
   */
  function connect(secret: string | undefined, open: (r: Running, joinAs: JoinAs) => PeerLink): JoinAs {
    const r = state();
    r.membership?.close();
    r.membership = undefined;
    r.router = undefined;
    r.clusterGroups = undefined;
    peerRpc?.close();
    peerLink?.close();
    refused.clear();
    const joinAs: JoinAs = (joining) => void join(r, link, rpc, joining);
    const link = open(r, joinAs);
    const rpc = createPeerRpc(link, {
      admission: { secret: secret ?? '' },
      onRefused: (peerId, error) => refused.set(peerId, error.message),
    });
    rpc.handle('echo', (body) => body);
    peerLink = link;
    peerRpc = rpc;
    return joinAs;
  }

  /** Starts the broker's membership in `cluster` on this network, unless the network was replaced meanwhile. */
  async function join(r: Running, link: PeerLink, rpc: PeerRpc, joining: Joining): Promise<void> {
    const { cluster, peerId, deviceId, hostedBy, timing, onEvent } = joining;
    // The page's callback (a Comlink proxy): a page gone meanwhile must not fail the broker.
    r.clusterEvent = (event) => void Promise.resolve(onEvent?.(event)).catch(() => undefined);
    r.syncedRecords = ((await r.storage.readValue(syncedKey(cluster))) as number | undefined) ?? 0;
    if ((await r.storage.readValue(addressKey(cluster))) !== peerId) await r.storage.write([{ kind: 'putValue', key: addressKey(cluster), value: peerId }]);
    const membership = await Membership.start({
      timing,
      clusterName: cluster,
      storage: r.storage,
      clock: components.clock,
      committer: r.logs.committer,
      incarnation: r.info.incarnation,
      deviceId,
      ...(hostedBy === undefined ? {} : { hostedBy }),
      peerId,
      link,
      rpc,
      randomId: components.randomId,
      imageChanged: () => imageChanged(r),
      onError: (error) => components.onError?.(error),
      onEvent: (event) => {
        if (event.type !== 'cluster_mismatch') return r.clusterEvent(event);
        // Decided on an image that has caught up: a reopened broker's may not have replayed yet.
        untilSynced(r, () => caughtUp(r, membership), 'its own metadata').then(
          () => {
            if (!aloneIn(membership)) return r.clusterEvent(event);
            r.clusterEvent({ ...event, joinsOther: true, message: `${event.message}: this broker is its only one, so it joins the other and offers it its topics` });
            return leaveFor(r, membership, () => join(r, link, rpc, joining)).catch((error: unknown) => components.onError?.(error));
          },
          () => r.clusterEvent(event), // never caught up: reported as it is, both stay apart
        );
      },
    });
    if (peerLink !== link || running !== r) return membership.close();
    r.membership = membership;
    const clusterId = () => membership.runtime.session.identity?.clusterId ?? '';
    r.router = {
      get clusterId() {
        return clusterId();
      },
      rpc,
      routeOf: (topic, partition) => routeOf(r, topic, partition),
      // A replica here knows the leader's epoch from raft once it knows the leader (the term it
      // follows it in), as it routes by raft's leader: the metadata shows a new leader only once
      // that has reported itself. Other brokers take the metadata's.
      leaderEpochOf: (topic, partition) => {
        const replica = r.replicas?.get(topic, partition);
        return replica !== undefined && replica.leaderBroker >= 0 ? replica.leaderEpoch : (membership.image?.topicByName(topic)?.partitions[partition]?.leaderEpoch ?? -1);
      },
      addressOf: (brokerId) => {
        const broker = membership.image?.broker(brokerId);
        return broker === undefined || broker.fenced ? undefined : broker.endpoints[0];
      },
      clock: components.clock,
      leaderCheckMs: membership.runtime.init.timing.tickMs * membership.runtime.init.timing.heartbeatTicks,
      // A peer's request, too, waits until this broker has caught up: a reopened leader's topics are not there before.
      produceHere: async (acks, batches) => appendHere(await joined(), acks, batches),
      fetchHere: async (request, signal) => fetchHere(await joined(), request, signal),
      listOffsetsHere: async (queries) => {
        await joined();
        return Promise.all(queries.map(({ topic, partition, query }) => logOf(topic, partition).offsetFor(query)));
      },
      remoteFetches: new Map(),
    };
    membership.onClose(serveRouted(r.router));
    const groups = new ClusterGroups(
      {
        get clusterId() {
          return clusterId();
        },
        rpc,
        clock: components.clock,
        offsetsPartitions: () => {
          const definition = r.topics.get(OFFSETS_TOPIC);
          return definition?.topicId === undefined ? undefined : definition.numPartitions;
        },
        offsetsRoute: (partition): Route => {
          try {
            return routeOf(r, OFFSETS_TOPIC, partition);
          } catch {
            return { here: false, leader: -1 }; // not in this broker's image yet: no coordinator known
          }
        },
        offsetsLeaderEpoch: (partition) => r.router?.leaderEpochOf(OFFSETS_TOPIC, partition) ?? -1,
        offsetsLog: (partition) => r.logs.get({ topic: OFFSETS_TOPIC, partition }),
        appendOffsets: (partition, bytes) => r.replicas?.get(OFFSETS_TOPIC, partition)?.produce([bytes], -1) ?? logOf(OFFSETS_TOPIC, partition).append(bytes),
        topicPartitions: () => partitionCounts(r.topics),
        addressOf: (brokerId) => r.router?.addressOf(brokerId),
        otherBrokers: () => {
          const self = membership.runtime.session.identity?.brokerId;
          return (membership.image?.brokers() ?? []).filter((b) => !b.fenced && b.brokerId !== self).map((b) => b.brokerId);
        },
        createOffsetsTopic: async () => {
          // Replicated as Kafka's offsets.topic.replication.factor (3), on as many live brokers as there are:
          // committed offsets survive the coordinator's tab closing.
          const live = (membership.image?.brokers() ?? []).filter((b) => !b.fenced).length;
          const replicationFactor = Math.max(1, Math.min(OFFSETS_REPLICATION_FACTOR, live));
          await createThroughController(r, membership, [{ topic: OFFSETS_TOPIC, numPartitions: OFFSETS_PARTITIONS, replicationFactor, configEntries: [...OFFSETS_TOPIC_CONFIGS] }]);
        },
      },
      r.executor,
      components.randomId().slice(0, 8),
    );
    r.clusterGroups = groups;
    membership.onClose(groups.serve());
    membership.onClose(() => groups.stop());
    imageChanged(r);
  }

  /**
   * Whether the broker's image has caught up, so that it may act on it and serve (as a KRaft
   * broker catches up before it is unfenced). A restarted broker's image begins at its
   * snapshot and replays once a leader is known: acting on it before it passes what this
   * broker acted on would delete the topics created since, their data with them. And until
   * the image holds the broker's own registration, what was committed before it may be missing.
   */
  function caughtUp(r: Running, membership: Membership): boolean {
    const image = membership.image;
    const brokerId = membership.runtime.session.identity?.brokerId;
    if (image === undefined || brokerId === undefined || image.recordsApplied < r.syncedRecords) return false;
    return image.broker(brokerId)?.incarnation === r.info.incarnation;
  }

  /** Whether `membership`'s cluster has no broker but this one. */
  function aloneIn(membership: Membership): boolean {
    const brokers = membership.image?.brokers() ?? [];
    return brokers.length === 1 && brokers[0]!.brokerId === membership.runtime.session.identity?.brokerId;
  }

  /**
   * This broker alone bootstrapped a cluster that met a larger one of its name (ClusterIdMismatchError):
   * it forgets its cluster, its topics become its own again, data and all, and it joins the
   * larger one through `rejoin`, which offers them as it offers any private broker's topics
   * (a name the larger cluster has is reported with `cluster_topic_clash`, and stays private).
   */
  async function leaveFor(r: Running, membership: Membership, rejoin: () => Promise<void>): Promise<void> {
    if (r.membership !== membership || running !== r) return;
    membership.close();
    r.membership = undefined;
    r.router = undefined;
    r.clusterGroups = undefined;
    const cluster = membership.init.clusterName;
    await serially(r, async () => {
      // Its cluster's internal topics go with that cluster (the groups of the one it joins are coordinated there).
      const internal = [...r.topics.values()].filter((d) => d.topicId !== undefined && isInternalTopic(d.name)).map((d) => d.name);
      if (internal.length > 0) await deleteFenced(r, internal);
      const own = [...r.topics.values()].filter((d) => d.topicId !== undefined).map((d) => ({ ...d, topicId: undefined }));
      await r.storage.write([
        ...Membership.forget(cluster),
        { kind: 'putValue', key: syncedKey(cluster), value: 0 },
        ...own.map((d): StorageWrite => ({ kind: 'putValue', key: topicKey(d.name), value: d })),
      ]);
      for (const d of own) r.topics.set(d.name, d);
      r.syncedRecords = 0;
      r.offered.clear();
    });
    if (running === r) await rejoin();
  }

  async function readPartitions(request: Omit<FetchRequest, 'requestId'>): Promise<FetchedPartition[]> {
    let budget = request.maxBytes;
    const results: FetchedPartition[] = [];
    for (const { topic, partition, fetchOffset, maxBytes } of request.partitions) {
      const r = state();
      const log = r.logs.get({ topic, partition });
      if (log === undefined || !r.topics.has(topic)) {
        const elsewhere = r.topics.get(topic)?.topicId !== undefined && placementOf(topic, partition) !== undefined;
        results.push({ topic, partition, highWatermark: -1, logStartOffset: -1, batches: [], errorCode: elsewhere ? 'NOT_LEADER_OR_FOLLOWER' : 'UNKNOWN_TOPIC_OR_PARTITION' });
        continue;
      }
      const base = { topic, partition, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
      if (fetchOffset < log.logStartOffset || fetchOffset > log.logEndOffset || !Number.isSafeInteger(fetchOffset)) {
        results.push({ ...base, batches: [], errorCode: 'OFFSET_OUT_OF_RANGE' });
        continue;
      }
      const batches = budget > 0 ? await log.read(fetchOffset, { maxBytes: Math.min(maxBytes, budget) }) : [];
      budget -= batches.reduce((n, b) => n + b.length, 0);
      results.push({ ...base, batches });
    }
    return results;
  }

  return node;
}
