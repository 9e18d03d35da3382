import { Letterbox } from '../../../src/client';
import { quantile } from '../stats';
import { readable, receiveOfType } from '../pipe';
import type { BenchCase, BenchContext, BenchFigure, BenchPipe } from '../types';
import { IN_FLIGHT, latencyFigures, produceMbps, splitTopic } from '../routed';

// Peer RPC between the brokers of two tabs (worker → page → libp2p over direct WebRTC → page
// → worker), measured against the raw baselines of ./network.ts: bulk one-way messages against
// a raw data channel, a small request/response against an echo on a bare libp2p stream.

const MESSAGE_BYTES = 64 * 1024;
const BULK_MESSAGES = 256; // 16 MiB per run, as raw.datachannel
const RTT_ROUNDS = 400;
/** Rounds run first and not counted, as the baselines do. */
const RTT_WARMUP_ROUNDS = RTT_ROUNDS / 10;
const ECHO_BYTES = 32;
/** Bounds of the set-up (discovery and a WebRTC dial took up to ~6 s before a retry) and of one run. */
const SETUP_TIMEOUT_MS = 45_000;
const RUN_TIMEOUT_MS = 120_000;

type PipeMessage =
  | { type: 'rpc'; cluster: string }
  | { type: 'rpc-ready'; peerId: string }
  /** Asks the peer page for its long tasks since the last ask. */
  | { type: 'rpc-longtasks' }
  | { type: 'rpc-longtasks-count'; longTasks: number; probe: ProbeFigures };

/** One Letterbox per bench page, kept across runs, in the cluster the two pages agree on over the pipe. */
let node: { cluster: string; letterbox: Letterbox } | undefined;
function letterboxIn(context: BenchContext, cluster: string): Letterbox {
  if (context.relayUrl === undefined) throw new Error('the peer RPC benchmark needs the relay');
  // WebRTC between the two tabs, as between devices: not the local transport (net.local.*).
  node ??= { cluster, letterbox: new Letterbox({ clientId: 'bench-rpc', cluster, relay: context.relayUrl, localPeers: false }) };
  return node.letterbox;
}

const receive = <T extends PipeMessage['type']>(pipe: BenchPipe, type: T) => receiveOfType<PipeMessage, T>(pipe, type, SETUP_TIMEOUT_MS);

