// The network layer alone, for end-to-end tests that need libp2p's connections: the page's
// network (src/network) and the worker's peer RPC (src/network/worker) run in this page,
// joined by a MessageChannel, with no broker. `?relay=…&cluster=…` joins a cluster.
import type { Connection } from '@libp2p/interface';
import type { PeerRpc } from '../../../src/network/worker';

export interface PeerNetPage {
  peerId: string;
  /** Peers the RPC layer can reach (direct connections). */
  peers(): string[];
  /** An echo request; its outcome, or the typed error's name and code. */
  echo(peerId: string, timeoutMs: number): Promise<{ ok: true; ms: number } | { ok: false; name: string; code: string; ms: number }>;
  /** Closes the direct WebRTC connections to `peerId`. */
  cut(peerId: string): Promise<number>;
  /** While true, every new RTCPeerConnection of this page is closed at once: no direct connection can form. */
  blockWebRtc(blocked: boolean): void;
  /** Connections to `peerId` now: their kind and the protocols of their open streams. */
  connections(peerId: string): Array<{ limited: boolean; direct: boolean; protocols: string[] }>;
  /** Tries to open a broker stream to `peerId` on a relayed (limited) connection, as a misbehaving node would; the error's name, or 'opened'. */
  brokerStreamOnRelay(peerId: string): Promise<string>;
  /** The most broker streams seen at once on a limited connection since start (sampled every 20 ms and at each new connection). */
  brokerStreamsOnLimitedMax(): number;
}

declare global {
  interface Window {
    peerNet?: PeerNetPage;
  }
}

// Patched before libp2p loads: its WebRTC transport takes the constructor when its module is evaluated.
let blocked = false;
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Original {
  constructor(configuration?: RTCConfiguration) {
    super(configuration);
    if (blocked) queueMicrotask(() => this.close());
  }
} as typeof RTCPeerConnection;

const { PEER_PROTOCOL, createSlotKey, isDirectConnection, slotKeyFromBytes, startPeerNetwork } = await import('../../../src/network');
const { createPeerLink, createPeerRpc } = await import('../../../src/network/worker');

const params = new URLSearchParams(location.search);
const { port1, port2 } = new MessageChannel();
const network = await startPeerNetwork({
  cluster: params.get('cluster') ?? 'peer-net',
  relay: params.get('relay') ?? '',
  privateKey: slotKeyFromBytes(await createSlotKey()),
  port: port1,
});
const link = createPeerLink(port2);
const rpc: PeerRpc = createPeerRpc(link, { admission: { secret: '' } });
rpc.handle('echo', (body) => body);

const to = (peerId: string) => network.libp2p.getConnections().filter((c: Connection) => c.remotePeer.toString() === peerId);
let limitedMax = 0;
const sample = () => {
  for (const connection of network.libp2p.getConnections()) {
    if (connection.limits === undefined) continue;
    limitedMax = Math.max(limitedMax, connection.streams.filter((s) => s.protocol === PEER_PROTOCOL).length);
  }
};
setInterval(sample, 20);
network.libp2p.addEventListener('connection:open', sample);

window.peerNet = {
  peerId: network.peerId,
  peers: () => link.peers().map((p) => p.peerId),
  async echo(peerId, timeoutMs) {
    const started = performance.now();
    try {
      await rpc.request(peerId, 'echo', new Uint8Array([1]), { timeoutMs });
      return { ok: true, ms: performance.now() - started };
    } catch (error) {
      const { name, code } = error as { name: string; code: string };
      return { ok: false, name, code, ms: performance.now() - started };
    }
  },
  async cut(peerId) {
    const direct = to(peerId).filter(isDirectConnection);
    await Promise.all(direct.map((c) => c.close()));
    return direct.length;
  },
  blockWebRtc(on) {
    blocked = on;
  },
  connections: (peerId) =>
    to(peerId).map((c) => ({ limited: c.limits !== undefined, direct: isDirectConnection(c), protocols: c.streams.map((s) => s.protocol ?? '') })),
  async brokerStreamOnRelay(peerId) {
    const relayed = to(peerId).find((c) => c.limits !== undefined && c.status === 'open');
    if (relayed === undefined) return 'no relayed connection';
    try {
      const stream = await relayed.newStream(PEER_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5_000) });
      stream.abort(new Error('test'));
      return 'opened';
    } catch (error) {
      return (error as Error).name;
    }
  },
  brokerStreamsOnLimitedMax: () => limitedMax,
};
document.body.dataset['ready'] = 'true';
