// The peer bodies of the metadata cluster (FORMATS.md § raft, § controller, § clusterHello):
// raft messages of many groups in one frame, the controller's requests and replies, and the
// hello brokers exchange when they meet. Each decoder returns exactly what was encoded
// (absent optional fields stay absent) or throws FrameError('CORRUPT_MESSAGE').
// Only types come from raft and cluster (the bodies are theirs), so this module adds no
// runtime dependency on them.

import type { ClusterHello, ConfigEntryInput, ControllerReply, ControllerRequest, ControllerRequestBody, NewTopic, ReplicaAssignment, TopicResult } from '../cluster';
import { FrameError } from '../errors';
import type { Entry, GroupMessage, Membership, Message } from '../raft';
import { readError, writeError } from './error-field';
import { FieldReader, FieldWriter, optional, tagReader } from './fields';
import type { MessageType } from './frame';

/** `raft` body: raft messages from one node to another, of groups of the cluster `clusterId`. */
export interface RaftFrame {
  readonly clusterId: string;
  readonly messages: readonly GroupMessage[];
}

/** `controller` body: a broker's request to the active controller, or the reply of the controller member `member`. */
export type ControllerMessage =
  | { readonly kind: 'request'; readonly request: ControllerRequest }
  | { readonly kind: 'reply'; readonly member: string; readonly reply: ControllerReply };

const corrupt = (message: string): FrameError => new FrameError('CORRUPT_MESSAGE', message);

// --- Broker ids: int32 ≥ 1; -1 where a field may be absent.

function writeBrokerId(w: FieldWriter, brokerId: number | undefined): void {
  if (brokerId !== undefined && !(brokerId >= 1)) throw new FrameError('INVALID_REQUEST', `broker id ${brokerId} is not ≥ 1`);
  w.varint(brokerId ?? -1, 'brokerId');
}

function readBrokerId(r: FieldReader): number {
  return r.varint('brokerId', 1);
}

function readOptionalBrokerId(r: FieldReader): number | undefined {
  const brokerId = r.varint('brokerId', -1);
  if (brokerId === 0) throw corrupt('brokerId 0');
  return brokerId === -1 ? undefined : brokerId;
}

// --- raft (id 4)

const MESSAGE_TAGS = {
  preVote: 0,
  vote: 1,
  preVoteResponse: 2,
  voteResponse: 3,
  append: 4,
  appendResponse: 5,
  heartbeat: 6,
  heartbeatResponse: 7,
  snapshot: 8,
  timeoutNow: 9,
} as const satisfies Record<Message['type'], number>;
const readMessageType = tagReader(MESSAGE_TAGS, 'raft message type');

function writeMembership(w: FieldWriter, membership: Membership): void {
  w.strings(membership.voters).strings(membership.learners);
}

function readMembership(r: FieldReader): Membership {
  return { voters: r.strings('voters'), learners: r.strings('learners') };
}

function writeEntry(w: FieldWriter, entry: Entry): void {
  w.varlong(entry.term, 'entry term').bytes(entry.data);
  if (w.present(entry.membership)) writeMembership(w, entry.membership);
}

function readEntry(r: FieldReader): Entry {
  const term = r.varlong('entry term', 0);
  const data = r.bytes('entry data');
  const membership = optional(r, 'membership', () => readMembership(r));
  return membership === undefined ? { term, data } : { term, data, membership };
}

function writeMessage(w: FieldWriter, m: Message): void {
  w.int8(MESSAGE_TAGS[m.type]).string(m.from).string(m.to).varlong(m.term, 'term');
  switch (m.type) {
    case 'preVote':
      w.varlong(m.lastIndex, 'lastIndex').varlong(m.lastTerm, 'lastTerm');
      return;
    case 'vote':
      w.varlong(m.lastIndex, 'lastIndex').varlong(m.lastTerm, 'lastTerm');
      if (w.present(m.force)) w.bool(m.force);
      return;
    case 'preVoteResponse':
    case 'voteResponse':
      w.bool(m.reject);
      return;
    case 'append':
      w.varlong(m.prevIndex, 'prevIndex').varlong(m.prevTerm, 'prevTerm').varlong(m.commit, 'commit');
      w.array(m.entries, (entry) => writeEntry(w, entry));
      return;
    case 'appendResponse':
      w.bool(m.reject).varlong(m.index, 'index').varlong(m.hintIndex, 'hintIndex').varlong(m.hintTerm, 'hintTerm');
      return;
    case 'heartbeat':
      w.varlong(m.commit, 'commit').varlong(m.readRound, 'readRound');
      return;
    case 'heartbeatResponse':
      w.varlong(m.readRound, 'readRound');
      return;
    case 'snapshot':
      w.varlong(m.snapshot.index, 'snapshot index').varlong(m.snapshot.term, 'snapshot term');
      writeMembership(w, m.snapshot.membership);
      w.bytes(m.snapshot.data);
      return;
    case 'timeoutNow':
      return;
  }
}

