import { ClusterIdMismatchError } from '../errors';

// Cluster formation. Brokers that can reach each other form one cluster under one name:
// the first bootstraps it and the others register with its active controller; of brokers
// starting together, with no cluster among them, the one with the smallest incarnation
// bootstraps and the rest wait for it. Brokers that could not reach each other may have
// bootstrapped apart; when they meet, the smaller cluster (fewer brokers, then fewer
// records, then the larger cluster id, so exactly one side) reports ClusterIdMismatchError.

/** What a broker says of its cluster when it meets another. */
export interface ClusterSummary {
  readonly clusterName: string;
  readonly clusterId: string;
  /** Brokers registered. */
  readonly brokers: number;
  /** Metadata records applied. */
  readonly records: number;
}

/**
 * Orders clusters by size: negative when `a` is the smaller one.
 * @example [x, y].sort(compareClusters).at(-1) // the cluster that keeps the name
 */
export function compareClusters(a: ClusterSummary, b: ClusterSummary): number {
  if (a.brokers !== b.brokers) return a.brokers - b.brokers;
  if (a.records !== b.records) return a.records - b.records;
  return a.clusterId > b.clusterId ? -1 : a.clusterId < b.clusterId ? 1 : 0;
}

/**
 * Two brokers met: the error this one reports, when its cluster is the smaller of two
 * under one name; undefined when the clusters are one, or their names differ, or it is the larger.
 * @example const mismatch = clustersMet(ours, theirs); if (mismatch) emit('cluster.mismatch', mismatch);
 */
export function clustersMet(ours: ClusterSummary, theirs: ClusterSummary): ClusterIdMismatchError | undefined {
  if (ours.clusterName !== theirs.clusterName || ours.clusterId === theirs.clusterId) return undefined;
  return compareClusters(ours, theirs) < 0 ? new ClusterIdMismatchError(ours.clusterName, ours.clusterId, theirs.clusterId) : undefined;
}

/** A broker seen during formation: its incarnation, and its cluster if it has one. */
export interface FormationPeer {
  readonly incarnation: string;
  readonly cluster?: ClusterSummary;
}

export type FormationDecision =
  | { readonly kind: 'bootstrap' }
  | { readonly kind: 'join'; readonly clusterId: string }
  | { readonly kind: 'wait' };

/**
 * What a broker without a cluster does, given the brokers of its cluster name it can
 * reach: join the largest cluster among them; else bootstrap if its incarnation is the
 * smallest; else wait for the one that is.
 * @example decideFormation('k2x9', peers) // { kind: 'join', clusterId: 'c1' }
 */
export function decideFormation(incarnation: string, peers: readonly FormationPeer[]): FormationDecision {
  const clusters = peers.flatMap((p) => (p.cluster === undefined ? [] : [p.cluster]));
  if (clusters.length > 0) return { kind: 'join', clusterId: clusters.sort(compareClusters).at(-1)!.clusterId };
  return peers.every((p) => incarnation < p.incarnation) ? { kind: 'bootstrap' } : { kind: 'wait' };
}
