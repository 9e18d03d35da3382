// The broker node's interface as the page sees it through Comlink. Types only: the page
// imports them without pulling the broker into its bundle.

import type { AssignorName, GroupDescription, GroupErrorCode, GroupStateName, JoinReply, OffsetCommit, SyncReply } from '../group';
import type { LogConfig } from '../log';
import type { FetchErrorCode } from '../protocol';
import type { PeerInfo } from '../network/worker';

export type { AssignorName, Assignment, GroupDescription, GroupErrorCode, GroupStateName, JoinReply, MemberDescription, OffsetCommit, SyncReply } from '../group';

export interface JoinGroupRequest {
  groupId: string;
  /** null for a new member. */
  memberId: string | null;
  clientId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  topics: string[];
  /** In order of preference. */
  assignors: AssignorName[];
}

export interface MemberRequest {
  groupId: string;
  memberId: string;
  generationId: number;
}

export interface ConfigEntry {
  name: string;
  value: string;
}

export interface TopicSpec {
  topic: string;
  /** Default 1 (Kafka's num.partitions). */
  numPartitions?: number;
  /** Stored for the cluster; a single node holds one replica. Default 1. */
  replicationFactor?: number;
  /** Kafka topic configs: retention.ms, retention.bytes, cleanup.policy, delete.retention.ms, max.message.bytes. */
  configEntries?: ConfigEntry[];
}

export interface TopicDefinition {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  config: LogConfig;
  /** Set on a topic of the cluster's metadata image (this broker holds the partitions placed on it); absent on a private broker's. */
  topicId?: number;
}

export interface PartitionState {
  partition: number;
  /** The broker leading the partition (a private broker: its slot). */
  leader: number;
  /** Brokers holding a replica, and those in sync (a private broker: none listed). */
  replicas?: number[];
  isr?: number[];
  logStartOffset: number;
  highWatermark: number;
}

export interface TopicState extends TopicDefinition {
  partitions: PartitionState[];
  /** The config as Kafka names it, each entry marked when it is the default. */
  configEntries: Array<ConfigEntry & { isDefault: boolean }>;
}

export interface NodeStartInit {
  clientId: string;
  /** The slot this tab held before a reload (from sessionStorage), tried first. */
  preferredSlot?: number;
  /** How long to wait for the previous worker of a reloaded tab to release its slot. */
  slotWaitMs: number;
  /** Incarnation the page remembers for each slot (localStorage), to notice a wiped database. */
  knownIncarnations: Record<number, string>;
  /** `fail`: a lost database fails the start with StorageLostError; `continue`: start afresh and report it. */
  onStorageLost: 'fail' | 'continue';
  /**
   * The cluster this node is to join (attachNetwork follows, with it): until it has joined,
   * calls whose answer depends on the cluster (topics, produce, fetch, offsets) wait, rather
   * than answer as a private broker.
   */
  cluster?: string;
  /**
   * The page adopted slot `preferredSlot` of a closed tab and holds its lock for this node: the
   * node takes no lock, and starts only on a database holding a broker of `cluster` (else
   * SlotNotAdoptableError), the same raft member restarting on its own disk.
   */
  adopt?: boolean;
}

export interface NodeInfo {
  slot: number;
  /** Identifies this slot's database since its creation; a new one after a wipe. */
  incarnation: string;
  databaseName: string;
  /** True when the start found the database lost and began afresh (onStorageLost: 'continue'). */
  storageLost: boolean;
  /** This broker's id and its cluster's, once it bootstrapped or joined one (Letterbox.nodeInfo fills them in). */
  brokerId?: number;
  clusterId?: string;
}

/** What a broker of a cluster tells the page as it happens. */
export type ClusterEvent =
  /** Registered (or bootstrapped the cluster), or back on its stored identity. */
  | { type: 'cluster_joined'; clusterId: string; brokerId: number; bootstrap: boolean }
  /** Its cluster met a larger one of the same name (ClusterIdMismatchError): the two stay apart. */
  | {
      type: 'cluster_mismatch';
      clusterName: string;
      clusterId: string;
      otherClusterId: string;
      message: string;
      /** This broker was its cluster's only one: it joins the other, offering it its topics (else both stay apart). */
      joinsOther?: boolean;
    }
  /** A topic this broker had before it joined could not join the cluster (the name is the cluster's already): it stays this broker's own. */
  | { type: 'cluster_topic_clash'; topic: string; message: string }
  /** The counts of under-replicated and offline partitions in this broker's metadata (replicationHealth): at its first image, then when they change. */
  | { type: 'replication_health'; underReplicated: number; offline: number };

