// The worker's end of the frame bridge: what the broker node uses to talk to peers. No
// libp2p and no DOM here; the page's side is ./index.ts.
export { createPeerLink, PeerNotConnectedError, type PeerLink, type PeerLinkEvents, type PeerLinkOptions } from './peer-link';
export {
  createPeerRpc,
  type PeerRpc,
  type PeerRpcInit,
  type PeerRpcStats,
  type PeerHandler,
  type PeerRequestContext,
  type PeerRequestOptions,
  type PeerRequestObservation,
  type PeerMessageName,
  type PeerMessageBody,
} from './rpc';
export {
  BRIDGE_WINDOW_BYTES,
  RPC_TIMEOUT_MS,
  RPC_IN_FLIGHT_REQUESTS_MAX,
  RPC_HANDLING_MAX,
  RPC_SEND_QUEUE_BYTES_MAX,
  RPC_COALESCE_BYTES_MAX,
  PEER_WINDOW_BYTES,
  PEER_WINDOW_UPDATE_BYTES,
  RPC_FRAMES_PER_SECOND_MAX,
  RPC_BAD_FRAMES_MAX,
  DATA_CHANNEL_BUFFERED_BYTES_MAX,
  DIRECT_HANDSHAKE_TIMEOUT_MS,
  DIRECT_MESSAGE_BYTES_MAX,
} from './constants';
export type { PeerInfo, PageToWorker, WorkerToPage, BridgePort, DirectChannel } from './bridge-messages';
export { createLocalLink, type LocalLink, type LocalLinkInit, type LocalLocks, type LocalChannel } from './local-link';
export { localFirst, type LocalFirstLink } from './local-first';
export {
  LOCAL_VERSION,
  LOCAL_MESSAGE_BYTES_MAX,
  checkDiscoveryMessage,
  checkPairMessage,
  discoveryChannelName,
  pairChannelName,
  sessionLockName,
  type DiscoveryMessage,
  type PairMessage,
} from './local-messages';
