import { assert } from './assert';
import { assign, partitionCount } from './assignors';
import {
  GROUPS_MAX,
  MEMBERS_PER_GROUP_MAX,
  NAME_LENGTH_MAX,
  OFFSET_METADATA_LENGTH_MAX,
  OFFSETS_PER_COMMIT_MAX,
  OFFSETS_PER_GROUP_MAX,
  PARTITIONS_PER_TOPIC_MAX,
  PENDING_WRITES_MAX,
  REBALANCE_TIMEOUT_MAX_MS,
  SESSION_TIMEOUT_MAX_MS,
  SESSION_TIMEOUT_MIN_MS,
  SUBSCRIBED_TOPICS_MAX,
} from './constants';
import type {
  AssignorName,
  Assignment,
  GroupDescription,
  GroupEffect,
  GroupErrorCode,
  GroupInput,
  GroupStateName,
  JoinReply,
  OffsetCommit,
  SyncReply,
} from './types';

const ASSIGNORS: readonly AssignorName[] = ['range', 'roundrobin'];

interface Member {
  readonly memberId: string;
  readonly clientId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  topics: string[];
  assignors: AssignorName[];
  /** Last request from the member: its session runs from here. */
  lastSeenMs: number;
  /** The join waiting for the rebalance to complete; a member with one is not expired (it is waiting on us). */
  joinRequestId: number | undefined;
  /** Its share of the current generation. */
  assignment: Assignment;
}

/**
 * A group stays until deleted (bounded by GROUPS_MAX). A (member, generation) pair is never
 * handed out twice: generations only grow while it lives, and member numbers are never
 * reused, so a group created again under a deleted one's id shares no member with it.
 */
interface Group {
  readonly groupId: string;
  state: GroupStateName;
  generationId: number;
  assignor: AssignorName | null;
  /** In join order: the first is the leader (reported, as Kafka does; the coordinator assigns). */
  members: Map<string, Member>;
  /** When the current rebalance began; its deadline is this plus the largest rebalanceTimeoutMs. */
  rebalanceStartMs: number;
  /** Committed offsets known durable, by `offsetKey`. */
  committed: Map<string, OffsetCommit>;
  /** The set the last `persist` effect wrote: the committed set once every pending write is durable. */
  written: Map<string, OffsetCommit>;
  /** Commits whose write is not yet durable, oldest first (writes complete in this order). */
  pendingWrites: number[];
  /** The request of a delete being written (always the last pending write); the group is gone once it is durable. */
  deleteRequestId: number | undefined;
}

interface PendingWrite {
  readonly groupId: string;
  readonly offsets: Map<string, OffsetCommit>;
}

interface State {
  groups: Map<string, Group>;
  /** Partition counts from the last `topics` input. */
  partitions: Record<string, number>;
  /** Numbers new member ids; never reused while this state lives. */
  nextMemberNumber: number;
  /** Suffix of member ids: tells this run's members from an earlier run's. */
  readonly memberIdSuffix: string;
  writes: Map<number, PendingWrite>;
  /** The latest `now` seen: the clock for steps whose input carries none (storage completions). */
  nowMs: number;
}

declare const opaque: unique symbol;
/**
 * The coordinator's state, opaque to callers. It is a linear value: `stepCoordinator`
 * may update it in place and returns the state to use next, so a caller keeps only the
 * latest and never reads an older one (the read functions return copies).
 */
export interface CoordinatorState {
  readonly [opaque]: true;
}
const inner = (state: CoordinatorState) => state as unknown as State;

export interface CoordinatorOptions {
  /**
   * Unique to this run of the coordinator (the node passes a random one, e.g.
   * `crypto.randomUUID().slice(0, 8)`). Member ids are `${clientId}-${groupId}-${n}`,
   * suffixed with `@${instanceId}` when given: after a restart, a consumer that outlived
   * the old run (a restarted worker) must not share an id with a new member, since
   * generations restart too. Default none (tests, single-run use).
   */
  instanceId?: string;
}

/**
 * An empty coordinator: no groups, no topics. Feed `load` for each group's stored
 * offsets and `topics` before the first request.
 * @example let coordinator = createCoordinator({ instanceId: crypto.randomUUID().slice(0, 8) });
 */
