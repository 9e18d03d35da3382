import { expose } from 'comlink';
import { openDB } from 'idb';
import { LetterboxError } from '../../../src/errors';
import { createLogManager, type LogManager, type PartitionLog } from '../../../src/log';
import { decodeBatch, encodeBatch } from '../../../src/protocol';
import { openIndexedDbStorage } from '../../../src/storage';
import type { LogTestApi } from './log-api';

const utf8 = new TextEncoder();
const text = new TextDecoder();
let dbName = '';
let logs: LogManager | undefined;

const manager = () => {
  if (logs === undefined) throw new Error('open() first');
  return logs;
};
const logOf = async (topic: string, partition: number, config = {}): Promise<PartitionLog> =>
  manager().get({ topic, partition }) ?? manager().open({ topic, partition }, config);

const api: LogTestApi = {
  async open(name) {
    dbName = name;
    const storage = await openIndexedDbStorage(name);
    logs = createLogManager(storage);
    for (const id of await storage.listPartitions()) await logs.open(id);
  },

  async append(topic, partition, count, perBatch, options = {}) {
    const log = await logOf(topic, partition, options.config);
    const timestamp = options.timestamp ?? Date.now();
    const appends: Promise<{ lastOffset: number }>[] = [];
    for (let start = 0; start < count; start += perBatch) {
      const records = [];
      for (let i = start; i < Math.min(count, start + perBatch); i++) {
        records.push({
          offsetDelta: i - start,
          timestampDelta: 0,
          key: options.keys ? utf8.encode(`k${i % options.keys}`) : null,
          value: utf8.encode(`${options.prefix ?? 'v'}${i}`),
        });
      }
      appends.push(log.append(encodeBatch({ baseTimestamp: timestamp, records })));
    }
    const results = await Promise.all(appends);
    return results.at(-1)?.lastOffset ?? -1;
  },

  async readAll(topic, partition) {
    const log = await logOf(topic, partition);
    const out: Array<[number, string | null, string | null]> = [];
    for (let at = log.logStartOffset; at < log.highWatermark; ) {
      const batches = await log.read(at, { maxBytes: 4 << 20 });
      if (batches.length === 0) break;
      for (const bytes of batches) {
        const batch = decodeBatch(bytes);
        for (const r of batch.records) {
          const offset = batch.baseOffset + r.offsetDelta;
          if (offset >= at) out.push([offset, r.key === null ? null : text.decode(r.key), r.value === null ? null : text.decode(r.value)]);
        }
        at = batch.baseOffset + batch.lastOffsetDelta + 1;
      }
    }
    return out;
  },

  async offsets(topic, partition) {
    const log = await logOf(topic, partition);
    return { logStartOffset: log.logStartOffset, logEndOffset: log.logEndOffset, highWatermark: log.highWatermark };
  },

  transactions: async () => manager().transactions,

  async corrupt(topic, partition, baseOffset) {
    const db = await openDB(dbName);
    const key = [topic, partition, baseOffset];
    const value = (await db.get('batches', key)) as ArrayBuffer;
    const bytes = new Uint8Array(value);
    bytes[bytes.length - 1]! ^= 0xff;
    await db.put('batches', value, key);
    db.close();
  },

  async maintain(nowMs) {
    let rounds = 1;
    while (await manager().maintain(nowMs)) rounds++;
    return rounds;
  },

  async appendBlob(topic, partition, bytes) {
    const log = await logOf(topic, partition, {});
    log.setConfig({ ...log.config, maxMessageBytes: bytes + 1024 });
    const value = new Uint8Array(bytes);
    for (let at = 0; at < bytes; at += 65536) crypto.getRandomValues(value.subarray(at, Math.min(bytes, at + 65536)));
    try {
      await log.append(encodeBatch({ baseTimestamp: Date.now(), records: [{ offsetDelta: 0, timestampDelta: 0, key: null, value }] }));
      return { outcome: 'ok' };
    } catch (error) {
      if (!(error instanceof LetterboxError)) throw error;
      return { outcome: 'error', name: error.name, code: error.code, retriable: error.retriable };
    }
  },

  async deletePartition(topic, partition) {
    await manager().delete({ topic, partition });
  },
};

expose(api);
