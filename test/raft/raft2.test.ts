import { describe, expect, it } from 'vitest';
import { lastIndexOf, type Effect, type Membership, type Message } from '../../src/raft';
import { TestCluster } from './harness';

// Hand-built scenarios for membership changes, learners, leader transfer, read-index,
// snapshots and forced reconfiguration; the simulator (test/sim) attacks them at random.

const ofType = <T extends Effect['type']>(effects: readonly Effect[], type: T) =>
  effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);
const members = (voters: string[], learners: string[] = []): Membership => ({ voters, learners });

/** A group of `ids` with `a` elected and its no-op committed everywhere. */
function withLeader(ids = ['a', 'b', 'c'], config = {}): TestCluster {
  const c = new TestCluster(ids, { config });
  c.elect('a');
  c.tick('a');
  c.deliver();
  return c;
}

/** Every live member ticks `times` times, messages delivered after each round; returns what was delivered. */
function run(c: TestCluster, times: number, options: Parameters<TestCluster['deliver']>[0] = {}): Message[] {
  const delivered: Message[] = [];
  for (let i = 0; i < times; i++) {
    for (const [id, member] of c.members) if (!member.down) c.tick(id);
    delivered.push(...c.deliver(options));
  }
  return delivered;
}

/** The leader is gone: `ids` stop hearing from it for an election timeout, so their lease ends. */
function leaseExpires(c: TestCluster, ...ids: string[]): void {
  for (const id of ids) c.tick(id, 10);
  c.inbox = [];
}

const change = (c: TestCluster, id: string, membership: Membership) => c.input(id, { type: 'changeMembership', membership });
const rejectionCode = (effects: readonly Effect[]) => ofType(effects, 'proposalRejected')[0]?.error.code;

