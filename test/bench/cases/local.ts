import { wrap, type Remote } from 'comlink';
import { Letterbox } from '../../../src/client';
import { PEER_WINDOW_BYTES, PEER_WINDOW_UPDATE_BYTES } from '../../../src/network/worker';
import { quantile } from '../stats';
import { readable, receiveOfType } from '../pipe';
import type { BenchCase, BenchContext, BenchFigure, BenchPipe } from '../types';
import type { BroadcastWorkerApi } from '../workers/broadcast-api';
import { IN_FLIGHT, latencyFigures, produceMbps, splitTopic } from '../routed';

// The local transport: peer RPC between the brokers (workers) of two tabs of one origin, with
// no relay, against a raw BroadcastChannel between two workers of the same two tabs.

const MESSAGE_BYTES = 64 * 1024;
const BULK_BYTES = 16 * 1024 * 1024;
const RTT_ROUNDS = 400;
const RTT_WARMUP_ROUNDS = RTT_ROUNDS / 10;
const ECHO_BYTES = 32;
/** Set-up (a worker's start and discovery) and one run are bounded by these. */
const SETUP_TIMEOUT_MS = 30_000;
const RUN_TIMEOUT_MS = 60_000;
/** Nothing listens there: the tabs meet without a relay. */
const NO_RELAY = 'http://127.0.0.1:9';

type PipeMessage =
  | { type: 'local'; cluster: string }
  | { type: 'local-ready'; peerId: string }
  | { type: 'broadcast'; channel: string }
  | { type: 'broadcast-ready' }
  | { type: 'info' }
  | { type: 'info-ready'; info: string };

const receive = <T extends PipeMessage['type']>(pipe: BenchPipe, type: T) => receiveOfType<PipeMessage, T>(pipe, type, SETUP_TIMEOUT_MS);

let worker: Remote<BroadcastWorkerApi> | undefined;
const broadcastWorker = () => (worker ??= wrap<BroadcastWorkerApi>(new Worker(new URL('../workers/broadcast.worker.ts', import.meta.url), { type: 'module' })));

/** One Letterbox per page, kept across runs (a new peer page per case joins it). */
let letterbox: Letterbox | undefined;
const cluster = `bench-local-${crypto.randomUUID()}`;
// No adoption: a peer page closed between cases is not to be run on by this one.
const letterboxOf = (name: string) => (letterbox ??= new Letterbox({ clientId: 'bench-local', cluster: name, relay: NO_RELAY, adoptSlots: 0 }));

