import {
  BrokerIdentityError,
  FencedLeaderEpochError,
  InconsistentClusterIdError,
  InvalidArgumentError,
  InvalidConfigError,
  InvalidTopicError,
  LetterboxError,
  MetadataRecordError,
  NotControllerError,
  NotLeaderOrFollowerError,
  TopicExistsError,
  UnknownTopicOrPartitionError,
} from '../errors';
import type { CommittedEntry, Membership, NodeId, Role } from '../raft';
import { MetadataImage } from './image';
import { memberId } from './identity';
import { nextMembership } from './membership';
import { isInternalTopic, validateTopicName } from './names';
import { placeReplicas } from './placement';
import { reassignmentDone, reassignments } from './reassignment';
import { decodeRecord, encodeRecord, type MetadataRecord } from './records';

/** A topic config entry as the admin API takes it (Kafka's names, string values; null removes). */
export interface ConfigEntryInput {
  readonly name: string;
  readonly value: string | null;
}

/** One partition's replicas as a topic's creator places them (Kafka's CreateTopics `assignments`); the first leads. */
export interface ReplicaAssignment {
  readonly partition: number;
  readonly replicas: readonly number[];
}

export interface NewTopic {
  readonly name: string;
  /** Default 1 (Kafka's num.partitions); with `assignments`, absent or their count. */
  readonly numPartitions?: number;
  /** Default min(defaultReplicationFactor, live brokers); with `assignments`, absent or their replica count. */
  readonly replicationFactor?: number;
  readonly configs?: readonly ConfigEntryInput[];
  /**
   * The partitions' replicas instead of the controller's placement: partitions 0..n-1, each
   * once, each with as many replicas, distinct registered brokers that are not fenced.
   */
  readonly assignments?: readonly ReplicaAssignment[];
}

/**
 * What brokers ask the active controller (over peer RPC; a tab's own broker locally). Each
 * names the cluster it is meant for: brokers of two clusters under one name share a transport.
 */
export type ControllerRequest = { readonly clusterId: string } & ControllerRequestBody;

/** A request's own fields. */
export type ControllerRequestBody =
  /** First registration (`brokerId` undefined: the controller assigns one) or a return with the broker's storage. */
  | {
      readonly type: 'register';
      readonly brokerId: number | undefined;
      readonly incarnation: string;
      readonly deviceId: string;
      readonly endpoints: readonly string[];
      /** The broker whose tab runs it (an adopted slot); absent in its own tab. */
      readonly hostedBy?: number;
    }
  | { readonly type: 'heartbeat'; readonly brokerId: number; readonly incarnation: string }
  /** A broker is certainly gone: a tab of the sender's browser whose slot lock was released. */
  | { readonly type: 'brokerGone'; readonly brokerId: number; readonly incarnation: string }
  | { readonly type: 'createTopics'; readonly topics: readonly NewTopic[] }
  | { readonly type: 'deleteTopics'; readonly topics: readonly string[] }
  /** `count`: the topic's new partition count. */
  | { readonly type: 'createPartitions'; readonly topics: ReadonlyArray<{ readonly topic: string; readonly count: number }> }
  | { readonly type: 'alterConfigs'; readonly topics: ReadonlyArray<{ readonly topic: string; readonly entries: readonly ConfigEntryInput[] }> }
  /**
   * Kafka's AlterPartition (KIP-497): the broker `brokerId` leads the partition's raft group at
   * `leaderEpoch` (its term) with these in-sync replicas; the metadata's leader hint and ISR follow.
   */
  | {
      readonly type: 'alterPartition';
      readonly brokerId: number;
      readonly incarnation: string;
      readonly topic: string;
      readonly partition: number;
      readonly leaderEpoch: number;
      readonly isr: readonly number[];
    }
  /** Kafka's AllocateProducerIds (KIP-730): a block of producer ids for the broker to hand to its idempotent producers. */
  | { readonly type: 'allocateProducerIds'; readonly brokerId: number; readonly incarnation: string };

/** Per topic: its error, or none when done. */
export interface TopicResult {
  readonly topic: string;
  readonly error?: LetterboxError;
}

/**
 * The controller's answer; `controllerEpoch` is the answering member's raft term. A broker
 * checks it with `checkControllerEpoch` before acting on an answer, except a
 * NOT_CONTROLLER error, which claims no controllership (it only hints at the leader).
 */
