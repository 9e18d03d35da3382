import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { CorruptBatchError, FencedLeaderEpochError, InvalidProducerEpochError, NotEnoughReplicasError, NotLeaderOrFollowerError, OutOfOrderSequenceNumberError, UnknownLeaderEpochError } from '../../src/errors';
import { createLogManager, type PartitionLog } from '../../src/log';
import { Executor, PartitionRaftStore, PartitionReplica, type GroupMessage } from '../../src/node';
import { handOverLeadership } from '../../src/node/hand-over';
import { decodeBatch, encodeBatch } from '../../src/protocol';
import type { RaftConfig } from '../../src/raft';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage';
import { batchOf, recordsOf } from '../log/batches';

// A replicated partition whose raft log is the partition log itself, one replica on each of
// three executors over in-memory storage (real group commit, real PartitionLogs) and a
// simulated network: offsets numbered at propose, the same batches on every replica, the
// leader's no-op as a control batch, acks, fencing, and an old leader's suffix replaced.

const GROUP = 'orders-0';
const id = { topic: 'orders', partition: 0 };
const members = ['1.a', '2.b', '3.c'];
const config = (member: string): RaftConfig => ({
  id: member, voters: members, electionTicks: 10, heartbeatTicks: 2, maxInflightAppends: 4, maxEntriesPerAppend: 16, maxBytesPerAppend: 1 << 20,
  maxUncommittedEntries: 100, maxApplyBytesPerStep: 1 << 20, maxPendingReads: 4, seed: member.charCodeAt(0),
});

interface Member {
  storage: MemoryStorage;
  log: PartitionLog;
  executor: Executor;
  replica: PartitionReplica;
}

async function cluster(storages: Map<string, MemoryStorage> = new Map(members.map((m) => [m, createMemoryStorage()]))) {
  const clock = new ManualClock();
  const nodes = new Map<string, Member>();
  /** Members cut off from the others: their frames are lost both ways. */
  const isolated = new Set<string>();
  /** Members that hear nothing: frames to them are lost as they arrive (theirs still go out). */
  const deaf = new Set<string>();
  for (const member of members) {
    const storage = storages.get(member)!;
    const logs = createLogManager(storage, { clock });
    const log = await logs.open(id, {}, { highWatermark: 'replicated' });
    const executor = new Executor({
      nodeId: member,
      clock,
      committer: logs.committer,
      sendFrame: (to: string, messages: readonly GroupMessage[]) => {
        if (!isolated.has(member) && !isolated.has(to)) clock.after(1, () => !deaf.has(to) && nodes.get(to)?.executor.receive(member, messages));
        return true;
      },
      tickMs: 10,
      heartbeatFlushTicks: 2,
    });
    const store = await PartitionRaftStore.open(log, storage, GROUP);
    const replica = new PartitionReplica({ executor, group: GROUP, log, store, config: config(member) });
    nodes.set(member, { storage, log, executor, replica });
    executor.start();
  }
  /** Lets `ms` of simulated time pass, letting storage's promises settle after each step. */
  const run = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      clock.advance(1);
      for (let j = 0; j < 3; j++) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  /** The leader among the members not cut off. */
  const leader = (): [string, Member] => [...nodes.entries()].find(([m, n]) => !isolated.has(m) && n.replica.isLeader)!;
  const stop = () => {
    for (const n of nodes.values()) n.executor.stop();
  };
  return { nodes, isolated, deaf, run, leader, stop, storages, clock };
}

/** A replica's batches below its high watermark (or `end`), as [offset, epoch, control, values]. */
async function batchesOf(log: PartitionLog, end = log.highWatermark): Promise<Array<[number, number, boolean, string[]]>> {
  if (end === log.logStartOffset) return [];
  const batches = await log.read(log.logStartOffset, { maxBytes: Infinity, endOffset: end });
  return batches.map((bytes) => {
    const batch = decodeBatch(bytes);
    return [batch.baseOffset, batch.partitionLeaderEpoch, batch.isControl, batch.isControl ? [] : recordsOf([bytes]).map((r) => r[2]!)];
  });
}

