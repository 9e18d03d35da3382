import { expose } from 'comlink';
import { deleteDB } from 'idb';
import { createLogManager, type PartitionLog } from '../../../src/log';
import { encodeBatch, readBatchHeader } from '../../../src/protocol';
import { openIndexedDbStorage, type Storage } from '../../../src/storage';
import type { LogWorkerApi } from './log-api';

const DB_NAME = 'letterbox-bench-log';
const id = { topic: 'bench', partition: 0 };
let storage: Storage | undefined;
let log: PartitionLog | undefined;

declare const gc: (() => void) | undefined;

/** One pool of random record values, reused: generating them is not what is measured. */
function randomValues(count: number, bytes: number): Uint8Array[] {
  return Array.from({ length: count }, () => {
    const value = new Uint8Array(bytes);
    for (let at = 0; at < bytes; at += 65536) crypto.getRandomValues(value.subarray(at, Math.min(bytes, at + 65536)));
    return value;
  });
}

const api: LogWorkerApi = {
  async reset() {
    storage?.close();
    await deleteDB(DB_NAME);
    storage = await openIndexedDbStorage(DB_NAME);
    log = await createLogManager(storage).open(id, { retentionMs: -1 });
  },

  async append(records, recordBytes, perCall, batchBytes) {
    const target = log!;
    const values = randomValues(64, recordBytes);
    const perBatch = Math.max(1, Math.floor(batchBytes / (recordBytes + 16)));
    // Producers encode batches (on the page); the log's work starts at the bytes, so only
    // the appends are timed.
    let ms = 0;
    for (let sent = 0; sent < records; sent += perCall) {
      const batches: Uint8Array[] = [];
      const callEnd = Math.min(records, sent + perCall);
      for (let first = sent; first < callEnd; first += perBatch) {
        const batchRecords = [];
        for (let i = first; i < Math.min(callEnd, first + perBatch); i++) {
          batchRecords.push({ offsetDelta: i - first, timestampDelta: 0, key: null, value: values[i % values.length]! });
        }
        batches.push(encodeBatch({ baseTimestamp: Date.now(), records: batchRecords }));
      }
      const start = performance.now();
      await Promise.all(batches.map((batch) => target.append(batch)));
      ms += performance.now() - start;
    }
    return { records, bytes: records * recordBytes, ms };
  },

  async read() {
    const source = log!;
    let records = 0;
    let bytes = 0;
    const start = performance.now();
    for (let at = source.logStartOffset; at < source.highWatermark; ) {
      const batches = await source.read(at, { maxBytes: 1 << 20 });
      for (const batch of batches) bytes += batch.length;
      const last = batches.at(-1);
      if (last === undefined) break;
      const header = readBatchHeader(last);
      const next = header.baseOffset + header.lastOffsetDelta + 1;
      records += next - at;
      at = next;
    }
    return { records, bytes, ms: performance.now() - start };
  },

  collectGarbage() {
    if (typeof gc !== 'function') throw new Error('start Chromium with --js-flags=--expose-gc');
    gc();
  },
};

expose(api);
