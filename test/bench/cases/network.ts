import type { Stream } from '@libp2p/interface';
import { createSlotKey, isDirectConnection, slotKeyFromBytes, startPeerNetwork, type PeerNetwork } from '../../../src/network';
import { quantile } from '../stats';
import type { BenchCase, BenchContext, BenchFigure, BenchPipe } from '../types';

// The network baselines issue 9's peer RPC is measured against: a raw RTCDataChannel between
// two tabs of one browser and between two browser processes, and an echo over a libp2p
// stream on a direct WebRTC connection set up by src/network through the relay.

/**
 * Bytes per message: 16 KiB, as libp2p's WebRTC streams send them. 64 KiB messages, measured
 * here before, ran slower on this machine and so flattered `net.rpc.throughput`'s ratio.
 */
const MESSAGE_BYTES = 16 * 1024;
const BULK_BYTES = 16 * 1024 * 1024;
const BULK_MESSAGES = BULK_BYTES / MESSAGE_BYTES;
/** Bytes queued in the data channel before the sender waits; NOTES-browser.md found no gain above 1 MiB. */
const HIGH_WATER_BYTES = 1024 * 1024;
const RTT_ROUNDS = 400;
const ECHO_BYTES = 32;
const ECHO_PROTOCOL = '/letterbox/bench/echo/1.0.0';
/** Bounds of the set-up steps (a WebRTC dial here took up to ~6 s before a retry). */
const SETUP_TIMEOUT_MS = 30_000;

type PipeMessage = { type: 'offer'; sdp: string } | { type: 'answer'; sdp: string } | { type: 'libp2p'; cluster: string } | { type: 'libp2p-ready'; peerId: string };

