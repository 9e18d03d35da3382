import { CLUSTERS_MAX, DiscoveryError, MEMBERS_PER_CLUSTER_MAX, type DiscoveryEvent } from './wire';

/** A message for one session, which the relay writes to that session's stream. */
export interface Delivery<S> {
  to: S;
  event: DiscoveryEvent;
}

export interface Membership<S> {
  /**
   * Registers `peer` in `cluster` on `session` (one open discovery stream). A peer that
   * registers again replaces its older session, which is returned to be closed. Throws
   * DiscoveryError `CLUSTER_FULL` at a limit.
   */
  join(cluster: string, peer: string, session: S): { deliveries: Delivery<S>[]; replaced?: S };
  /** Ends `session`; the others of its cluster learn that its peer left (unless a newer session replaced it). */
  leave(session: S): Delivery<S>[];
  /** The peers registered in `cluster`. */
  members(cluster: string): string[];
}

/**
 * The relay's table of cluster members, without I/O: each change returns the events to
 * deliver to which sessions.
 * @example const table = createMembership<Stream>(); const { deliveries } = table.join('demo', peerId, stream);
 */
export function createMembership<S>(limits = { clustersMax: CLUSTERS_MAX, membersMax: MEMBERS_PER_CLUSTER_MAX }): Membership<S> {
  const clusters = new Map<string, Map<string, S>>();
  const sessions = new Map<S, { cluster: string; peer: string }>();

  const others = (members: Map<string, S>, peer: string, event: DiscoveryEvent): Delivery<S>[] =>
    [...members].filter(([p]) => p !== peer).map(([, to]) => ({ to, event }));

  return {
    join(cluster, peer, session) {
      let members = clusters.get(cluster);
      if (members === undefined) {
        if (clusters.size >= limits.clustersMax) throw new DiscoveryError('CLUSTER_FULL', `this relay serves at most ${limits.clustersMax} clusters`);
        members = new Map();
      }
      const replaced = members.get(peer);
      if (replaced === undefined && members.size >= limits.membersMax) {
        throw new DiscoveryError('CLUSTER_FULL', `cluster ${cluster} has its maximum of ${limits.membersMax} members on this relay`);
      }
      clusters.set(cluster, members);
      if (replaced !== undefined) sessions.delete(replaced);
      members.set(peer, session);
      sessions.set(session, { cluster, peer });
      const deliveries: Delivery<S>[] = [
        { to: session, event: { type: 'members', cluster, peers: [...members.keys()].filter((p) => p !== peer) } },
        ...(replaced === undefined ? others(members, peer, { type: 'joined', peer }) : []),
      ];
      return replaced === undefined ? { deliveries } : { deliveries, replaced };
    },
    leave(session) {
      const entry = sessions.get(session);
      if (entry === undefined) return [];
      sessions.delete(session);
      const members = clusters.get(entry.cluster);
      if (members === undefined || members.get(entry.peer) !== session) return [];
      members.delete(entry.peer);
      if (members.size === 0) clusters.delete(entry.cluster);
      return others(members, entry.peer, { type: 'left', peer: entry.peer });
    },
    members: (cluster) => [...(clusters.get(cluster)?.keys() ?? [])],
  };
}