export type ControllerReply =
  | { readonly type: 'register'; readonly controllerEpoch: number; readonly brokerId: number }
  | { readonly type: 'heartbeat'; readonly controllerEpoch: number; readonly fenced: boolean }
  /** `brokerGone` done (the broker fenced, or it was already, or it is another incarnation now). */
  | { readonly type: 'brokerGone'; readonly controllerEpoch: number }
  /** `alterPartition` done: the metadata holds that leader and ISR (or newer). */
  | { readonly type: 'alterPartition'; readonly controllerEpoch: number }
  /** `allocateProducerIds` done: ids firstProducerId .. firstProducerId + count - 1 are the broker's, recorded in the metadata log. */
  | { readonly type: 'producerIds'; readonly controllerEpoch: number; readonly firstProducerId: number; readonly count: number }
  | { readonly type: 'topics'; readonly controllerEpoch: number; readonly results: readonly TopicResult[] }
  | { readonly type: 'error'; readonly controllerEpoch: number; readonly error: LetterboxError };

export type ControllerInput =
  /** The metadata group's raft state, after every step that may have changed it. */
  | {
      readonly type: 'raft';
      readonly role: Role;
      readonly term: number;
      readonly leader: NodeId | undefined;
      readonly membership: Membership;
      /** Last index of the member's log (a new leader's no-op is there). */
      readonly lastIndex: number;
    }
  /** The raft `apply` effect's entries. */
  | { readonly type: 'apply'; readonly entries: readonly CommittedEntry[] }
  /** The raft `restore` effect: a leader's snapshot replaces the image. */
  | { readonly type: 'restore'; readonly index: number; readonly data: Uint8Array }
  /** The raft answer to the `propose` or `changeMembership` effect `proposalId`. */
  | { readonly type: 'proposed'; readonly proposalId: number; readonly lastIndex: number; readonly term: number }
  | { readonly type: 'proposalRejected'; readonly proposalId: number; readonly error: LetterboxError }
  /** A request from the broker at transport address `from`. */
  | { readonly type: 'request'; readonly requestId: number; readonly from: string; readonly request: ControllerRequest }
  /** About every tickMs: sessions are checked and the membership kept up. */
  | { readonly type: 'tick'; readonly nowMs: number };

export type ControllerEffect =
  /** Feed the metadata group `{ type: 'propose', payloads }`; answer with `proposed` / `proposalRejected` carrying `proposalId`. */
  | { readonly type: 'propose'; readonly proposalId: number; readonly payloads: readonly Uint8Array[] }
  /** Feed the metadata group `{ type: 'changeMembership', membership }`; answered the same way. */
  | { readonly type: 'changeMembership'; readonly proposalId: number; readonly membership: Membership }
  /** Answer request `requestId` of the broker at `to`. */
  | { readonly type: 'reply'; readonly requestId: number; readonly to: string; readonly reply: ControllerReply }
  /** Feed the metadata group `{ type: 'compact', index, data }`: the image at `index`. */
  | { readonly type: 'compact'; readonly index: number; readonly data: Uint8Array }
  /** A committed record changed a broker's liveness (every broker reports it, from its own image). */
  | { readonly type: 'brokerFenced' | 'brokerUnfenced'; readonly brokerId: number }
  /** A committed record or snapshot the image refused (applied nowhere, since every replica refuses it alike). */
  | { readonly type: 'recordRefused'; readonly index: number; readonly error: MetadataRecordError };

export interface ControllerOptions {
  /** This broker's member id in the metadata group (broker id + storage incarnation). */
  readonly self: NodeId;
  /** A broker not heard from for this long is fenced. */
  readonly sessionTimeoutMs: number;
  /** A broker fenced this long has its replicas moved to live brokers (re-replication, src/cluster/reassignment.ts). */
  readonly reassignAfterMs: number;
  /** Largest replication factor accepted. */
  readonly maxReplicationFactor: number;
  /** A topic's replication factor when its creator names none (Kafka's default.replication.factor), at most the live brokers. Default min(3, maxReplicationFactor). */
  readonly defaultReplicationFactor?: number;
  /** Most partitions one topic may have. */
  readonly maxPartitions: number;
  /** Compacts the log (a snapshot of the image) once this many records follow its start. */
  readonly snapshotEveryRecords: number;
  /** Checks a topic's whole config after a change; a typed error refuses it. */
  validateConfigs(entries: ReadonlyMap<string, string>): LetterboxError | undefined;
  /** Set on the one broker that bootstraps a new cluster: it writes the first records once it leads. */
  readonly bootstrap?: { readonly clusterId: string; readonly clusterName: string; readonly deviceId: string; readonly endpoints: readonly string[] };
}

/** Records proposed and not yet applied, with what to answer once they are. */
interface Proposal {
  readonly id: number;
  readonly records: readonly MetadataRecord[];
  /** The answer once committed; undefined for the controller's own proposals. */
  readonly answer?: { readonly requestId: number; readonly to: string; readonly reply: ControllerReply };
  /** From `proposed`: where the last record went. */
  at?: { readonly lastIndex: number; readonly term: number };
  /** No records: an answer that waits until every proposal before it is decided (it was checked against them). */
  readonly barrier?: boolean;
  /** A membership change (no records). */
  readonly membership?: boolean;
}