const bounded = <T>(promise: Promise<T>, what: string): Promise<T> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took over ${SETUP_TIMEOUT_MS} ms`)), SETUP_TIMEOUT_MS))]);

async function receive<T extends PipeMessage['type']>(pipe: BenchPipe, type: T): Promise<Extract<PipeMessage, { type: T }>> {
  for (;;) {
    const message = (await bounded(pipe.receive(), `waiting for ${type}`)) as PipeMessage;
    if (message.type === type) return message as Extract<PipeMessage, { type: T }>;
  }
}

/** The local description once ICE gathering is complete (no trickle: one message each way). */
async function describe(pc: RTCPeerConnection, description: RTCSessionDescriptionInit): Promise<string> {
  await pc.setLocalDescription(description);
  if (pc.iceGatheringState !== 'complete') {
    await bounded(new Promise<void>((resolve) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve())), 'ICE gathering');
  }
  return pc.localDescription!.sdp;
}

/** Messages of a data channel (or anything with onmessage), one at a time. */
function inbox(channel: RTCDataChannel): () => Promise<unknown> {
  const queued: unknown[] = [];
  const waiting: Array<(data: unknown) => void> = [];
  channel.onmessage = (event) => {
    const resolve = waiting.shift();
    if (resolve !== undefined) resolve(event.data);
    else queued.push(event.data);
  };
  return () => (queued.length > 0 ? Promise.resolve(queued.shift()) : new Promise((resolve) => waiting.push(resolve)));
}

// WARM_UP: every bulk figure here is timed on the second transfer of its connection. The first
// one on a new connection can stall for ~0.5–0.8 s (an SCTP retransmission inside Chromium after
// its first burst, NOTES-browser.md), and the peer RPC figures compared with these reuse one
// connection across runs: a cold baseline against warm runs flattered their ratio.

/** Sends BULK_BYTES on `channel` in MESSAGE_BYTES messages, keeping at most HIGH_WATER_BYTES buffered; resolves when the peer has them all. */
async function sendBulk(channel: RTCDataChannel, next: () => Promise<unknown>): Promise<void> {
  const payload = new Uint8Array(MESSAGE_BYTES).map((_, i) => i);
  channel.bufferedAmountLowThreshold = HIGH_WATER_BYTES / 2;
  channel.send(`bulk:${BULK_BYTES}`);
  for (let i = 0; i < BULK_MESSAGES; i++) {
    if (channel.bufferedAmount > HIGH_WATER_BYTES) await new Promise((resolve) => channel.addEventListener('bufferedamountlow', resolve, { once: true }));
    channel.send(payload);
  }
  await bounded(next(), 'the bulk transfer'); // 'done' once the peer has every byte
}

/** An open data channel to a peer whose answer `answer(offerSdp)` brings back (signalled over the bench pipe, or a BroadcastChannel). */
async function openDataChannel(answer: (offer: string) => Promise<string>): Promise<{ pc: RTCPeerConnection; channel: RTCDataChannel; next: () => Promise<unknown> }> {
  const pc = new RTCPeerConnection({ iceServers: [] });
  try {
    const channel = pc.createDataChannel('bench', { ordered: true });
    channel.binaryType = 'arraybuffer';
    const next = inbox(channel);
    await pc.setRemoteDescription({ type: 'answer', sdp: await answer(await describe(pc, await pc.createOffer())) });
    if (channel.readyState !== 'open') await bounded(new Promise((resolve) => channel.addEventListener('open', resolve, { once: true })), 'data channel open');
    return { pc, channel, next };
  } catch (error) {
    pc.close();
    throw error;
  }
}

/** Signalling between raw.datachannel.fanout's sender and its sink tabs, on a BroadcastChannel of their origin. */
type FanoutSignal = { type: 'sink'; id: string } | { type: 'offer'; to: string; sdp: string } | { type: 'answer'; from: string; sdp: string } | { type: 'close' };
const FANOUT_SINKS = 2;

/** Data channels from this page to FANOUT_SINKS sink tabs it opens (`noopener`, so each is a tab of its own, not this page's auxiliary); `close` ends them and the tabs. */
async function openSinks(): Promise<{ links: Array<Awaited<ReturnType<typeof openDataChannel>>>; close(): void }> {
  const name = `letterbox-bench-fanout-${crypto.randomUUID()}`;
  const signals = new BroadcastChannel(name);
  const inboxOf = new Map<string, (message: FanoutSignal) => void>();
  const sinks: string[] = [];
  let sinkArrived: (() => void) | undefined;
  signals.onmessage = ({ data }: MessageEvent<FanoutSignal>) => {
    if (data.type === 'sink') {
      sinks.push(data.id);
      sinkArrived?.();
    } else if (data.type === 'answer') {
      inboxOf.get(data.from)?.(data);
    }
  };
  const links: Array<Awaited<ReturnType<typeof openDataChannel>>> = [];
  const close = () => {
    links.forEach(({ pc }) => pc.close());
    signals.postMessage({ type: 'close' } satisfies FanoutSignal);
    signals.close();
  };
  try {
    for (let i = 0; i < FANOUT_SINKS; i++) window.open(`${location.pathname}?sink=${name}`, '_blank', 'noopener');
    while (sinks.length < FANOUT_SINKS) await bounded(new Promise<void>((resolve) => (sinkArrived = resolve)), 'the sink tabs');
    for (const sink of sinks) {
      links.push(
        await openDataChannel(async (sdp) => {
          const answered = new Promise<FanoutSignal>((resolve) => inboxOf.set(sink, resolve));
          signals.postMessage({ type: 'offer', to: sink, sdp } satisfies FanoutSignal);
          const answer = await bounded(answered, 'a sink’s answer');
          return answer.type === 'answer' ? answer.sdp : '';
        }),
      );
    }
    return { links, close };
  } catch (error) {
    close();
    throw error;
  }
}

/**
 * One tab sends BULK_BYTES to each of FANOUT_SINKS other tabs at once, on a data channel each:
 * what a partition leader replicating to two followers asks of the browser. The figure is the
 * rate of the stream fanned out (each byte delivered to both sinks counted once), so that it
 * compares with the rate a leader takes records in and replicates them to both followers.
 */
async function measureFanout(): Promise<BenchFigure[]> {
  const { links, close } = await openSinks();
  try {
    await Promise.all(links.map(({ channel, next }) => sendBulk(channel, next))); // untimed (WARM_UP)
    const start = performance.now();
    await Promise.all(links.map(({ channel, next }) => sendBulk(channel, next)));
    const seconds = (performance.now() - start) / 1000;
    return [
      { id: 'raw.datachannel.fanout.mbps', value: BULK_BYTES / 1e6 / seconds, unit: 'MB/s (of the stream, each byte delivered to both sinks)', better: 'higher' },
      { id: 'raw.datachannel.fanout.total.mbps', value: (FANOUT_SINKS * BULK_BYTES) / 1e6 / seconds, unit: 'MB/s (delivered, both sinks together)', better: 'higher' },
    ];
  } finally {
    close();
  }
}

/** Rounds of raw.replication.round, after as many again tenth warm-up rounds. */
const REPLICATION_ROUNDS = 200;
const REPLICATED_BYTES = 1024;

/**
 * What one durable write of 1 KiB costs in the shape a partition's write takes (the batch's
 * bytes and its summary, two object stores, one relaxed transaction), in `db`.
 */
function durableWrite(db: IDBDatabase, offset: number, bytes: ArrayBuffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(['batches', 'summaries'], 'readwrite', { durability: 'relaxed' });
    const key = ['bench', 0, offset];
    tx.objectStore('batches').put(bytes, key);
    tx.objectStore('summaries').put({ lastOffset: offset, maxTimestamp: Date.now(), sizeBytes: bytes.byteLength, raftIndex: offset + 1, epoch: 1 }, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.commit();
  });
}

/** A fresh database of this origin with a partition log's two stores (as the slots' databases are: one origin's IndexedDB backend for all). */
function openReplicaDb(): Promise<IDBDatabase> {
  const name = `letterbox-bench-replica-${crypto.randomUUID()}`;
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore('batches');
      request.result.createObjectStore('summaries');
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * The floor of a replicated acks -1 write on this browser, with no Letterbox code: this page
 * writes 1 KiB durably (durableWrite) and sends it to two sink tabs over raw data channels at
 * once; each sink writes it durably in its own database of this origin and answers; a round
 * ends when this page's write is durable and one sink has answered (a majority of three).
 * Also, measured alongside: this page's write alone, and a 1 KiB echo with a sink.
 */
async function measureReplicationRound(): Promise<BenchFigure[]> {
  const { links, close } = await openSinks();
  const db = await openReplicaDb();
  const bytes = new Uint8Array(REPLICATED_BYTES).map((_, i) => i).buffer;
  const rounds = { round: [] as number[], write: [] as number[], echo: [] as number[], routed: [] as number[] };
  let offset = 0;
  try {
    for (let i = 0; i < REPLICATION_ROUNDS * 1.1; i++) {
      const timed = i >= REPLICATION_ROUNDS * 0.1;
      let start = performance.now();
      const acks = links.map(({ next }) => next());
      const written = durableWrite(db, offset++, bytes);
      for (const { channel } of links) channel.send(bytes);
      await Promise.all([written, Promise.race(acks)]);
      if (timed) rounds.round.push(performance.now() - start);
      await Promise.all(acks);

      start = performance.now();
      await durableWrite(db, offset++, bytes);
      if (timed) rounds.write.push(performance.now() - start);

      const { channel, next } = links[0]!;
      start = performance.now();
      channel.send(`e${'.'.repeat(REPLICATED_BYTES - 1)}`);
      await next();
      if (timed) rounds.echo.push(performance.now() - start);

      start = performance.now();
      channel.send(bytes);
      await next();
      if (timed) rounds.routed.push(performance.now() - start);
    }
    const round = quantile(rounds.round, 0.5);
    const write = quantile(rounds.write, 0.5);
    return [
      { id: 'raw.replication.round', value: round, unit: 'ms (p50)', better: 'lower' },
      { id: 'raw.replication.write', value: write, unit: 'ms (p50: this page’s write alone)', better: 'lower' },
      { id: 'raw.replication.rtt', value: quantile(rounds.echo, 0.5), unit: 'ms (p50: a 1 KiB echo with a sink)', better: 'lower' },
      { id: 'raw.replication.added', value: round - write, unit: 'ms (round − write: what replication adds to a local durable write)', better: 'lower' },
      { id: 'raw.replication.routed', value: quantile(rounds.routed, 0.5), unit: 'ms (p50: 1 KiB sent to a sink, written there durably, answered)', better: 'lower' },
    ];
  } finally {
    db.close();
    indexedDB.deleteDatabase(db.name);
    close();
  }
}

/** A bench page opened as a fanout sink: answers the sender's offer with an echoing, counting data channel until told to close. */
function serveFanoutSink(name: string): void {
  const id = crypto.randomUUID();
  const signals = new BroadcastChannel(name);
  let pc: RTCPeerConnection | undefined;
  signals.onmessage = async ({ data }: MessageEvent<FanoutSignal>) => {
    if (data.type === 'close') {
      pc?.close();
      signals.close();
      window.close();
    } else if (data.type === 'offer' && data.to === id) {
      pc = new RTCPeerConnection({ iceServers: [] });
      pc.ondatachannel = (event) => serveDataChannel(event.channel);
      await pc.setRemoteDescription({ type: 'offer', sdp: data.sdp });
      signals.postMessage({ type: 'answer', from: id, sdp: await describe(pc, await pc.createAnswer()) } satisfies FanoutSignal);
    }
  };
  signals.postMessage({ type: 'sink', id } satisfies FanoutSignal);
}

// A page opened by measureFanout serves as a sink (the bench page loads every case module).
const sinkName = new URLSearchParams(location.search).get('sink');
if (sinkName !== null) serveFanoutSink(sinkName);

async function measureDataChannel(id: string, pipe: BenchPipe): Promise<BenchFigure[]> {
  const { pc, channel, next } = await openDataChannel(async (sdp) => {
    pipe.send({ type: 'offer', sdp } satisfies PipeMessage);
    return (await receive(pipe, 'answer')).sdp;
  });
  try {
    const times: number[] = [];
    for (let round = 0; round < RTT_ROUNDS * 1.1; round++) {
      const start = performance.now();
      channel.send('p.');
      await next();
      if (round >= RTT_ROUNDS * 0.1) times.push(performance.now() - start); // the first tenth warms up
    }

    await sendBulk(channel, next); // untimed: the first bulk transfer on a new connection stalls (WARM_UP)
    const start = performance.now();
    await sendBulk(channel, next);
    const seconds = (performance.now() - start) / 1000;
    return [
      { id: `${id}.mbps`, value: BULK_BYTES / 1e6 / seconds, unit: 'MB/s', better: 'higher' },
      { id: `${id}.rtt`, value: quantile(times, 0.5), unit: 'ms', better: 'lower' },
      { id: `${id}.rtt.p99`, value: quantile(times, 0.99), unit: 'ms', better: 'lower' },
    ];
  } finally {
    pc.close();
  }
}

/**
 * The peer side of a data channel: echoes strings, counts bulk bytes and says `done`; a binary
 * message outside a bulk transfer is a replicated write (raw.replication.round): written
 * durably to this tab's own database, then answered `a`.
 */
function serveDataChannel(channel: RTCDataChannel): void {
  channel.binaryType = 'arraybuffer';
  let expected = 0;
  let received = 0;
  let db: Promise<IDBDatabase> | undefined;
  let offset = 0;
  channel.onclose = () => void db?.then((d) => (d.close(), indexedDB.deleteDatabase(d.name)));
  channel.onmessage = ({ data }) => {
    if (typeof data === 'string') {
      if (data.startsWith('bulk:')) {
        expected = Number(data.slice(5));
        received = 0;
      } else {
        channel.send(data);
      }
    } else if (expected === 0) {
      db ??= openReplicaDb();
      void db.then((d) => durableWrite(d, offset++, data as ArrayBuffer)).then(() => channel.send('a'));
    } else if ((received += (data as ArrayBuffer).byteLength) >= expected) {
      expected = 0;
      channel.send('done');
    }
  };
}

let network: { cluster: string; started: Promise<PeerNetwork> } | undefined;
/** One network per bench page (kept across runs), in a cluster the two pages agree on over the pipe. */
function benchNetwork(context: BenchContext, cluster: string): { cluster: string; started: Promise<PeerNetwork> } {
  if (context.relayUrl === undefined) throw new Error('the libp2p benchmark needs the relay');
  const relay = context.relayUrl;
  network ??= {
    cluster,
    started: (async () => {
      const privateKey = slotKeyFromBytes(await createSlotKey());
      const net = await startPeerNetwork({ cluster, relay, privateKey, port: new MessageChannel().port1 });
      await net.libp2p.handle(ECHO_PROTOCOL, (stream) => stream.addEventListener('message', (event) => stream.send(event.data)));
      return net;
    })(),
  };
  return network;
}

/**
 * An echo stream to `peerId` on the direct connection the network adopted. Retried within the
 * set-up bound: a connection can close under a new stream when the other side drops a dial that
 * timed out on this side (src/network closes such half-open connections) — seen here once as
 * `OperationError: User-Initiated Abort, reason=Close called`; the network's redial follows.
 */
async function openEchoStream(net: PeerNetwork, peerId: string): Promise<Stream> {
  const deadline = Date.now() + SETUP_TIMEOUT_MS;
  let lastError: unknown;
  for (;;) {
    const adopted = net.peers().some((peer) => peer.peerId === peerId);
    const connection = adopted ? net.libp2p.getConnections().find((c) => c.remotePeer.toString() === peerId && isDirectConnection(c)) : undefined;
    if (connection !== undefined) {
      try {
        return await connection.newStream(ECHO_PROTOCOL, { signal: AbortSignal.timeout(SETUP_TIMEOUT_MS) });
      } catch (error) {
        lastError = error;
      }
    }
    if (Date.now() > deadline) throw new Error(`no echo stream to the peer within ${SETUP_TIMEOUT_MS} ms (last error: ${String(lastError)})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function measureLibp2pEcho(context: BenchContext): Promise<BenchFigure[]> {
  const pipe = context.peer!;
  const { cluster, started } = benchNetwork(context, `bench-${crypto.randomUUID()}`);
  const net = await started;
  pipe.send({ type: 'libp2p', cluster } satisfies PipeMessage);
  const { peerId } = await receive(pipe, 'libp2p-ready');
  const stream = await openEchoStream(net, peerId);
  let received = 0;
  let echoed: (() => void) | undefined;
  stream.addEventListener('message', (event) => {
    received += event.data.byteLength;
    if (received >= ECHO_BYTES) {
      received -= ECHO_BYTES;
      echoed?.();
    }
  });
  const payload = new Uint8Array(ECHO_BYTES).fill(7);
  const times: number[] = [];
  for (let round = 0; round < RTT_ROUNDS * 1.1; round++) {
    const start = performance.now();
    await new Promise<void>((resolve) => {
      echoed = resolve;
      stream.send(payload);
    });
    if (round >= RTT_ROUNDS * 0.1) times.push(performance.now() - start);
  }
  await stream.close();
  return [
    { id: 'raw.libp2p.rtt', value: quantile(times, 0.5), unit: 'ms', better: 'lower' },
    { id: 'raw.libp2p.rtt.p99', value: quantile(times, 0.99), unit: 'ms', better: 'lower' },
  ];
}