/** Settles `promise` while simulated time runs. */
async function during<T>(promise: Promise<T>, run: (ms: number) => Promise<void>, ms = 200): Promise<PromiseSettledResult<T>> {
  const settled = Promise.allSettled([promise]);
  await run(ms);
  return (await settled)[0]!;
}

describe('a replicated partition whose raft log is the partition log', () => {
  it('numbers offsets at propose and answers acks -1 once committed, with the same batches on every replica and the no-op as a control batch', async () => {
    const c = await cluster();
    await c.run(500);
    const [leaderId, leader] = c.leader();
    const term = leader.replica.leaderEpoch;
    const first = leader.replica.produce([batchOf(['a', 'b']), batchOf(['c'])], -1, term);
    const second = leader.replica.produce([batchOf(['d'])], -1);
    expect(await during(first, c.run)).toEqual({ status: 'fulfilled', value: { baseOffset: 1 } });
    expect(await second).toEqual({ baseOffset: 4 });
    const expected = [[0, term, true, []], [1, term, false, ['a', 'b']], [3, term, false, ['c']], [4, term, false, ['d']]];
    const leaderBytes = await leader.log.read(0, { maxBytes: Infinity });
    for (const [member, node] of c.nodes) {
      expect(node.log.highWatermark, member).toBe(5);
      expect(await batchesOf(node.log), member).toEqual(expected);
      // Byte for byte the leader's batches, the no-op included.
      if (member !== leaderId) expect(await node.log.read(0, { maxBytes: Infinity }), member).toEqual(leaderBytes);
    }
    c.stop();
  });

  it('answers acks 0 once proposed and acks 1 once the leader has the batch durably, before the followers do', async () => {
    const c = await cluster();
    await c.run(500);
    const [, leader] = c.leader();
    await expect(leader.replica.produce([batchOf(['zero'])], 0)).resolves.toEqual({ baseOffset: 1 });
    for (const [m] of c.nodes) if (m !== c.leader()[0]) c.isolated.add(m);
    const one = await during(leader.replica.produce([batchOf(['one'])], 1), c.run, 20);
    expect(one).toEqual({ status: 'fulfilled', value: { baseOffset: 2 } });
    expect(leader.log.highWatermark).toBeLessThan(3);
    c.stop();
  });

  it('refuses an acks -1 write with NotEnoughReplicasError while fewer replicas are in sync than min.insync.replicas; acks 1 still goes', async () => {
    const c = await cluster();
    await c.run(500);
    const [leaderId, leader] = c.leader();
    leader.log.setConfig({ ...leader.log.config, minInsyncReplicas: 3 });
    await expect((await during(leader.replica.produce([batchOf(['all three'])], -1), c.run)).status).toBe('fulfilled');
    const follower = members.find((m) => m !== leaderId)!;
    c.isolated.add(follower);
    // Out of sync once not heard from for an election timeout (the leader keeps its quorum with the other).
    await c.run(300);
    expect(leader.replica.isLeader).toBe(true);
    expect(leader.replica.inSyncBrokers().sort()).toEqual(members.filter((m) => m !== follower).map((m) => Number(m.split('.')[0])).sort());
    await expect(leader.replica.produce([batchOf(['refused'])], -1)).rejects.toBeInstanceOf(NotEnoughReplicasError);
    await expect((await during(leader.replica.produce([batchOf(['acks one'])], 1), c.run)).status).toBe('fulfilled');
    c.isolated.delete(follower);
    await c.run(300);
    await expect((await during(leader.replica.produce([batchOf(['back'])], -1), c.run)).status).toBe('fulfilled');
    for (const [member, node] of c.nodes) expect((await batchesOf(node.log)).flatMap((b) => b[3]), member).toEqual(['all three', 'acks one', 'back']);
    c.stop();
  });

  it('retention deletes a replicated log only after raft compacted it; a follower behind the leader\'s log start restores the snapshot and fetches from there', async () => {
    const c = await cluster();
    await c.run(500);
    const [leaderId, leader] = c.leader();
    const lagging = members.find((m) => m !== leaderId)!;
    c.isolated.add(lagging);
    // Old records (2023): past a retention of a day; the leader commits them with the third replica.
    for (const value of ['old-1', 'old-2', 'old-3']) expect((await during(leader.replica.produce([batchOf([value])], -1), c.run, 50)).status).toBe('fulfilled');
    const now = Date.now();
    for (const [member, node] of c.nodes) {
      if (member === lagging) continue;
      node.log.setConfig({ ...node.log.config, retentionMs: 24 * 60 * 60 * 1000 });
      // Raft's compaction point bounds retention: nothing goes before it.
      expect(await node.log.enforceRetention(now), member).toBe(0);
      await node.replica.compactForRetention(now);
    }
    await c.run(100);
    for (const [member, node] of c.nodes) if (member !== lagging) expect(await node.log.enforceRetention(now), member).toBeGreaterThan(0);
    const start = leader.log.logStartOffset;
    expect(start).toBeGreaterThan(0);
    c.isolated.delete(lagging);
    await c.run(1000);
    expect((await during(leader.replica.produce([batchOf(['new'])], -1), c.run)).status).toBe('fulfilled');
    const behind = c.nodes.get(lagging)!;
    // It never had the old records: the snapshot started its log where the leader's retention left it.
    expect(behind.log.logStartOffset).toBe(start);
    expect((await batchesOf(behind.log)).flatMap((b) => b[3])).toEqual((await batchesOf(leader.log)).flatMap((b) => b[3]));
    expect((await batchesOf(behind.log)).flatMap((b) => b[3])).toContain('new');
    c.stop();
  });

  it('refuses a produce to a follower, at a stale or unknown leader epoch, or with a corrupt batch: nothing is written', async () => {
    const c = await cluster();
    await c.run(500);
    const [leaderId, leader] = c.leader();
    const [, follower] = [...c.nodes.entries()].find(([m]) => m !== leaderId)!;
    const refused = await follower.replica.produce([batchOf(['x'])], -1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NotLeaderOrFollowerError);
    expect((refused as NotLeaderOrFollowerError).leader).toBe(Number(leaderId.split('.')[0]));
    const term = leader.replica.leaderEpoch;
    await expect(leader.replica.produce([batchOf(['x'])], -1, term - 1)).rejects.toBeInstanceOf(FencedLeaderEpochError);
    await expect(leader.replica.produce([batchOf(['x'])], -1, term + 1)).rejects.toBeInstanceOf(UnknownLeaderEpochError);
    const corrupt = batchOf(['x']);
    corrupt[corrupt.length - 1] = corrupt.at(-1)! ^ 0xff;
    await expect(leader.replica.produce([batchOf(['y']), corrupt], -1)).rejects.toBeInstanceOf(CorruptBatchError);
    await c.run(200);
    for (const node of c.nodes.values()) expect((await batchesOf(node.log)).flatMap((b) => b[3])).toEqual([]);
    c.stop();
  });

  it('a replica reopened from its storage holds the same log and raft state; entries no longer in memory are read back for the group to go on', async () => {
    const first = await cluster();
    await first.run(500);
    await during(first.leader()[1].replica.produce([batchOf(['kept'])], -1), first.run);
    const before = await Promise.all(members.map(async (m) => batchesOf(first.nodes.get(m)!.log)));
    first.stop();
    // Reopened, each log's tail cache is empty: the apply and the appends read the log back (loadEntries).
    const second = await cluster(new Map(members.map((m) => [m, first.storages.get(m)!.reopen()])));
    for (const [i, m] of members.entries()) expect(await batchesOf(second.nodes.get(m)!.log, second.nodes.get(m)!.log.logEndOffset)).toEqual(before[i]);
    await second.run(1000);
    expect((await during(second.leader()[1].replica.produce([batchOf(['more'])], -1), second.run)).status).toBe('fulfilled');
    for (const node of second.nodes.values()) expect((await batchesOf(node.log)).flatMap((b) => b[3])).toEqual(['kept', 'more']);
    second.stop();
  });

  it('a leader cut off acknowledges no acks -1 write; a new leader replaces its suffix, the write is refused and nothing committed is lost', async () => {
    const c = await cluster();
    await c.run(500);
    const [oldId, old] = c.leader();
    await during(old.replica.produce([batchOf(['committed'])], -1), c.run, 100);
    c.isolated.add(oldId);
    const cutOff = old.replica.produce([batchOf(['lost'])], -1);
    let settled = false;
    cutOff.then(() => (settled = true), () => (settled = true));
    await c.run(1000);
    expect(settled).toBe(false);
    // Check-quorum: it no longer leads.
    expect(old.replica.isLeader).toBe(false);
    const [newId, next] = c.leader();
    expect(newId).not.toBe(oldId);
    await expect((await during(next.replica.produce([batchOf(['after'])], -1), c.run)).status).toBe('fulfilled');
    c.isolated.delete(oldId);
    expect(await during(cutOff, c.run, 1000)).toMatchObject({ status: 'rejected', reason: expect.any(NotLeaderOrFollowerError) });
    const newTerm = next.replica.leaderEpoch;
    for (const [member, node] of c.nodes) {
      const batches = await batchesOf(node.log);
      expect(batches.flatMap((b) => b[3]), member).toEqual(['committed', 'after']);
      expect(batches.at(-1)![1], member).toBe(newTerm);
      expect(node.log.logEndOffset, member).toBe(node.log.highWatermark);
    }
    c.stop();
  });

  it('a leader that stops leading answers its pending acks -1 writes NotLeaderOrFollowerError, even one the next leader kept and committed: it acknowledges nothing after another was elected', async () => {
    const c = await cluster();
    await c.run(500);
    const [oldId, old] = c.leader();
    await during(old.replica.produce([batchOf(['committed'])], -1), c.run, 100);
    // The old leader's append reaches the followers, their answers never reach it (a paused
    // tab: what it sent before the pause arrives, it hears nothing after).
    c.deaf.add(oldId);
    const pending = old.replica.produce([batchOf(['kept'])], -1);
    let settled = false;
    pending.then(() => (settled = true), () => (settled = true));
    // Check-quorum steps it down; the followers elect one of them, which keeps and commits the write.
    await c.run(1000);
    expect(settled).toBe(false);
    expect(old.replica.isLeader).toBe(false);
    const [newId, next] = c.leader();
    expect(newId).not.toBe(oldId);
    expect((await batchesOf(next.log)).flatMap((b) => b[3])).toEqual(['committed', 'kept']);
    // It hears again: it follows the new leader, learns that the write is committed, and still refuses it (the client retries at the new leader).
    c.deaf.delete(oldId);
    expect(await during(pending, c.run, 1000)).toMatchObject({ status: 'rejected', reason: expect.any(NotLeaderOrFollowerError) });
    expect(old.log.highWatermark).toBe(next.log.highWatermark);
    expect((await batchesOf(old.log)).flatMap((b) => b[3])).toEqual(['committed', 'kept']);
    c.stop();
  });

  it('a leader hands over before a planned close: an in-sync follower leads within a few round trips, not an election timeout; writes meanwhile are refused (retriable), nothing committed is lost', async () => {
    const c = await cluster();
    await c.run(500);
    const [oldId, old] = c.leader();
    await during(old.replica.produce([batchOf(['before'])], -1), c.run, 100);
    const handing = handOverLeadership(old.executor, { clock: c.clock, lagTicks: 10, checkEveryMs: 1, boundMs: 100 });
    const refused = Promise.allSettled([old.replica.produce([batchOf(['during'])], -1)]);
    // Frames take 1 ms here and the election timeout is 100 ms (10 ticks of 10 ms): 20 ms is a transfer's round trips only.
    expect(await during(handing.settled, c.run, 20)).toEqual({ status: 'fulfilled', value: { handedOver: 1, kept: 0 } });
    handing.stop();
    expect((await refused)[0]).toMatchObject({ status: 'rejected', reason: expect.any(NotLeaderOrFollowerError) });
    const [newId, next] = c.leader();
    expect(newId).not.toBe(oldId);
    expect(old.replica.leaderBroker).toBe(next.replica.leaderBroker);
    expect(await during(next.replica.produce([batchOf(['after'])], -1), c.run, 100)).toMatchObject({ status: 'fulfilled' });
    for (const node of c.nodes.values()) expect((await batchesOf(node.log)).flatMap((b) => b[3])).toEqual(['before', 'after']);
    c.stop();
  });

  it('a leaving leader keeps handing over until it stops: a transfer whose target never took it goes again, and leadership that comes back goes again', async () => {
    const c = await cluster();
    await c.run(500);
    const [oldId, old] = c.leader();
    // The follower it picks first hears nothing more (its frames are lost): the raft core gives that transfer up after an election timeout.
    const first = [...c.nodes.keys()].find((m) => m !== oldId)!;
    c.deaf.add(first);
    const handing = handOverLeadership(old.executor, { clock: c.clock, lagTicks: 10, checkEveryMs: 1, boundMs: 1_000 });
    expect(await during(handing.settled, c.run, 400)).toEqual({ status: 'fulfilled', value: { handedOver: 1, kept: 0 } });
    const [nextId, next] = c.leader();
    expect([oldId, first]).not.toContain(nextId);
    // The new leader hands it back (as a preferred replica's return would): it goes again — two terms later, the old leader's one between.
    const epoch = next.replica.leaderEpoch;
    const led: number[] = [];
    next.executor.input(GROUP, { type: 'transferLeadership', to: oldId });
    for (let ms = 0; ms < 100; ms++) {
      await c.run(1);
      if (old.replica.isLeader) led.push(old.replica.leaderEpoch);
    }
    expect(led[0]).toBe(epoch + 1);
    expect(c.leader()[0]).toBe(nextId);
    expect(next.replica.leaderEpoch).toBe(epoch + 2);
    // Stopped: it keeps what comes back.
    handing.stop();
    next.executor.input(GROUP, { type: 'transferLeadership', to: oldId });
    await c.run(100);
    expect(c.leader()[0]).toBe(oldId);
    c.stop();
  });

  it('a leader with no follower in sync keeps leading when asked to hand over, and says so at once', async () => {
    const c = await cluster();
    await c.run(500);
    const [leaderId, leader] = c.leader();
    for (const m of c.nodes.keys()) if (m !== leaderId) c.deaf.add(m);
    // 5 ticks without an answer: neither follower in sync for a lag of 2 ticks (still leading: check-quorum waits an election timeout).
    await c.run(50);
    expect(leader.replica.isLeader).toBe(true);
    const handing = handOverLeadership(leader.executor, { clock: c.clock, lagTicks: 2, checkEveryMs: 1, boundMs: 100 });
    expect(await during(handing.settled, c.run, 0)).toEqual({ status: 'fulfilled', value: { handedOver: 0, kept: 1 } });
    handing.stop();
    c.stop();
  });
});