describe('membership changes', () => {
  it('a learner replicates without voting; it is promoted only once caught up', () => {
    const c = withLeader();
    c.propose('a', 1, 2, 3);
    c.deliver();
    c.add('d');
    c.member('d').manualDisk = true; // d is slow to catch up
    expect(rejectionCode(change(c, 'a', members(['a', 'b', 'c', 'd'])))).toBe('RAFT_LEARNER_BEHIND');
    expect(ofType(change(c, 'a', members(['a', 'b', 'c'], ['d'])), 'proposed')).toHaveLength(1);
    c.deliver();
    expect(c.state('a').commit).toBe(5); // committed by a, b, c; the learner does not count
    expect(c.state('d').membership).toEqual(members(['a', 'b', 'c'])); // nothing durable on d yet
    expect(rejectionCode(change(c, 'a', members(['a', 'b', 'c', 'd'])))).toBe('RAFT_LEARNER_BEHIND');
    c.member('d').manualDisk = false;
    c.sync('d');
    run(c, 2);
    expect(c.state('d')).toMatchObject({ role: 'follower', leader: 'a', commit: 5, membership: members(['a', 'b', 'c'], ['d']) });
    expect(ofType(change(c, 'a', members(['a', 'b', 'c', 'd'])), 'proposed')).toEqual([
      { type: 'proposed', firstIndex: 6, lastIndex: 6, term: 1 },
    ]);
    run(c, 2);
    for (const id of ['a', 'b', 'c', 'd']) expect(c.state(id)).toMatchObject({ commit: 6, membership: members(['a', 'b', 'c', 'd']) });
  });

  it('a learner trailing a busy leader by its appends in flight (never at the commit) is promoted once a catch-up round took at most an election timeout (Raft thesis §4.2.1)', () => {
    const c = withLeader();
    c.add('d');
    change(c, 'a', members(['a', 'b', 'c'], ['d']));
    run(c, 2);
    // Each round of appends reaches b and c (the commit moves) before d: d's answer is always one round late.
    let late: Array<ReturnType<typeof c.deliver>[number]> = [];
    for (let i = 0; i < 6; i++) {
      c.propose('a', 10 + i);
      const held: typeof late = [];
      c.deliver({ drop: (m) => (m.to === 'd' || m.from === 'd' ? (held.push(m), true) : false) });
      expect(c.state('a').commit).toBeGreaterThan(lastIndexOf(c.state('d')));
      for (const m of late) c.member(m.to).executor.receive(m.from, [{ group: 'g', message: m }]);
      late = held;
    }
    expect(ofType(change(c, 'a', members(['a', 'b', 'c', 'd'])), 'proposed')).toHaveLength(1);
  });

  it('a learner never campaigns, however long it hears nothing', () => {
    const c = withLeader();
    c.add('d');
    change(c, 'a', members(['a', 'b', 'c'], ['d']));
    run(c, 2);
    c.crash('a');
    run(c, 60, { isolated: ['b', 'c'] });
    expect(c.state('d')).toMatchObject({ role: 'follower', term: 1 });
  });

  it('one change at a time, and none before the leader commits an entry of its term', () => {
    const c = withLeader(['a', 'b', 'c', 'd']);
    expect(ofType(change(c, 'a', members(['a', 'b', 'c'])), 'proposed')).toHaveLength(1);
    expect(rejectionCode(change(c, 'a', members(['a', 'b'])))).toBe('RAFT_MEMBERSHIP_CHANGE_IN_PROGRESS');
    expect(rejectionCode(change(c, 'a', members(['a'])))).toBe('INVALID_MEMBERSHIP'); // two voters at once
    expect(rejectionCode(change(c, 'a', members(['a', 'b', 'c'], ['c'])))).toBe('INVALID_MEMBERSHIP');
    c.deliver();
    // b takes over: until its no-op commits, a change of an earlier leader it has not
    // seen could still commit, so b refuses to start one.
    c.crash('a');
    leaseExpires(c, 'c', 'd');
    c.elect('b', { drop: (m) => m.type === 'append' });
    expect(c.state('b')).toMatchObject({ role: 'leader', term: 2 });
    expect(rejectionCode(change(c, 'b', members(['a', 'b'])))).toBe('RAFT_MEMBERSHIP_CHANGE_IN_PROGRESS');
    run(c, 1);
    expect(ofType(change(c, 'b', members(['a', 'b'])), 'proposed')).toHaveLength(1);
  });

  it("why a new leader commits an entry of its term first (Ongaro's 2015 counterexample)", () => {
    const c = withLeader(['a', 'b', 'c', 'd']);
    c.add('e');
    change(c, 'a', members(['a', 'b', 'c', 'd'], ['e']));
    run(c, 3);
    // a promotes e; only e hears of it, then a crashes: {a,b,c,d,e} lives on a and e.
    change(c, 'a', members(['a', 'b', 'c', 'd', 'e']));
    c.deliver({ drop: (m) => m.to !== 'e' && m.from !== 'e' });
    c.crash('a');
    leaseExpires(c, 'b', 'c', 'd');
    c.elect('b', { isolated: ['e'], drop: (m) => m.type === 'append' });
    expect(c.state('b')).toMatchObject({ role: 'leader', term: 2, membership: members(['a', 'b', 'c', 'd'], ['e']) });
    // Were b to remove d now, {a,b,c} could commit on b and c while d lacks every entry
    // of term 2 — and a, back, would win term 3 with a, d and e under {a,b,c,d,e},
    // erasing it. So b waits until its no-op is on a majority of {a,b,c,d} …
    expect(rejectionCode(change(c, 'b', members(['a', 'b', 'c'], ['e'])))).toBe('RAFT_MEMBERSHIP_CHANGE_IN_PROGRESS');
    run(c, 2, { isolated: ['e'] });
    expect(ofType(change(c, 'b', members(['a', 'b', 'c'], ['e'])), 'proposed')).toHaveLength(1);
    run(c, 2, { isolated: ['d', 'e'] });
    expect(c.state('b').commit).toBe(4); // b's no-op at 3, the removal at 4
    // … which d is part of: a cannot gather a, d and e.
    c.restart('a');
    run(c, 40, { isolated: ['b', 'c'] });
    expect(c.state('a').role).not.toBe('leader');
    expect(c.state('d').votedFor).not.toBe('a');
  });

  it('takes effect when appended: removing a dead voter of three lets two commit again', () => {
    const c = withLeader();
    c.crash('c');
    change(c, 'a', members(['a', 'b']));
    expect(c.state('a').membership).toEqual(members(['a', 'b'])); // before it commits
    c.deliver();
    c.propose('a', 7);
    c.deliver();
    expect(c.state('a').commit).toBe(3);
  });

  it('a removed leader leads until its removal commits, then steps down; the rest elect a leader', () => {
    const c = withLeader();
    change(c, 'a', members(['b', 'c']));
    expect(c.state('a').role).toBe('leader');
    c.deliver();
    run(c, 1);
    expect(c.state('a')).toMatchObject({ role: 'follower', commit: 2, membership: members(['b', 'c']) });
    run(c, 40);
    const leader = ['b', 'c'].find((id) => c.state(id).role === 'leader');
    expect(leader).toBeDefined();
    expect(c.state('a').role).toBe('follower'); // not a voter: never campaigns
    c.propose(leader!, 9);
    run(c, 2);
    expect(c.state(leader!).commit).toBe(4);
  });

  it('a change lost with its crashed leader is undone where it was appended', () => {
    const c = withLeader();
    c.add('d');
    change(c, 'a', members(['a', 'b', 'c'], ['d']));
    run(c, 2);
    change(c, 'a', members(['a', 'b', 'c', 'd'])); // reaches nobody
    c.inbox = [];
    expect(c.state('a').membership.voters).toContain('d');
    c.crash('a');
    c.restart('a');
    expect(c.state('a').membership).toEqual(members(['a', 'b', 'c', 'd'])); // from the log it kept
    leaseExpires(c, 'c', 'd');
    c.elect('b', { isolated: ['a'] });
    c.propose('b', 5);
    run(c, 3);
    // b's no-op at 3 overwrote a's uncommitted change: a's membership reverts with it.
    expect(c.state('a')).toMatchObject({ leader: 'b', commit: 4, membership: members(['a', 'b', 'c'], ['d']) });
  });

  it('a leader cut off with a minority cannot commit its change; the majority side carries on', () => {
    const c = withLeader(['a', 'b', 'c', 'd', 'e']);
    run(c, 1, { isolated: ['a', 'b'] });
    change(c, 'a', members(['a', 'b', 'c', 'd']));
    run(c, 30, { isolated: ['a', 'b'] });
    expect(c.state('a').role).not.toBe('leader'); // check-quorum, under the new membership too
    expect(c.state('a').commit).toBe(1);
    const leader = ['c', 'd', 'e'].find((id) => c.state(id).role === 'leader')!;
    expect(c.state(leader).membership).toEqual(members(['a', 'b', 'c', 'd', 'e']));
    run(c, 3);
    for (const id of ['a', 'b']) expect(c.state(id)).toMatchObject({ leader, membership: members(['a', 'b', 'c', 'd', 'e']) });
  });
});

