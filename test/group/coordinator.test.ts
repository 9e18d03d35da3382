import { describe, expect, it } from 'vitest';
import { committedOffsets, createCoordinator, listGroups, stepCoordinator, type Assignment, type GroupInput, type JoinReply } from '../../src/group';
import { Coordinator } from './harness';

// One hand-built scenario per rule of the coordinator; test/sim/group attacks them at random.

/** All partitions of `t` named in some assignment, sorted. */
const covered = (...assignments: Assignment[]) => assignments.flatMap((a) => a.t ?? []).sort();

/** A group where `a` joined alone (generation 1) and then `b` joined (generation 2). */
function twoMembers() {
  const c = new Coordinator();
  const a = c.joined(c.join('a')).memberId;
  const joinB = c.join('b');
  expect(c.outcome(c.heartbeat(a, 1))).toBe('REBALANCE_IN_PROGRESS');
  c.join('a', { memberId: a });
  const b = c.joined(joinB).memberId;
  return { c, a, b };
}

describe('joining', () => {
  it('a lone first member completes at once: generation 1, it leads, it owns every partition', () => {
    const c = new Coordinator();
    const reply = c.joined(c.join('a'));
    expect(reply).toEqual({ memberId: 'a-g-1', generationId: 1, leaderId: 'a-g-1', assignor: 'range', members: ['a-g-1'] });
    expect(c.assignment('a-g-1', 1)).toEqual({ t: [0, 1, 2, 3] });
    expect(c.describe()).toMatchObject({ state: 'Stable', generationId: 1 });
  });

  it('member ids carry the instance id, so a restarted coordinator never reissues an earlier run’s id', () => {
    const first = createCoordinator({ instanceId: 'run1' });
    const again = createCoordinator({ instanceId: 'run2' });
    const join: GroupInput = { type: 'join', requestId: 1, now: 0, groupId: 'g', memberId: null, clientId: 'app', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, topics: ['t'], assignors: ['range'] };
    const ids = [first, again].map((state) => (stepCoordinator(state, join).effects[0] as { value: JoinReply }).value.memberId);
    expect(ids).toEqual(['app-g-1@run1', 'app-g-1@run2']);
  });

  it('a second joiner waits until the first rejoins (told by its heartbeat); then both split the partitions', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    const joinB = c.join('b');
    expect(c.outcome(joinB)).toBe('pending');
    expect(c.describe()?.state).toBe('PreparingRebalance');
    expect(c.outcome(c.heartbeat(a, 1))).toBe('REBALANCE_IN_PROGRESS');
    expect(c.outcome(c.sync(a, 1))).toBe('REBALANCE_IN_PROGRESS');
    const joinA = c.join('a', { memberId: a });
    expect(c.joined(joinA)).toMatchObject({ memberId: a, generationId: 2, leaderId: a, members: [a, 'b-g-2'] });
    expect(c.joined(joinB)).toMatchObject({ memberId: 'b-g-2', generationId: 2, leaderId: a });
    const [fromA, fromB] = [c.assignment(a, 2), c.assignment('b-g-2', 2)];
    expect(fromA).toEqual({ t: [0, 1] });
    expect(fromB).toEqual({ t: [2, 3] });
    expect(covered(fromA, fromB)).toEqual([0, 1, 2, 3]);
  });

  it('a stable member rejoining with the same subscription learns the current generation at once', () => {
    const { c, a } = twoMembers();
    expect(c.joined(c.join('a', { memberId: a }))).toMatchObject({ memberId: a, generationId: 2 });
    expect(c.describe()?.state).toBe('Stable');
  });

  it('a member changing its subscription starts a rebalance', () => {
    const c = new Coordinator({ t: 2, u: 2 });
    const a = c.joined(c.join('a')).memberId;
    const rejoin = c.join('a', { memberId: a, topics: ['t', 'u'] });
    expect(c.joined(rejoin).generationId).toBe(2);
    expect(c.assignment(a, 2)).toEqual({ t: [0, 1], u: [0, 1] });
  });

  it('a second join of the same member while the first waits supersedes it', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    const joinB = c.join('b');
    const first = c.join('a', { memberId: a });
    expect(c.outcome(first)).toBe('ok'); // b and a both pending: completed
    expect(c.joined(joinB).generationId).toBe(2);
    const joinC = c.join('c');
    const again = c.join('a', { memberId: a });
    const retried = c.join('a', { memberId: a });
    expect(c.outcome(again)).toBe('REBALANCE_IN_PROGRESS');
    expect(c.outcome(retried)).toBe('pending');
    c.join('b', { memberId: 'b-g-2' });
    expect(c.joined(retried).generationId).toBe(3);
    expect(c.joined(joinC).members).toEqual([a, 'b-g-2', 'c-g-3']);
  });

  it('picks the first assignor, in the leader’s order, that every member supports; none common is refused', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a', { assignors: ['roundrobin', 'range'] })).memberId;
    const joinB = c.join('b', { assignors: ['range', 'roundrobin'] });
    c.join('a', { memberId: a, assignors: ['roundrobin', 'range'] });
    expect(c.joined(joinB).assignor).toBe('roundrobin');
    expect(c.assignment(a, 2)).toEqual({ t: [0, 2] });
    const onlyRange = c.join('c', { assignors: ['range'] });
    expect(c.outcome(onlyRange)).toBe('pending'); // until the others rejoin
    c.join('a', { memberId: a, assignors: ['roundrobin', 'range'] });
    c.join('b', { memberId: 'b-g-2', assignors: ['range', 'roundrobin'] });
    expect(c.joined(onlyRange)).toMatchObject({ generationId: 3, assignor: 'range' });
    const onlyRoundRobin = c.join('d', { assignors: ['roundrobin'] });
    expect(c.outcome(onlyRoundRobin)).toBe('INCONSISTENT_GROUP_PROTOCOL');
  });
});