function readMessage(r: FieldReader): Message {
  const type = readMessageType(r);
  // Terms, indices and read rounds are counters from 0.
  const counter = (what: string): number => r.varlong(what, 0);
  const envelope = { from: r.string('from'), to: r.string('to'), term: counter('term') };
  switch (type) {
    case 'preVote':
      return { type, ...envelope, lastIndex: counter('lastIndex'), lastTerm: counter('lastTerm') };
    case 'vote': {
      const vote = { type, ...envelope, lastIndex: counter('lastIndex'), lastTerm: counter('lastTerm') };
      const force = optional(r, 'force', () => r.bool('force'));
      return force === undefined ? vote : { ...vote, force };
    }
    case 'preVoteResponse':
    case 'voteResponse':
      return { type, ...envelope, reject: r.bool('reject') };
    case 'append': {
      const fields = { prevIndex: counter('prevIndex'), prevTerm: counter('prevTerm'), commit: counter('commit') };
      return { type, ...envelope, ...fields, entries: r.array('entries', () => readEntry(r)) };
    }
    case 'appendResponse':
      return { type, ...envelope, reject: r.bool('reject'), index: counter('index'), hintIndex: counter('hintIndex'), hintTerm: counter('hintTerm') };
    case 'heartbeat':
      return { type, ...envelope, commit: counter('commit'), readRound: counter('readRound') };
    case 'heartbeatResponse':
      return { type, ...envelope, readRound: counter('readRound') };
    case 'snapshot': {
      const snapshot = { index: counter('snapshot index'), term: counter('snapshot term'), membership: readMembership(r), data: r.bytes('snapshot data') };
      return { type, ...envelope, snapshot };
    }
    case 'timeoutNow':
      return { type, ...envelope };
  }
}

/** `raft` (id 4, one-way): `clusterId` string, then [group string, message]. */
export const raftType: MessageType<RaftFrame> = {
  id: 4,
  versions: [0],
  encode(body) {
    const w = new FieldWriter().string(body.clusterId);
    w.array(body.messages, ({ group, message }) => writeMessage(w.string(group), message));
    return w.done();
  },
  decode(bytes) {
    const r = new FieldReader(bytes);
    const clusterId = r.string('clusterId');
    const messages = r.array('messages', () => ({ group: r.string('group'), message: readMessage(r) }));
    r.end('raft frame');
    return { clusterId, messages };
  },
};

// --- controller (id 5)

const REQUEST_TAGS = {
  register: 0,
  heartbeat: 1,
  brokerGone: 2,
  createTopics: 3,
  deleteTopics: 4,
  createPartitions: 5,
  alterConfigs: 6,
  alterPartition: 7,
  allocateProducerIds: 8,
} as const satisfies Record<ControllerRequestBody['type'], number>;
const REPLY_TAGS = { register: 0, heartbeat: 1, brokerGone: 2, topics: 3, error: 4, alterPartition: 5, producerIds: 6 } as const satisfies Record<ControllerReply['type'], number>;
const KIND_TAGS = { request: 0, reply: 1 } as const satisfies Record<ControllerMessage['kind'], number>;
const readRequestType = tagReader(REQUEST_TAGS, 'controller request type');
const readReplyType = tagReader(REPLY_TAGS, 'controller reply type');
const readKind = tagReader(KIND_TAGS, 'controller message kind');

function writeConfigEntries(w: FieldWriter, entries: readonly ConfigEntryInput[]): void {
  w.array(entries, ({ name, value }) => w.string(name).string(value));
}

