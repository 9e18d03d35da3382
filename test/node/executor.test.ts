import { describe, expect, it } from 'vitest';
import { ManualClock, realClock } from '../../src/clock';
import { createGroupCommitter, storageSink, type CommitSink } from '../../src/log';
import { Executor, type GroupMessage, GroupRuntime, StoredRaftLog } from '../../src/node';
import type { JoinReply } from '../../src/group';
import type { Message, RaftConfig } from '../../src/raft';
import { createMemoryStorage } from '../../src/storage';

const config = (id: string, voters: string[]): RaftConfig => ({
  id, voters, electionTicks: 10, heartbeatTicks: 2, maxInflightAppends: 4, maxEntriesPerAppend: 16, maxBytesPerAppend: 1 << 20,
  maxUncommittedEntries: 100, maxApplyBytesPerStep: 1 << 20, maxPendingReads: 4, seed: id.charCodeAt(0),
});
/** A disk that makes every transaction durable at once. */
const instantDisk: CommitSink = { write: (_writes, committed) => committed() };

async function twoNodes(options: { drop?: () => boolean } = {}) {
  const clock = new ManualClock();
  const frames: Array<{ from: string; to: string; messages: readonly GroupMessage[] }> = [];
  const executors = new Map<string, Executor>();
  for (const id of ['a', 'b']) {
    const executor = new Executor({
      nodeId: id,
      clock,
      committer: createGroupCommitter(instantDisk, clock),
      sendFrame: (to, messages) => {
        if (options.drop?.() === true) return false;
        frames.push({ from: id, to, messages });
        clock.after(1, () => executors.get(to)!.receive(id, messages));
        return true;
      },
      tickMs: 10,
      heartbeatFlushTicks: 2,
    });
    executor.addRaftGroup('g', { config: config(id, ['a', 'b']), store: await StoredRaftLog.open(createMemoryStorage(), 'g') });
    executors.set(id, executor);
    executor.start();
  }
  return { clock, frames, executors, a: executors.get('a')!, b: executors.get('b')! };
}

describe('executor', () => {
  it('refuses messages for a group it is not in, addressed to another node, or not from the peer that sent the frame', async () => {
    const { clock, a, b } = await twoNodes();
    clock.advance(1_000);
    const leader = [a, b].find((e) => e.raftState('g')?.role === 'leader')!;
    const follower = leader === a ? b : a;
    const from = leader === a ? 'a' : 'b';
    const to = leader === a ? 'b' : 'a';
    const { term } = leader.raftState('g')!;
    const heartbeat = (m: Partial<Message>) => ({ group: 'g', message: { type: 'heartbeat', from, to, term: term + 5, commit: 0, readRound: 0, ...m } as Message });
    const refusedBefore = follower.stats.messagesRefused;
    follower.receive(from, [
      { ...heartbeat({}), group: 'nope' },
      heartbeat({ to: 'z' }),
      heartbeat({ from: 'z' }),
    ]);
    follower.receive('z', [heartbeat({})]); // a frame from z claiming to be the leader
    expect(follower.stats.messagesRefused - refusedBefore).toBe(4);
    expect(follower.raftState('g')!.term).toBe(term); // none of them reached the core
  });

  it('counts frames the network dropped; raft retries and the group commits once frames flow', async () => {
    let dropping = false;
    const { clock, a, b } = await twoNodes({ drop: () => dropping });
    clock.advance(1_000);
    const leader = [a, b].find((e) => e.raftState('g')?.role === 'leader')!;
    const commit = leader.raftState('g')!.commit;
    dropping = true;
    leader.input('g', { type: 'propose', payloads: [new Uint8Array([1])] });
    clock.advance(50);
    expect(leader.stats.framesDropped).toBeGreaterThan(0);
    expect(leader.raftState('g')!.commit).toBe(commit);
    dropping = false;
    clock.advance(200);
    expect(leader.raftState('g')!.commit).toBe(commit + 1);
  });

  it('holds heartbeats and their answers for the heartbeat flush: one frame per peer per interval when idle', async () => {
    const { clock, frames } = await twoNodes();
    clock.advance(1_000);
    frames.length = 0;
    clock.advance(200); // 10 heartbeat intervals of 2 ticks of 10 ms
    for (const link of ['a>b', 'b>a']) {
      const sent = frames.filter((f) => `${f.from}>${f.to}` === link);
      expect(sent.length, link).toBeGreaterThanOrEqual(9);
      expect(sent.length, link).toBeLessThanOrEqual(10);
    }
  });

  it("feeds a machine's failed write back to it: the coordinator refuses the commit while the disk is full, then takes it", async () => {
    // The real clock: the group commit's flushes run in microtasks, the coordinator's ticks on timers.
    const clock = realClock;
    const storage = createMemoryStorage();
    const executor = new Executor({ nodeId: 'n', clock, committer: createGroupCommitter(storageSink(storage), clock), sendFrame: () => false, tickMs: 100, heartbeatFlushTicks: 0 });
    const groups = new GroupRuntime(executor, 'i1', new Map(), { t: 1 });
    const member = await groups.request<JoinReply>({
      type: 'join', groupId: 'app', memberId: null, clientId: 'c', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, topics: ['t'], assignors: ['range'],
    });
    await groups.request({ type: 'sync', groupId: 'app', memberId: member.memberId, generationId: member.generationId });
    const commit = () => groups.request({ type: 'commit', groupId: 'app', memberId: member.memberId, generationId: member.generationId, offsets: [{ topic: 't', partition: 0, offset: 5, metadata: null }] });
    storage.setFull(true);
    await expect(commit()).rejects.toMatchObject({ name: 'GroupError', code: 'KAFKA_STORAGE_ERROR' });
    expect(groups.committed('app')).toEqual([]);
    storage.setFull(false);
    await commit();
    expect(groups.committed('app')).toEqual([{ topic: 't', partition: 0, offset: 5, metadata: null }]);
    expect(await storage.readValue('group-offsets:app')).toEqual([{ topic: 't', partition: 0, offset: 5, metadata: null }]);
    groups.stop();
    executor.stop();
  });

  it('refuses a group request made after the coordinator stopped, retriably, instead of leaving it unanswered', async () => {
    const clock = realClock;
    const executor = new Executor({ nodeId: 'n', clock, committer: createGroupCommitter(storageSink(createMemoryStorage()), clock), sendFrame: () => false, tickMs: 100, heartbeatFlushTicks: 0 });
    const groups = new GroupRuntime(executor, 'i1', new Map(), { t: 1 });
    groups.stop();
    const join = groups.request<JoinReply>({
      type: 'join', groupId: 'app', memberId: null, clientId: 'c', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, topics: ['t'], assignors: ['range'],
    });
    await expect(join).rejects.toMatchObject({ name: 'GroupError', code: 'COORDINATOR_NOT_AVAILABLE' });
    executor.stop();
  });
});
