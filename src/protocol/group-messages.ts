// The peer body of consumer groups across brokers (FORMATS.md § group): a broker forwards a
// client's group call to the group's coordinator (the leader of the group's partition of
// `__consumer_offsets`), worker to worker, and gets back the coordinator's answer or its
// typed error (NotCoordinatorError when the receiver does not coordinate the group, a
// GroupError from the coordinator). The decoder returns exactly what was encoded or throws
// FrameError('CORRUPT_MESSAGE'); the encoder throws FrameError('INVALID_REQUEST') for a
// value its field cannot carry. Values the coordinator judges (timeouts, name lengths, topic
// counts) are carried as given: it refuses them as it refuses a local caller's.

import { FrameError, type LetterboxError } from '../errors';
import type { AssignorName, Assignment, GroupDescription, GroupStateName, JoinReply, OffsetCommit } from '../group';
import { readError, writeError } from './error-field';
import { FieldReader, FieldWriter, optional, tagReader } from './fields';
import type { MessageType } from './frame';

/** A client's group call as one broker forwards it to the group's coordinator (NodeApi's group methods). */
export type GroupCall =
  | {
      readonly type: 'join';
      readonly groupId: string;
      readonly memberId: string | null;
      readonly clientId: string;
      readonly sessionTimeoutMs: number;
      readonly rebalanceTimeoutMs: number;
      readonly topics: readonly string[];
      readonly assignors: readonly AssignorName[];
    }
  | { readonly type: 'sync' | 'heartbeat'; readonly groupId: string; readonly memberId: string; readonly generationId: number }
  | { readonly type: 'leave'; readonly groupId: string; readonly memberId: string }
  /** memberId null: an admin commit (setOffsets, resetOffsets), allowed while the group has no members. */
  | { readonly type: 'commit'; readonly groupId: string; readonly memberId: string | null; readonly generationId: number; readonly offsets: readonly OffsetCommit[] }
  | { readonly type: 'fetchOffsets' | 'describe' | 'deleteGroup'; readonly groupId: string }
  /** The groups the receiver coordinates (not forwarded: the asker asks every broker). */
  | { readonly type: 'list' };

/** The coordinator's answer to a group call. */
export type GroupAnswer =
  | { readonly type: 'done' }
  | { readonly type: 'joined'; readonly reply: JoinReply }
  | { readonly type: 'assignment'; readonly assignment: Assignment }
  | { readonly type: 'offsets'; readonly offsets: readonly OffsetCommit[] }
  | { readonly type: 'description'; readonly description: GroupDescription }
  | { readonly type: 'groups'; readonly groups: ReadonlyArray<{ readonly groupId: string; readonly state: GroupStateName }> }
  | { readonly type: 'error'; readonly error: LetterboxError };

/** `group` body: a call for the receiver to serve as the group's coordinator, or its answer. */
export type GroupMessage = { readonly kind: 'request'; readonly clusterId: string; readonly call: GroupCall } | { readonly kind: 'response'; readonly answer: GroupAnswer };

const KIND_TAGS = { request: 0, response: 1 } as const;
const readKind = tagReader(KIND_TAGS, 'message kind');
const CALL_TAGS = { join: 0, sync: 1, heartbeat: 2, leave: 3, commit: 4, fetchOffsets: 5, describe: 6, deleteGroup: 7, list: 8 } as const satisfies Record<GroupCall['type'], number>;
const readCall = tagReader(CALL_TAGS, 'group call');
const ANSWER_TAGS = { done: 0, joined: 1, assignment: 2, offsets: 3, description: 4, groups: 5, error: 6 } as const satisfies Record<GroupAnswer['type'], number>;
const readAnswer = tagReader(ANSWER_TAGS, 'group answer');
const ASSIGNOR_TAGS = { range: 0, roundrobin: 1 } as const satisfies Record<AssignorName, number>;
const readAssignor = tagReader(ASSIGNOR_TAGS, 'assignor');
const STATE_TAGS = { Empty: 0, PreparingRebalance: 1, Stable: 2 } as const satisfies Record<GroupStateName, number>;
const readState = tagReader(STATE_TAGS, 'group state');
/** An admin commit's generation (-1, Kafka's "no generation"), the least a commit's generation may be. */
const NO_GENERATION = -1;

function writeAssignor(w: FieldWriter, assignor: AssignorName): void {
  if (!Object.hasOwn(ASSIGNOR_TAGS, assignor)) throw new FrameError('INVALID_REQUEST', `assignor "${String(assignor)}" has no tag`);
  w.int8(ASSIGNOR_TAGS[assignor]);
}

function writeOffsets(w: FieldWriter, offsets: readonly OffsetCommit[]): void {
  w.array(offsets, ({ topic, partition, offset, metadata }) => w.string(topic).varint(partition, 'partition', 0).varlong(offset, 'offset', 0).string(metadata));
}
const readOffsets = (r: FieldReader): OffsetCommit[] =>
  r.array('offsets', () => ({ topic: r.string('topic'), partition: r.varint('partition', 0), offset: r.varlong('offset', 0), metadata: r.optionalString('metadata') ?? null }));

function writeAssignment(w: FieldWriter, assignment: Assignment): void {
  w.array(Object.entries(assignment), ([topic, partitions]) => w.string(topic).array(partitions, (p) => w.varint(p, 'partition', 0)));
}
function readAssignment(r: FieldReader): Assignment {
  const assignment = Object.create(null) as Assignment;
  for (const [topic, partitions] of r.array('assignment', () => [r.string('topic'), r.array('partitions', () => r.varint('partition', 0))] as const)) {
    if (Object.hasOwn(assignment, topic)) throw new FrameError('CORRUPT_MESSAGE', `assignment names topic "${topic}" twice`);
    assignment[topic] = partitions;
  }
  return assignment;
}

