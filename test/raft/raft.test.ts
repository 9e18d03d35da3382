import { describe, expect, it } from 'vitest';
import type { AppendRequest, Effect, Entry, Message } from '../../src/raft';
import { entriesOfTerms, TestCluster } from './harness';

// One hand-built scenario per raft rule; the simulator (test/sim) attacks them at random.

const ack = (from: string, to: string, term: number, index: number): Message => ({
  type: 'appendResponse', from, to, term, reject: false, index, hintIndex: 0, hintTerm: 0,
});
const ofType = <T extends Effect['type']>(effects: readonly Effect[], type: T) =>
  effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);

/** A three-member group with `a` elected and its no-op committed everywhere. */
function threeWithLeader(config = {}): TestCluster {
  const c = new TestCluster(['a', 'b', 'c'], { config });
  c.elect('a');
  c.tick('a');
  c.deliver();
  return c;
}

describe('leader election', () => {
  it('elects through a pre-vote and a vote; the leader commits a no-op of its term', () => {
    const c = threeWithLeader();
    expect(c.state('a')).toMatchObject({ role: 'leader', term: 1, commit: 1 });
    for (const id of ['b', 'c']) {
      expect(c.state(id)).toMatchObject({ role: 'follower', term: 1, leader: 'a', commit: 1 });
      expect(c.terms(id)).toEqual([1]);
      expect(c.member(id).applied).toEqual([1]);
    }
  });

  it('grants one vote per term, and only once the vote is durable', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.member('b').manualDisk = true;
    c.timeout('a');
    c.deliver({ isolated: ['c'] });
    expect(c.state('b').votedFor).toBe('a');
    const [persist] = ofType(c.member('b').effects, 'persist');
    expect(persist?.hardState).toEqual({ term: 1, votedFor: 'a' });
    expect(persist?.thenSend).toEqual([expect.objectContaining({ type: 'voteResponse', to: 'a', reject: false })]);
    expect(c.state('a').role).toBe('candidate'); // the grant is held until b's write is durable
    const answer = c.input('b', { type: 'message', message: { type: 'vote', from: 'c', to: 'b', term: 1, lastIndex: 0, lastTerm: 0 } });
    expect(ofType(answer, 'persist').flatMap((p) => p.thenSend)).toEqual([expect.objectContaining({ type: 'voteResponse', reject: true })]);
    c.sync('b');
    c.deliver({ isolated: ['c'] });
    expect(c.state('a').role).toBe('leader');
  });

  it('a lone member leads only once its own vote is durable', () => {
    const c = new TestCluster(['a']);
    c.member('a').manualDisk = true;
    c.timeout('a');
    expect(c.state('a')).toMatchObject({ role: 'candidate', term: 1 });
    c.sync('a');
    expect(c.state('a')).toMatchObject({ role: 'leader', term: 1 });
  });

  it('refuses a candidate whose log is less up to date (last term first, then length)', () => {
    const c = new TestCluster(['a', 'b', 'c'], { logs: { a: [1, 1, 1], b: [2], c: [1, 1, 1, 1] } });
    c.elect('a');
    expect(c.state('a').role).toBe('follower'); // c's longer log of the same last term wins over a's
    expect(c.state('a').term).toBe(2); // b answered from its higher term; a's pre-vote never raised anyone's
    c.elect('b');
    expect(c.state('b').role).toBe('leader'); // last term 2 beats longer logs of term 1
    c.tick('b');
    c.deliver();
    for (const id of ['a', 'c']) expect(c.terms(id)).toEqual([2, 3]);
  });

  it('pre-vote: an isolated member does not raise its term, and does not depose the leader on return', () => {
    const c = threeWithLeader();
    for (let i = 0; i < 50; i++) {
      for (const id of ['a', 'b', 'c']) c.tick(id);
      c.deliver({ isolated: ['c'] });
    }
    expect(c.state('c')).toMatchObject({ role: 'preCandidate', term: 1 });
    c.tick('a');
    c.deliver();
    expect(c.state('a')).toMatchObject({ role: 'leader', term: 1 });
    expect(c.state('c')).toMatchObject({ role: 'follower', term: 1, leader: 'a' });
  });

  it('check-quorum: a leader cut off from a majority steps down; followers in lease ignore votes', () => {
    const c = threeWithLeader();
    const lease = c.input('b', { type: 'message', message: { type: 'vote', from: 'c', to: 'b', term: 9, lastIndex: 9, lastTerm: 9 } });
    expect(lease).toEqual([]);
    expect(c.state('b').term).toBe(1);
    for (let i = 0; i < 20; i++) {
      c.tick('a');
      c.deliver({ isolated: ['a'] });
    }
    expect(c.state('a')).toMatchObject({ role: 'follower', term: 1, leader: undefined });
    expect(ofType(c.propose('a', 1), 'proposalRejected')).toHaveLength(1);
  });

  it('a stale leader steps down on hearing a higher term', () => {
    const c = threeWithLeader();
    c.input('a', { type: 'message', message: { type: 'heartbeatResponse', from: 'b', to: 'a', term: 5, readRound: 0 } });
    expect(c.state('a')).toMatchObject({ role: 'follower', term: 5, votedFor: undefined });
  });
});