export function createCoordinator(options: CoordinatorOptions = {}): CoordinatorState {
  const memberIdSuffix = options.instanceId === undefined ? '' : `@${options.instanceId}`;
  const state: State = { groups: new Map(), partitions: Object.create(null) as Record<string, number>, nextMemberNumber: 1, memberIdSuffix, writes: new Map(), nowMs: 0 };
  return state as unknown as CoordinatorState;
}

/** Gathers the effects of one step. */
class Out {
  readonly effects: GroupEffect[] = [];
  ok(requestId: number, value?: JoinReply | SyncReply): void {
    this.effects.push(value === undefined ? { type: 'reply', requestId, ok: true } : { type: 'reply', requestId, ok: true, value });
  }
  error(requestId: number, error: GroupErrorCode, message: string): void {
    this.effects.push({ type: 'reply', requestId, ok: false, error, message });
  }
}

/**
 * Feeds one input; returns the state to use next and the effects to carry out in order:
 * `reply` answers a request; `persist` writes a group's committed offsets, to be made
 * durable in the order emitted and answered with `persisted` or `persistFailed`.
 * @example ({ state, effects } = stepCoordinator(state, { type: 'tick', now: clock.now() }));
 */
export function stepCoordinator(state: CoordinatorState, input: GroupInput): { state: CoordinatorState; effects: GroupEffect[] } {
  const s = inner(state);
  if ('now' in input) s.nowMs = Math.max(s.nowMs, input.now);
  const out = new Out();
  switch (input.type) {
    case 'join':
      join(s, input, out);
      break;
    case 'sync':
    case 'heartbeat': {
      const found = findMember(s, input, out);
      if (found === undefined) break;
      const [group, member] = found;
      if (group.state === 'PreparingRebalance') out.error(input.requestId, 'REBALANCE_IN_PROGRESS', `group ${group.groupId} is rebalancing: rejoin`);
      else if (input.generationId !== group.generationId) out.error(input.requestId, 'ILLEGAL_GENERATION', generationMessage(group, input.generationId));
      else if (input.type === 'sync') out.ok(input.requestId, { assignment: copyAssignment(member.assignment) });
      else out.ok(input.requestId);
      break;
    }
    case 'leave': {
      const found = findMember(s, input, out);
      if (found === undefined) break;
      const [group, member] = found;
      if (member.joinRequestId !== undefined) out.error(member.joinRequestId, 'UNKNOWN_MEMBER_ID', `${member.memberId} left the group`);
      group.members.delete(member.memberId);
      out.ok(input.requestId);
      membersRemoved(s, group, out);
      break;
    }
    case 'commit':
      commit(s, input, out);
      break;
    case 'persisted':
    case 'persistFailed':
      writeDone(s, input, out);
      break;
    case 'tick':
      for (const group of s.groups.values()) expire(s, group, s.nowMs, out);
      break;
    case 'topics':
      topics(s, input.partitions, input.now);
      break;
    case 'dropTopic':
      dropTopic(s, input, out);
      break;
    case 'deleteGroup':
      deleteGroup(s, input, out);
      break;
    case 'load': {
      assert(validName(input.groupId), `load of a malformed group id`);
      const group = s.groups.get(input.groupId) ?? createGroup(s, input.groupId);
      assert(group.pendingWrites.length === 0 && group.members.size === 0, `load of ${input.groupId} after it was in use`);
      // Checked after reading, as everything from storage: a corrupt record must not become a commit.
      assert(input.offsets.length <= OFFSETS_PER_GROUP_MAX, `load of ${input.offsets.length} offsets for ${input.groupId}`);
      for (const o of input.offsets) {
        assert(validName(o.topic) && Number.isInteger(o.partition) && o.partition >= 0 && Number.isSafeInteger(o.offset) && o.offset >= 0, `stored offset ${JSON.stringify(o)} of ${input.groupId} is malformed`);
      }
      group.committed = new Map(input.offsets.map((o) => [offsetKey(o.topic, o.partition), { ...o }]));
      group.written = group.committed;
      break;
    }
  }
  return { state, effects: out.effects };
}