/** This page's Letterbox and the peer page's id, once its worker sees the peer over the local transport. */
async function connected(context: BenchContext): Promise<{ letterbox: Letterbox; peerId: string }> {
  const own = letterboxOf(cluster);
  context.peer!.send({ type: 'local', cluster } satisfies PipeMessage);
  const { peerId } = await receive(context.peer!, 'local-ready');
  const deadline = Date.now() + SETUP_TIMEOUT_MS;
  while (!(await own.peers()).some((peer) => peer.peerId === peerId && peer.dataPath === 'local')) {
    if (Date.now() > deadline) throw new Error(`the peer page was not met over the local transport within ${SETUP_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { letterbox: own, peerId };
}

/** A fresh channel served by the peer page's worker. */
async function servedChannel(context: BenchContext): Promise<string> {
  const channel = `bench-broadcast-${crypto.randomUUID()}`;
  context.peer!.send({ type: 'broadcast', channel } satisfies PipeMessage);
  await receive(context.peer!, 'broadcast-ready');
  return channel;
}

async function serve(context: BenchContext): Promise<void> {
  for (;;) {
    const message = (await context.peer!.receive()) as PipeMessage;
    if (message.type === 'local') {
      context.peer!.send({ type: 'local-ready', peerId: await letterboxOf(message.cluster).peerId() } satisfies PipeMessage);
    } else if (message.type === 'info') {
      context.peer!.send({ type: 'info-ready', info: JSON.stringify(await (await letterbox!.node()).clusterInfo()) } satisfies PipeMessage);
    } else if (message.type === 'broadcast') {
      await broadcastWorker().serve(message.channel, PEER_WINDOW_UPDATE_BYTES);
      context.peer!.send({ type: 'broadcast-ready' } satisfies PipeMessage);
    }
  }
}

/** Both brokers' view of the cluster, for an error. */
async function explain(context: BenchContext, letterbox: Letterbox): Promise<string> {
  context.peer!.send({ type: 'info' } satisfies PipeMessage);
  const { info } = await receive(context.peer!, 'info-ready');
  return `here ${JSON.stringify(await (await letterbox.node()).clusterInfo())}; the peer ${info}`;
}

/** The raw baseline's bulk transfer, to the peer page's worker (MB/s). */
async function rawMbps(context: BenchContext): Promise<number> {
  const ms = await broadcastWorker().bulk(await servedChannel(context), BULK_BYTES, MESSAGE_BYTES, PEER_WINDOW_BYTES);
  return BULK_BYTES / 1e6 / (ms / 1000);
}

/** The raw baseline's echo round trips, to the peer page's worker (ms each). */
async function rawRtt(context: BenchContext): Promise<number[]> {
  return (await broadcastWorker().rtt(await servedChannel(context), RTT_WARMUP_ROUNDS + RTT_ROUNDS, ECHO_BYTES)).slice(RTT_WARMUP_ROUNDS);
}

// Each net.local run measures its raw baseline again just before itself (`.raw`), on the same
// two tabs, and its ratio is to that: on this shared machine the raw figure alone moved 2–3×
// between cases a minute apart (raw.broadcast.mbps medians 16.8–29.6 MB/s in four runs of the bench).
export const cases: BenchCase[] = [
  {
    id: 'raw.broadcast',
    title: 'raw BroadcastChannel between the workers of two tabs: 16 MiB in 64 KiB messages, the same window as peer RPC (2 MiB, credit every 256 KiB) (MB/s)',
    needs: ['peer-tab'],
    runs: 5,
    async run(context): Promise<BenchFigure[]> {
      return [{ id: 'raw.broadcast.mbps', value: await rawMbps(context), unit: 'MB/s', better: 'higher' }];
    },
    serve,
  },
  {
    id: 'raw.broadcast.rtt',
    title: 'raw BroadcastChannel between the workers of two tabs: 32-byte echo round trip',
    needs: ['peer-tab'],
    runs: 5,
    async run(context): Promise<BenchFigure[]> {
      const times = await rawRtt(context);
      return [
        { id: 'raw.broadcast.rtt', value: quantile(times, 0.5), unit: 'ms', better: 'lower' },
        { id: 'raw.broadcast.rtt.p99', value: quantile(times, 0.99), unit: 'ms', better: 'lower' },
      ];
    },
    serve,
  },
  {
    id: 'net.local.rpc.throughput',
    title: 'peer RPC over the local transport (no relay): one-way 64 KiB messages between the brokers of two tabs (MB/s); .raw: raw.broadcast just before, the ratio\'s baseline',
    baselines: ['raw.broadcast.mbps'],
    needs: ['peer-tab'],
    runs: 5,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      const raw = await rawMbps(context);
      const { mbps } = await letterbox.probePeer(peerId, { messageBytes: MESSAGE_BYTES, count: BULK_BYTES / MESSAGE_BYTES, timeoutMs: RUN_TIMEOUT_MS }).catch((error: unknown) => {
        throw readable(error);
      });
      return [
        { id: 'net.local.rpc.throughput', value: mbps, unit: 'MB/s', better: 'higher', baseline: 'net.local.rpc.throughput.raw' },
        { id: 'net.local.rpc.throughput.raw', value: raw, unit: 'MB/s (raw.broadcast, same run)', better: 'higher' },
      ];
    },
    serve,
  },
  {
    id: 'net.local.rpc.rtt',
    title: 'peer RPC over the local transport (no relay): 32-byte echo between the brokers (workers) of two tabs, timed in the worker; .raw: raw.broadcast.rtt just before, the ratio\'s baseline',
    baselines: ['raw.broadcast.rtt'],
    needs: ['peer-tab'],
    runs: 5,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      const raw = await rawRtt(context);
      const { rttMs } = await letterbox.probePeerRtt(peerId, { messageBytes: ECHO_BYTES, rounds: RTT_WARMUP_ROUNDS + RTT_ROUNDS, timeoutMs: RUN_TIMEOUT_MS }).catch((error: unknown) => {
        throw readable(error);
      });
      const times = rttMs.slice(RTT_WARMUP_ROUNDS);
      return [
        { id: 'net.local.rpc.rtt', value: quantile(times, 0.5), unit: 'ms', better: 'lower', baseline: 'net.local.rpc.rtt.raw' },
        { id: 'net.local.rpc.rtt.raw', value: quantile(raw, 0.5), unit: 'ms (raw.broadcast.rtt, same run)', better: 'lower' },
        { id: 'net.local.rpc.rtt.p99', value: quantile(times, 0.99), unit: 'ms', better: 'lower' },
      ];
    },
    serve,
  },
  {
    id: 'cluster.local.produce.routed',
    title: `producer.sendBatch of 1000 × 1 KiB per call, acks 1, ${IN_FLIGHT} calls in flight, to a partition led by the broker of another tab (worker → local transport → its IndexedDB) (MB/s); .rpc: net.local.rpc.throughput between the same brokers just before, the ratio's baseline (goal ≥ 0.7)`,
    needs: ['peer-tab'],
    runs: 3,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      const { topic, there } = await splitTopic(letterbox, SETUP_TIMEOUT_MS, () => explain(context, letterbox));
      const { mbps: rpc } = await letterbox.probePeer(peerId, { messageBytes: MESSAGE_BYTES, count: BULK_BYTES / MESSAGE_BYTES, timeoutMs: RUN_TIMEOUT_MS }).catch((error: unknown) => {
        throw readable(error);
      });
      return [
        { id: 'cluster.local.produce.routed', value: await produceMbps(letterbox, topic, there), unit: 'MB/s', better: 'higher', baseline: 'cluster.local.produce.routed.rpc' },
        { id: 'cluster.local.produce.routed.rpc', value: rpc, unit: 'MB/s (net.local.rpc.throughput, same run)', better: 'higher' },
      ];
    },
    serve,
  },
  {
    id: 'cluster.local.latency.routed',
    title: 'one 1 KiB record at a time, producer.send → eachMessage on the producer\'s page, the partition led by the broker of another tab (p50); .base: the same to a partition led by this page\'s broker (node.latency) plus a peer RPC round trip between the brokers (net.local.rpc.rtt), both measured by this case; ratio .base ÷ routed (goal ≥ 0.75)',
    needs: ['peer-tab'],
    runs: 3,
    async run(context): Promise<BenchFigure[]> {
      const { letterbox, peerId } = await connected(context);
      const split = await splitTopic(letterbox, SETUP_TIMEOUT_MS, () => explain(context, letterbox));
      return latencyFigures(letterbox, split, 'cluster.local.latency.routed', 'net.local.rpc.rtt', async () => {
        const { rttMs } = await letterbox.probePeerRtt(peerId, { messageBytes: ECHO_BYTES, rounds: RTT_WARMUP_ROUNDS + RTT_ROUNDS, timeoutMs: RUN_TIMEOUT_MS }).catch((error: unknown) => {
          throw readable(error);
        });
        return quantile(rttMs.slice(RTT_WARMUP_ROUNDS), 0.5);
      });
    },
    serve,
  },
];