describe('leaving and crashing', () => {
  it('a member that leaves is gone at once; the other rejoins and takes every partition', () => {
    const { c, a, b } = twoMembers();
    expect(c.outcome(c.leave(b))).toBe('ok');
    expect(c.outcome(c.heartbeat(a, 2))).toBe('REBALANCE_IN_PROGRESS');
    expect(c.joined(c.join('a', { memberId: a })).generationId).toBe(3);
    expect(c.assignment(a, 3)).toEqual({ t: [0, 1, 2, 3] });
  });

  it('the last member leaving empties the group, which keeps its offsets', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    c.commit(a, 1, [{ partition: 0, offset: 5 }]);
    c.persisted();
    c.leave(a);
    expect(c.describe()).toMatchObject({ state: 'Empty', generationId: 2, members: [] });
    expect(listGroups(c.state)).toEqual([{ groupId: 'g', state: 'Empty' }]);
    expect(committedOffsets(c.state, 'g')).toEqual([{ topic: 't', partition: 0, offset: 5, metadata: null }]);
  });

  it('an empty group is kept, so its generations keep counting up', () => {
    const c = new Coordinator();
    c.leave(c.joined(c.join('a')).memberId);
    expect(listGroups(c.state)).toEqual([{ groupId: 'g', state: 'Empty' }]);
    expect(c.joined(c.join('b')).generationId).toBe(3);
  });

  it('a crashed member (no heartbeats) expires after its session timeout; the survivor takes over', () => {
    const { c, a, b } = twoMembers(); // sessions of 10 s
    for (let t = 0; t < 3; t++) {
      c.advance(3_000);
      expect(c.outcome(c.heartbeat(a, 2))).toBe('ok'); // b is silent from now on
    }
    c.advance(1_000);
    expect(c.outcome(c.heartbeat(a, 2))).toBe('REBALANCE_IN_PROGRESS');
    expect(c.describe()?.members.map((m) => m.memberId)).toEqual([a]);
    expect(c.outcome(c.heartbeat(b, 2))).toBe('UNKNOWN_MEMBER_ID');
    c.join('a', { memberId: a });
    expect(c.assignment(a, 3)).toEqual({ t: [0, 1, 2, 3] });
  });

  it('a rebalance ends at the rebalance timeout without the members that did not rejoin', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a', { sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 20_000 })).memberId;
    const joinB = c.join('b', { rebalanceTimeoutMs: 5_000 });
    c.advance(19_999);
    expect(c.outcome(joinB)).toBe('pending');
    c.advance(1);
    expect(c.joined(joinB)).toMatchObject({ generationId: 2, members: ['b-g-2'] });
    expect(c.outcome(c.heartbeat(a, 1))).toBe('UNKNOWN_MEMBER_ID');
  });

  it('a member waiting in a join is not expired by its session timeout', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a', { sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 60_000 })).memberId;
    const joinB = c.join('b', { sessionTimeoutMs: 1_000 });
    c.advance(30_000);
    c.join('a', { memberId: a, sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 60_000 });
    expect(c.joined(joinB).members).toEqual([a, 'b-g-2']);
  });
});