/**
 * The controller's state: a linear value — `stepController` may update it in place; keep
 * only the state it returns. Every broker runs one on its metadata group member; only the
 * raft leader's acts (the active controller), once it has applied its term's first entry.
 */
export interface ControllerState {
  readonly options: ControllerOptions;
  /** The committed image: every applied record. */
  image: MetadataImage;
  applied: number;
  /** Index of the last snapshot the controller asked for. */
  compactedAt: number;
  role: Role;
  term: number;
  leader: NodeId | undefined;
  membership: Membership;
  /** Leader: index of its term's no-op; it acts once that is applied. */
  readyIndex: number | undefined;
  nowMs: number;
  /** Leader: when each broker was last heard from (a new leader grants every broker a full session). */
  sessions: Map<number, number>;
  /** Leader: since when it has seen each fenced broker fenced (a new leader starts counting afresh). */
  fencedSince: Map<number, number>;
  proposals: Proposal[];
  nextProposalId: number;
  /** The image with every pending proposal's records applied: what new requests are checked against. */
  speculative: MetadataImage | undefined;
}

/**
 * A controller for one broker's metadata group member.
 * @example let controller = createController({ self: memberId(1, incarnation), sessionTimeoutMs: 9000, ... });
 */
export function createController(options: ControllerOptions): ControllerState {
  return {
    options,
    image: new MetadataImage(),
    applied: 0,
    compactedAt: 0,
    role: 'follower',
    term: 0,
    leader: undefined,
    membership: { voters: [], learners: [] },
    readyIndex: undefined,
    nowMs: 0,
    sessions: new Map(),
    fencedSince: new Map(),
    proposals: [],
    nextProposalId: 1,
    speculative: undefined,
  };
}

/** Whether this controller is the active one: the leader, caught up with its term. @example isActive(state) */
/** Producer ids in one block handed to a broker (Kafka's ProducerIdManager block size, 1000). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

export const isActive = (s: ControllerState): boolean => s.role === 'leader' && s.readyIndex !== undefined && s.applied >= s.readyIndex;

/**
 * Feeds one input; returns the next state (maybe the same object, updated) and the effects, in order.
 * @example ({ state, effects } = stepController(state, { type: 'tick', nowMs }));
 */
export function stepController(s: ControllerState, input: ControllerInput): { state: ControllerState; effects: ControllerEffect[] } {
  const out: ControllerEffect[] = [];
  switch (input.type) {
    case 'raft':
      raftChanged(s, out, input);
      break;
    case 'apply':
      for (const entry of input.entries) applyEntry(s, out, entry);
      maybeCompact(s, out);
      break;
    case 'restore': {
      const image = MetadataImage.decode(input.data);
      if (image instanceof MetadataRecordError) out.push({ type: 'recordRefused', index: input.index, error: image });
      else s.image = image;
      s.applied = input.index;
      s.compactedAt = input.index;
      s.speculative = undefined;
      break;
    }
    case 'proposed': {
      const proposal = s.proposals.find((p) => p.id === input.proposalId);
      if (proposal !== undefined) proposal.at = { lastIndex: input.lastIndex, term: input.term };
      break;
    }
    case 'proposalRejected':
      dropProposal(s, out, input.proposalId, input.error);
      break;
    case 'request':
      request(s, out, input.requestId, input.from, input.request);
      break;
    case 'tick':
      s.nowMs = input.nowMs;
      if (isActive(s)) {
        checkSessions(s, out);
        keepMembership(s, out);
        reassign(s, out);
      }
      break;
  }
  return { state: s, effects: out };
}

function raftChanged(s: ControllerState, out: ControllerEffect[], r: Extract<ControllerInput, { type: 'raft' }>): void {
  const wasLeading = s.role === 'leader' ? s.term : undefined;
  s.role = r.role;
  s.leader = r.leader;
  s.membership = r.membership;
  const termChanged = r.term !== s.term;
  s.term = r.term;
  if (r.role === 'leader' && wasLeading === r.term) return;
  if (wasLeading !== undefined || termChanged) {
    // Leadership lost (or a new term): what was proposed may or may not commit; the
    // requesters retry against the new controller, and registration is idempotent.
    for (const p of s.proposals) if (p.answer !== undefined) out.push(notController(s, p.answer));
    s.proposals = [];
    s.speculative = undefined;
    s.sessions.clear();
    s.fencedSince.clear();
    s.readyIndex = undefined;
  }
  if (r.role === 'leader') {
    s.readyIndex = r.lastIndex;
    for (const b of s.image.brokers()) s.sessions.set(b.brokerId, s.nowMs);
    maybeBecomeActive(s, out);
  }
}

