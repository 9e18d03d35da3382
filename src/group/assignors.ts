import type { AssignorName, Assignment } from './types';

// Kafka's two classic assignors, computed by the coordinator (as KIP-848 moves the
// assignment to the server) instead of by the group leader. Both are deterministic
// functions of the members' ids and subscriptions and the partition counts, which is
// what lets every replica of a future replicated coordinator compute the same result.

interface Subscriber {
  memberId: string;
  topics: string[];
}

/** Code-unit order, as Java's String.compareTo that Kafka sorts member ids with. */
const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// Own-property reads and null-prototype records: `__proto__` is a legal topic name.
function push(assignment: Assignment, topic: string, partition: number): void {
  if (!Object.hasOwn(assignment, topic)) assignment[topic] = [];
  assignment[topic]!.push(partition);
}

/** Partitions of `topic`; 0 while the topic is unknown. */
export const partitionCount = (partitions: Record<string, number>, topic: string): number =>
  Object.hasOwn(partitions, topic) ? partitions[topic]! : 0;

/**
 * Kafka's RangeAssignor: per topic, the partitions are split into contiguous ranges over
 * the members subscribed to it, sorted by id; the first (count mod members) get one more.
 */
function range(members: Subscriber[], partitions: Record<string, number>, result: Record<string, Assignment>): void {
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort(byCodeUnits);
  for (const topic of topics) {
    const count = partitionCount(partitions, topic);
    const subscribed = members.filter((m) => m.topics.includes(topic));
    const perMember = Math.floor(count / subscribed.length);
    const withExtra = count % subscribed.length;
    subscribed.forEach((member, i) => {
      const start = perMember * i + Math.min(i, withExtra);
      const length = perMember + (i < withExtra ? 1 : 0);
      for (let p = start; p < start + length; p++) push(result[member.memberId]!, topic, p);
    });
  }
}

/**
 * Kafka's RoundRobinAssignor: every subscribed topic-partition, sorted by topic then
 * partition, dealt to the members in id order round a circle; a member not subscribed
 * to the topic is skipped, and the deal resumes after the member that took it.
 */
function roundRobin(members: Subscriber[], partitions: Record<string, number>, result: Record<string, Assignment>): void {
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort(byCodeUnits);
  let next = 0;
  for (const topic of topics) {
    const count = partitionCount(partitions, topic);
    for (let p = 0; p < count; p++) {
      // Some member subscribes to `topic`, so this finds one within one turn of the circle.
      while (!members[next % members.length]!.topics.includes(topic)) next++;
      push(result[members[next % members.length]!.memberId]!, topic, p);
      next++;
    }
  }
}

/**
 * Computes every member's assignment with the named assignor. Topics missing from
 * `partitions` have no partitions yet and are skipped; every member gets an entry.
 * @example assign('range', [{ memberId: 'a', topics: ['t'] }, { memberId: 'b', topics: ['t'] }], { t: 3 })
 *   // → { a: { t: [0, 1] }, b: { t: [2] } }
 */
export function assign(
  assignor: AssignorName,
  members: Array<{ memberId: string; topics: string[] }>,
  partitions: Record<string, number>,
): Record<string, Assignment> {
  const sorted = [...members].sort((a, b) => byCodeUnits(a.memberId, b.memberId));
  const result = Object.create(null) as Record<string, Assignment>;
  for (const member of sorted) result[member.memberId] = Object.create(null) as Assignment;
  if (assignor === 'range') range(sorted, partitions, result);
  else roundRobin(sorted, partitions, result);
  return result;
}
