import { noise } from '@chainsafe/libp2p-noise';
import { circuitRelayServer } from '@libp2p/circuit-relay-v2';
import { identify } from '@libp2p/identify';
import type { PrivateKey } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { createLibp2p } from 'libp2p';
import { DISCOVERY_PROTOCOL } from '../discovery';
import { createDiscoveryService, type DiscoveryService } from './discovery-service';

// Limits of the circuit relay: it carries WebRTC signalling (SDP and ICE, a few KiB per
// dial) and nothing else, so a relayed connection may last RELAYED_DURATION_MS and carry
// RELAYED_DATA_BYTES; broker traffic goes over the direct connections it helps set up.
/** How long one relayed connection may stay open: signalling takes seconds, not minutes. */
export const RELAYED_DURATION_MS = 2 * 60_000;
/** Bytes one relayed connection may carry each way: a few signalling exchanges. */
export const RELAYED_DATA_BYTES = 128 * 1024;
/** Reservations (tabs reachable through this relay) at once. libp2p's default, 15, is too few for a demo with a few devices. */
export const RESERVATIONS_MAX = 256;
/** How long a reservation lasts before its holder must renew it. */
export const RESERVATION_TTL_MS = 60 * 60_000;
/** Connections at once: reservations, plus the dials that are signalling through them. */
export const RELAY_CONNECTIONS_MAX = 2 * RESERVATIONS_MAX;
/**
 * New connections per second from one host. libp2p's default, 5, refuses the tabs of one
 * browser (or of one NAT) that reconnect together after a relay restart.
 */
export const INBOUND_CONNECTIONS_PER_HOST_PER_SECOND = 50;
/**
 * The relay pings each page this often, and closes the connection of a page that does not
 * answer within RELAY_PING_TIMEOUT_MS: its members then hear that it left. That is how a page
 * that vanished without closing its WebSocket (a crash, a lost network) leaves its cluster.
 */
export const RELAY_PING_INTERVAL_MS = 10_000;
/**
 * Fixed, and shorter than the interval: libp2p's default adapts up to 60 s, and a ping still
 * running when the next one starts fails (one ping stream per connection) and closes a live
 * connection. 8 s, not the default 5 s: a tab busy for a few seconds on a loaded machine
 * must not leave its cluster (and lose its direct links) for that.
 */
export const RELAY_PING_TIMEOUT_MS = 8_000;

export interface RelayNode {
  /** Multiaddrs pages dial, each ending in `/p2p/<relay peer id>`. */
  readonly multiaddrs: string[];
  readonly peerId: string;
  readonly discovery: DiscoveryService;
  stop(): Promise<void>;
}

const ipProtocol = (host: string) => (host.includes(':') ? 'ip6' : 'ip4');

/**
 * The relay's libp2p node: WebSockets on `host:wsPort`, Noise, yamux, identify, ping, a
 * circuit relay v2 server with the limits above, and cluster discovery.
 * @example const node = await startRelayNode({ host: '127.0.0.1', wsPort: 8788, privateKey });
 */
export async function startRelayNode(init: { host: string; wsPort: number; privateKey: PrivateKey }): Promise<RelayNode> {
  const discovery = createDiscoveryService((error) => console.error('letterbox relay: discovery:', error));
  const node = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: [`/${ipProtocol(init.host)}/${init.host}/tcp/${init.wsPort}/ws`] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: RELAY_CONNECTIONS_MAX, inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_HOST_PER_SECOND },
    connectionMonitor: { pingInterval: RELAY_PING_INTERVAL_MS, pingTimeout: { minTimeout: RELAY_PING_TIMEOUT_MS, maxTimeout: RELAY_PING_TIMEOUT_MS } },
    services: {
      identify: identify(),
      ping: ping(),
      relay: circuitRelayServer({
        reservations: {
          maxReservations: RESERVATIONS_MAX,
          reservationTtl: RESERVATION_TTL_MS,
          defaultDurationLimit: RELAYED_DURATION_MS,
          defaultDataLimit: BigInt(RELAYED_DATA_BYTES),
        },
      }),
    },
  });
  await node.handle(DISCOVERY_PROTOCOL, discovery.handle, { maxInboundStreams: 4 });
  return {
    multiaddrs: node.getMultiaddrs().map(String),
    peerId: node.peerId.toString(),
    discovery,
    stop: async () => {
      await node.stop();
    },
  };
}