/** The node's cluster as its metadata image shows it (a broker started without a cluster has none). */
export interface ClusterInfo {
  clusterName: string;
  /** Set once the broker bootstrapped or joined a cluster. */
  clusterId?: string;
  brokerId?: number;
  /** The active controller's broker id, when this broker knows one. */
  controller: number | null;
  /** Broker ids of the controller group's voters, as this broker's member knows them (the rest follow as learners). */
  voters: number[];
  /** Partitions with a live leader and fewer live in-sync replicas than replicas (Kafka's UnderReplicatedPartitions). */
  underReplicatedPartitions: number;
  /** Partitions with no live leader (Kafka's OfflinePartitionsCount). */
  offlinePartitions: number;
  /** `hostedBy`: the broker whose tab runs it, when another tab adopted its slot. */
  brokers: Array<{ brokerId: number; incarnation: string; endpoints: string[]; deviceId: string; hostedBy?: number; fenced: boolean }>;
  /** Set when this cluster met a larger one under the same name (ClusterIdMismatchError). */
  mismatch?: { clusterId: string; otherClusterId: string; message: string };
  /** Metadata-group messages from peers refused (another cluster's, an impostor's). */
  refusedMessages: number;
  /** Hello rounds (each with a heartbeat) this broker ran since it started: whether its clock runs. */
  rounds: number;
  /** The brokers it heard from (by address), with their cluster and the round it last heard them. */
  heard: Array<{ peer: string; clusterId?: string; round: number }>;
}

export interface ProduceRequest {
  /** 0: resolve once the node has the request; 1 and -1: once the batches are durable. */
  acks: -1 | 0 | 1;
  allowAutoTopicCreation: boolean;
  /** Record batches (RecordBatch v2 bytes), transferred. */
  batches: Array<{ topic: string; partition: number; bytes: Uint8Array }>;
}

export interface ProduceResult {
  topic: string;
  partition: number;
  /** -1 with acks 0. */
  baseOffset: number;
  logStartOffset: number;
}

export interface FetchRequest {
  /** Lets `cancel(requestId)` end a waiting fetch. */
  requestId: number;
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  partitions: Array<{ topic: string; partition: number; fetchOffset: number; maxBytes: number }>;
}

export interface FetchedPartition {
  topic: string;
  partition: number;
  highWatermark: number;
  logStartOffset: number;
  /** Whole batches; the first may start before fetchOffset. Transferred. */
  batches: Uint8Array[];
  /** Kafka's error name for this partition, e.g. OFFSET_OUT_OF_RANGE. */
  errorCode?: FetchErrorCode;
}

export type OffsetQuery = 'earliest' | 'latest' | { timestamp: number };

/** A request to a broker as KafkaJS's REQUEST event describes it (without `clientId`, which the page adds). */
export interface RequestReport {
  /** The broker asked, as admin.describeCluster() names it, `host:port`: a broker of a cluster is its peer id and port 0. */
  broker: string;
  /** The request's id on its channel to that broker. */
  correlationId: number;
  /** Bytes of the request's frame. */
  size: number;
  /** Wall-clock ms: made, and sent (its frame queued for the broker, after waiting for admission, an in-flight slot and queue room). */
  createdAt: number;
  sentAt: number;
  /** sentAt − createdAt: the time it waited to be sent. */
  pendingDuration: number;
  /** From sentAt to the answer, in ms. */
  duration: number;
  /** Kafka's name and key of the request (`Produce` 0, `Fetch` 1, `ListOffsets` 2), and the version of its body. */
  apiName: string;
  apiKey: number;
  apiVersion: number;
}