function join(s: State, input: Extract<GroupInput, { type: 'join' }>, out: Out): void {
  const { requestId, groupId } = input;
  if (!validName(groupId)) return out.error(requestId, 'INVALID_GROUP_ID', `group id must be 1..${NAME_LENGTH_MAX} characters`);
  if (!within(input.sessionTimeoutMs, SESSION_TIMEOUT_MIN_MS, SESSION_TIMEOUT_MAX_MS)) {
    return out.error(requestId, 'INVALID_SESSION_TIMEOUT', `sessionTimeoutMs must be in [${SESSION_TIMEOUT_MIN_MS}, ${SESSION_TIMEOUT_MAX_MS}], got ${input.sessionTimeoutMs}`);
  }
  if (!within(input.rebalanceTimeoutMs, SESSION_TIMEOUT_MIN_MS, REBALANCE_TIMEOUT_MAX_MS)) {
    return out.error(requestId, 'INVALID_REQUEST', `rebalanceTimeoutMs must be in [${SESSION_TIMEOUT_MIN_MS}, ${REBALANCE_TIMEOUT_MAX_MS}], got ${input.rebalanceTimeoutMs}`);
  }
  if (!validName(input.clientId)) return out.error(requestId, 'INVALID_REQUEST', `client id must be 1..${NAME_LENGTH_MAX} characters`);
  if (!Array.isArray(input.topics) || input.topics.length > SUBSCRIBED_TOPICS_MAX || !input.topics.every(validName)) {
    return out.error(requestId, 'INVALID_REQUEST', `a member subscribes to at most ${SUBSCRIBED_TOPICS_MAX} topics with names of 1..${NAME_LENGTH_MAX} characters`);
  }
  if (!Array.isArray(input.assignors) || input.assignors.length === 0 || !input.assignors.every((a) => ASSIGNORS.includes(a))) {
    return out.error(requestId, 'INCONSISTENT_GROUP_PROTOCOL', `assignors must be a non-empty list of ${ASSIGNORS.join(', ')}`);
  }
  const existing = s.groups.get(groupId);
  if (existing?.deleteRequestId !== undefined) return out.error(requestId, 'COORDINATOR_NOT_AVAILABLE', deletingMessage(groupId));
  const known = input.memberId === null ? undefined : existing?.members.get(input.memberId);
  if (input.memberId !== null && known === undefined) {
    return out.error(requestId, 'UNKNOWN_MEMBER_ID', `${input.memberId} is not a member of ${groupId}: join with no member id`);
  }
  const others = [...(existing?.members.values() ?? [])].filter((m) => m !== known);
  if (commonAssignors([...others, input]).length === 0) {
    return out.error(requestId, 'INCONSISTENT_GROUP_PROTOCOL', `no assignor in [${input.assignors.join(', ')}] is supported by every member of ${groupId}`);
  }
  if (known === undefined && others.length >= MEMBERS_PER_GROUP_MAX) return out.error(requestId, 'GROUP_MAX_SIZE_REACHED', `${groupId} has ${MEMBERS_PER_GROUP_MAX} members`);
  if (existing === undefined && s.groups.size >= GROUPS_MAX) return out.error(requestId, 'INVALID_REQUEST', `the coordinator holds ${GROUPS_MAX} groups already`);
  const group = existing ?? createGroup(s, groupId);
  const topicsSorted = [...new Set(input.topics)].sort();
  let member: Member;
  if (known === undefined) {
    member = {
      memberId: `${input.clientId}-${groupId}-${s.nextMemberNumber++}${s.memberIdSuffix}`,
      clientId: input.clientId,
      sessionTimeoutMs: input.sessionTimeoutMs,
      rebalanceTimeoutMs: input.rebalanceTimeoutMs,
      topics: topicsSorted,
      assignors: [...input.assignors],
      lastSeenMs: input.now,
      joinRequestId: undefined,
      assignment: Object.create(null) as Assignment,
    };
    group.members.set(member.memberId, member);
  } else {
    member = known;
    member.lastSeenMs = input.now;
    member.sessionTimeoutMs = input.sessionTimeoutMs;
    member.rebalanceTimeoutMs = input.rebalanceTimeoutMs;
    const unchanged = sameList(member.topics, topicsSorted) && sameList(member.assignors, input.assignors);
    // A member of a stable group rejoining with the same subscription (a retried join,
    // or after an ILLEGAL_GENERATION for an old generation) learns the current generation.
    if (group.state === 'Stable' && unchanged) return out.ok(requestId, joinReply(group, member));
    member.topics = topicsSorted;
    member.assignors = [...input.assignors];
    if (member.joinRequestId !== undefined) out.error(member.joinRequestId, 'REBALANCE_IN_PROGRESS', `superseded by a newer join of ${member.memberId}`);
  }
  member.joinRequestId = requestId;
  if (group.state !== 'PreparingRebalance') startRebalance(group, input.now);
  maybeComplete(s, group, out);
}