describe('generations and members', () => {
  it('a commit of a stale generation is refused (a zombie cannot overwrite the new owner’s progress)', () => {
    const { c, a } = twoMembers();
    expect(c.outcome(c.commit(a, 1, [{ partition: 0, offset: 9 }]))).toBe('ILLEGAL_GENERATION');
    expect(c.outcome(c.heartbeat(a, 1))).toBe('ILLEGAL_GENERATION');
    expect(c.outcome(c.sync(a, 1))).toBe('ILLEGAL_GENERATION');
    expect(c.writes).toEqual([]);
  });

  it('an unknown member is refused everywhere', () => {
    const c = new Coordinator();
    c.join('a');
    for (const id of [c.heartbeat('nobody', 1), c.sync('nobody', 1), c.leave('nobody'), c.commit('nobody', 1, [{ partition: 0, offset: 1 }]), c.join('x', { memberId: 'nobody' })]) {
      expect(c.outcome(id)).toBe('UNKNOWN_MEMBER_ID');
    }
    expect(c.outcome(c.heartbeat('a-g-1', 1, 'other'))).toBe('UNKNOWN_MEMBER_ID');
  });

  it('commits of the current generation are accepted during a rebalance (members commit before rejoining)', () => {
    const { c, a, b } = twoMembers();
    c.join('c');
    const commit = c.commit(a, 2, [{ partition: 0, offset: 3 }]);
    expect(c.writes).toHaveLength(1);
    c.join('a', { memberId: a });
    c.join('b', { memberId: b });
    expect(c.describe()?.state).toBe('PreparingRebalance'); // waits for the write
    c.persisted();
    expect(c.outcome(commit)).toBe('ok');
    expect(c.describe()).toMatchObject({ state: 'Stable', generationId: 3 });
  });
});

