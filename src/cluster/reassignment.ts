import type { Membership, NodeId } from '../raft';
import type { BrokerInfo, MetadataImage, PartitionInfo } from './image';
import type { PartitionRecord } from './records';

// Re-replication (issue 21): a broker fenced past a delay has its replicas moved to live
// brokers, so each partition gets its replication factor back. The controller decides and
// writes the partition record with a reassignment (KIP-455: `replicas` holds the old set and
// the new; `adding` joins, `removing` leaves); the partition's raft leader carries it out one
// voter at a time — the new replica joins as a learner, catches up, is promoted, and only then
// is the dead one removed, so a quorum of the old set and of every set in between overlap;
// once the leader reports the new replica in sync, the controller writes the new set alone.
// Pure: the controller and the leader call it with their image and clock.

/**
 * The voters a replica's raft group starts from when its log holds no membership of its own:
 * the set before a reassignment in progress (a joining replica is no voter until the log says
 * so, so it never campaigns with an empty log).
 * @example const voters = initialVoters(partition); // [1, 2, 3] while 4 is being added
 */
export const initialVoters = (p: PartitionInfo): number[] => p.replicas.filter((id) => !(p.reassignment?.adding.includes(id) ?? false));

/**
 * The replicas the partition is moving to: `replicas` without those being removed.
 * @example targetReplicas({ replicas: [1, 2, 3, 4], reassignment: { adding: [4], removing: [3] }, ... }) // [1, 2, 4]
 */
export const targetReplicas = (p: PartitionInfo): number[] => p.replicas.filter((id) => !(p.reassignment?.removing.includes(id) ?? false));

/**
 * The partition records moving each replicated partition's replica on a broker fenced for
 * `afterMs` or more (`fencedSince`: when the controller saw each fenced broker fenced) to a
 * live broker that holds none of the partition: on a device the live replicas do not use
 * first, then the broker holding the fewest replicas, then the lowest id. One move per
 * partition at a time (none while one is in progress); none without a live broker to move to.
 * @example const records = reassignments(image, fencedSince, nowMs, 30_000);
 */
export function reassignments(image: MetadataImage, fencedSince: ReadonlyMap<number, number>, nowMs: number, afterMs: number): PartitionRecord[] {
  const dead = new Set([...fencedSince].filter(([id, since]) => nowMs - since >= afterMs && image.broker(id)?.fenced === true).map(([id]) => id));
  if (dead.size === 0) return [];
  const live = image.brokers().filter((b) => !b.fenced);
  const hosted = new Map<number, number>();
  for (const topic of image.topics()) for (const p of topic.partitions) for (const id of p.replicas) hosted.set(id, (hosted.get(id) ?? 0) + 1);
  const records: PartitionRecord[] = [];
  for (const topic of image.topics()) {
    for (const [partition, p] of topic.partitions.entries()) {
      const gone = p.replicas.find((id) => dead.has(id));
      // One replica is Cluster I's partition (no raft group to move it with: its data is on that broker alone).
      if (gone === undefined || p.replicas.length < 2 || p.reassignment !== undefined) continue;
      const to = destination(live, p, image, hosted);
      if (to === undefined) continue;
      hosted.set(to, (hosted.get(to) ?? 0) + 1);
      records.push({
        type: 'partition',
        topicId: topic.topicId,
        partition,
        replicas: [...p.replicas, to],
        isr: p.isr.filter((id) => id !== gone),
        leader: p.leader,
        leaderEpoch: p.leaderEpoch,
        reassignment: { adding: [to], removing: [gone] },
      });
    }
  }
  return records;
}

function destination(live: readonly BrokerInfo[], p: PartitionInfo, image: MetadataImage, hosted: ReadonlyMap<number, number>): number | undefined {
  const devices = new Set(p.replicas.flatMap((id) => (image.broker(id)?.fenced === false ? [image.broker(id)!.deviceId] : [])));
  const rank = (b: BrokerInfo) => [devices.has(b.deviceId) ? 1 : 0, hosted.get(b.brokerId) ?? 0, b.brokerId] as const;
  const candidates = live.filter((b) => !p.replicas.includes(b.brokerId));
  candidates.sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
  return candidates[0]?.brokerId;
}

/**
 * Once every replica being added is in sync (the leader reported it: promoted to voter and
 * caught up), the record that ends the reassignment: the new set alone. Undefined otherwise.
 * @example const done = reassignmentDone(current, reportedIsr);
 */
export function reassignmentDone(p: PartitionInfo, isr: readonly number[]): Pick<PartitionRecord, 'replicas' | 'isr'> | undefined {
  if (p.reassignment === undefined || !p.reassignment.adding.every((id) => isr.includes(id))) return undefined;
  const replicas = targetReplicas(p);
  return { replicas, isr: isr.filter((id) => replicas.includes(id)) };
}

/**
 * The leader's next single-server change toward `desired` (the target replicas' member ids),
 * or undefined when the membership is it: a missing member joins as a learner, a learner is
 * promoted, and only when every desired member votes is a voter outside it removed; learners
 * no longer desired are dropped.
 * @example const next = nextReplicaMembership(state.membership, ['1.a', '2.b', '4.d']); if (next) executor.input(group, { type: 'changeMembership', membership: next });
 */
export function nextReplicaMembership(current: Membership, desired: readonly NodeId[]): Membership | undefined {
  const { voters, learners } = current;
  const joining = desired.filter((id) => !voters.includes(id) && !learners.includes(id));
  if (joining.length > 0) return { voters, learners: [...learners, ...joining] };
  const promotable = learners.find((id) => desired.includes(id));
  if (promotable !== undefined) return { voters: [...voters, promotable], learners: learners.filter((id) => id !== promotable) };
  const leaving = voters.find((id) => !desired.includes(id));
  if (leaving !== undefined) return { voters: voters.filter((id) => id !== leaving), learners };
  return learners.length > 0 ? { voters, learners: [] } : undefined;
}
