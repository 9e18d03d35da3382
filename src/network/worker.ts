// The worker's end of the frame bridge: what the broker node uses to talk to peers. No
// libp2p and no DOM here; the page's side is ./index.ts.
export { createPeerLink, PeerNotConnectedError, type PeerLink, type PeerLinkEvents } from './peer-link';
export { BRIDGE_WINDOW_BYTES } from './constants';
export type { PeerInfo, PageToWorker, WorkerToPage, BridgePort } from './bridge-messages';