function commit(s: State, input: Extract<GroupInput, { type: 'commit' }>, out: Out): void {
  const { requestId, groupId, offsets } = input;
  if (!validName(groupId)) return out.error(requestId, 'INVALID_GROUP_ID', `group id must be 1..${NAME_LENGTH_MAX} characters`);
  if (!Array.isArray(offsets) || offsets.length > OFFSETS_PER_COMMIT_MAX) return out.error(requestId, 'INVALID_REQUEST', `a commit holds at most ${OFFSETS_PER_COMMIT_MAX} offsets`);
  let group = s.groups.get(groupId);
  if (group?.deleteRequestId !== undefined) return out.error(requestId, 'COORDINATOR_NOT_AVAILABLE', deletingMessage(groupId));
  if (input.memberId === null) {
    if (group !== undefined && group.members.size > 0) {
      return out.error(requestId, 'NON_EMPTY_GROUP', `${groupId} has ${group.members.size} members: offsets are set only while it has none`);
    }
  } else {
    const found = findMember(s, { ...input, memberId: input.memberId }, out);
    if (found === undefined) return;
    // Only the current generation commits: a member that missed a rebalance (a zombie)
    // may have lost its partitions to another member, whose progress it would overwrite.
    if (input.generationId !== found[0].generationId) return out.error(requestId, 'ILLEGAL_GENERATION', generationMessage(found[0], input.generationId));
  }
  for (const o of offsets) {
    if (!Number.isInteger(o.partition) || o.partition < 0 || o.partition >= partitionCount(s.partitions, o.topic)) {
      return out.error(requestId, 'UNKNOWN_TOPIC_OR_PARTITION', `no partition ${o.topic}[${o.partition}]`);
    }
    if (!Number.isSafeInteger(o.offset) || o.offset < 0) return out.error(requestId, 'INVALID_REQUEST', `offset of ${o.topic}[${o.partition}] must be a whole number, got ${o.offset}`);
    if (o.metadata !== null && (typeof o.metadata !== 'string' || o.metadata.length > OFFSET_METADATA_LENGTH_MAX)) {
      return out.error(requestId, 'OFFSET_METADATA_TOO_LARGE', `metadata of ${o.topic}[${o.partition}] is longer than ${OFFSET_METADATA_LENGTH_MAX}`);
    }
  }
  if (s.writes.size >= PENDING_WRITES_MAX) return out.error(requestId, 'COORDINATOR_NOT_AVAILABLE', `${PENDING_WRITES_MAX} offset writes are in flight`);
  if (group === undefined && s.groups.size >= GROUPS_MAX) return out.error(requestId, 'INVALID_REQUEST', `the coordinator holds ${GROUPS_MAX} groups already`);
  group ??= createGroup(s, groupId);
  const written = new Map(group.written);
  for (const o of offsets) written.set(offsetKey(o.topic, o.partition), { topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata });
  if (written.size > OFFSETS_PER_GROUP_MAX) return out.error(requestId, 'INVALID_REQUEST', `${groupId} would hold more than ${OFFSETS_PER_GROUP_MAX} committed offsets`);
  assert(!s.writes.has(requestId), `request id ${requestId} reused while its write is pending`);
  group.written = written;
  group.pendingWrites.push(requestId);
  s.writes.set(requestId, { groupId, offsets: written });
  out.effects.push({ type: 'persist', requestId, groupId, offsets: sortedOffsets(written) });
}