/** An idempotent producer's batch (fresh bytes: the log numbers them in place). */
const idem = (producerId: number, producerEpoch: number, baseSequence: number, ...values: string[]) =>
  encodeBatch({ baseTimestamp: 1, producerId, producerEpoch, baseSequence, records: values.map((v) => ({ value: new TextEncoder().encode(v) })) });

describe('idempotent producers on a replicated partition', () => {
  it('answers a retry with the original offset, at the leader and at a new leader after a failover; nothing appended twice', async () => {
    const c = await cluster();
    await c.run(500);
    const [oldId, old] = c.leader();
    expect(await during(old.replica.produce([idem(7, 0, 0, 'a', 'b')], -1), c.run)).toEqual({ status: 'fulfilled', value: { baseOffset: 1 } });
    expect(await during(old.replica.produce([idem(7, 0, 0, 'a', 'b')], -1), c.run)).toEqual({ status: 'fulfilled', value: { baseOffset: 1, duplicate: true } });
    c.isolated.add(oldId);
    await c.run(1000);
    const [newId, next] = c.leader();
    expect(newId).not.toBe(oldId);
    // The retry reaching the new leader: recognised from the state its replica built as it applied the entries.
    expect(await during(next.replica.produce([idem(7, 0, 0, 'a', 'b')], -1), c.run)).toEqual({ status: 'fulfilled', value: { baseOffset: 1, duplicate: true } });
    expect((await during(next.replica.produce([idem(7, 0, 2, 'c')], -1), c.run)).status).toBe('fulfilled');
    c.isolated.delete(oldId);
    await c.run(500);
    for (const [member, node] of c.nodes) expect((await batchesOf(node.log)).flatMap((b) => b[3]), member).toEqual(['a', 'b', 'c']);
    c.stop();
  });

  it('refuses a sequence gap and a stale producer epoch with typed errors: nothing is written', async () => {
    const c = await cluster();
    await c.run(500);
    const [, leader] = c.leader();
    await during(leader.replica.produce([idem(3, 2, 0, 'a')], -1), c.run);
    const end = leader.log.logEndOffset;
    const gap = await during(leader.replica.produce([idem(3, 2, 4, 'gap')], -1), c.run);
    expect(gap).toMatchObject({ status: 'rejected', reason: expect.any(OutOfOrderSequenceNumberError) });
    expect((gap as PromiseRejectedResult).reason).toMatchObject({ expected: 1, sequence: 4, code: 'OUT_OF_ORDER_SEQUENCE_NUMBER' });
    expect(await during(leader.replica.produce([idem(3, 1, 1, 'stale')], -1), c.run)).toMatchObject({ status: 'rejected', reason: expect.any(InvalidProducerEpochError) });
    // A request with a good batch and a bad one: refused whole.
    expect(await during(leader.replica.produce([idem(3, 2, 1, 'ok'), idem(3, 2, 9, 'gap')], -1), c.run)).toMatchObject({ status: 'rejected', reason: expect.any(OutOfOrderSequenceNumberError) });
    await c.run(200);
    for (const [member, node] of c.nodes) {
      expect(node.log.logEndOffset, member).toBe(end);
      expect((await batchesOf(node.log)).flatMap((b) => b[3]), member).toEqual(['a']);
    }
    c.stop();
  });

  it('the partition snapshot carries the producers: a follower restoring it recognises a retry of a batch it never held', async () => {
    const c = await cluster();
    await c.run(500);
    const [leaderId, leader] = c.leader();
    const lagging = members.find((m) => m !== leaderId)!;
    c.isolated.add(lagging);
    for (const [i, value] of ['old-1', 'old-2', 'old-3'].entries()) expect((await during(leader.replica.produce([idem(5, 0, i, value)], -1), c.run, 50)).status).toBe('fulfilled');
    const now = Date.now();
    for (const [member, node] of c.nodes) {
      if (member === lagging) continue;
      node.log.setConfig({ ...node.log.config, retentionMs: 24 * 60 * 60 * 1000 });
      await node.replica.compactForRetention(now);
    }
    await c.run(100);
    for (const [member, node] of c.nodes) if (member !== lagging) await node.log.enforceRetention(now);
    c.isolated.delete(lagging);
    await c.run(1000);
    expect((await during(leader.replica.produce([idem(9, 0, 0, 'new')], -1), c.run)).status).toBe('fulfilled');
    const behind = c.nodes.get(lagging)!;
    // It restored the snapshot (the old batches are gone from every log), never holding producer 5's batches.
    expect(leader.log.logStartOffset).toBeGreaterThan(3);
    expect(behind.log.logStartOffset).toBe(leader.log.logStartOffset);
    expect(behind.log.producers.get(5)?.lastSequence).toBe(2);
    expect(behind.log.producers.get(5)?.batches.map((b) => b.baseOffset)).toEqual(leader.log.producers.get(5)?.batches.map((b) => b.baseOffset));
    c.stop();
  });
});
