import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { MetadataImage, reassignmentDone, type MetadataRecord } from '../../src/cluster';
import { createLogManager } from '../../src/log';
import { Executor, ReplicaManager, type GroupMessage } from '../../src/node';
import { readBatchHeader } from '../../src/protocol';
import { createMemoryStorage } from '../../src/storage';
import { batchOf, recordsOf } from '../log/batches';

// Three brokers' ReplicaManagers following one metadata image: a replica of each partition
// placed on each broker, raft electing a leader that reports itself (alterPartition) so the
// image's leader hint follows, and a new leader reporting again after the old one is cut off.

const brokers = [1, 2, 3];
/** A leader returns its partition to the preferred replica after it has been in sync this long (30 ticks). */
const PREFERRED_DELAY_MS = 300;
const incarnation = (id: number) => `inc-${id}`;
const member = (id: number) => `${id}.${incarnation(id)}`;

function imageOf(records: MetadataRecord[]): MetadataImage {
  const image = new MetadataImage();
  for (const record of records) expect(image.apply(record)).toBeUndefined();
  return image;
}

/** Brokers `all` (default 1, 2, 3) following one image; topic t's partition 0 on `brokers`. */
async function cluster(all: readonly number[] = brokers) {
  const clock = new ManualClock();
  const image = imageOf([
    { type: 'clusterId', clusterId: 'c', clusterName: 'n' },
    ...all.map((brokerId): MetadataRecord => ({ type: 'registerBroker', brokerId, incarnation: incarnation(brokerId), deviceId: 'd', endpoints: [] })),
    { type: 'topic', topicId: 1, name: 't' },
    { type: 'partition', topicId: 1, partition: 0, replicas: brokers, isr: brokers, leader: 1, leaderEpoch: 0 },
  ]);
  const reports: Array<{ brokerId: number; leaderEpoch: number; isr: number[] }> = [];
  const isolated = new Set<string>();
  const executors = new Map<string, Executor>();
  const managers = new Map<number, ReplicaManager>();
  for (const brokerId of all) {
    const storage = createMemoryStorage();
    const logs = createLogManager(storage, { clock });
    const self = member(brokerId);
    const executor = new Executor({
      nodeId: self,
      clock,
      committer: logs.committer,
      sendFrame: (to: string, messages: readonly GroupMessage[]) => {
        if (!isolated.has(self) && !isolated.has(to)) clock.after(1, () => executors.get(to)?.receive(self, messages));
        return true;
      },
      tickMs: 10,
      heartbeatFlushTicks: 2,
    });
    executors.set(self, executor);
    const manager = new ReplicaManager({
      clusterId: 'c',
      executor,
      logs,
      storage,
      clock,
      self: { brokerId, incarnation: incarnation(brokerId) },
      raft: { electionTicks: 10, heartbeatTicks: 2, maxInflightAppends: 4, maxEntriesPerAppend: 16, maxBytesPerAppend: 1 << 20, maxUncommittedEntries: 100, maxApplyBytesPerStep: 1 << 20, maxPendingReads: 4 },
      seed: brokerId,
      configOf: () => ({}),
      checkEveryMs: 20,
      preferredLeaderDelayMs: PREFERRED_DELAY_MS,
      compactEveryMs: 1_000,
      // The controller's part, as alterPartition records it (test/cluster/controller.test.ts checks its refusals).
      reportLeadership: async ({ topic, partition, leaderEpoch, isr }) => {
        reports.push({ brokerId, leaderEpoch, isr });
        const current = image.topicByName(topic)!.partitions[partition]!;
        const placement = reassignmentDone(current, isr) ?? { replicas: current.replicas, isr, ...(current.reassignment && { reassignment: current.reassignment }) };
        const refused = image.apply({ type: 'partition', topicId: 1, partition, leader: brokerId, leaderEpoch, ...placement });
        if (refused !== undefined) throw refused;
      },
    });
    managers.set(brokerId, manager);
    executor.start();
  }
  for (const manager of managers.values()) await manager.follow(image);
  const run = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      clock.advance(1);
      for (let j = 0; j < 3; j++) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const stop = () => {
    for (const m of managers.values()) m.close();
    for (const e of executors.values()) e.stop();
  };
  return { image, reports, isolated, managers, executors, run, stop };
}