describe('committed offsets', () => {
  it('a commit is answered only once its offsets are durable; the write holds the whole set', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    const first = c.commit(a, 1, [{ partition: 0, offset: 10 }]);
    const second = c.commit(a, 1, [{ partition: 1, offset: 20, metadata: 'm' }]);
    expect([c.outcome(first), c.outcome(second)]).toEqual(['pending', 'pending']);
    expect(c.writes.map((w) => w.offsets.map((o) => `${o.partition}@${o.offset}`))).toEqual([['0@10'], ['0@10', '1@20']]);
    expect(committedOffsets(c.state, 'g')).toEqual([]);
    c.persisted();
    expect(c.outcome(first)).toBe('ok');
    expect(committedOffsets(c.state, 'g')).toEqual([{ topic: 't', partition: 0, offset: 10, metadata: null }]);
    c.persisted();
    expect(c.outcome(second)).toBe('ok');
    expect(committedOffsets(c.state, 'g').map((o) => o.offset)).toEqual([10, 20]);
  });

  it('a failed write refuses its commit and leaves the committed offsets as they were', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    c.commit(a, 1, [{ partition: 0, offset: 10 }]);
    c.persisted();
    const failing = c.commit(a, 1, [{ partition: 0, offset: 11 }]);
    c.persistFailed('QuotaExceededError');
    expect(c.replies.get(failing)).toMatchObject({ ok: false, error: 'KAFKA_STORAGE_ERROR', message: expect.stringContaining('QuotaExceededError') });
    expect(committedOffsets(c.state, 'g').map((o) => o.offset)).toEqual([10]);
    c.commit(a, 1, [{ partition: 1, offset: 1 }]);
    expect(c.writes[0]!.offsets.map((o) => o.offset)).toEqual([10, 1]); // the failed 11 is not carried on
  });

  it('a write refused because the coordinator no longer leads its offsets partition is answered NOT_COORDINATOR (the caller finds the new one)', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    const moved = c.commit(a, 1, [{ partition: 0, offset: 10 }]);
    c.persistFailed('not the leader', true);
    expect(c.replies.get(moved)).toMatchObject({ ok: false, error: 'NOT_COORDINATOR' });
    expect(committedOffsets(c.state, 'g')).toEqual([]);
  });

  it('a deleted topic’s offsets leave the group, also those of a commit still being written; the set is written again without them', () => {
    const c = new Coordinator({ t: 4, u: 2 });
    c.commit(null, -1, [{ partition: 0, offset: 10 }, { topic: 'u', partition: 0, offset: 5 }]);
    c.persisted();
    const pending = c.commit(null, -1, [{ partition: 1, offset: 3 }]);
    const drop = 100;
    c.input({ type: 'dropTopic', requestId: drop, now: 0, groupId: 'g', topic: 't', rewrite: false });
    expect(committedOffsets(c.state, 'g')).toEqual([{ topic: 'u', partition: 0, offset: 5, metadata: null }]);
    expect(c.writes.map((w) => w.offsets.map((o) => `${o.topic}${o.partition}@${o.offset}`))).toEqual([['t0@10', 't1@3', 'u0@5'], ['u0@5']]);
    c.persisted();
    expect(c.outcome(pending)).toBe('ok');
    expect(committedOffsets(c.state, 'g').map((o) => o.topic)).toEqual(['u']); // what the pending write held of t is dropped too
    expect(c.outcome(drop)).toBe('pending');
    c.persisted();
    expect(c.outcome(drop)).toBe('ok');
    // Nothing of t left: answered at once without a write, unless a rewrite is asked for.
    c.input({ type: 'dropTopic', requestId: 101, now: 0, groupId: 'g', topic: 't', rewrite: false });
    expect([c.outcome(101), c.writes.length]).toEqual(['ok', 0]);
    c.input({ type: 'dropTopic', requestId: 102, now: 0, groupId: 'g', topic: 't', rewrite: true });
    expect(c.writes.map((w) => w.offsets.length)).toEqual([1]);
  });

  it('deleting a group writes its offsets away; it leaves the list only once that is durable', () => {
    const c = new Coordinator();
    c.commit(null, -1, [{ partition: 0, offset: 10 }]);
    c.persisted();
    const del = c.deleteGroup();
    expect(c.outcome(del)).toBe('pending');
    expect(c.writes.map((w) => [w.groupId, w.offsets])).toEqual([['g', []]]);
    expect(listGroups(c.state).map((g) => g.groupId)).toEqual(['g']);
    // While the delete is written, the group takes no joins or commits (retriable).
    expect(c.outcome(c.join('a'))).toBe('COORDINATOR_NOT_AVAILABLE');
    expect(c.outcome(c.commit(null, -1, [{ partition: 0, offset: 11 }]))).toBe('COORDINATOR_NOT_AVAILABLE');
    expect(c.outcome(c.deleteGroup())).toBe('COORDINATOR_NOT_AVAILABLE');
    c.persisted();
    expect(c.outcome(del)).toBe('ok');
    expect(listGroups(c.state)).toEqual([]);
    expect(committedOffsets(c.state, 'g')).toEqual([]);
    // The id is free again: a new group starts from nothing, with member ids never issued before.
    expect(c.joined(c.join('a'))).toMatchObject({ memberId: 'a-g-1', generationId: 1 });
  });

  it('a failed delete leaves the group and its offsets as they were', () => {
    const c = new Coordinator();
    c.commit(null, -1, [{ partition: 0, offset: 10 }]);
    c.persisted();
    const del = c.deleteGroup();
    c.persistFailed('QuotaExceededError');
    expect(c.replies.get(del)).toMatchObject({ ok: false, error: 'KAFKA_STORAGE_ERROR', message: expect.stringContaining('QuotaExceededError') });
    expect(listGroups(c.state)).toEqual([{ groupId: 'g', state: 'Empty' }]);
    expect(committedOffsets(c.state, 'g').map((o) => o.offset)).toEqual([10]);
    c.commit(null, -1, [{ partition: 1, offset: 1 }]);
    expect(c.writes[0]!.offsets.map((o) => o.offset)).toEqual([10, 1]);
  });

  it('a delete waits behind earlier writes and is refused for an unknown, non-empty or malformed group', () => {
    const c = new Coordinator();
    expect(c.outcome(c.deleteGroup('nope'))).toBe('GROUP_ID_NOT_FOUND');
    expect(c.outcome(c.deleteGroup(''))).toBe('INVALID_GROUP_ID');
    const a = c.joined(c.join('a')).memberId;
    expect(c.outcome(c.deleteGroup())).toBe('NON_EMPTY_GROUP');
    const commit = c.commit(a, 1, [{ partition: 0, offset: 3 }]);
    c.leave(a);
    const del = c.deleteGroup();
    expect(c.writes.map((w) => w.offsets.length)).toEqual([1, 0]);
    c.persisted();
    expect([c.outcome(commit), c.outcome(del)]).toEqual(['ok', 'pending']);
    c.persisted();
    expect(c.outcome(del)).toBe('ok');
    expect(listGroups(c.state)).toEqual([]);
  });

  it('a topic dropped while a delete is written is refused (retriable), so the caller rewrites it if the delete fails', () => {
    const c = new Coordinator();
    c.commit(null, -1, [{ partition: 0, offset: 10 }]);
    c.persisted();
    c.deleteGroup();
    c.input({ type: 'dropTopic', requestId: 100, now: 0, groupId: 'g', topic: 't', rewrite: false });
    expect([c.outcome(100), c.writes.length]).toEqual(['COORDINATOR_NOT_AVAILABLE', 1]);
    c.persistFailed('QuotaExceededError');
    expect(committedOffsets(c.state, 'g')).toEqual([]);
    c.input({ type: 'dropTopic', requestId: 101, now: 0, groupId: 'g', topic: 't', rewrite: true });
    expect([c.outcome(101), c.writes.length]).toEqual(['pending', 1]);
  });

  it('writes completing out of order break the executor contract', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    c.commit(a, 1, [{ partition: 0, offset: 1 }]);
    c.commit(a, 1, [{ partition: 0, offset: 2 }]);
    expect(() => c.input({ type: 'persisted', requestId: c.writes[1]!.requestId })).toThrow(/out of order/);
  });

  it('an admin commit (no member) is refused while the group has members and accepted once it is empty', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    expect(c.outcome(c.commit(null, -1, [{ partition: 0, offset: 0 }]))).toBe('NON_EMPTY_GROUP');
    c.leave(a);
    const reset = c.commit(null, -1, [{ partition: 0, offset: 0 }, { partition: 3, offset: 7 }]);
    c.persisted();
    expect(c.outcome(reset)).toBe('ok');
    expect(committedOffsets(c.state, 'g').map((o) => o.offset)).toEqual([0, 7]);
    expect(c.outcome(c.commit(null, -1, [{ partition: 0, offset: 1 }], 'fresh'))).toBe('pending'); // a group of offsets only
  });

  it('offsets loaded at start are the committed offsets', () => {
    const c = new Coordinator();
    c.input({ type: 'load', groupId: 'g', offsets: [{ topic: 't', partition: 2, offset: 42, metadata: null }] });
    expect(committedOffsets(c.state, 'g')).toEqual([{ topic: 't', partition: 2, offset: 42, metadata: null }]);
    expect(c.describe()).toMatchObject({ state: 'Empty', generationId: 0 });
  });
});