function readConfigEntries(r: FieldReader): ConfigEntryInput[] {
  return r.array('config entries', () => ({ name: r.string('config name'), value: r.optionalString('config value') ?? null }));
}

function writeNewTopic(w: FieldWriter, topic: NewTopic): void {
  w.string(topic.name);
  if (w.present(topic.numPartitions)) w.varint(topic.numPartitions, 'numPartitions');
  if (w.present(topic.replicationFactor)) w.varint(topic.replicationFactor, 'replicationFactor');
  if (w.present(topic.configs)) writeConfigEntries(w, topic.configs);
  if (w.present(topic.assignments)) {
    w.array(topic.assignments, ({ partition, replicas }) => w.varint(partition, 'partition').array(replicas, (id) => w.varint(id, 'replica')));
  }
}

function readAssignments(r: FieldReader): ReplicaAssignment[] {
  return r.array('assignments', () => ({ partition: r.varint('partition'), replicas: r.array('replicas', () => r.varint('replica')) }));
}

function readNewTopic(r: FieldReader): NewTopic {
  const name = r.string('topic');
  const numPartitions = optional(r, 'numPartitions', () => r.varint('numPartitions'));
  const replicationFactor = optional(r, 'replicationFactor', () => r.varint('replicationFactor'));
  const configs = optional(r, 'configs', () => readConfigEntries(r));
  const assignments = optional(r, 'assignments', () => readAssignments(r));
  return {
    name,
    ...(numPartitions === undefined ? {} : { numPartitions }),
    ...(replicationFactor === undefined ? {} : { replicationFactor }),
    ...(configs === undefined ? {} : { configs }),
    ...(assignments === undefined ? {} : { assignments }),
  };
}

function writeRequest(w: FieldWriter, request: ControllerRequest, version: number): void {
  w.string(request.clusterId).int8(REQUEST_TAGS[request.type]);
  switch (request.type) {
    case 'register':
      writeBrokerId(w, request.brokerId);
      w.string(request.incarnation).string(request.deviceId).strings(request.endpoints);
      // Version 1: the broker whose tab runs it (an adopted slot).
      if (version >= 1) writeBrokerId(w, request.hostedBy);
      return;
    case 'heartbeat':
    case 'brokerGone':
    case 'allocateProducerIds':
      writeBrokerId(w, request.brokerId);
      w.string(request.incarnation);
      return;
    case 'createTopics':
      w.array(request.topics, (topic) => writeNewTopic(w, topic));
      return;
    case 'deleteTopics':
      w.strings(request.topics);
      return;
    case 'createPartitions':
      w.array(request.topics, ({ topic, count }) => w.string(topic).varint(count, 'count'));
      return;
    case 'alterConfigs':
      w.array(request.topics, ({ topic, entries }) => writeConfigEntries(w.string(topic), entries));
      return;
    case 'alterPartition':
      writeBrokerId(w, request.brokerId);
      w.string(request.incarnation).string(request.topic).varint(request.partition, 'partition').varlong(request.leaderEpoch, 'leaderEpoch');
      w.array(request.isr, (id) => writeBrokerId(w, id));
      return;
  }
}

function readRequest(r: FieldReader, version: number): ControllerRequest {
  const clusterId = r.string('clusterId');
  const type = readRequestType(r);
  switch (type) {
    case 'register': {
      const request = { clusterId, type, brokerId: readOptionalBrokerId(r), incarnation: r.string('incarnation'), deviceId: r.string('deviceId'), endpoints: r.strings('endpoints') };
      const hostedBy = version >= 1 ? readOptionalBrokerId(r) : undefined;
      return hostedBy === undefined ? request : { ...request, hostedBy };
    }
    case 'heartbeat':
    case 'brokerGone':
    case 'allocateProducerIds':
      return { clusterId, type, brokerId: readBrokerId(r), incarnation: r.string('incarnation') };
    case 'createTopics':
      return { clusterId, type, topics: r.array('topics', () => readNewTopic(r)) };
    case 'deleteTopics':
      return { clusterId, type, topics: r.strings('topics') };
    case 'createPartitions':
      return { clusterId, type, topics: r.array('topics', () => ({ topic: r.string('topic'), count: r.varint('count') })) };
    case 'alterConfigs':
      return { clusterId, type, topics: r.array('topics', () => ({ topic: r.string('topic'), entries: readConfigEntries(r) })) };
    case 'alterPartition':
      return {
        clusterId,
        type,
        brokerId: readBrokerId(r),
        incarnation: r.string('incarnation'),
        topic: r.string('topic'),
        partition: r.varint('partition'),
        leaderEpoch: r.varlong('leaderEpoch', 0),
        isr: r.array('isr', () => readBrokerId(r)),
      };
  }
}

