import { expose } from 'comlink';
import { openDB, deleteDB, type IDBPDatabase } from 'idb';
import { crc32c } from '../../../src/protocol';
import type { RawWorkerApi } from './raw-api';

const DB_NAME = 'letterbox-bench-raw';
let db: IDBPDatabase | undefined;

async function open(): Promise<IDBPDatabase> {
  db ??= await openDB(DB_NAME, 1, {
    upgrade(d) {
      d.createObjectStore('batches');
      d.createObjectStore('records');
    },
  });
  return db;
}

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  // getRandomValues fills at most 64 KiB per call.
  for (let at = 0; at < length; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(length, at + 65536)));
  return bytes;
}

/** A few distinct random batches, reused round-robin so generating them is not measured. */
const pool = (count: number, bytes: number) => Array.from({ length: count }, () => randomBytes(bytes));

const api: RawWorkerApi = {
  async reset() {
    db?.close();
    db = undefined;
    await deleteDB(DB_NAME);
  },

  async idbPut(batches, batchRecords, recordBytes) {
    const d = await open();
    const values = pool(4, batchRecords * recordBytes);
    const start = performance.now();
    for (let i = 0; i < batches; i++) {
      const tx = d.transaction('batches', 'readwrite', { durability: 'relaxed' });
      void tx.store.put(values[i % values.length]!.buffer, i);
      await tx.done;
    }
    const ms = performance.now() - start;
    return { records: batches * batchRecords, bytes: batches * batchRecords * recordBytes, ms };
  },

  async idbRead(batchRecords) {
    const d = await open();
    const start = performance.now();
    const all = (await d.getAll('batches')) as ArrayBuffer[];
    const ms = performance.now() - start;
    const bytes = all.reduce((sum, b) => sum + b.byteLength, 0);
    return { records: all.length * batchRecords, bytes, ms };
  },

  async crc32c(batches, batchBytes) {
    const values = pool(4, batchBytes);
    let sink = 0;
    const start = performance.now();
    for (let i = 0; i < batches; i++) sink ^= crc32c(values[i % values.length]!);
    const ms = performance.now() - start;
    if (sink === 0.5) throw new Error('unreachable: keeps the checksum from being optimised away');
    return { records: batches, bytes: batches * batchBytes, ms };
  },

  serve(port) {
    port.onmessage = async (event: MessageEvent<number | ArrayBuffer>) => {
      const message = event.data;
      if (typeof message === 'number') {
        port.postMessage(message);
        return;
      }
      const d = await open();
      const tx = d.transaction('records', 'readwrite', { durability: 'relaxed' });
      void tx.store.put(message, 'rtt');
      await tx.done;
      port.postMessage(0);
    };
  },
};

expose(api);
