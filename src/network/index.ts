// The page's network side: a libp2p node that joins a cluster through the relay, connects
// directly (WebRTC) to the other members and hands the worker each connection's direct data
// channel (or, where it has none, moves broker bytes between their streams and the worker
// over a MessagePort). Thin on purpose: it reports connectivity and moves bytes;
// protocol decisions are the worker's (its end of the bridge is ./worker.ts, a separate
// entry so the worker bundle does not pull in libp2p and the DOM types).
export { startPeerNetwork, isDirectConnection, type PeerNetwork, type PeerNetworkInit, type NetworkEvent, type DialStats } from './peer-network';
export { createPageLibp2p, type PageLibp2p, type PageLibp2pInit } from './libp2p-node';
export { createPageBridge, type PageBridge, type WritableStream } from './page-bridge';
export { resolveRelay, isPrivateHost, relayHost, RelayUnreachableError } from './relay-address';
export { createSlotKey, slotKeyFromBytes } from './identity';
export { joinCluster, type JoinClusterInit, type NetworkedNode } from './join';
export * from './constants';
export type { PeerInfo, PageToWorker, WorkerToPage, BridgePort, DirectChannel } from './bridge-messages';