/** This page's Letterbox and the peer page's id, once they are directly connected. */
async function connected(context: BenchContext): Promise<{ letterbox: Letterbox; peerId: string }> {
  const letterbox = letterboxIn(context, node?.cluster ?? `bench-rpc-${crypto.randomUUID()}`);
  context.peer!.send({ type: 'rpc', cluster: node!.cluster } satisfies PipeMessage);
  const { peerId } = await receive(context.peer!, 'rpc-ready');
  const deadline = Date.now() + SETUP_TIMEOUT_MS;
  while (!(await letterbox.peers()).some((peer) => peer.peerId === peerId)) {
    if (Date.now() > deadline) throw new Error(`no direct connection to the peer page within ${SETUP_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { letterbox, peerId };
}


/** How long a task queued on the page waited to run: what input would lag by (ms). */
interface ProbeFigures {
  p99: number;
  max: number;
}
/** A probe task is queued this often. */
const PROBE_INTERVAL_MS = 10;

/**
 * Queues a task on the page every PROBE_INTERVAL_MS (a MessageChannel message: not clamped
 * like nested timers) and records how long each waited; `take()` returns the figures since the last take.
 */
function startProbe(): { take(): ProbeFigures } {
  let delays: number[] = [];
  const { port1, port2 } = new MessageChannel();
  port1.onmessage = (event: MessageEvent<number>) => delays.push(performance.now() - event.data);
  setInterval(() => port2.postMessage(performance.now()), PROBE_INTERVAL_MS);
  return {
    take() {
      const taken = delays;
      delays = [];
      return taken.length === 0 ? { p99: 0, max: 0 } : { p99: quantile(taken, 0.99), max: Math.max(...taken) };
    },
  };
}
let probe: { take(): ProbeFigures } | undefined;

/** Counts the page's long tasks (over 50 ms) while `work` runs. */
async function countingLongTasks<T>(work: () => Promise<T>): Promise<{ result: T; longTasks: number }> {
  let longTasks = 0;
  const observer = new PerformanceObserver((list) => (longTasks += list.getEntries().length));
  observer.observe({ type: 'longtask' });
  try {
    const result = await work().catch((error: unknown) => {
      throw readable(error);
    });
    return { result, longTasks };
  } finally {
    observer.disconnect();
  }
}

/** The peer page: joins the cluster it is told, says its peer id, and counts its long tasks for the measuring page. */
async function serve(context: BenchContext): Promise<void> {
  let longTasks = 0;
  new PerformanceObserver((list) => (longTasks += list.getEntries().length)).observe({ type: 'longtask' });
  probe ??= startProbe();
  for (;;) {
    const message = (await context.peer!.receive()) as PipeMessage;
    if (message.type === 'rpc') {
      const letterbox = letterboxIn(context, message.cluster);
      context.peer!.send({ type: 'rpc-ready', peerId: await letterbox.peerId() } satisfies PipeMessage);
    } else if (message.type === 'rpc-longtasks') {
      context.peer!.send({ type: 'rpc-longtasks-count', longTasks, probe: probe.take() } satisfies PipeMessage);
      longTasks = 0;
    }
  }
}

export const cases: BenchCase[] = [
  {
    id: 'net.rpc.throughput',
    title: 'peer RPC: one-way 64 KiB messages between the brokers of two tabs (MB/s), and meanwhile the pages’ long tasks and how long a task queued every 10 ms waited (.probe)',
    baselines: ['raw.datachannel.mbps'],
    needs: ['relay', 'peer-tab'],
    runs: 3,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      // Zeroes the receiver's count, so that it covers the transfer and not the set-up.
      context.peer!.send({ type: 'rpc-longtasks' } satisfies PipeMessage);
      await receive(context.peer!, 'rpc-longtasks-count');
      probe ??= startProbe();
      probe.take();
      const { result, longTasks } = await countingLongTasks(() => letterbox.probePeer(peerId, { messageBytes: MESSAGE_BYTES, count: BULK_MESSAGES, timeoutMs: RUN_TIMEOUT_MS }));
      context.peer!.send({ type: 'rpc-longtasks' } satisfies PipeMessage);
      const sender = probe.take();
      const receiver = await receive(context.peer!, 'rpc-longtasks-count');
      return [
        { id: 'net.rpc.throughput', value: result.mbps, unit: 'MB/s', better: 'higher', baseline: 'raw.datachannel.mbps' },
        { id: 'net.rpc.throughput.longtasks', value: longTasks, unit: 'tasks > 50 ms (sender)', better: 'lower' },
        { id: 'net.rpc.throughput.longtasks.receiver', value: receiver.longTasks, unit: 'tasks > 50 ms (receiver)', better: 'lower' },
        { id: 'net.rpc.throughput.probe.p99', value: sender.p99, unit: 'ms a queued task waited (sender)', better: 'lower' },
        { id: 'net.rpc.throughput.probe.max', value: sender.max, unit: 'ms (sender)', better: 'lower' },
        { id: 'net.rpc.throughput.probe.receiver.p99', value: receiver.probe.p99, unit: 'ms (receiver)', better: 'lower' },
        { id: 'net.rpc.throughput.probe.receiver.max', value: receiver.probe.max, unit: 'ms (receiver)', better: 'lower' },
      ];
    },
    serve,
  },
  {
    id: 'net.rpc.rtt',
    title: 'peer RPC: 32-byte echo request/response between the brokers (workers) of two tabs; .page: the same from the page',
    baselines: ['raw.libp2p.rtt'],
    needs: ['relay', 'peer-tab'],
    runs: 3,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      // Worker to worker (timed in the worker), as the goal is stated; the same from the page
      // adds a Comlink call's two page↔worker hops (~0.1 ms here), reported apart.
      const { rttMs } = await letterbox.probePeerRtt(peerId, { messageBytes: ECHO_BYTES, rounds: RTT_WARMUP_ROUNDS + RTT_ROUNDS }).catch((error: unknown) => {
        throw readable(error);
      });
      const times = rttMs.slice(RTT_WARMUP_ROUNDS);
      const payload = new Uint8Array(ECHO_BYTES).fill(7);
      const fromPage: number[] = [];
      for (let round = 0; round < RTT_WARMUP_ROUNDS + RTT_ROUNDS; round++) {
        const start = performance.now();
        await letterbox.echo(peerId, payload);
        if (round >= RTT_WARMUP_ROUNDS) fromPage.push(performance.now() - start);
      }
      return [
        { id: 'net.rpc.rtt', value: quantile(times, 0.5), unit: 'ms', better: 'lower', baseline: 'raw.libp2p.rtt' },
        { id: 'net.rpc.rtt.p99', value: quantile(times, 0.99), unit: 'ms', better: 'lower' },
        { id: 'net.rpc.rtt.page', value: quantile(fromPage, 0.5), unit: 'ms (from the page, via the worker)', better: 'lower' },
      ];
    },
    serve,
  },
  {
    id: 'cluster.produce.routed',
    title: `producer.sendBatch of 1000 × 1 KiB per call, acks 1, ${IN_FLIGHT} calls in flight, to a partition led by the broker of another tab over WebRTC (worker → page → libp2p → page → worker → its IndexedDB) (MB/s); .rpc: net.rpc.throughput between the same brokers just before, the ratio's baseline (goal ≥ 0.7)`,
    needs: ['relay', 'peer-tab'],
    runs: 3,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      const { topic, there } = await splitTopic(letterbox, SETUP_TIMEOUT_MS, async () => JSON.stringify(await (await letterbox.node()).clusterInfo()));
      const { mbps: rpc } = await letterbox.probePeer(peerId, { messageBytes: MESSAGE_BYTES, count: BULK_MESSAGES, timeoutMs: RUN_TIMEOUT_MS }).catch((error: unknown) => {
        throw readable(error);
      });
      return [
        { id: 'cluster.produce.routed', value: await produceMbps(letterbox, topic, there), unit: 'MB/s', better: 'higher', baseline: 'cluster.produce.routed.rpc' },
        { id: 'cluster.produce.routed.rpc', value: rpc, unit: 'MB/s (net.rpc.throughput, same run)', better: 'higher' },
      ];
    },
    serve,
  },
  {
    id: 'cluster.latency.routed',
    title: 'one 1 KiB record at a time, producer.send → eachMessage on the producer\'s page, the partition led by the broker of another tab over WebRTC (p50); .base: the same to a partition led by this page\'s broker (node.latency) plus a peer RPC round trip between the brokers (net.rpc.rtt), both measured by this case; ratio .base ÷ routed (goal ≥ 0.75)',
    needs: ['relay', 'peer-tab'],
    runs: 3,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      const split = await splitTopic(letterbox, SETUP_TIMEOUT_MS, async () => JSON.stringify(await (await letterbox.node()).clusterInfo()));
      return latencyFigures(letterbox, split, 'cluster.latency.routed', 'net.rpc.rtt', async () => {
        const { rttMs } = await letterbox.probePeerRtt(peerId, { messageBytes: ECHO_BYTES, rounds: RTT_WARMUP_ROUNDS + RTT_ROUNDS, timeoutMs: RUN_TIMEOUT_MS }).catch((error: unknown) => {
          throw readable(error);
        });
        return quantile(rttMs.slice(RTT_WARMUP_ROUNDS), 0.5);
      });
    },
    serve,
  },
];