function writeReply(w: FieldWriter, reply: ControllerReply): void {
  w.int8(REPLY_TAGS[reply.type]).varlong(reply.controllerEpoch, 'controllerEpoch');
  switch (reply.type) {
    case 'register':
      writeBrokerId(w, reply.brokerId);
      return;
    case 'heartbeat':
      w.bool(reply.fenced);
      return;
    case 'brokerGone':
    case 'alterPartition':
      return;
    case 'producerIds':
      w.varlong(reply.firstProducerId, 'firstProducerId').varint(reply.count, 'count');
      return;
    case 'topics':
      w.array(reply.results, ({ topic, error }) => {
        w.string(topic);
        if (w.present(error)) writeError(w, error);
      });
      return;
    case 'error':
      writeError(w, reply.error);
      return;
  }
}

function readTopicResult(r: FieldReader): TopicResult {
  const topic = r.string('topic');
  const error = optional(r, 'error', () => readError(r));
  return error === undefined ? { topic } : { topic, error };
}

function readReply(r: FieldReader): ControllerReply {
  const type = readReplyType(r);
  const controllerEpoch = r.varlong('controllerEpoch', 0);
  switch (type) {
    case 'register':
      return { type, controllerEpoch, brokerId: readBrokerId(r) };
    case 'heartbeat':
      return { type, controllerEpoch, fenced: r.bool('fenced') };
    case 'brokerGone':
    case 'alterPartition':
      return { type, controllerEpoch };
    case 'producerIds':
      return { type, controllerEpoch, firstProducerId: r.varlong('firstProducerId', 0), count: r.varint('count') };
    case 'topics':
      return { type, controllerEpoch, results: r.array('results', () => readTopicResult(r)) };
    case 'error':
      return { type, controllerEpoch, error: readError(r) };
  }
}

/** `controller` (id 5): int8 kind, then a request, or the replying member and its reply. */
export const controllerType: MessageType<ControllerMessage> = {
  id: 5,
  versions: [0, 1],
  encode(body, version) {
    const w = new FieldWriter().int8(KIND_TAGS[body.kind]);
    if (body.kind === 'request') writeRequest(w, body.request, version);
    else writeReply(w.string(body.member), body.reply);
    return w.done();
  },
  decode(bytes, version) {
    const r = new FieldReader(bytes);
    const body: ControllerMessage = readKind(r) === 'request' ? { kind: 'request', request: readRequest(r, version) } : { kind: 'reply', member: r.string('member'), reply: readReply(r) };
    r.end('controller message');
    return body;
  },
};

// --- clusterHello (id 6)

/** `clusterHello` (id 6): incarnation, broker id (-1: none), cluster summary (optional), controller (-1: unknown). */
export const clusterHelloType: MessageType<ClusterHello> = {
  id: 6,
  versions: [0],
  encode(body) {
    const w = new FieldWriter().string(body.incarnation);
    writeBrokerId(w, body.brokerId);
    if (w.present(body.cluster)) {
      const { clusterName, clusterId, brokers, records } = body.cluster;
      w.string(clusterName).string(clusterId).varlong(brokers, 'brokers').varlong(records, 'records');
    }
    return w.string(body.controller).done();
  },
  decode(bytes) {
    const r = new FieldReader(bytes);
    const incarnation = r.string('incarnation');
    const brokerId = readOptionalBrokerId(r);
    const cluster = optional(r, 'cluster', () => ({
      clusterName: r.string('clusterName'),
      clusterId: r.string('clusterId'),
      brokers: r.varlong('brokers', 0),
      records: r.varlong('records', 0),
    }));
    const controller = r.optionalString('controller');
    r.end('cluster hello');
    return {
      incarnation,
      ...(brokerId === undefined ? {} : { brokerId }),
      ...(cluster === undefined ? {} : { cluster }),
      ...(controller === undefined ? {} : { controller }),
    };
  },
};
