import { proxy, transfer } from 'comlink';
import type { ClusterEvent } from '../node';
import { createSlotKey, slotKeyFromBytes } from './identity';
import { startPeerNetwork, type NetworkEvent, type PeerNetwork } from './peer-network';

/** What {@link joinCluster} needs of the broker node (its Comlink proxy in the page). */
export interface NetworkedNode {
  networkKey(candidate: Uint8Array): Promise<Uint8Array>;
  attachNetwork(port: MessagePort, options?: { secret?: string; cluster?: string; local?: boolean; deviceId?: string; reassignAfterMs?: number }, onEvent?: (event: ClusterEvent) => void): unknown;
}

export interface JoinClusterInit {
  cluster: string;
  relay: string;
  iceServers?: RTCIceServer[];
  /** The cluster's shared secret: given to the worker, which admits only peers that prove it. */
  secret?: string;
  /** Meet this origin's other tabs of the cluster over the worker's local transport (default true). */
  localPeers?: boolean;
  /** This browser profile's id, shared by its tabs: the controller places replicas on distinct devices. */
  deviceId: string;
  /** How long a fenced broker waits before its replicas move (the controller's reassignAfterMs). */
  reassignAfterMs?: number;
  onEvent?(event: NetworkEvent | ClusterEvent): void;
}

/**
 * Starts the page's network for the node in the worker: takes the slot's key from the
 * worker (so the peer id survives a reopened tab), hands the worker its end of the frame
 * bridge, and joins the cluster.
 * @example const network = await joinCluster(await letterbox.node(), { cluster: 'demo', relay: location.origin });
 */
export async function joinCluster(node: NetworkedNode, init: JoinClusterInit): Promise<PeerNetwork> {
  const privateKey = slotKeyFromBytes(await node.networkKey(await createSlotKey()));
  const { port1, port2 } = new MessageChannel();
  const { secret, localPeers, deviceId, reassignAfterMs, ...network } = init;
  // The node joins the cluster; the name also names the worker's local transport, where this origin's tabs of the cluster meet without the relay.
  const onClusterEvent = proxy((event: ClusterEvent) => init.onEvent?.(event));
  await node.attachNetwork(transfer(port2, [port2]), { cluster: init.cluster, local: localPeers !== false, deviceId, ...(reassignAfterMs === undefined ? {} : { reassignAfterMs }), ...(secret === undefined ? {} : { secret }) }, onClusterEvent);
  return startPeerNetwork({ ...network, privateKey, port: port1 });
}