/**
 * A request this broker made to another broker of its cluster for a call given a `trace`
 * (NodeApi.reportPeerRequests): KafkaJS's REQUEST, REQUEST_TIMEOUT and REQUEST_QUEUE_SIZE
 * payloads. A request that timed out waiting to be sent has correlationId 0 and sentAt the
 * time it gave up.
 */
export type PeerRequestReport =
  | { type: 'request'; trace: number; payload: RequestReport }
  | { type: 'request_timeout'; trace: number; payload: Omit<RequestReport, 'size' | 'duration'> }
  /** The broker's requests to that broker waiting to be sent (for admission, one of its in-flight slots, queue room) changed: this call's request joined or left them. */
  | { type: 'request_queue_size'; trace: number; payload: { broker: string; queueSize: number } };

/** What the worker exposes. Every method may reject with a LetterboxError subclass. */
export interface NodeApi {
  start(init: NodeStartInit): Promise<NodeInfo>;
  /** Resolves per topic: true if created, false if it existed. */
  createTopics(specs: TopicSpec[], validateOnly: boolean): Promise<boolean[]>;
  /** Users' topics: internal ones (`__consumer_offsets`) are not listed. */
  listTopics(): Promise<string[]>;
  /** All users' topics, or the named ones, internal ones too (UnknownTopicOrPartitionError for a missing one). */
  describeTopics(names?: string[]): Promise<TopicState[]>;
  /** With a `trace` (here and in fetch and listOffsets), the requests this call makes to other brokers are reported with it (reportPeerRequests). */
  produce(request: ProduceRequest, trace?: number): Promise<ProduceResult[]>;
  /**
   * Kafka's InitProducerId for an idempotent producer: a producer id from this broker's block
   * (KIP-730: blocks come from the controller through the metadata log; a private broker keeps
   * its own in storage), at epoch 0.
   */
  initProducerId(): Promise<{ producerId: number; producerEpoch: number }>;
  fetch(request: FetchRequest, trace?: number): Promise<FetchedPartition[]>;
  listOffsets(queries: Array<{ topic: string; partition: number; query: OffsetQuery }>, trace?: number): Promise<Array<number | undefined>>;
  /** Deletes topics and all their records. UnknownTopicOrPartitionError for a missing one. */
  deleteTopics(names: string[]): Promise<void>;
  /** Raises topics' partition counts to `count` (never lowers them), all or none. */
  createPartitions(changes: Array<{ topic: string; count: number }>): Promise<void>;
  /** Applies config entries to topics, all or none; later maintenance obeys them. */
  alterConfigs(changes: Array<{ topic: string; entries: ConfigEntry[] }>): Promise<void>;
  /** Kafka's DeleteRecords: moves each partition's log start to `offset` (-1: the high watermark); resolves the new log starts. */
  deleteRecords(topic: string, partitions: Array<{ partition: number; offset: number }>): Promise<number[]>;
  /** Joins (or rejoins) a consumer group; resolves when the group's rebalance completes. */
  joinGroup(request: JoinGroupRequest): Promise<JoinReply>;
  /** The member's assignment for its generation. */
  syncGroup(request: MemberRequest): Promise<SyncReply>;
  /** Keeps the member's session; rejects with GroupError REBALANCE_IN_PROGRESS when it must rejoin. */
  heartbeat(request: MemberRequest): Promise<void>;
  leaveGroup(request: { groupId: string; memberId: string }): Promise<void>;
  /** Commits offsets durably. memberId null: an admin commit, allowed only while the group has no members. */
  commitOffsets(request: { groupId: string; memberId: string | null; generationId: number; offsets: OffsetCommit[] }): Promise<void>;
  /** The group's committed offsets. */
  fetchOffsets(groupId: string): Promise<OffsetCommit[]>;
  listGroups(): Promise<Array<{ groupId: string; state: GroupStateName }>>;
  /** Groups the coordinator does not know are described as Empty with no members. */
  describeGroups(groupIds: string[]): Promise<GroupDescription[]>;
  /** Deletes groups without members and their committed offsets; each result says why a group was not deleted (null: deleted). */
  deleteGroups(groupIds: string[]): Promise<Array<{ groupId: string; error: { code: GroupErrorCode; message: string } | null }>>;
  /**
   * Reports to `report` the requests this broker makes to other brokers for produce, fetch and
   * listOffsets calls given a `trace` (forwarded to their partitions' leaders), each with that
   * trace; calls without one report nothing. A later call replaces `report`.
   */
  reportPeerRequests(report: (report: PeerRequestReport) => void): void;
  /** Ends the fetch with this requestId now, returning what it has. */
  cancel(requestId: number): void;
  /** The slot's libp2p private key (protobuf bytes); a slot without one stores `candidate` and returns it. */
  networkKey(candidate: Uint8Array): Promise<Uint8Array>;
  /**
   * Connects the node to the page's network: peer events and bytes arrive over `port` (transferred).
   * Peers are admitted only if they prove they know `secret` (default: none, which peers with a secret refuse).
   * With `cluster`, the node joins that cluster (or bootstraps it: README § Clusters) and, unless
   * `local` is false, meets this origin's other tabs of it directly (the local transport, no
   * relay needed); `deviceId` names this browser profile (replicas go to distinct devices);
   * `reassignAfterMs` how long a fenced broker waits before its replicas move, while this
   * node's controller is the active one (default 30 s).
   */
  attachNetwork(port: MessagePort, options?: { secret?: string; cluster?: string; local?: boolean; deviceId?: string; reassignAfterMs?: number }, onEvent?: (event: ClusterEvent) => void): void;
  /**
   * Joins `cluster` over the local transport alone (this origin's other tabs, no relay, no
   * page network): the cluster a Letterbox without a `cluster` option is a broker of. The
   * broker's address is `local:<incarnation>`, so a reopened tab is the same broker.
   */
  joinLocalCluster(options: { cluster: string; deviceId: string; reassignAfterMs?: number; hostedBy?: number }, onEvent?: (event: ClusterEvent) => void): void;
  /** The cluster this node is a broker of, as its metadata image shows it; undefined without a cluster. */
  clusterInfo(): Promise<ClusterInfo | undefined>;
  /** Peers refused admission (by this node or by them) since the network was attached, with why. */
  refusedPeers(): Array<{ peerId: string; reason: string }>;
  /** Peers the node has a direct connection to, as the page reported them over the bridge. */
  peers(): PeerInfo[];
  /**
   * Sends `bytes` to a peer's broker as an `echo` request over peer RPC and returns its answer.
   * `requestKey` (chosen by the caller, unique among its pending calls) lets cancelPeerRequest stop it.
   * Rejects with TimeoutError, AbortedError, PeerError, or a PEER_NOT_CONNECTED error.
   */
  echoPeer(request: { requestKey: number; peerId: string; bytes: Uint8Array; timeoutMs?: number }): Promise<Uint8Array>;
  /**
   * Throughput probe: sends `count` one-way `echo` messages of `bytes` to a peer, then one
   * `echo` request; the stream keeps order, so its answer means the peer took them all.
   * Resolves with the milliseconds from the first message to that answer.
   */
  probePeer(request: { peerId: string; bytes: Uint8Array; count: number; timeoutMs?: number }): Promise<{ ms: number }>;
  /**
   * Round-trip probe: `rounds` `echo` requests of `bytes` to a peer, one at a time, each timed
   * here in the worker (so without the page↔worker hop of an echoPeer call). Resolves with the
   * round trips in ms, in order.
   */
  probePeerRtt(request: { peerId: string; bytes: Uint8Array; rounds: number; timeoutMs?: number }): Promise<{ rttMs: number[] }>;
  /** Stops the echoPeer call with this key: it rejects with AbortedError. */
  cancelPeerRequest(requestKey: number): void;
  /**
   * Hands every leadership this broker holds (its partitions', the active controller's) to an
   * in-sync follower, before a planned close; resolves once it leads none of them, or after an
   * election timeout, with how many moved and how many it still leads. From then on the broker
   * is leaving: it hands over again whatever it still or again leads, and is fenced (no heartbeats).
   */
  handOver(): Promise<{ handedOver: number; kept: number }>;
  close(): Promise<void>;
}
