import type { Membership, NodeId } from '../raft';
import type { BrokerInfo, MetadataImage } from './image';
import { memberId } from './identity';

// The controller group's voters follow the brokers: every live broker up to 3 (two tabs
// are two voters), then 5 once there are that many, on distinct devices where possible;
// every other live broker is a learner, so metadata reads are local everywhere. Changes
// go one voter at a time (the raft core's single-server changes): a live broker first
// joins as a learner and is promoted once it has caught up; a replacement is added before
// a dead voter is removed, and a dead voter is removed only from four or more.

/**
 * A fenced voter is removed only from at least this many voters. Fenced is not dead (a closed
 * tab comes back with its storage): of three voters, one lost for good and one closed for
 * a while, removing the closed one would leave two voters, one dead forever, and no quorum
 * ever again; kept, the group resumes when the tab returns, promotes a replacement and
 * then removes the lost one.
 */
const VOTERS_TO_REMOVE_DEAD_MIN = 4;

/** Voters the controller group keeps for `live` live brokers that are members. @example targetVoters(4) // 3 */
export const targetVoters = (live: number): number => (live >= 5 ? 5 : Math.min(3, live));

/**
 * The next single-server change toward the desired membership, or undefined when
 * `current` is it. `self` is the active controller's member id (demoted last).
 * @example const next = nextMembership(image, state.membership, self); if (next) propose(next);
 */
export function nextMembership(image: MetadataImage, current: Membership, self: NodeId): Membership | undefined {
  const live = new Map<NodeId, BrokerInfo>();
  for (const b of image.brokers()) if (!b.fenced) live.set(memberId(b.brokerId, b.incarnation), b);
  const members = new Set([...current.voters, ...current.learners]);
  const deviceOf = (id: NodeId) => live.get(id)?.deviceId;
  const liveVoters = current.voters.filter((id) => live.has(id));
  const deadVoters = current.voters.filter((id) => !live.has(id));
  const eligible = [...live.keys()].filter((id) => members.has(id));
  const target = targetVoters(eligible.length);
  // Promotion candidates: learners on devices the voters lack first, then by broker id.
  const usedDevices = new Set(liveVoters.map(deviceOf));
  const promotable = eligible
    .filter((id) => !current.voters.includes(id))
    .sort((a, b) => Number(usedDevices.has(deviceOf(a))) - Number(usedDevices.has(deviceOf(b))) || live.get(a)!.brokerId - live.get(b)!.brokerId);
  const spreadsDevices = promotable.length > 0 && !usedDevices.has(deviceOf(promotable[0]!)) && usedDevices.size < liveVoters.length;

  let voters = current.voters;
  if (promotable.length > 0 && (liveVoters.length < target || spreadsDevices)) {
    voters = [...current.voters, promotable[0]!];
  } else if (deadVoters.length > 0 && current.voters.length >= VOTERS_TO_REMOVE_DEAD_MIN) {
    voters = current.voters.filter((id) => id !== deadVoters[0]);
  } else if (liveVoters.length > target) {
    voters = current.voters.filter((id) => id !== demotable(liveVoters, deviceOf, live, self));
  }
  const learners = [...live.keys()].filter((id) => !voters.includes(id)).sort();
  const same = voters.length === current.voters.length && learners.length === current.learners.length && learners.every((id) => current.learners.includes(id));
  return same ? undefined : { voters, learners };
}

/** The voter to demote when there are too many: one sharing a device, then the highest broker id; the controller last. */
function demotable(voters: readonly NodeId[], deviceOf: (id: NodeId) => string | undefined, live: Map<NodeId, BrokerInfo>, self: NodeId): NodeId {
  const count = new Map<string | undefined, number>();
  for (const id of voters) count.set(deviceOf(id), (count.get(deviceOf(id)) ?? 0) + 1);
  const rank = (id: NodeId) => [id === self ? 1 : 0, (count.get(deviceOf(id)) ?? 0) > 1 ? 0 : 1, -live.get(id)!.brokerId];
  return [...voters].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  })[0]!;
}