function dropTopic(s: State, input: Extract<GroupInput, { type: 'dropTopic' }>, out: Out): void {
  const { requestId, groupId, topic } = input;
  const group = s.groups.get(groupId);
  if (group === undefined) return out.ok(requestId);
  const without = (offsets: Map<string, OffsetCommit>) => new Map([...offsets].filter(([, o]) => o.topic !== topic));
  // While a delete is written, `written` is empty, but the durable set stays if the delete fails.
  const held = [...group.written.values(), ...(group.deleteRequestId === undefined ? [] : group.committed.values())].some((o) => o.topic === topic);
  group.committed = without(group.committed);
  group.written = without(group.written);
  for (const id of group.pendingWrites) {
    const write = s.writes.get(id)!;
    s.writes.set(id, { groupId, offsets: without(write.offsets) });
  }
  if (!held && !input.rewrite) return out.ok(requestId);
  // The delete's empty set would make this write moot, but if the delete fails, the stored set still holds the topic.
  if (group.deleteRequestId !== undefined) return out.error(requestId, 'COORDINATOR_NOT_AVAILABLE', deletingMessage(groupId));
  if (s.writes.size >= PENDING_WRITES_MAX) return out.error(requestId, 'COORDINATOR_NOT_AVAILABLE', `${PENDING_WRITES_MAX} offset writes are in flight`);
  assert(!s.writes.has(requestId), `request id ${requestId} reused while its write is pending`);
  group.pendingWrites.push(requestId);
  s.writes.set(requestId, { groupId, offsets: group.written });
  out.effects.push({ type: 'persist', requestId, groupId, offsets: sortedOffsets(group.written) });
}

function deleteGroup(s: State, input: Extract<GroupInput, { type: 'deleteGroup' }>, out: Out): void {
  const { requestId, groupId } = input;
  if (!validName(groupId)) return out.error(requestId, 'INVALID_GROUP_ID', `group id must be 1..${NAME_LENGTH_MAX} characters`);
  const group = s.groups.get(groupId);
  if (group === undefined) return out.error(requestId, 'GROUP_ID_NOT_FOUND', `no group ${groupId}`);
  if (group.deleteRequestId !== undefined) return out.error(requestId, 'COORDINATOR_NOT_AVAILABLE', deletingMessage(groupId));
  if (group.members.size > 0) return out.error(requestId, 'NON_EMPTY_GROUP', `${groupId} has ${group.members.size} members: a group is deleted only while it has none`);
  if (s.writes.size >= PENDING_WRITES_MAX) return out.error(requestId, 'COORDINATOR_NOT_AVAILABLE', `${PENDING_WRITES_MAX} offset writes are in flight`);
  assert(!s.writes.has(requestId), `request id ${requestId} reused while its write is pending`);
  group.written = new Map();
  group.deleteRequestId = requestId;
  group.pendingWrites.push(requestId);
  s.writes.set(requestId, { groupId, offsets: group.written });
  out.effects.push({ type: 'persist', requestId, groupId, offsets: [], deleteGroup: true });
}

function writeDone(s: State, input: Extract<GroupInput, { type: 'persisted' | 'persistFailed' }>, out: Out): void {
  const write = s.writes.get(input.requestId);
  assert(write !== undefined, `${input.type} for request ${input.requestId}, which has no pending write`);
  const group = s.groups.get(write.groupId);
  assert(group !== undefined && group.pendingWrites[0] === input.requestId, `offset writes of ${write.groupId} completed out of order`);
  s.writes.delete(input.requestId);
  group.pendingWrites.shift();
  const deleting = group.deleteRequestId === input.requestId;
  if (deleting) group.deleteRequestId = undefined;
  if (input.type === 'persisted') {
    // Each write holds the whole set, and writes complete in order: the latest is the truth.
    group.committed = write.offsets;
    out.ok(input.requestId);
    if (deleting) return void s.groups.delete(group.groupId);
  } else {
    // A later write, already emitted, may still carry these offsets (as a timed-out
    // commit in Kafka may have been applied); without one, the next write starts from
    // what is durable.
    if (group.pendingWrites.length === 0) group.written = group.committed;
    out.error(input.requestId, input.notCoordinator === true ? 'NOT_COORDINATOR' : 'KAFKA_STORAGE_ERROR', `offsets of ${write.groupId} not stored: ${input.message}`);
  }
  maybeComplete(s, group, out);
}