describe('replica managers following the metadata', () => {
  it('hold a replica of each partition placed here; the raft leader reports itself once and the metadata hint follows', async () => {
    const c = await cluster();
    await c.run(500);
    const leaders = brokers.filter((id) => c.managers.get(id)!.get('t', 0)!.isLeader);
    expect(leaders).toHaveLength(1);
    const leader = leaders[0]!;
    const epoch = c.managers.get(leader)!.get('t', 0)!.leaderEpoch;
    // Reported once its followers replicate (maybe first with fewer in sync), not again while nothing changes.
    expect(c.reports.at(-1)).toEqual({ brokerId: leader, leaderEpoch: epoch, isr: brokers });
    const reported = c.reports.length;
    await c.run(200);
    expect(c.reports).toHaveLength(reported);
    expect(c.image.topicByName('t')!.partitions[0]).toMatchObject({ leader, leaderEpoch: epoch });
    expect(c.managers.get(leader)!.get('t', 1)).toBeUndefined();
    const sent = c.managers.get(leader)!.get('t', 0)!.produce([batchOf(['v'])], -1);
    await c.run(100);
    await expect(sent).resolves.toEqual({ baseOffset: 1 });
    for (const id of brokers) {
      const log = c.managers.get(id)!.get('t', 0)!.log;
      const data = (await log.read(0, { maxBytes: Infinity })).filter((bytes) => !readBatchHeader(bytes).isControl);
      expect(recordsOf(data).map((r) => r[2])).toEqual(['v']);
    }
    c.stop();
  });

  it('a new leader, elected when the old one is cut off, reports its epoch; the metadata moves to it', async () => {
    const c = await cluster();
    await c.run(500);
    const old = brokers.find((id) => c.managers.get(id)!.get('t', 0)!.isLeader)!;
    c.isolated.add(member(old));
    await c.run(1000);
    const next = brokers.find((id) => id !== old && c.managers.get(id)!.get('t', 0)!.isLeader)!;
    expect(next).toBeDefined();
    const epoch = c.managers.get(next)!.get('t', 0)!.leaderEpoch;
    // The cut-off broker is not in sync: the ISR reported is the two that are.
    expect(c.reports.at(-1)).toEqual({ brokerId: next, leaderEpoch: epoch, isr: brokers.filter((id) => id !== old) });
    expect(c.image.topicByName('t')!.partitions[0]).toMatchObject({ leader: next, leaderEpoch: epoch });
    c.stop();
  });

  it('after a failover, leadership returns to the preferred replica (the placement\'s first) once it has been in sync for the delay; the metadata follows', async () => {
    const c = await cluster();
    await c.run(500);
    const isLeader = (id: number) => c.managers.get(id)!.get('t', 0)!.isLeader;
    expect(isLeader(1)).toBe(true);
    c.isolated.add(member(1));
    await c.run(1000);
    const next = brokers.find((id) => id !== 1 && isLeader(id))!;
    expect(next).toBeDefined();
    c.isolated.delete(member(1));
    // Back and in sync after a few heartbeats, but not yet for the delay: the new leader stays.
    await c.run(PREFERRED_DELAY_MS - 100);
    expect(isLeader(next)).toBe(true);
    await c.run(PREFERRED_DELAY_MS * 2);
    expect(isLeader(1)).toBe(true);
    expect(c.image.topicByName('t')!.partitions[0]).toMatchObject({ leader: 1, leaderEpoch: c.managers.get(1)!.get('t', 0)!.leaderEpoch });
    // And stays: the preferred leader hands over to no one.
    await c.run(PREFERRED_DELAY_MS * 2);
    expect(isLeader(1)).toBe(true);
    c.stop();
  });

  it('re-replication: a dead replica moved to broker 4 — it joins as a learner, catches up, is promoted, the dead one removed; the reassignment ends and acks -1 commit without the dead', async () => {
    const c = await cluster([1, 2, 3, 4]);
    await c.run(500);
    const replicaOf = (id: number) => c.managers.get(id)!.get('t', 0);
    const leader = brokers.find((id) => replicaOf(id)?.isLeader)!;
    const dead = brokers.find((id) => id !== leader)!;
    const written = Array.from({ length: 20 }, (_, i) => replicaOf(leader)!.produce([batchOf([`before-${i}`])], -1));
    await c.run(200);
    await Promise.all(written);
    c.isolated.add(member(dead));
    // The controller's record (src/cluster/reassignment.ts): 4 joins, the dead one leaves.
    const current = c.image.topicByName('t')!.partitions[0]!;
    expect(c.image.apply({ type: 'partition', topicId: 1, partition: 0, replicas: [...current.replicas, 4], isr: current.isr.filter((id) => id !== dead), leader: current.leader, leaderEpoch: current.leaderEpoch, reassignment: { adding: [4], removing: [dead] } })).toBeUndefined();
    for (const manager of c.managers.values()) await manager.follow(c.image);
    expect(replicaOf(4)).toBeDefined();
    await c.run(1500);
    const state = c.executors.get(member(leader))!.raftState(replicaOf(leader)!.group)!;
    expect({ voters: [...state.membership.voters].sort(), learners: state.membership.learners }).toEqual({ voters: [1, 2, 3, 4].filter((id) => id !== dead).map(member), learners: [] });
    const now = c.image.topicByName('t')!.partitions[0]!;
    expect({ replicas: [...now.replicas].sort(), isr: [...now.isr].sort(), reassignment: now.reassignment }).toEqual({ replicas: [1, 2, 3, 4].filter((id) => id !== dead), isr: [1, 2, 3, 4].filter((id) => id !== dead), reassignment: undefined });
    // The dead broker, following the image, holds no replica of it any more.
    await c.managers.get(dead)!.follow(c.image);
    expect(replicaOf(dead)).toBeUndefined();
    const after = replicaOf(leader)!.produce([batchOf(['after'])], -1);
    await c.run(200);
    await expect(after).resolves.toMatchObject({ baseOffset: expect.any(Number) });
    const values = async (id: number) => recordsOf((await replicaOf(id)!.log.read(0, { maxBytes: Infinity })).filter((bytes) => !readBatchHeader(bytes).isControl)).map((r) => r[2]);
    expect(await values(4)).toEqual([...Array.from({ length: 20 }, (_, i) => `before-${i}`), 'after']);
    expect(await values(4)).toEqual(await values(leader));
    c.stop();
  });

  it('closes the replicas of partitions no longer placed here (a deleted topic)', async () => {
    const c = await cluster();
    await c.run(500);
    c.image.apply({ type: 'removeTopic', topicId: 1 });
    for (const manager of c.managers.values()) await manager.follow(c.image);
    for (const manager of c.managers.values()) expect(manager.get('t', 0)).toBeUndefined();
    c.stop();
  });
});
