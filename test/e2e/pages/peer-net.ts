// The network layer alone, for end-to-end tests that need libp2p's connections: the page's
// network (src/network) and the worker's peer RPC (src/network/worker) run in this page,
// joined by a MessageChannel, with no broker. `?relay=…&cluster=…` joins a cluster.
import type { Connection } from '@libp2p/interface';
import type { PeerRpc } from '../../../src/network/worker';
import './peer-net-api';

// Patched before libp2p loads: its WebRTC transport takes the constructor when its module is evaluated.
let blocked = false;
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Original {
  constructor(configuration?: RTCConfiguration) {
    super(configuration);
    if (blocked) queueMicrotask(() => this.close());
  }
} as typeof RTCPeerConnection;

// `?direct=0`: this page cannot open a direct channel (as where the RTCPeerConnection is out of reach), so broker bytes go through it.
if (new URLSearchParams(location.search).get('direct') === '0') {
  const createDataChannel = Original.prototype.createDataChannel;
  Original.prototype.createDataChannel = function (this: RTCPeerConnection, label: string, init?: RTCDataChannelInit) {
    if (init?.negotiated === true) throw new DOMException('direct channels are off in this test page', 'NotSupportedError');
    return createDataChannel.call(this, label, init);
  };
}

const { PEER_PROTOCOL, createSlotKey, isDirectConnection, slotKeyFromBytes, startPeerNetwork } = await import('../../../src/network');
const { createPeerLink, createPeerRpc } = await import('../../../src/network/worker');
const { rawFrame } = await import('../../support/raw-frame');

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
  dataPaths: () => link.peers().map((p) => p.dataPath ?? 'unknown'),
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
  async dialRelayed(peerId) {
    // Our own address through the relay names it: `…/p2p/<relay>/p2p-circuit/p2p/<self>`.
    const through = network.libp2p.getMultiaddrs().map(String).find((a) => a.includes('/p2p-circuit'));
    if (through === undefined) throw new Error('no reservation on the relay');
    const { multiaddr } = await import('@multiformats/multiaddr');
    const connection = await network.libp2p.dial(multiaddr(`${through.slice(0, through.indexOf('/p2p-circuit'))}/p2p-circuit/p2p/${peerId}`), { signal: AbortSignal.timeout(10_000) });
    return { limited: connection.limits !== undefined };
  },
  async brokerStreamOnRelay(peerId) {
    const relayed = to(peerId).find((c) => c.limits !== undefined && c.status === 'open');
    if (relayed === undefined) return 'no relayed connection';
    try {
      const stream = await relayed.newStream(PEER_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5_000) });
      // The protocol is agreed before the peer checks the connection's limits: a refusal is a reset just after.
      if (stream.status === 'open') {
        await new Promise((resolve) => {
          stream.addEventListener('close', resolve, { once: true });
          setTimeout(resolve, 5_000);
        });
      }
      const status = stream.status;
      stream.abort(new Error('test'));
      return status;
    } catch (error) {
      return (error as Error).name;
    }
  },
  brokerStreamsOnLimitedMax: () => limitedMax,
  async attack(peerId) {
    // Straight onto the link, past this page's own RPC: nothing checks these frames before the target does.
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const randomBytes = (length: number) => Uint8Array.from({ length }, () => Math.floor(random() * 256));
    const concat = (parts: Uint8Array[]) => {
      const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
      parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
      return out;
    };
    const rounds: Array<() => Uint8Array> = [
      // Floods of echo requests, 30k frames in all (the frame rate allows 20k a second), and unknown types and versions.
      ...Array.from({ length: 30 }, (_, r) => () => concat(Array.from({ length: 1000 }, (_, i) => rawFrame(1, r * 1000 + i + 1, randomBytes(16))))),
      ...Array.from({ length: 20 }, (_, r) => () => rawFrame(2 + Math.floor(random() * 60000), r + 1, randomBytes(32), { version: r % 2 === 0 ? 0 : 9 })),
      // Oversized (claims 64 MiB), truncated (the rest never comes), then random bytes.
      () => {
        const frame = rawFrame(1, 1, new Uint8Array(0));
        new DataView(frame.buffer).setUint32(0, 64 * 1024 * 1024);
        return frame;
      },
      () => rawFrame(1, 2, randomBytes(100)).subarray(0, 20),
      ...Array.from({ length: 1000 }, () => () => randomBytes(1 + Math.floor(random() * 16384))),
    ];
    let sentBytes = 0;
    for (const round of rounds) {
      const bytes = round();
      try {
        await link.send(peerId, bytes, { signal: AbortSignal.timeout(3_000) });
      } catch (error) {
        // No room for 3 s: the target's data channel is full (it stopped reading).
        return { sentBytes, stoppedBy: (error as Error).name };
      }
      sentBytes += bytes.length;
    }
    return { sentBytes, stoppedBy: 'nothing' };
  },
};
document.body.dataset['ready'] = 'true';
