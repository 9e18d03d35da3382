import type { BrokerInfo } from './image';

// Replica placement (Kafka's rack-aware assignment, the device as the rack): brokers are
// ordered alternating devices, partition p's leader is the (start + p)-th of them, so
// leaders spread evenly, and its other replicas follow, on devices it does not use yet first.

/**
 * Brokers ordered so consecutive ones are on different devices where possible:
 * device A's first, device B's first, …, device A's second, ….
 * @example deviceAlternated(brokers).map((b) => b.brokerId)
 */
export function deviceAlternated(brokers: readonly BrokerInfo[]): BrokerInfo[] {
  const byDevice = new Map<string, BrokerInfo[]>();
  for (const broker of [...brokers].sort((a, b) => a.brokerId - b.brokerId)) {
    const list = byDevice.get(broker.deviceId) ?? [];
    list.push(broker);
    byDevice.set(broker.deviceId, list);
  }
  const devices = [...byDevice.keys()].sort();
  const out: BrokerInfo[] = [];
  for (let round = 0; out.length < brokers.length; round++) {
    for (const device of devices) {
      const broker = byDevice.get(device)![round];
      if (broker !== undefined) out.push(broker);
    }
  }
  return out;
}

/**
 * Replica sets (leader first) for `count` partitions of `replicationFactor` replicas over
 * `brokers` (live, at least `replicationFactor` of them), starting at `start` (e.g. the
 * partitions placed so far, so consecutive topics start on different brokers).
 * @example placeReplicas(liveBrokers, 6, 3, partitionsPlacedSoFar) // [[1, 2, 3], [2, 3, 1], ...]
 */
export function placeReplicas(brokers: readonly BrokerInfo[], count: number, replicationFactor: number, start: number): number[][] {
  const ordered = deviceAlternated(brokers);
  const n = ordered.length;
  const out: number[][] = [];
  for (let p = 0; p < count; p++) {
    const leaderAt = (start + p) % n;
    const chosen = [ordered[leaderAt]!];
    // Followers: walk on from the leader, shifted each full round so replica sets vary.
    const shift = 1 + (Math.floor((start + p) / n) % Math.max(1, n - 1));
    const candidates = Array.from({ length: n - 1 }, (_, k) => ordered[(leaderAt + shift + k) % n]!).filter((b) => b !== chosen[0]);
    for (const b of ordered) if (b !== chosen[0] && !candidates.includes(b)) candidates.push(b);
    while (chosen.length < replicationFactor) {
      const devices = new Set(chosen.map((b) => b.deviceId));
      const next = candidates.find((b) => !chosen.includes(b) && !devices.has(b.deviceId)) ?? candidates.find((b) => !chosen.includes(b))!;
      chosen.push(next);
    }
    out.push(chosen.map((b) => b.brokerId));
  }
  return out;
}