const notController = (s: ControllerState, answer: NonNullable<Proposal['answer']>): ControllerEffect => ({
  type: 'reply',
  requestId: answer.requestId,
  to: answer.to,
  reply: { type: 'error', controllerEpoch: s.term, error: new NotControllerError(`${s.options.self} is not the active controller`, s.leader) },
});

/** Once the leader has applied its no-op it knows every committed record: a new cluster's first records go in. */
function maybeBecomeActive(s: ControllerState, out: ControllerEffect[]): void {
  if (!isActive(s) || s.image.clusterId !== undefined || s.proposals.length > 0) return;
  const boot = s.options.bootstrap;
  if (boot === undefined) return;
  // The bootstrapping broker is broker 1; its member id says so (see `bootstrapMember`).
  const incarnation = s.options.self.slice(s.options.self.indexOf('.') + 1);
  propose(s, out, [
    { type: 'clusterId', clusterId: boot.clusterId, clusterName: boot.clusterName },
    { type: 'registerBroker', brokerId: 1, incarnation, deviceId: boot.deviceId, endpoints: boot.endpoints },
  ]);
}

function applyEntry(s: ControllerState, out: ControllerEffect[], entry: CommittedEntry): void {
  s.applied = entry.index;
  if (entry.data.length > 0) {
    const record = decodeRecord(entry.data);
    const error = record instanceof MetadataRecordError ? record : s.image.apply(record);
    if (error !== undefined) out.push({ type: 'recordRefused', index: entry.index, error });
    else if (!(record instanceof MetadataRecordError) && (record.type === 'fenceBroker' || record.type === 'unfenceBroker')) {
      out.push({ type: record.type === 'fenceBroker' ? 'brokerFenced' : 'brokerUnfenced', brokerId: record.brokerId });
    }
  }
  settle(s, out, entry);
  s.speculative = undefined;
  maybeBecomeActive(s, out);
}

/**
 * Answers the proposals at the front that are decided: committed if the entry applied at
 * their last index is of their term; and the barriers behind them.
 */
function settle(s: ControllerState, out: ControllerEffect[], applied?: CommittedEntry): void {
  for (let p = s.proposals[0]; p !== undefined; p = s.proposals[0]) {
    const decided = p.barrier === true || (applied !== undefined && p.at !== undefined && p.at.lastIndex <= applied.index);
    if (!decided) return;
    s.proposals.shift();
    if (p.answer === undefined) continue;
    const lost = p.at !== undefined && p.at.lastIndex === applied?.index && p.at.term !== applied.term;
    out.push(lost ? notController(s, p.answer) : { type: 'reply', ...p.answer });
  }
}

function maybeCompact(s: ControllerState, out: ControllerEffect[]): void {
  if (s.applied - s.compactedAt < s.options.snapshotEveryRecords) return;
  s.compactedAt = s.applied;
  out.push({ type: 'compact', index: s.applied, data: s.image.encode() });
}

function dropProposal(s: ControllerState, out: ControllerEffect[], id: number, error: LetterboxError): void {
  const at = s.proposals.findIndex((p) => p.id === id);
  if (at < 0) return;
  const [p] = s.proposals.splice(at, 1);
  s.speculative = undefined;
  if (p!.answer !== undefined) out.push({ type: 'reply', requestId: p!.answer.requestId, to: p!.answer.to, reply: { type: 'error', controllerEpoch: s.term, error } });
  settle(s, out);
}

/** The committed image with every pending proposal applied. */
function speculative(s: ControllerState): MetadataImage {
  if (s.speculative === undefined) {
    s.speculative = s.image.clone();
    for (const p of s.proposals) for (const record of p.records) s.speculative.apply(record);
  }
  return s.speculative;
}

function propose(s: ControllerState, out: ControllerEffect[], records: readonly MetadataRecord[], answer?: Proposal['answer']): void {
  const id = s.nextProposalId++;
  s.proposals.push({ id, records, ...(answer && { answer }) });
  if (s.speculative !== undefined) for (const record of records) s.speculative.apply(record);
  out.push({ type: 'propose', proposalId: id, payloads: records.map(encodeRecord) });
}

