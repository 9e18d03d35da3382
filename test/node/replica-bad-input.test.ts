import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { CorruptBatchError, InvalidOffsetError, OffsetOutOfRangeError, StorageError } from '../../src/errors';
import { createLogManager } from '../../src/log';
import { Executor, PartitionRaftStore, PartitionReplica, type GroupMessage } from '../../src/node';
import { decodeBatch } from '../../src/protocol';
import type { AppendRequest, Entry, HardState, Message, RaftConfig } from '../../src/raft';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage';
import { batchOf, recordsOf } from '../log/batches';

// Bad input from a peer at the boundary where its bytes arrive: raft frames fed to one
// follower replica of a replicated partition (a real PartitionReplica on a real executor, its
// raft log the PartitionLog over in-memory storage), the test playing the leader and the
// forgers. Each bad frame is refused or answered with a rejection, and the follower's log,
// high watermark and hard state stay as they were: nothing lost, nothing written.

const GROUP = 'partition/c/1/0';
const id = { topic: 'orders', partition: 0 };
const LEADER = '1.a';
const SELF = '2.b';
const OTHER = '3.c';
const members = [LEADER, SELF, OTHER];
const config = (member: string): RaftConfig => ({
  id: member, voters: members, electionTicks: 10, heartbeatTicks: 2, maxInflightAppends: 4, maxEntriesPerAppend: 16, maxBytesPerAppend: 1 << 20,
  maxUncommittedEntries: 100, maxApplyBytesPerStep: 1 << 20, maxPendingReads: 4, seed: 7,
});

/** A leader's no-op of `term`, and a data entry of `term` (fresh bytes: the log numbers them in place). */
const noop = (term: number): Entry => ({ term, data: new Uint8Array(0) });
const data = (term: number, value: string): Entry => ({ term, data: batchOf([value]) });