describe('log replication', () => {
  it('replicates, commits and applies proposals in order; a follower rejects with a leader hint', () => {
    const c = threeWithLeader();
    const [rejected] = ofType(c.propose('b', 9), 'proposalRejected');
    expect(rejected?.leaderHint).toBe('a');
    expect(rejected?.error).toMatchObject({ code: 'NOT_LEADER_OR_FOLLOWER', retriable: true });
    expect(ofType(c.propose('a', 7, 8, 9), 'proposed')).toEqual([{ type: 'proposed', firstIndex: 2, lastIndex: 4, term: 1 }]);
    c.deliver();
    c.tick('a');
    c.deliver();
    for (const id of ['a', 'b', 'c']) {
      expect(c.state(id).commit).toBe(4);
      expect(c.member(id).applied).toEqual([1, 2, 3, 4]);
      expect(c.member(id).log.entries.map((e) => e.data[0])).toEqual([undefined, 7, 8, 9]);
    }
  });

  it('pipelines at most maxInflightAppends appends of at most maxEntriesPerAppend entries', () => {
    const c = threeWithLeader({ maxInflightAppends: 2, maxEntriesPerAppend: 2 });
    c.propose('a', ...Array.from({ length: 10 }, (_, i) => i));
    const toB = c.inbox.filter((m): m is AppendRequest => m.type === 'append' && m.to === 'b');
    expect(toB.map((m) => [m.prevIndex, m.entries.length])).toEqual([[1, 2], [3, 2]]);
    c.deliver();
    expect(c.state('a').commit).toBe(11);
  });

  it('cuts appends at maxBytesPerAppend but always sends one entry', () => {
    const c = threeWithLeader({ maxBytesPerAppend: 1 });
    c.propose('a', 1, 2, 3);
    const toB = c.inbox.filter((m): m is AppendRequest => m.type === 'append' && m.to === 'b');
    expect(toB.every((m) => m.entries.length === 1)).toBe(true);
  });

  it('fast back-off: a divergent tail of 50 entries is found in one rejection', () => {
    const tail = (term: number) => Array.from({ length: 50 }, () => term);
    const c = new TestCluster(['a', 'b', 'c'], {
      logs: { a: [1, 1, ...tail(3)], b: [1, 1, ...tail(2)], c: [1, 1, ...tail(3)] },
    });
    c.elect('a', { isolated: ['b'] });
    const delivered = c.deliver();
    c.tick('a');
    delivered.push(...c.deliver());
    expect(delivered.filter((m) => m.type === 'appendResponse' && m.reject)).toHaveLength(1);
    expect(c.terms('b')).toEqual(c.terms('a'));
  });

  it('ignores a reordered, older append instead of cutting the tail after it', () => {
    const c = threeWithLeader();
    c.propose('a', 1, 2, 3);
    c.deliver();
    const old: Message = { type: 'append', from: 'a', to: 'b', term: 1, prevIndex: 1, prevTerm: 1, entries: [c.member('a').log.entries[1]!], commit: 1 };
    const effects = c.input('b', { type: 'message', message: old });
    expect(c.terms('b')).toEqual([1, 1, 1, 1]);
    expect([...ofType(effects, 'send').map((e) => e.message), ...ofType(effects, 'persist').flatMap((p) => p.thenSend)]).toEqual([
      expect.objectContaining({ type: 'appendResponse', reject: false, index: 2 }),
    ]);
  });

  it('figure 8: never commits an entry of an earlier term by counting replicas', () => {
    // Raft paper, figure 8 (c): S1 leads term 4 with [1, 2@2]; S5 holds [1, 2@3].
    const ids = ['s1', 's2', 's3', 's4', 's5'];
    const setUp = () => {
      const c = new TestCluster(ids, { logs: { s1: [1, 2], s2: [1, 2], s3: [1], s4: [1], s5: [1, 3] }, hardStates: Object.fromEntries(ids.map((id) => [id, { term: 3, votedFor: undefined }])) });
      c.elect('s1', { drop: (m) => m.type === 'append' });
      expect(c.state('s1')).toMatchObject({ role: 'leader', term: 4 });
      expect(c.terms('s1')).toEqual([1, 2, 4]);
      c.inbox = [];
      // S2 and S3 acknowledge index 2: entry 2@2 is now on a majority.
      c.input('s1', { type: 'message', message: ack('s2', 's1', 4, 2) });
      c.input('s1', { type: 'message', message: ack('s3', 's1', 4, 2) });
      return c;
    };
    const c = setUp();
    expect(c.state('s1').commit).toBe(0);
    // (d) Why: S1 crashes and S5, whose last term 3 beats 2, wins term 5 and overwrites index 2.
    c.elect('s5', { isolated: ['s1'] });
    c.tick('s5');
    c.deliver({ isolated: ['s1'] });
    expect(c.state('s5')).toMatchObject({ role: 'leader', term: 5 });
    expect(c.terms('s2')).toEqual([1, 3, 5]);
    // (e) Had S1 got its own term's entry onto a majority, both entries would commit.
    const e = setUp();
    e.input('s1', { type: 'message', message: ack('s2', 's1', 4, 3) });
    expect(e.state('s1').commit).toBe(0);
    e.input('s1', { type: 'message', message: ack('s3', 's1', 4, 3) });
    expect(e.state('s1').commit).toBe(3);
  });

  it('counts an acknowledgement and the leader itself only once their writes are durable', () => {
    const c = threeWithLeader();
    c.member('a').manualDisk = true;
    c.member('b').manualDisk = true;
    c.propose('a', 5);
    c.deliver({ isolated: ['c'] });
    expect(c.inbox).toEqual([]); // b's acknowledgement waits for b's write
    c.sync('b');
    c.deliver({ isolated: ['c'] });
    expect(c.state('a').commit).toBe(1); // b has it durably, a not yet
    c.sync('a');
    expect(c.state('a').commit).toBe(2);
  });

  it('reads from memory what a later write rewrites, even once an earlier write is durable', () => {
    // b's log store applies writes only when they are durable, as IndexedDB may.
    const c = new TestCluster(['a', 'b', 'c'], { logs: { b: [1] } });
    c.member('b').manualDisk = true;
    const [e2, e3, e4, e5] = entriesOfTerms([1, 1, 1, 1, 2, 2, 2]).slice(1, 5);
    const [f3, f4, f5] = entriesOfTerms([1, 1, 2, 2, 2]).slice(2);
    const append = (from: string, term: number, prevIndex: number, prevTerm: number, entries: Entry[]): Message =>
      ({ type: 'append', from, to: 'b', term, prevIndex, prevTerm, entries, commit: 0 });
    c.input('b', { type: 'message', message: append('a', 1, 1, 1, [e2!, e3!, e4!, e5!]) }); // write 1: 2..5 of term 1
    c.input('b', { type: 'message', message: append('c', 2, 2, 1, [f3!, f4!]) }); // write 2: 3..4 of term 2, dropping 5
    c.sync('b', 1); // only write 1 is durable: the store holds 4@1, b's log has 4@2
    const effects = c.input('b', { type: 'message', message: append('c', 2, 4, 2, [f5!]) });
    expect(ofType(effects, 'persist').flatMap((p) => p.thenSend)).toEqual([
      expect.objectContaining({ type: 'appendResponse', to: 'c', reject: false, index: 5 }),
    ]);
    c.sync('b');
    expect(c.terms('b')).toEqual([1, 1, 2, 2, 2]);
  });

  it('rejects proposals beyond maxUncommittedEntries, retriably', () => {
    const c = threeWithLeader({ maxUncommittedEntries: 3 });
    expect(ofType(c.propose('a', 1, 2, 3), 'proposed')).toHaveLength(1);
    const [rejected] = ofType(c.propose('a', 4), 'proposalRejected');
    expect(rejected?.error).toMatchObject({ code: 'RAFT_BACKLOG_FULL', retriable: true });
  });

  it('re-probes a follower whose last appends were lost once it answers a heartbeat', () => {
    const c = threeWithLeader();
    c.propose('a', 1, 2);
    c.deliver({ drop: (m) => m.type === 'append' && m.to === 'b' });
    expect(c.terms('b')).toEqual([1]);
    c.tick('a');
    c.deliver();
    expect(c.terms('b')).toEqual([1, 1, 1]);
  });
});