/** The peer page of every case here: answers offers with an echoing data channel, and joins the libp2p cluster it is told. */
async function serve(context: BenchContext): Promise<void> {
  const pipe = context.peer!;
  let pc: RTCPeerConnection | undefined;
  for (;;) {
    const message = (await pipe.receive()) as PipeMessage;
    if (message.type === 'offer') {
      pc?.close();
      pc = new RTCPeerConnection({ iceServers: [] });
      pc.ondatachannel = (event) => serveDataChannel(event.channel);
      await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
      pipe.send({ type: 'answer', sdp: await describe(pc, await pc.createAnswer()) } satisfies PipeMessage);
    } else if (message.type === 'libp2p') {
      const net = await benchNetwork(context, message.cluster).started;
      pipe.send({ type: 'libp2p-ready', peerId: net.peerId } satisfies PipeMessage);
    }
  }
}

export const cases: BenchCase[] = [
  {
    id: 'raw.datachannel',
    title: 'raw RTCDataChannel between two tabs of one browser: 16 MiB in 16 KiB messages (MB/s), 2-byte round trips',
    needs: ['peer-tab'],
    runs: 3,
    run: (context) => measureDataChannel('raw.datachannel', context.peer!),
    serve,
  },
  {
    id: 'raw.datachannel.fanout',
    title: 'raw RTCDataChannel from one tab to two other tabs at once: 16 MiB to each in 16 KiB messages (MB/s of the stream, each byte delivered to both; .total: both together)',
    runs: 3,
    run: measureFanout,
  },
  {
    id: 'raw.replication',
    title: `the floor of a replicated acks -1 write without Letterbox: one tab writes ${REPLICATED_BYTES} B durably to IndexedDB (a partition write's shape: two stores, one relaxed transaction) and sends it to two other tabs over raw data channels at once, each writing it to its own database of the origin and answering; done when the tab's write is durable and one answer is in (.round p50); .write: the tab's write alone; .rtt: a ${REPLICATED_BYTES} B echo; .added: round − write`,
    runs: 3,
    run: measureReplicationRound,
  },
  {
    id: 'raw.datachannel.xproc',
    title: 'the same between two browser processes',
    needs: ['peer-process'],
    runs: 3,
    run: (context) => measureDataChannel('raw.datachannel.xproc', context.peer!),
    serve,
  },
  {
    id: 'raw.libp2p.rtt',
    title: '32-byte echo over a libp2p stream on a direct WebRTC connection between two tabs (set up through the relay)',
    needs: ['relay', 'peer-tab'],
    runs: 3,
    run: measureLibp2pEcho,
    serve,
  },
];