/** The follower `SELF`, hand-driven: no timer runs, so it never campaigns; what it sends is kept in `sent`. */
async function follower(storage: MemoryStorage = createMemoryStorage()) {
  const clock = new ManualClock();
  const logs = createLogManager(storage, { clock });
  const log = await logs.open(id, {}, { highWatermark: 'replicated' });
  const sent: Message[] = [];
  const executor = new Executor({
    nodeId: SELF,
    clock,
    committer: logs.committer,
    sendFrame: (_to, messages) => (sent.push(...messages.map((m) => m.message)), true),
    tickMs: 10,
    heartbeatFlushTicks: 0,
    restartBackoffMs: 50,
  });
  // The errors the replica's raft group stops with (the replica fails its pending produces with them; a follower has none).
  const stops: unknown[] = [];
  const addRaftGroup = executor.addRaftGroup.bind(executor);
  executor.addRaftGroup = (group, options) =>
    addRaftGroup(group, { ...options, handler: { ...options.handler, stopped: (error) => (stops.push(error), options.handler?.stopped?.(error)) } });
  const store = await PartitionRaftStore.open(log, storage, GROUP);
  const replica = new PartitionReplica({ executor, group: GROUP, log, store, config: config(SELF) });
  /** Lets `ms` of simulated time pass, letting storage's promises settle after each step. */
  const run = async (ms = 20) => {
    for (let i = 0; i < ms; i++) {
      clock.advance(1);
      for (let j = 0; j < 3; j++) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  /** Feeds one frame from `peer` and lets its writes and answers go through; returns what the follower sent meanwhile. */
  const receive = async (peer: string, messages: readonly GroupMessage[]): Promise<Message[]> => {
    const from = sent.length;
    executor.receive(peer, messages);
    await run();
    return sent.slice(from);
  };
  const append = (fields: Partial<AppendRequest> & Pick<AppendRequest, 'term' | 'prevIndex' | 'prevTerm' | 'entries' | 'commit'>): GroupMessage => ({
    group: GROUP,
    message: { type: 'append', from: LEADER, to: SELF, ...fields },
  });
  const heartbeat = (term: number, commit: number): GroupMessage => ({ group: GROUP, message: { type: 'heartbeat', from: LEADER, to: SELF, term, commit, readRound: 0 } });
  return { clock, storage, log, executor, replica, sent, stops, run, receive, append, heartbeat };
}

type Follower = Awaited<ReturnType<typeof follower>>;

/** What must not change: the stored batches (all of them, past the high watermark too), the log's offsets, the hard state, raft's term and commit. */
async function durableState(f: Follower) {
  const { log } = f;
  const batches = log.logEndOffset === log.logStartOffset ? [] : await log.read(log.logStartOffset, { maxBytes: Infinity, endOffset: log.logEndOffset });
  return {
    batches: batches.map((bytes) => {
      const batch = decodeBatch(bytes);
      return [batch.baseOffset, batch.partitionLeaderEpoch, batch.isControl, batch.isControl ? [] : recordsOf([bytes]).map((r) => r[2])] as const;
    }),
    logEndOffset: log.logEndOffset,
    highWatermark: log.highWatermark,
    hardState: (await f.storage.readValue(`raft/${GROUP}/hardState`)) as HardState | undefined,
    term: f.executor.raftState(GROUP)?.term,
    commit: f.executor.raftState(GROUP)?.commit,
  };
}

/**
 * A follower at term 2 holding the no-op, 'a' and 'b' of term 1 (committed: high watermark 3) and
 * 'c' of term 2 past the commit (offset 3, uncommitted).
 */
async function withLog(f: Follower = undefined as unknown as Follower) {
  f ??= await follower();
  await f.receive(LEADER, [f.append({ term: 1, prevIndex: 0, prevTerm: 0, entries: [noop(1), data(1, 'a'), data(1, 'b')], commit: 0 })]);
  await f.receive(LEADER, [f.append({ term: 2, prevIndex: 3, prevTerm: 1, entries: [data(2, 'c')], commit: 3 })]);
  const state = await durableState(f);
  expect(state).toMatchObject({
    batches: [[0, 1, true, []], [1, 1, false, ['a']], [2, 1, false, ['b']], [3, 2, false, ['c']]],
    logEndOffset: 4,
    highWatermark: 3,
    hardState: { term: 2, votedFor: undefined },
    term: 2,
    commit: 3,
  });
  return { f, state };
}

const answersOf = (sent: readonly Message[]) => sent.filter((m) => m.type === 'appendResponse' || m.type === 'heartbeatResponse');

describe('a follower replica fed bad raft frames', () => {
  it('an append that does not continue its log (a gap, another term at prevIndex) is rejected with a hint to back off to; nothing is written', async () => {
    const { f, state } = await withLog();
    // A gap: prevIndex past the follower's last entry.
    const gap = await f.receive(LEADER, [f.append({ term: 2, prevIndex: 9, prevTerm: 2, entries: [data(2, 'x')], commit: 3 })]);
    expect(answersOf(gap)).toEqual([expect.objectContaining({ type: 'appendResponse', to: LEADER, term: 2, reject: true, index: 9, hintIndex: 4, hintTerm: 2 })]);
    // Another term at prevIndex: the follower's entry 4 is of term 2, the leader claims term 3 there.
    const diverged = await f.receive(LEADER, [f.append({ term: 3, prevIndex: 4, prevTerm: 3, entries: [data(3, 'y')], commit: 3 })]);
    // The hint: its last entry of a term ≤ 3 (entry 4, term 2), so the leader backs off to 4 at most.
    expect(answersOf(diverged)).toEqual([expect.objectContaining({ type: 'appendResponse', reject: true, index: 4, hintIndex: 4, hintTerm: 2 })]);
    // The term moved (the leader of 3 is heard); the log did not.
    expect(await durableState(f)).toEqual({ ...state, hardState: { term: 3, votedFor: undefined }, term: 3 });
    // The leader backs off to the hint: its append from there replaces the uncommitted suffix, nothing below the commit.
    const backedOff = await f.receive(LEADER, [f.append({ term: 3, prevIndex: 3, prevTerm: 1, entries: [noop(3), data(3, 'y')], commit: 5 })]);
    expect(answersOf(backedOff)).toEqual([expect.objectContaining({ type: 'appendResponse', reject: false, index: 5 })]);
    expect(await durableState(f)).toMatchObject({
      batches: [[0, 1, true, []], [1, 1, false, ['a']], [2, 1, false, ['b']], [3, 3, true, []], [4, 3, false, ['y']]],
      highWatermark: 5,
      commit: 5,
    });
  });

  it('an append rewriting entries below the commit is ignored: answered with the commit, nothing replaced', async () => {
    const { f, state } = await withLog();
    // Entries 2.. of another term: entries 2 and 3 are committed ('a', 'b').
    const answer = await f.receive(LEADER, [f.append({ term: 2, prevIndex: 1, prevTerm: 1, entries: [data(2, 'x'), data(2, 'y'), data(2, 'z')], commit: 3 })]);
    expect(answersOf(answer)).toEqual([expect.objectContaining({ type: 'appendResponse', reject: false, index: 3 })]);
    expect(await durableState(f)).toEqual(state);
  });

  it('an append rewriting entries below the log’s high watermark after a restart (raft’s commit not known yet) is refused by the log, typed; the replica restarts from its disk, nothing lost', async () => {
    const { f, state } = await withLog();
    await f.log.checkpoint(); // the high watermark on disk, as the log's maintenance writes it
    f.executor.stop();
    // Reopened: raft's commit starts at 0 (the leader brings it back); the log's high watermark is on disk.
    const g = await follower(f.storage.reopen());
    expect(g.executor.raftState(GROUP)).toMatchObject({ term: 2, commit: 0 });
    expect(g.log.highWatermark).toBe(3);
    // A frame (forged: no leader of term 2 has entries of another term at index 2) replacing entries 2.. at the current term.
    await g.receive(LEADER, [g.append({ term: 2, prevIndex: 1, prevTerm: 1, entries: [data(2, 'x')], commit: 0 })]);
    expect(g.stops).toEqual([expect.any(InvalidOffsetError)]);
    await g.run(100);
    expect(await durableState(g)).toMatchObject({ ...state, commit: 0 });
    // Restarted from the disk: the real leader's appends go on.
    const answer = await g.receive(LEADER, [g.append({ term: 2, prevIndex: 4, prevTerm: 2, entries: [data(2, 'd')], commit: 5 })]);
    expect(answersOf(answer)).toEqual([expect.objectContaining({ type: 'appendResponse', reject: false, index: 5 })]);
    for (let i = 0; i < 3; i++) await g.receive(LEADER, [g.heartbeat(2, 5)]);
    expect(await durableState(g)).toMatchObject({ highWatermark: 5, logEndOffset: 5 });
    expect((await durableState(g)).batches.flatMap((b) => b[3])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('an append whose entries are not record batches is refused (CorruptBatchError); the replica restarts from its disk, nothing written', async () => {
    const { f, state } = await withLog();
    const garbage: Entry = { term: 2, data: new Uint8Array(70).fill(7) };
    await f.receive(LEADER, [f.append({ term: 2, prevIndex: 4, prevTerm: 2, entries: [garbage], commit: 3 })]);
    expect(f.stops).toEqual([expect.any(CorruptBatchError)]);
    await f.run(100);
    expect(await durableState(f)).toEqual({ ...state, commit: 0 });
    const answer = await f.receive(LEADER, [f.append({ term: 2, prevIndex: 4, prevTerm: 2, entries: [data(2, 'd')], commit: 5 })]);
    expect(answersOf(answer)).toEqual([expect.objectContaining({ reject: false, index: 5 })]);
    // The restarted replica reads its entries back from storage to apply them (the leader's heartbeats step it on).
    for (let i = 0; i < 3; i++) await f.receive(LEADER, [f.heartbeat(2, 5)]);
    expect(await durableState(f)).toMatchObject({ highWatermark: 5, logEndOffset: 5 });
  });

  it('a frame that breaks raft’s rules (a heartbeat committing past the follower’s log) stops the group with RAFT_INVARIANT; it restarts from its disk, nothing lost', async () => {
    const { f, state } = await withLog();
    await f.receive(LEADER, [f.heartbeat(2, 40)]);
    expect(f.stops).toEqual([expect.objectContaining({ name: 'LetterboxError', code: 'RAFT_INVARIANT' })]);
    expect(f.executor.raftState(GROUP)).toBeUndefined();
    await f.run(100);
    expect(await durableState(f)).toEqual({ ...state, commit: 0 });
    for (let i = 0; i < 3; i++) await f.receive(LEADER, [f.heartbeat(2, 4)]);
    expect(await durableState(f)).toMatchObject({ highWatermark: 4, commit: 4 });
  });

  it('a leader snapshot whose image is not a partition’s is refused, typed (StorageError); the replica restarts from its disk, nothing lost', async () => {
    const { f, state } = await withLog();
    const snapshot = (data: Uint8Array): GroupMessage => ({
      group: GROUP,
      message: { type: 'snapshot', from: LEADER, to: SELF, term: 2, snapshot: { index: 9, term: 2, membership: { voters: members, learners: [] }, data } },
    });
    await f.receive(LEADER, [snapshot(new TextEncoder().encode('not json'))]);
    await f.run(100);
    await f.receive(LEADER, [snapshot(new TextEncoder().encode('{"version":0,"nextOffset":-1}'))]);
    expect(f.stops).toEqual([expect.any(StorageError), expect.any(StorageError)]);
    await f.run(100);
    expect(await durableState(f)).toEqual({ ...state, commit: 0 });
  });

  it('an append of a stale term is refused with the follower’s term (the old leader steps down); nothing is written', async () => {
    const { f, state } = await withLog();
    const stale = await f.receive(LEADER, [f.append({ term: 1, prevIndex: 4, prevTerm: 2, entries: [data(1, 'old')], commit: 5 })]);
    expect(answersOf(stale)).toEqual([expect.objectContaining({ type: 'heartbeatResponse', to: LEADER, term: 2 })]);
    // A stale heartbeat cannot move the commit either.
    await f.receive(LEADER, [f.heartbeat(1, 4)]);
    expect(await durableState(f)).toEqual(state);
  });

  it('forged frames are dropped before the raft core, counted: another group, another addressee, a sender other than the peer, a member id not in the group (a reconfiguration from it too)', async () => {
    const { f, state } = await withLog();
    const refused = f.executor.stats.messagesRefused;
    const forged = (message: Partial<AppendRequest>, group = GROUP): GroupMessage => ({
      group,
      message: { ...f.append({ term: 9, prevIndex: 4, prevTerm: 2, entries: [data(9, 'forged')], commit: 5 }).message, ...message } as AppendRequest,
    });
    const answers = [
      ...(await f.receive(LEADER, [forged({}, 'partition/c/1/1')])),
      ...(await f.receive(LEADER, [forged({ to: OTHER })])),
      ...(await f.receive(OTHER, [forged({})])), // a frame from 3.c claiming to be 1.a
      ...(await f.receive('4.d', [forged({ from: '4.d' })])), // a broker that holds no replica of the partition, at a higher term
      // A reconfiguration from a non-member: a configuration entry making it the only voter.
      ...(await f.receive('4.d', [forged({ from: '4.d', entries: [{ term: 9, data: new Uint8Array(0), membership: { voters: ['4.d'], learners: [] } }] })])),
    ];
    expect(answers).toEqual([]);
    expect(f.executor.stats.messagesRefused - refused).toBe(5);
    expect(f.replica.membership.voters).not.toContain('4.d');
    expect(await durableState(f)).toEqual(state);
  });

  it('a read above the high watermark serves nothing past it (its log holds an uncommitted entry there); above the log end it is OffsetOutOfRangeError', async () => {
    const { f, state } = await withLog();
    const all = { maxBytes: Infinity };
    const values = (batches: Uint8Array[]) => recordsOf(batches.filter((b) => !decodeBatch(b).isControl)).map((r) => r[2]);
    // Offsets 0..2 committed, 3 ('c') held but not committed.
    expect(values(await f.log.read(0, all))).toEqual(['a', 'b']);
    expect(await f.log.read(3, all)).toEqual([]);
    expect(await f.log.read(4, all)).toEqual([]);
    await expect(f.log.read(5, all)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    await expect(f.log.read(5, all)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', offset: 5 });
    expect(await f.log.offsetFor('latest')).toBe(3);
    // Waiting for data past the high watermark waits for the commit, not for the entry held.
    let woken = false;
    void f.log.waitForData(3).then(() => (woken = true));
    await f.run(20);
    expect(woken).toBe(false);
    expect(await durableState(f)).toEqual(state);
    await f.receive(LEADER, [f.heartbeat(2, 4)]);
    expect(woken).toBe(true);
    expect(values(await f.log.read(3, all))).toEqual(['c']);
  });
});