/** Ends silent members' sessions and rebalances that ran past their deadline. */
function expire(s: State, group: Group, nowMs: number, out: Out): void {
  let removed = false;
  for (const member of [...group.members.values()]) {
    if (member.joinRequestId === undefined && nowMs - member.lastSeenMs >= member.sessionTimeoutMs) {
      group.members.delete(member.memberId);
      removed = true;
    }
  }
  if (group.state === 'PreparingRebalance' && nowMs >= rebalanceDeadlineMs(group)) {
    // Members that did not rejoin in time are out; the rebalance goes on without them.
    for (const member of [...group.members.values()]) {
      if (member.joinRequestId === undefined) {
        group.members.delete(member.memberId);
        removed = true;
      }
    }
  }
  if (removed) membersRemoved(s, group, out);
}

/** After members left or expired: the rest rebalance (or the group empties). */
function membersRemoved(s: State, group: Group, out: Out): void {
  if (group.state !== 'PreparingRebalance') startRebalance(group, s.nowMs);
  maybeComplete(s, group, out);
}

function topics(s: State, partitions: Record<string, number>, nowMs: number): void {
  for (const [topic, count] of Object.entries(partitions)) {
    assert(validName(topic) && Number.isInteger(count) && count >= 0 && count <= PARTITIONS_PER_TOPIC_MAX, `bad partition count ${count} for topic ${topic}`);
  }
  const previous = s.partitions;
  s.partitions = Object.assign(Object.create(null) as Record<string, number>, partitions);
  for (const group of s.groups.values()) {
    if (group.state !== 'Stable') continue;
    const changed = [...group.members.values()].some((m) =>
      m.topics.some((t) => partitionCount(previous, t) !== partitionCount(s.partitions, t)),
    );
    if (changed) startRebalance(group, nowMs);
  }
}

function startRebalance(group: Group, nowMs: number): void {
  group.state = 'PreparingRebalance';
  group.rebalanceStartMs = nowMs;
}

const rebalanceDeadlineMs = (group: Group) =>
  group.rebalanceStartMs + Math.max(0, ...[...group.members.values()].map((m) => m.rebalanceTimeoutMs));

/**
 * Completes the rebalance once every member has rejoined and no offset write of the
 * group is pending: so every commit accepted in the old generation is durable before a
 * new owner reads the offsets it resumes from.
 */
function maybeComplete(s: State, group: Group, out: Out): void {
  if (group.state !== 'PreparingRebalance' || group.pendingWrites.length > 0) return;
  const members = [...group.members.values()];
  if (!members.every((m) => m.joinRequestId !== undefined)) return;
  group.generationId++;
  if (members.length === 0) {
    group.state = 'Empty';
    group.assignor = null;
    return;
  }
  const leader = members[0]!;
  const common = commonAssignors(members);
  const assignor = leader.assignors.find((a) => common.includes(a));
  assert(assignor !== undefined, `${group.groupId}: joins admitted members with no common assignor`);
  const assignments = assign(assignor, members, s.partitions);
  assertAssignment(group, members, assignments, s.partitions);
  group.state = 'Stable';
  group.assignor = assignor;
  for (const member of members) {
    member.assignment = assignments[member.memberId]!;
    member.lastSeenMs = s.nowMs;
    out.ok(member.joinRequestId!, joinReply(group, member));
    member.joinRequestId = undefined;
  }
}

/** Checked before it is handed out: every subscribed partition goes to exactly one subscriber. */
function assertAssignment(group: Group, members: Member[], assignments: Record<string, Assignment>, partitions: Record<string, number>): void {
  const owned = new Set<string>();
  for (const member of members) {
    for (const [topic, assigned] of Object.entries(assignments[member.memberId]!)) {
      assert(member.topics.includes(topic), `${group.groupId}: ${member.memberId} assigned ${topic}, which it does not subscribe to`);
      for (const partition of assigned) {
        const key = offsetKey(topic, partition);
        assert(!owned.has(key) && partition < partitionCount(partitions, topic), `${group.groupId}: ${topic}[${partition}] assigned twice or out of range`);
        owned.add(key);
      }
    }
  }
  const subscribed = new Set(members.flatMap((m) => m.topics));
  const expected = [...subscribed].reduce((sum, topic) => sum + partitionCount(partitions, topic), 0);
  assert(owned.size === expected, `${group.groupId}: ${owned.size} of ${expected} subscribed partitions assigned`);
}