function request(s: ControllerState, out: ControllerEffect[], requestId: number, from: string, req: ControllerRequest): void {
  const reply = (r: ControllerReply): void => void out.push({ type: 'reply', requestId, to: from, reply: r });
  const error = (e: LetterboxError): void => reply({ type: 'error', controllerEpoch: s.term, error: e });
  // Another cluster's request is refused first: a hint to this cluster's leader would mislead it.
  const clusterId = s.image.clusterId ?? s.options.bootstrap?.clusterId;
  if (clusterId !== undefined && req.clusterId !== clusterId) return error(new InconsistentClusterIdError(`a ${req.type} request of cluster ${req.clusterId} from ${from}; this is cluster ${clusterId}`));
  if (!isActive(s)) return error(new NotControllerError(`${s.options.self} is not the active controller`, s.role === 'leader' ? s.options.self : s.leader));
  const image = speculative(s);
  if (req.clusterId !== image.clusterId) return error(new InconsistentClusterIdError(`a ${req.type} request of cluster ${req.clusterId} from ${from}; this is cluster ${image.clusterId}`));
  // An answer rests on the records pending too: with none to write, it waits for them.
  const commit = (records: MetadataRecord[], answer: ControllerReply): void => {
    const to = { requestId, to: from, reply: answer };
    if (records.length > 0) propose(s, out, records, to);
    else if (s.proposals.length > 0) s.proposals.push({ id: s.nextProposalId++, records: [], answer: to, barrier: true });
    else reply(answer);
  };
  switch (req.type) {
    case 'register':
    case 'heartbeat': {
      const found = identify(image, req.brokerId, req.incarnation, req.type === 'register' ? 'DUPLICATE_BROKER_REGISTRATION' : 'STALE_BROKER_EPOCH');
      if (found instanceof LetterboxError) return error(found);
      if (req.type === 'heartbeat' && found === undefined) return error(new BrokerIdentityError('STALE_BROKER_EPOCH', req.brokerId, `broker ${req.brokerId} is not registered`));
      const brokerId = found?.brokerId ?? image.nextBrokerId;
      s.sessions.set(brokerId, s.nowMs);
      const records: MetadataRecord[] = [];
      if (req.type === 'register') {
        const { incarnation, deviceId, endpoints, hostedBy } = req;
        if (hostedBy === brokerId) return error(new InvalidArgumentError(`broker ${brokerId} cannot be hosted by itself`));
        const same =
          found !== undefined && found.deviceId === deviceId && found.hostedBy === hostedBy && found.endpoints.length === endpoints.length && found.endpoints.every((e, i) => e === endpoints[i]);
        if (!same) records.push({ type: 'registerBroker', brokerId, incarnation, deviceId, endpoints, ...(hostedBy === undefined ? {} : { hostedBy }) });
      }
      if (found?.fenced === true) records.push({ type: 'unfenceBroker', brokerId, incarnation: req.incarnation });
      return commit(records, req.type === 'register' ? { type: 'register', controllerEpoch: s.term, brokerId } : { type: 'heartbeat', controllerEpoch: s.term, fenced: false });
    }
    case 'brokerGone': {
      s.sessions.delete(req.brokerId);
      const broker = image.broker(req.brokerId);
      const records: MetadataRecord[] = broker !== undefined && !broker.fenced && broker.incarnation === req.incarnation
        ? [{ type: 'fenceBroker', brokerId: broker.brokerId, incarnation: broker.incarnation }]
        : [];
      return commit(records, { type: 'brokerGone', controllerEpoch: s.term });
    }
    case 'createTopics':
      return topicsRequest(s, commit, image, req.topics.map((t) => t.name), (scratch, i) => createTopic(s, scratch, req.topics[i]!));
    case 'deleteTopics':
      return topicsRequest(s, commit, image, req.topics, (scratch, i) => {
        const topic = scratch.topicByName(req.topics[i]!);
        return topic === undefined ? new UnknownTopicOrPartitionError(req.topics[i]!) : [{ type: 'removeTopic', topicId: topic.topicId }];
      });
    case 'createPartitions':
      return topicsRequest(s, commit, image, req.topics.map((t) => t.topic), (scratch, i) => createPartitions(s, scratch, req.topics[i]!.topic, req.topics[i]!.count));
    case 'alterConfigs':
      return topicsRequest(s, commit, image, req.topics.map((t) => t.topic), (scratch, i) => alterConfigs(s, scratch, req.topics[i]!.topic, req.topics[i]!.entries));
    case 'alterPartition': {
      const outcome = alterPartition(image, req);
      if (outcome instanceof LetterboxError) return error(outcome);
      return commit(outcome, { type: 'alterPartition', controllerEpoch: s.term });
    }
    case 'allocateProducerIds': {
      const sender = identify(image, req.brokerId, req.incarnation, 'STALE_BROKER_EPOCH');
      if (sender instanceof LetterboxError) return error(sender);
      if (sender === undefined) return error(new BrokerIdentityError('STALE_BROKER_EPOCH', req.brokerId, `broker ${req.brokerId} is not registered`));
      const firstProducerId = image.nextProducerId;
      const records: MetadataRecord[] = [{ type: 'producerIds', brokerId: req.brokerId, nextProducerId: firstProducerId + PRODUCER_ID_BLOCK_SIZE }];
      return commit(records, { type: 'producerIds', controllerEpoch: s.term, firstProducerId, count: PRODUCER_ID_BLOCK_SIZE });
    }
  }
}

