import type { Connection } from '@libp2p/interface';
import { DIRECT_CHANNEL_ID, DIRECT_CHANNEL_LABEL } from './constants';

/**
 * Opens the direct channel (FORMATS.md § Transport) on the WebRTC connection under
 * `connection`, for the page to hand to its worker: broker bytes then go worker to worker
 * without crossing the page (NOTES-browser.md, arrangement B). A small round trip took
 * ~0.3 ms less this way than through the page's libp2p stream.
 *
 * libp2p does not expose the RTCPeerConnection; @libp2p/webrtc keeps it on the connection's
 * `maConn.peerConnection`. Hence the checks: where it is missing (another transport, another
 * libp2p version) this returns undefined and the bytes go through the page, only slower.
 * @example const channel = openDirectChannel(connection); if (channel) port.postMessage({ channel }, [channel]);
 */
export function openDirectChannel(connection: Connection): RTCDataChannel | undefined {
  const peerConnection = (connection as unknown as { maConn?: { peerConnection?: unknown } }).maConn?.peerConnection;
  if (typeof RTCPeerConnection === 'undefined' || !(peerConnection instanceof RTCPeerConnection) || peerConnection.connectionState !== 'connected') return undefined;
  try {
    return peerConnection.createDataChannel(DIRECT_CHANNEL_LABEL, { negotiated: true, id: DIRECT_CHANNEL_ID });
  } catch {
    return undefined; // closing meanwhile
  }
}