describe('bad input from peers', () => {
  /** `b` of a group led by `a` in term 2: entries 1..3 committed (terms 1, 1, 2), entry 4 of term 2 not. */
  function follower(): TestCluster {
    const c = new TestCluster(['a', 'b', 'c'], { logs: { a: [1, 1], b: [1, 1], c: [1, 1] } });
    c.elect('a');
    c.tick('a');
    c.deliver();
    c.propose('a', 9);
    c.deliver({ drop: (m) => m.type === 'appendResponse' || m.type === 'heartbeat' });
    expect(c.state('b')).toMatchObject({ term: 2, commit: 3 });
    expect(c.terms('b')).toEqual([1, 1, 2, 2]);
    return c;
  }
  const append = (fields: Omit<AppendRequest, 'type' | 'from' | 'to'>): Message => ({ type: 'append', from: 'a', to: 'b', ...fields });
  /** What `b` answers to `message`, and whether the step wrote anything. */
  function fed(c: TestCluster, message: Message): { answers: Message[]; wrote: boolean } {
    const effects = c.input('b', { type: 'message', message });
    const persists = ofType(effects, 'persist');
    return {
      answers: [...ofType(effects, 'send').map((e) => e.message), ...persists.flatMap((p) => p.thenSend)],
      wrote: persists.some((p) => p.entries !== undefined || p.hardState !== undefined),
    };
  }

  it('an append that does not continue the follower’s log is rejected with a hint to back off to, nothing written', () => {
    const c = follower();
    const entries = [{ term: 2, data: new Uint8Array([7]) }];
    // A gap after the log, and another term at prevIndex.
    expect(fed(c, append({ term: 2, prevIndex: 8, prevTerm: 2, entries, commit: 3 }))).toEqual({
      answers: [expect.objectContaining({ type: 'appendResponse', reject: true, index: 8, hintIndex: 4, hintTerm: 2 })],
      wrote: false,
    });
    expect(fed(c, append({ term: 2, prevIndex: 4, prevTerm: 1, entries, commit: 3 }))).toEqual({
      answers: [expect.objectContaining({ type: 'appendResponse', reject: true, index: 4, hintIndex: 2, hintTerm: 1 })],
      wrote: false,
    });
    expect(c.terms('b')).toEqual([1, 1, 2, 2]);
    expect(c.state('b')).toMatchObject({ term: 2, commit: 3 });
    // The leader's side, backing off to the hint: 'fast back-off' above.
  });

  it('an append rewriting committed entries is answered with the commit and writes nothing', () => {
    const c = follower();
    const rewrite = [5, 5, 5].map((term) => ({ term, data: new Uint8Array([term]) }));
    expect(fed(c, append({ term: 2, prevIndex: 1, prevTerm: 1, entries: rewrite, commit: 4 }))).toEqual({
      answers: [expect.objectContaining({ type: 'appendResponse', reject: false, index: 3 })],
      wrote: false,
    });
    expect(c.terms('b')).toEqual([1, 1, 2, 2]);
  });

  it('an append or a heartbeat of a stale term is answered with the current term, nothing written or committed', () => {
    const c = follower();
    const stale = append({ term: 1, prevIndex: 4, prevTerm: 2, entries: [{ term: 1, data: new Uint8Array([1]) }], commit: 5 });
    expect(fed(c, stale)).toEqual({ answers: [expect.objectContaining({ type: 'heartbeatResponse', term: 2 })], wrote: false });
    expect(fed(c, { type: 'heartbeat', from: 'c', to: 'b', term: 1, commit: 4, readRound: 0 })).toEqual({
      answers: [expect.objectContaining({ type: 'heartbeatResponse', to: 'c', term: 2 })],
      wrote: false,
    });
    expect(c.terms('b')).toEqual([1, 1, 2, 2]);
    expect(c.state('b')).toMatchObject({ term: 2, commit: 3, leader: 'a' });
  });

  it('a frame breaking raft’s rules (a commit past the follower’s log, an acknowledgement past the leader’s) fail-stops the group with RAFT_INVARIANT; it restarts from its log', () => {
    const c = follower();
    expect(() => fed(c, { type: 'heartbeat', from: 'a', to: 'b', term: 2, commit: 40, readRound: 0 })).toThrow(expect.objectContaining({ code: 'RAFT_INVARIANT' }));
    expect(c.terms('b')).toEqual([1, 1, 2, 2]);
    expect(c.state('b')).toMatchObject({ term: 2, role: 'follower' });
    const ack = { type: 'appendResponse', from: 'c', to: 'a', term: 2, reject: false, index: 40, hintIndex: 0, hintTerm: 0 } as const;
    expect(() => c.input('a', { type: 'message', message: ack })).toThrow(expect.objectContaining({ code: 'RAFT_INVARIANT' }));
    // Restarted from its log, it holds every entry and leads again after an election.
    expect(c.terms('a')).toEqual([1, 1, 2, 2]);
    c.elect('a');
    c.tick('a');
    c.deliver();
    expect(c.state('a')).toMatchObject({ role: 'leader', commit: 5 });
    expect(c.terms('b')).toEqual([1, 1, 2, 2, 3]);
  });
});