/**
 * The record an AlterPartition asks for, none when the metadata says so already, or why it is
 * refused: an unknown sender or partition, a sender that is not a replica, a leader epoch
 * below the metadata's (or the same epoch claimed by another leader), an ISR that is not
 * replicas or lacks its leader.
 */
function alterPartition(image: MetadataImage, req: Extract<ControllerRequest, { type: 'alterPartition' }>): LetterboxError | MetadataRecord[] {
  const sender = identify(image, req.brokerId, req.incarnation, 'STALE_BROKER_EPOCH');
  if (sender instanceof LetterboxError) return sender;
  const topic = image.topicByName(req.topic);
  const current = topic?.partitions[req.partition];
  if (topic === undefined || current === undefined) return new UnknownTopicOrPartitionError(req.topic, req.partition);
  if (!current.replicas.includes(req.brokerId)) return new NotLeaderOrFollowerError(req.topic, req.partition, current.leader);
  if (req.leaderEpoch < current.leaderEpoch || (req.leaderEpoch === current.leaderEpoch && current.leader !== req.brokerId)) {
    return new FencedLeaderEpochError(req.topic, req.partition, req.leaderEpoch, current.leaderEpoch);
  }
  const isr = [...new Set(req.isr)].sort((a, b) => a - b);
  if (!isr.includes(req.brokerId) || isr.some((id) => !current.replicas.includes(id))) {
    return new InvalidArgumentError(`the isr [${req.isr.join(', ')}] of ${req.topic}-${req.partition} must be replicas of it, its leader ${req.brokerId} among them`);
  }
  const same = current.leader === req.brokerId && current.leaderEpoch === req.leaderEpoch && current.isr.length === isr.length && current.isr.every((id) => isr.includes(id));
  if (same) return [];
  const leadership = { type: 'partition', topicId: topic.topicId, partition: req.partition, leader: req.brokerId, leaderEpoch: req.leaderEpoch } as const;
  // The replicas being added are in sync (promoted and caught up): the new set alone, the reassignment done.
  const done = reassignmentDone(current, isr);
  if (done !== undefined) return [{ ...leadership, ...done }];
  return [{ ...leadership, replicas: current.replicas, isr, ...(current.reassignment && { reassignment: current.reassignment }) }];
}

/**
 * The broker a registration or heartbeat names: by id (its incarnation must match: else a
 * registration claims another broker's id, a heartbeat comes from an old incarnation) or,
 * for a first registration, by incarnation (a retry whose answer was lost); undefined for a new broker.
 */
function identify(image: MetadataImage, brokerId: number | undefined, incarnation: string, mismatch: 'DUPLICATE_BROKER_REGISTRATION' | 'STALE_BROKER_EPOCH') {
  const byIncarnation = image.brokers().find((b) => b.incarnation === incarnation);
  if (brokerId === undefined) return byIncarnation;
  const known = image.broker(brokerId);
  if (known === undefined) return new BrokerIdentityError('STALE_BROKER_EPOCH', brokerId, `broker ${brokerId} is not registered in this cluster`);
  if (known.incarnation !== incarnation) {
    return new BrokerIdentityError(mismatch, brokerId, `broker ${brokerId} is registered with another storage incarnation than ${incarnation}`);
  }
  return known;
}

/**
 * Checks each topic of a request against the image and the topics before it in the same
 * request (applied to a scratch copy), and proposes the accepted ones' records together.
 */
function topicsRequest(
  s: ControllerState,
  commit: (records: MetadataRecord[], answer: ControllerReply) => void,
  image: MetadataImage,
  names: readonly string[],
  check: (scratch: MetadataImage, i: number) => LetterboxError | MetadataRecord[],
): void {
  const scratch = image.clone();
  const records: MetadataRecord[] = [];
  const results: TopicResult[] = names.map((topic, i) => {
    const outcome = check(scratch, i);
    if (outcome instanceof LetterboxError) return { topic, error: outcome };
    for (const record of outcome) {
      const refused = scratch.apply(record);
      if (refused !== undefined) return { topic, error: refused };
    }
    records.push(...outcome);
    return { topic };
  });
  commit(records, { type: 'topics', controllerEpoch: s.term, results });
}

const liveBrokers = (image: MetadataImage) => image.brokers().filter((b) => !b.fenced);
const partitionCount = (image: MetadataImage) => image.topics().reduce((n, t) => n + t.partitions.length, 0);

