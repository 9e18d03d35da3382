import { noise } from '@chainsafe/libp2p-noise';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import type { PrivateKey } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import { DATA_CHANNEL_BUFFERED_BYTES_MAX } from './constants';

export interface PageLibp2pInit {
  privateKey: PrivateKey;
  /**
   * Allow dialling `ws://` and loopback/private addresses, which the browser build of
   * libp2p refuses by default. Only for a development relay on such an address.
   */
  allowPrivateAddresses: boolean;
  /** STUN/TURN servers for WebRTC; `[]` on a local network. Default: libp2p's. */
  iceServers?: RTCIceServer[];
  /** Refuses new dials to a peer (its id as text) while this returns true. */
  denyDialPeer?(peerId: string): boolean;
}

/**
 * The page's libp2p node: WebRTC (private-to-private, signalled through the relay),
 * WebSockets to the relay, the circuit relay transport, Noise, yamux, identify and ping.
 * It listens on `/p2p-circuit` (a reservation on the relay, so others can signal to it)
 * and `/webrtc` (accepting direct connections).
 * @example const node = await createPageLibp2p({ privateKey, allowPrivateAddresses: true, iceServers: [] });
 */
export function createPageLibp2p(init: PageLibp2pInit) {
  return createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: ['/p2p-circuit', '/webrtc'] },
    transports: [
      webSockets(),
      webRTC({
        dataChannel: { maxBufferedAmount: DATA_CHANNEL_BUFFERED_BYTES_MAX },
        ...(init.iceServers === undefined ? {} : { rtcConfiguration: { iceServers: init.iceServers } }),
      }),
      circuitRelayTransport(),
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // libp2p merges these with its defaults; the browser's default denyDialMultiaddr refuses ws:// and private addresses.
    connectionGater: {
      ...(init.allowPrivateAddresses ? { denyDialMultiaddr: () => false } : {}),
      denyDialPeer: (peerId) => init.denyDialPeer?.(peerId.toString()) ?? false,
    },
    services: { identify: identify(), ping: ping() },
    // Off: the page watches its connections itself (./liveness.ts). The monitor pinged beside
    // the quality probe, and libp2p allows one outbound ping stream per connection: when a ping
    // was slow (a busy machine, a bulk transfer), the monitor's next one failed with
    // TooManyOutboundProtocolStreamsError and it aborted the connection as if the peer had died.
    connectionMonitor: { enabled: false },
  });
}

export type PageLibp2p = Awaited<ReturnType<typeof createPageLibp2p>>;
