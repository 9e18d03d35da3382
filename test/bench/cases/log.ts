import { wrap, type Remote } from 'comlink';
import type { BenchCase, BenchFigure } from '../types';
import type { LogWorkerApi } from '../workers/log-api';
import type { Throughput } from '../workers/raw-api';

// The partition log on IndexedDB in a DedicatedWorker, against the raw baselines.

const RECORD_BYTES = 1024;
const RECORDS = 48_000; // the same 48 MiB as raw.idb.put
const PER_CALL = 1000;
/**
 * Batch size, as the producer will default to: ~1 MiB. Measured here: 1 MiB batches append at
 * 0.64–0.87 and read at 0.71–0.89 of raw; 60 KiB batches (under IndexedDB's 64 KiB
 * separate-file threshold) only 0.45–0.53 and 0.18–0.30 — per-value costs dominate.
 */
const BATCH_BYTES = 1024 * 1024;
const MIB = 1024 * 1024;

let worker: Remote<LogWorkerApi> | undefined;
const logWorker = () =>
  (worker ??= wrap<LogWorkerApi>(new Worker(new URL('../workers/log.worker.ts', import.meta.url), { type: 'module' })));

const rates = (id: string, t: Throughput, baseline: string): BenchFigure[] => [
  { id, value: t.records / (t.ms / 1000), unit: 'records/s', better: 'higher', baseline },
  { id: `${id}.mbps`, value: t.bytes / 1e6 / (t.ms / 1000), unit: 'MB/s', better: 'higher', baseline: `${baseline}.mbps` },
];

/** The log worker's JavaScript heap after a full GC, in bytes. */
async function workerHeapBytes(): Promise<number> {
  await logWorker().collectGarbage();
  const measure = (performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<{ breakdown: Array<{ bytes: number; attribution: Array<{ scope?: string; url?: string }> }> }> })
    .measureUserAgentSpecificMemory;
  if (measure === undefined || !crossOriginIsolated) throw new Error('log.heap needs a cross-origin isolated page in Chromium');
  const result = await measure.call(performance);
  return result.breakdown
    .filter((entry) => entry.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope' && (a.url ?? '').includes('log.worker')))
    .reduce((sum, entry) => sum + entry.bytes, 0);
}

export const cases: BenchCase[] = [
  {
    id: 'log.append',
    title: 'log append of pre-encoded 1 KiB records, 1000 per call in ~1 MiB batches, group-committed',
    baselines: ['raw.idb.put'],
    runs: 3,
    async run() {
      await logWorker().reset();
      return rates('log.append', await logWorker().append(RECORDS, RECORD_BYTES, PER_CALL, BATCH_BYTES), 'raw.idb.put');
    },
  },
  {
    id: 'log.read',
    title: 'log read of those records in 1 MiB fetches, as stored (consumers check CRCs)',
    baselines: ['raw.idb.read'],
    runs: 3,
    async run() {
      await logWorker().reset();
      await logWorker().append(RECORDS, RECORD_BYTES, PER_CALL, BATCH_BYTES);
      return rates('log.read', await logWorker().read(), 'raw.idb.read');
    },
  },
  {
    id: 'log.heap',
    title: "worker heap after appending 1 GiB ÷ after 100 MiB (memory must not grow with the log)",
    runs: 1,
    async run() {
      await logWorker().reset();
      const recordsPerMiB = MIB / RECORD_BYTES;
      await logWorker().append(100 * recordsPerMiB, RECORD_BYTES, PER_CALL, BATCH_BYTES);
      const after100 = await workerHeapBytes();
      await logWorker().append(924 * recordsPerMiB, RECORD_BYTES, PER_CALL, BATCH_BYTES);
      const after1024 = await workerHeapBytes();
      return [
        { id: 'log.heap', value: after1024 / after100, unit: '×', better: 'lower' },
        { id: 'log.heap.100mib', value: after100 / 1e6, unit: 'MB', better: 'lower' },
        { id: 'log.heap.1gib', value: after1024 / 1e6, unit: 'MB', better: 'lower' },
      ];
    },
  },
];