function createTopic(s: ControllerState, image: MetadataImage, topic: NewTopic): LetterboxError | MetadataRecord[] {
  try {
    // Internal topics are created by brokers (the offsets topic, on a group's first call); users' names are checked at their broker too.
    if (!isInternalTopic(topic.name)) validateTopicName(topic.name);
  } catch (error) {
    return error as LetterboxError;
  }
  const colliding = image.collidingTopic(topic.name);
  // A name equal but for `.`/`_` is another topic's, not this one: Kafka refuses it as an invalid topic.
  if (colliding !== undefined) {
    return colliding.name === topic.name ? new TopicExistsError(topic.name) : new InvalidTopicError(`topic "${topic.name}" collides with existing topic "${colliding.name}" ("." and "_" collide)`);
  }
  const replicas = topic.assignments === undefined ? placeTopic(s, image, topic) : assignedReplicas(s, image, topic, topic.assignments);
  if (replicas instanceof LetterboxError) return replicas;
  const configs = new Map<string, string>();
  for (const entry of topic.configs ?? []) if (entry.value !== null) configs.set(entry.name, entry.value);
  const badConfig = s.options.validateConfigs(configs);
  if (badConfig !== undefined) return badConfig;
  const topicId = image.nextTopicId;
  return [
    { type: 'topic', topicId, name: topic.name },
    ...partitionRecords(topicId, 0, replicas),
    ...[...configs].map(([name, value]): MetadataRecord => ({ type: 'config', topicId, name, value })),
  ];
}

/** The controller's placement of a new topic's partitions: their replicas, by partition. */
function placeTopic(s: ControllerState, image: MetadataImage, topic: NewTopic): LetterboxError | number[][] {
  const live = liveBrokers(image);
  const factor = topic.replicationFactor ?? Math.min(s.options.defaultReplicationFactor ?? 3, live.length, s.options.maxReplicationFactor);
  const badFactor = checkFactor(s, factor, live.length);
  if (badFactor !== undefined) return badFactor;
  const count = topic.numPartitions ?? 1;
  if (!Number.isSafeInteger(count) || count < 1 || count > s.options.maxPartitions) {
    return new InvalidConfigError(`numPartitions must be a whole number in 1..${s.options.maxPartitions}, got ${count}`, 'INVALID_PARTITIONS');
  }
  return placeReplicas(live, count, factor, partitionCount(image));
}

/**
 * A new topic's replicas as its creator assigned them, by partition, checked as Kafka checks
 * CreateTopics `assignments` (INVALID_REPLICA_ASSIGNMENT), with the partition count and
 * replication factor bounded as for a placed topic.
 */
function assignedReplicas(s: ControllerState, image: MetadataImage, topic: NewTopic, assignments: readonly ReplicaAssignment[]): LetterboxError | number[][] {
  const count = assignments.length;
  const bad = (message: string) => new InvalidConfigError(`topic "${topic.name}": ${message}`, 'INVALID_REPLICA_ASSIGNMENT');
  if (count < 1 || count > s.options.maxPartitions || (topic.numPartitions !== undefined && topic.numPartitions !== count)) {
    const given = topic.numPartitions === undefined ? '' : ` (numPartitions ${topic.numPartitions})`;
    return new InvalidConfigError(`topic "${topic.name}": ${count} partitions assigned${given}; it takes 1..${s.options.maxPartitions}, numPartitions absent or equal`, 'INVALID_PARTITIONS');
  }
  const byPartition: Array<number[] | undefined> = Array.from({ length: count }, () => undefined);
  for (const { partition, replicas } of assignments) {
    if (!Number.isSafeInteger(partition) || partition < 0 || partition >= count || byPartition[partition] !== undefined) {
      return bad(`partitions ${assignments.map((a) => a.partition).join(', ')} assigned; they must be 0..${count - 1}, each once`);
    }
    byPartition[partition] = [...replicas];
  }
  const factor = assignments[0]!.replicas.length;
  for (const [partition, replicas] of byPartition.entries()) {
    if (replicas!.length !== factor) return bad(`partition ${partition} has ${replicas!.length} replicas and partition ${assignments[0]!.partition} has ${factor}: every partition takes as many`);
    if (factor === 0) return bad(`partition ${partition} has no replicas`);
    if (new Set(replicas).size !== factor) return bad(`partition ${partition} lists a broker twice: ${replicas!.join(', ')}`);
    const unusable = replicas!.find((id) => image.broker(id)?.fenced !== false);
    if (unusable !== undefined) return bad(`partition ${partition}: broker ${unusable} is ${image.broker(unusable) === undefined ? 'not registered' : 'fenced'}`);
  }
  if (topic.replicationFactor !== undefined && topic.replicationFactor !== factor) {
    return new InvalidConfigError(`topic "${topic.name}": replicationFactor ${topic.replicationFactor} disagrees with the ${factor} replicas assigned to each partition`, 'INVALID_REPLICATION_FACTOR');
  }
  const badFactor = checkFactor(s, factor, liveBrokers(image).length);
  return badFactor ?? (byPartition as number[][]);
}