function findMember(
  s: State,
  input: { requestId: number; now: number; groupId: string; memberId: string },
  out: Out,
): [Group, Member] | undefined {
  if (!validName(input.groupId)) {
    out.error(input.requestId, 'INVALID_GROUP_ID', `group id must be 1..${NAME_LENGTH_MAX} characters`);
    return undefined;
  }
  const group = s.groups.get(input.groupId);
  const member = group?.members.get(input.memberId);
  if (group === undefined || member === undefined) {
    out.error(input.requestId, 'UNKNOWN_MEMBER_ID', `${input.memberId} is not a member of ${input.groupId}: join with no member id`);
    return undefined;
  }
  member.lastSeenMs = input.now;
  return [group, member];
}

function createGroup(s: State, groupId: string): Group {
  const group: Group = {
    groupId,
    state: 'Empty',
    generationId: 0,
    assignor: null,
    members: new Map(),
    rebalanceStartMs: 0,
    committed: new Map(),
    written: new Map(),
    pendingWrites: [],
    deleteRequestId: undefined,
  };
  s.groups.set(groupId, group);
  return group;
}

const joinReply = (group: Group, member: Member): JoinReply => ({
  memberId: member.memberId,
  generationId: group.generationId,
  leaderId: group.members.keys().next().value!,
  assignor: group.assignor!,
  members: [...group.members.keys()],
});

const commonAssignors = (members: Array<{ assignors: AssignorName[] }>) =>
  ASSIGNORS.filter((a) => members.every((m) => m.assignors.includes(a)));

const generationMessage = (group: Group, generationId: number) =>
  `generation ${generationId} is not ${group.groupId}'s current generation ${group.generationId}: rejoin`;

const deletingMessage = (groupId: string) => `${groupId} is being deleted`;
const offsetKey = (topic: string, partition: number) => `${partition}:${topic}`;
const validName = (name: unknown): name is string => typeof name === 'string' && name.length > 0 && name.length <= NAME_LENGTH_MAX;
const within = (value: unknown, min: number, max: number) => typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function sortedOffsets(offsets: Map<string, OffsetCommit>): OffsetCommit[] {
  return [...offsets.values()]
    .map((o) => ({ ...o }))
    .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

function copyAssignment(assignment: Assignment): Assignment {
  const copy = Object.create(null) as Assignment;
  for (const [topic, partitions] of Object.entries(assignment)) copy[topic] = [...partitions];
  return copy;
}

/**
 * A group's state, members and assignments (a copy), or undefined for an unknown group.
 * @example describeGroup(state, 'orders')?.members.map((m) => m.assignment)
 */
export function describeGroup(state: CoordinatorState, groupId: string): GroupDescription | undefined {
  const group = inner(state).groups.get(groupId);
  if (group === undefined) return undefined;
  return {
    groupId,
    state: group.state,
    generationId: group.generationId,
    assignor: group.assignor,
    members: [...group.members.values()].map((m) => ({
      memberId: m.memberId,
      clientId: m.clientId,
      topics: [...m.topics],
      assignment: copyAssignment(m.assignment),
    })),
  };
}

/**
 * Every group the coordinator holds (with members or committed offsets), by id.
 * @example listGroups(state) // → [{ groupId: 'orders', state: 'Stable' }]
 */
export function listGroups(state: CoordinatorState): Array<{ groupId: string; state: GroupStateName }> {
  return [...inner(state).groups.values()]
    .map((g) => ({ groupId: g.groupId, state: g.state }))
    .sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
}

/**
 * A group's durable committed offsets, sorted by topic and partition ([] if none).
 * @example committedOffsets(state, 'orders') // → [{ topic: 't', partition: 0, offset: 42, metadata: null }]
 */
export function committedOffsets(state: CoordinatorState, groupId: string): OffsetCommit[] {
  const group = inner(state).groups.get(groupId);
  return group === undefined ? [] : sortedOffsets(group.committed);
}