describe('leader transfer', () => {
  it('catches the target up, then it campaigns at once, past pre-vote and leases, and commits', () => {
    const c = withLeader();
    c.propose('a', 1, 2);
    c.deliver({ drop: (m) => m.to === 'c' });
    c.input('a', { type: 'transferLeadership', to: 'c' });
    const [refused] = ofType(c.propose('a', 3), 'proposalRejected');
    expect(refused).toMatchObject({ error: { code: 'NOT_LEADER_OR_FOLLOWER', retriable: true }, leaderHint: 'c' });
    c.tick('a'); // c's answer to the heartbeat shows what it lacks
    const delivered = c.deliver();
    expect(delivered.map((m) => m.type)).toContain('timeoutNow');
    expect(delivered.filter((m) => m.type === 'preVote')).toEqual([]);
    expect(c.state('c')).toMatchObject({ role: 'leader', term: 2 });
    run(c, 1);
    expect(c.state('a')).toMatchObject({ role: 'follower', leader: 'c' });
    expect(c.state('c').commit).toBe(4);
  });

  it('is abandoned after an election timeout when the target is down; proposals flow again', () => {
    const c = withLeader();
    c.crash('c');
    c.input('a', { type: 'transferLeadership', to: 'c' });
    expect(rejectionCode(c.propose('a', 1))).toBe('NOT_LEADER_OR_FOLLOWER');
    run(c, 10);
    expect(c.state('a').role).toBe('leader');
    expect(ofType(c.propose('a', 1), 'proposed')).toHaveLength(1);
  });
});