function writeCall(w: FieldWriter, call: GroupCall): void {
  w.int8(CALL_TAGS[call.type]);
  switch (call.type) {
    case 'join':
      w.string(call.groupId).string(call.memberId).string(call.clientId).varint(call.sessionTimeoutMs, 'sessionTimeoutMs', 0).varint(call.rebalanceTimeoutMs, 'rebalanceTimeoutMs', 0);
      w.strings(call.topics).array(call.assignors, (a) => writeAssignor(w, a));
      return;
    case 'sync':
    case 'heartbeat':
      w.string(call.groupId).string(call.memberId).varint(call.generationId, 'generationId', 0);
      return;
    case 'leave':
      w.string(call.groupId).string(call.memberId);
      return;
    case 'commit':
      w.string(call.groupId).string(call.memberId).varint(call.generationId, 'generationId', NO_GENERATION);
      writeOffsets(w, call.offsets);
      return;
    case 'fetchOffsets':
    case 'describe':
    case 'deleteGroup':
      w.string(call.groupId);
      return;
    case 'list':
      return;
  }
}

function readGroupCall(r: FieldReader): GroupCall {
  const type = readCall(r);
  switch (type) {
    case 'join': {
      const groupId = r.string('groupId');
      const memberId = r.optionalString('memberId') ?? null;
      const clientId = r.string('clientId');
      const sessionTimeoutMs = r.varint('sessionTimeoutMs', 0);
      const rebalanceTimeoutMs = r.varint('rebalanceTimeoutMs', 0);
      const topics = r.strings('topics');
      const assignors = r.array('assignors', () => readAssignor(r));
      return { type, groupId, memberId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics, assignors };
    }
    case 'sync':
    case 'heartbeat':
      return { type, groupId: r.string('groupId'), memberId: r.string('memberId'), generationId: r.varint('generationId', 0) };
    case 'leave':
      return { type, groupId: r.string('groupId'), memberId: r.string('memberId') };
    case 'commit': {
      const groupId = r.string('groupId');
      const memberId = r.optionalString('memberId') ?? null;
      const generationId = r.varint('generationId', NO_GENERATION);
      return { type, groupId, memberId, generationId, offsets: readOffsets(r) };
    }
    case 'fetchOffsets':
    case 'describe':
    case 'deleteGroup':
      return { type, groupId: r.string('groupId') };
    case 'list':
      return { type };
  }
}

function writeAnswer(w: FieldWriter, answer: GroupAnswer): void {
  w.int8(ANSWER_TAGS[answer.type]);
  switch (answer.type) {
    case 'done':
      return;
    case 'joined': {
      const { memberId, generationId, leaderId, assignor, members } = answer.reply;
      w.string(memberId).varint(generationId, 'generationId', 0).string(leaderId);
      writeAssignor(w, assignor);
      w.strings(members);
      return;
    }
    case 'assignment':
      writeAssignment(w, answer.assignment);
      return;
    case 'offsets':
      writeOffsets(w, answer.offsets);
      return;
    case 'description': {
      const { groupId, state, generationId, assignor, members } = answer.description;
      w.string(groupId).int8(STATE_TAGS[state]).varint(generationId, 'generationId', 0);
      if (w.present(assignor ?? undefined)) writeAssignor(w, assignor!);
      w.array(members, (m) => {
        w.string(m.memberId).string(m.clientId).strings(m.topics);
        writeAssignment(w, m.assignment);
      });
      return;
    }
    case 'groups':
      w.array(answer.groups, ({ groupId, state }) => w.string(groupId).int8(STATE_TAGS[state]));
      return;
    case 'error':
      writeError(w, answer.error);
      return;
  }
}

function readGroupAnswer(r: FieldReader): GroupAnswer {
  const type = readAnswer(r);
  switch (type) {
    case 'done':
      return { type };
    case 'joined': {
      const memberId = r.string('memberId');
      const generationId = r.varint('generationId', 0);
      const leaderId = r.string('leaderId');
      const assignor = readAssignor(r);
      return { type, reply: { memberId, generationId, leaderId, assignor, members: r.strings('members') } };
    }
    case 'assignment':
      return { type, assignment: readAssignment(r) };
    case 'offsets':
      return { type, offsets: readOffsets(r) };
    case 'description': {
      const groupId = r.string('groupId');
      const state = readState(r);
      const generationId = r.varint('generationId', 0);
      const assignor = optional(r, 'assignor', () => readAssignor(r)) ?? null;
      const members = r.array('members', () => ({ memberId: r.string('memberId'), clientId: r.string('clientId'), topics: r.strings('topics'), assignment: readAssignment(r) }));
      return { type, description: { groupId, state, generationId, assignor, members } };
    }
    case 'groups':
      return { type, groups: r.array('groups', () => ({ groupId: r.string('groupId'), state: readState(r) })) };
    case 'error':
      return { type, error: readError(r) };
  }
}

/** `group` (id 10). */
export const groupType: MessageType<GroupMessage> = {
  id: 10,
  versions: [0],
  encode(body) {
    const w = new FieldWriter().int8(KIND_TAGS[body.kind]);
    if (body.kind === 'request') writeCall(w.string(body.clusterId), body.call);
    else writeAnswer(w, body.answer);
    return w.done();
  },
  decode(bytes) {
    const r = new FieldReader(bytes);
    const body: GroupMessage = readKind(r) === 'request' ? { kind: 'request', clusterId: r.string('clusterId'), call: readGroupCall(r) } : { kind: 'response', answer: readGroupAnswer(r) };
    r.end('group');
    return body;
  },
};
