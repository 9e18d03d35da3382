import { transfer, wrap, type Remote } from 'comlink';
import { median, quantile } from '../stats';
import type { BenchCase, BenchFigure } from '../types';
import type { RawWorkerApi, Throughput } from '../workers/raw-api';

// The raw baselines: what the browser itself delivers on this machine, measured in a
// DedicatedWorker with 1 KiB random records. Every later figure is a ratio to one of these.

const RECORD_BYTES = 1024;
const BATCH_RECORDS = 1000;
const BATCHES = 48;
const RTT_ROUNDS = 400;

let worker: Remote<RawWorkerApi> | undefined;
const rawWorker = () =>
  (worker ??= wrap<RawWorkerApi>(new Worker(new URL('../workers/raw.worker.ts', import.meta.url), { type: 'module' })));

const rates = (id: string, t: Throughput): BenchFigure[] => [
  { id, value: t.records / (t.ms / 1000), unit: 'records/s', better: 'higher' },
  { id: `${id}.mbps`, value: t.bytes / 1e6 / (t.ms / 1000), unit: 'MB/s', better: 'higher' },
];

/** Round trips over a MessagePort to the worker: `message()` builds each request. */
async function roundTrips(rounds: number, message: () => number | ArrayBuffer): Promise<number[]> {
  const { port1, port2 } = new MessageChannel();
  rawWorker().serve(transfer(port2, [port2]));
  const times: number[] = [];
  const once = () =>
    new Promise<number>((resolve) => {
      const request = message();
      const start = performance.now();
      port1.onmessage = () => resolve(performance.now() - start);
      port1.postMessage(request, typeof request === 'number' ? [] : [request]);
    });
  for (let i = 0; i < rounds / 10; i++) await once(); // warm up
  for (let i = 0; i < rounds; i++) times.push(await once());
  port1.close();
  return times;
}

const latency = (id: string, times: number[]): BenchFigure[] => [
  { id, value: median(times), unit: 'ms', better: 'lower' },
  { id: `${id}.p99`, value: quantile(times, 0.99), unit: 'ms', better: 'lower' },
];

export const cases: BenchCase[] = [
  {
    id: 'raw.idb.put',
    title: 'IndexedDB put of 1000-record (1 MiB) batches, one relaxed transaction each',
    runs: 3,
    async run() {
      await rawWorker().reset();
      return rates('raw.idb.put', await rawWorker().idbPut(BATCHES, BATCH_RECORDS, RECORD_BYTES));
    },
  },
  {
    id: 'raw.idb.read',
    title: 'IndexedDB getAll of those batches',
    runs: 3,
    async run() {
      await rawWorker().reset();
      await rawWorker().idbPut(BATCHES, BATCH_RECORDS, RECORD_BYTES);
      return rates('raw.idb.read', await rawWorker().idbRead(BATCH_RECORDS));
    },
  },
  {
    id: 'raw.idb.rtt',
    title: 'page → worker → one 1 KiB put in its own transaction → page',
    async run() {
      return latency('raw.idb.rtt', await roundTrips(RTT_ROUNDS, () => new Uint8Array(RECORD_BYTES).buffer));
    },
  },
  {
    id: 'raw.postmessage.rtt',
    title: 'page ↔ worker postMessage round trip of a number',
    async run() {
      return latency('raw.postmessage.rtt', await roundTrips(RTT_ROUNDS * 5, () => 1));
    },
  },
  {
    id: 'raw.crc32c',
    title: 'CRC32C (src/protocol) over 1 MiB batches, in the worker',
    async run() {
      const t = await rawWorker().crc32c(256, BATCH_RECORDS * RECORD_BYTES);
      return [{ id: 'raw.crc32c', value: t.bytes / 1e6 / (t.ms / 1000), unit: 'MB/s', better: 'higher' }];
    },
  },
];