describe('a member known gone (memberGone: its tab\'s slot lock released)', () => {
  it('the leader gone: only the first other voter campaigns, at once, past pre-vote and its peers\' lease, and leads', () => {
    const c = withLeader();
    c.propose('a', 1);
    c.deliver();
    c.crash('a');
    expect(c.input('c', { type: 'memberGone', member: 'a' })).toEqual([]);
    c.input('b', { type: 'memberGone', member: 'a' });
    const delivered = c.deliver();
    expect(delivered.filter((m) => m.type === 'preVote')).toEqual([]);
    expect(delivered.filter((m) => m.type === 'vote').map((m) => m.from)).toEqual(['b']);
    expect(c.state('b')).toMatchObject({ role: 'leader', term: 2 });
    expect(c.state('c')).toMatchObject({ role: 'follower', leader: 'b' });
  });

  it('ignored when the gone member is not the leader followed, and by the leader', () => {
    const c = withLeader();
    c.crash('c');
    expect(c.input('b', { type: 'memberGone', member: 'c' })).toEqual([]);
    expect(c.input('a', { type: 'memberGone', member: 'c' })).toEqual([]);
    expect(c.state('b')).toMatchObject({ role: 'follower', leader: 'a', term: 1 });
  });

  it('the campaigner\'s log behind the other survivor\'s: refused, and the survivors elect the longer log after a timeout', () => {
    const c = withLeader();
    c.propose('a', 1, 2);
    c.deliver({ drop: (m) => m.to === 'b' });
    c.crash('a');
    c.input('b', { type: 'memberGone', member: 'a' });
    c.deliver();
    expect(c.state('b').role).toBe('candidate');
    run(c, 20);
    expect(c.state('c')).toMatchObject({ role: 'leader' });
  });
});

describe('read-index', () => {
  it('answers at the commit index once a quorum echoes a round sent after the read', () => {
    const c = withLeader();
    c.propose('a', 1);
    c.deliver();
    expect(c.input('a', { type: 'readIndex', id: 7 }).filter((e) => e.type === 'readReady')).toEqual([]);
    const first = c.inbox.find((m) => m.type === 'heartbeat' && m.to === 'b')!;
    c.deliver({ isolated: ['c'], drop: (m) => m !== first && m.type === 'heartbeat' });
    expect(ofType(c.member('a').effects, 'readReady')).toEqual([{ type: 'readReady', id: 7, index: 2 }]);
    const [rejected] = ofType(c.input('b', { type: 'readIndex', id: 8 }), 'readRejected');
    expect(rejected).toMatchObject({ id: 8, leaderHint: 'a', error: { code: 'NOT_LEADER_OR_FOLLOWER' } });
  });

  it('a deposed leader never answers; its reads are rejected when it steps down', () => {
    const c = withLeader();
    c.input('a', { type: 'readIndex', id: 1 });
    run(c, 20, { isolated: ['a'] });
    expect(ofType(c.member('a').effects, 'readReady')).toEqual([]);
    expect(ofType(c.member('a').effects, 'readRejected').map((e) => e.id)).toEqual([1]);
  });

  it('a new leader answers only after its no-op commits, at an index that covers its predecessor', () => {
    const c = withLeader();
    c.propose('a', 1);
    c.deliver(); // committed 2 on a; b and c learn it only on the next append
    c.crash('a');
    leaseExpires(c, 'c');
    c.elect('b', { drop: (m) => m.type === 'append' });
    c.input('b', { type: 'readIndex', id: 3 });
    c.deliver({ drop: (m) => m.type === 'append' });
    expect(ofType(c.member('b').effects, 'readReady')).toEqual([]);
    run(c, 1);
    expect(ofType(c.member('b').effects, 'readReady')).toEqual([{ type: 'readReady', id: 3, index: 3 }]);
  });
});