function checkFactor(s: ControllerState, factor: number, live: number): LetterboxError | undefined {
  const max = Math.min(live, s.options.maxReplicationFactor);
  if (Number.isSafeInteger(factor) && factor >= 1 && factor <= max) return undefined;
  return new InvalidConfigError(
    `replication factor ${factor} is not in 1..${max} (${live} live brokers${s.options.maxReplicationFactor < live ? `, at most ${s.options.maxReplicationFactor} supported` : ''})`,
    'INVALID_REPLICATION_FACTOR',
  );
}

/** The records of partitions `first`.. of a topic, with these replicas; each led by its first. */
function partitionRecords(topicId: number, first: number, placed: readonly (readonly number[])[]): MetadataRecord[] {
  return placed.map((replicas, i): MetadataRecord => ({
    type: 'partition',
    topicId,
    partition: first + i,
    replicas,
    isr: replicas,
    leader: replicas[0]!,
    leaderEpoch: 0,
  }));
}

function createPartitions(s: ControllerState, image: MetadataImage, name: string, count: number): LetterboxError | MetadataRecord[] {
  const topic = image.topicByName(name);
  if (topic === undefined) return new UnknownTopicOrPartitionError(name);
  const current = topic.partitions.length;
  if (!Number.isSafeInteger(count) || count <= current || count > s.options.maxPartitions) {
    return new InvalidConfigError(`topic "${name}" has ${current} partitions; the new count must be a whole number in ${current + 1}..${s.options.maxPartitions}, got ${count}`, 'INVALID_PARTITIONS');
  }
  const live = liveBrokers(image);
  const factor = topic.partitions[0]?.replicas.length ?? 1;
  const badFactor = checkFactor(s, factor, live.length);
  if (badFactor !== undefined) return badFactor;
  return partitionRecords(topic.topicId, current, placeReplicas(live, count - current, factor, partitionCount(image)));
}

function alterConfigs(s: ControllerState, image: MetadataImage, name: string, entries: readonly ConfigEntryInput[]): LetterboxError | MetadataRecord[] {
  const topic = image.topicByName(name);
  if (topic === undefined) return new UnknownTopicOrPartitionError(name);
  const configs = new Map(topic.configs);
  for (const { name: key, value } of entries) {
    if (value === null) configs.delete(key);
    else configs.set(key, value);
  }
  const bad = s.options.validateConfigs(configs);
  if (bad !== undefined) return bad;
  return entries.map(({ name: key, value }): MetadataRecord => ({ type: 'config', topicId: topic.topicId, name: key, value }));
}

/** Fences every broker silent past its session timeout (the controller itself is always heard). */
function checkSessions(s: ControllerState, out: ControllerEffect[]): void {
  const image = speculative(s);
  for (const b of image.brokers()) {
    if (b.fenced) continue;
    if (memberId(b.brokerId, b.incarnation) === s.options.self) {
      s.sessions.set(b.brokerId, s.nowMs);
      continue;
    }
    const heard = s.sessions.get(b.brokerId);
    if (heard === undefined) s.sessions.set(b.brokerId, s.nowMs);
    else if (s.nowMs - heard > s.options.sessionTimeoutMs) propose(s, out, [{ type: 'fenceBroker', brokerId: b.brokerId, incarnation: b.incarnation }]);
  }
}

/**
 * Moves the replicas of brokers fenced past `reassignAfterMs` to live brokers (one move per
 * partition at a time); counts how long each has been fenced, from this controller's view.
 */
function reassign(s: ControllerState, out: ControllerEffect[]): void {
  const image = speculative(s);
  for (const b of image.brokers()) {
    if (!b.fenced) s.fencedSince.delete(b.brokerId);
    else if (!s.fencedSince.has(b.brokerId)) s.fencedSince.set(b.brokerId, s.nowMs);
  }
  const records = reassignments(image, s.fencedSince, s.nowMs, s.options.reassignAfterMs);
  if (records.length > 0) propose(s, out, records);
}

/** One membership change at a time: none while one is pending or the image is ahead of the log. */
function keepMembership(s: ControllerState, out: ControllerEffect[]): void {
  if (s.proposals.length > 0) return;
  const next = nextMembership(s.image, s.membership, s.options.self);
  if (next === undefined) return;
  const id = s.nextProposalId++;
  s.proposals.push({ id, records: [], membership: true });
  out.push({ type: 'changeMembership', proposalId: id, membership: next });
}