describe('topics', () => {
  it('a new partition of a subscribed topic starts a rebalance; other topics do not', () => {
    const { c, a, b } = twoMembers();
    c.input({ type: 'topics', now: c.nowMs, partitions: { t: 4, other: 3 } });
    expect(c.describe()?.state).toBe('Stable');
    c.input({ type: 'topics', now: c.nowMs, partitions: { t: 6, other: 3 } });
    expect(c.outcome(c.heartbeat(a, 2))).toBe('REBALANCE_IN_PROGRESS');
    c.join('a', { memberId: a });
    c.join('b', { memberId: b });
    expect([c.assignment(a, 3), c.assignment(b, 3)]).toEqual([{ t: [0, 1, 2] }, { t: [3, 4, 5] }]);
  });

  it('a commit of a partition the topics do not know is refused', () => {
    const c = new Coordinator();
    const a = c.joined(c.join('a')).memberId;
    expect(c.outcome(c.commit(a, 1, [{ partition: 4, offset: 0 }]))).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    expect(c.outcome(c.commit(a, 1, [{ topic: 'nope', partition: 0, offset: 0 }]))).toBe('UNKNOWN_TOPIC_OR_PARTITION');
  });
});

describe('bad inputs', () => {
  it('refuses an empty group id, session timeouts outside [1 s, 5 min], bad offsets and long metadata', () => {
    const c = new Coordinator();
    expect(c.outcome(c.join('a', { groupId: '' }))).toBe('INVALID_GROUP_ID');
    expect(c.outcome(c.heartbeat('a', 1, ''))).toBe('INVALID_GROUP_ID');
    expect(c.outcome(c.join('a', { sessionTimeoutMs: 999 }))).toBe('INVALID_SESSION_TIMEOUT');
    expect(c.outcome(c.join('a', { sessionTimeoutMs: 300_001 }))).toBe('INVALID_SESSION_TIMEOUT');
    expect(c.outcome(c.join('a', { rebalanceTimeoutMs: 0 }))).toBe('INVALID_REQUEST');
    expect(c.outcome(c.join('a', { assignors: [] }))).toBe('INCONSISTENT_GROUP_PROTOCOL');
    expect(c.outcome(c.join('a', { topics: [''] }))).toBe('INVALID_REQUEST');
    expect(listGroups(c.state)).toEqual([]); // nothing half-made
    const a = c.joined(c.join('a')).memberId;
    expect(c.outcome(c.commit(a, 1, [{ partition: 0, offset: -1 }]))).toBe('INVALID_REQUEST');
    expect(c.outcome(c.commit(a, 1, [{ partition: 0, offset: 1, metadata: 'x'.repeat(4097) }]))).toBe('OFFSET_METADATA_TOO_LARGE');
    expect(c.outcome(c.commit(a, 1, Array.from({ length: 10_001 }, () => ({ partition: 0, offset: 1 }))))).toBe('INVALID_REQUEST');
  });

  it('bounds the members of a group', () => {
    const c = new Coordinator();
    for (let i = 0; i < 256; i++) c.join(`c${i}`);
    expect(c.outcome(c.join('one-too-many'))).toBe('GROUP_MAX_SIZE_REACHED');
  });
});
