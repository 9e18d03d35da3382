import type { Remote } from 'comlink';
import type { NodeApi, NodeInfo } from '../node';
import type { PeerRequestReports } from './requests';

/** The broker node in its worker, as the clients call it. */
export type RemoteNode = Remote<NodeApi>;

/**
 * What a producer, consumer or admin needs of the Letterbox that made it: its node and name.
 * Letterbox implements it; the clients depend on this, not on Letterbox, so that module and
 * theirs do not import each other.
 */
export interface ClientContext {
  /** Names the client in its group memberships. */
  readonly clientId: string;
  /** The running node, started on first use. */
  node(): Promise<RemoteNode>;
  /** Routes the broker's reports of traced calls' peer requests to the clients that traced them. */
  readonly peerReports: PeerRequestReports;
  /** The node's slot and database, starting the node if needed. */
  nodeInfo(): Promise<NodeInfo>;
}