describe('snapshots', () => {
  it('compacts below an applied index; a follower behind the start gets the snapshot, then entries', () => {
    const c = withLeader();
    c.crash('c');
    c.propose('a', 1, 2, 3, 4);
    c.deliver();
    expect(c.input('a', { type: 'compact', index: 9, data: new Uint8Array() })).toEqual([]); // not applied yet
    const [persist] = ofType(c.input('a', { type: 'compact', index: 4, data: new Uint8Array([42]) }), 'persist');
    expect(persist?.snapshot).toMatchObject({ index: 4, term: 1, membership: members(['a', 'b', 'c']) });
    expect(c.member('a').log.entries).toHaveLength(1);
    c.restart('c'); // c holds only entry 1; a has 5 and nothing below it
    run(c, 2);
    const [restore] = ofType(c.member('c').effects, 'restore');
    expect(restore?.snapshot).toMatchObject({ index: 4, data: new Uint8Array([42]) });
    expect(c.state('c')).toMatchObject({ commit: 5, applied: 5 });
    expect(c.member('c').applied).toEqual([1, 5]); // 1 (known committed before it crashed), the snapshot, 5
    expect(c.member('c').log.snapshot?.index).toBe(4);
  });

  it('a lost snapshot goes out again after an election timeout, not with every heartbeat', () => {
    const c = withLeader();
    c.crash('c');
    c.propose('a', 1, 2, 3, 4);
    c.deliver();
    c.input('a', { type: 'compact', index: 4, data: new Uint8Array([42]) });
    c.restart('c');
    const snapshotsSent = () => ofType(c.member('a').effects, 'send').filter((e) => e.message.type === 'snapshot').length;
    run(c, 9, { drop: (m) => m.type === 'snapshot' });
    expect(snapshotsSent()).toBe(1);
    run(c, 3);
    expect(snapshotsSent()).toBe(2);
    expect(c.state('c').commit).toBe(5);
  });

  it('restarts from its snapshot: commit and applied start there', () => {
    const c = withLeader();
    c.propose('a', 1, 2);
    run(c, 2);
    expect(c.state('b').applied).toBe(3);
    c.input('b', { type: 'compact', index: 2, data: new Uint8Array([1]) });
    c.crash('b');
    c.restart('b');
    expect(c.state('b')).toMatchObject({ commit: 2, applied: 2 });
    run(c, 1);
    expect(c.member('b').applied).toEqual([3]);
  });
});

describe('forced reconfiguration', () => {
  it('one tab of two closes: the survivor, known to hold every commit, forces itself sole voter and commits', () => {
    const c = withLeader(['a', 'b']);
    c.propose('a', 1);
    c.deliver();
    c.crash('a'); // a's slot lock is released: a is certainly gone
    run(c, 30);
    expect(c.state('b').role).not.toBe('leader'); // a quorum of two needs a
    c.input('b', { type: 'forceMembership', membership: members(['b']), term: 2 });
    expect(c.state('b')).toMatchObject({ role: 'leader', membership: members(['b']) });
    c.propose('b', 2);
    expect(c.state('b').commit).toBe(5); // 2, the no-op, the forced membership, the proposal
    // a's tab reopens on a wiped slot and rejoins as a learner.
    c.add('a');
    change(c, 'b', members(['b'], ['a']));
    run(c, 2);
    expect(c.state('a')).toMatchObject({ leader: 'b', commit: 6, membership: members(['b'], ['a']) });
  });

  it('survivors whose configurations differ: the most up-to-date one, forced, breaks the deadlock', () => {
    const c = withLeader();
    change(c, 'a', members(['b', 'c'], ['a'])); // a demotes itself; nobody hears of it
    c.inbox = [];
    c.crash('c'); // c's tab closes
    run(c, 60);
    // b (under {a,b,c}) needs a's vote, which a's longer log refuses; a may campaign
    // (its demotion is uncommitted) but {b,c} needs c. Nobody can lead.
    expect([c.state('a').role, c.state('b').role]).not.toContain('leader');
    // a is the most up to date: forced to the living of its configuration, and itself.
    // Against b's {a,b,c}, whose living majority is {a,b}, the majorities meet.
    const term = 1 + Math.max(c.state('a').term, c.state('b').term);
    c.input('a', { type: 'forceMembership', membership: members(['b', 'a']), term });
    run(c, 2);
    expect(c.state('a')).toMatchObject({ role: 'leader', term, membership: members(['b', 'a']) });
    expect(c.state('b')).toMatchObject({ leader: 'a', commit: 4, membership: members(['b', 'a']) });
  });

  it('refuses a membership that leaves out the member forced, and a term not above its own', () => {
    const c = withLeader(['a', 'b']);
    expect(() => c.input('b', { type: 'forceMembership', membership: members(['a']), term: 2 })).toThrow(/include/);
    expect(() => c.input('b', { type: 'forceMembership', membership: members(['b']), term: 1 })).toThrow(/exceed every term/);
  });
});
