import { describe, expect, it, vi } from 'vitest';
import {
  InvalidOffsetError,
  InvalidRecordError,
  LetterboxError,
  OffsetOutOfRangeError,
  RecordBatchTooLargeError,
  StorageFullError,
} from '../../src/errors';
import { realClock } from '../../src/clock';
import { createLogManager, READ_AHEAD_LOGS_MAX, RECOVERY_CHECKPOINT_MS, TAIL_CACHE_LOGS_MAX } from '../../src/log';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage';
import { batchOf, recordsOf } from './batches';

const id = { topic: 'orders', partition: 0 };
const all = { maxBytes: Infinity };

async function setup(storage: MemoryStorage = createMemoryStorage(), config = {}) {
  const logs = createLogManager(storage);
  return { storage, logs, log: await logs.open(id, config) };
}

describe('append and read', () => {
  it('assigns offsets in order and reads them back up to the high watermark', async () => {
    const { log } = await setup();
    expect(await log.append(batchOf(['a', 'b', 'c']))).toEqual({ baseOffset: 0, lastOffset: 2 });
    expect(await log.append(batchOf(['d']))).toEqual({ baseOffset: 3, lastOffset: 3 });
    expect(log.logEndOffset).toBe(4);
    expect(log.highWatermark).toBe(4);
    expect(recordsOf(await log.read(0, all)).map((r) => r[2])).toEqual(['a', 'b', 'c', 'd']);
    // The first batch holds offset 1; readers skip what lies before it.
    expect(recordsOf(await log.read(1, all), 1).map((r) => r[0])).toEqual([1, 2, 3]);
    expect(await log.read(4, all)).toEqual([]);
  });

  it('bounds reads by bytes and records, always returning at least one batch', async () => {
    const { log } = await setup();
    for (let i = 0; i < 5; i++) await log.append(batchOf([`r${i}a`, `r${i}b`]));
    expect(await log.read(0, { maxBytes: 1 })).toHaveLength(1);
    expect(await log.read(0, { maxBytes: Infinity, maxRecords: 3 })).toHaveLength(2);
    expect(await log.read(3, { maxBytes: Infinity, maxRecords: 1 })).toHaveLength(1);
  });

  it('refuses offsets outside the log with OffsetOutOfRangeError', async () => {
    const { log } = await setup();
    await log.append(batchOf(['a']));
    for (const offset of [-1, 2, 1.5, Number.NaN]) {
      await expect(log.read(offset, all)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    }
    await expect(log.read(2, all)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE', topic: 'orders', partition: 0, offset: 2 });
  });
});

describe('bad input', () => {
  it('a corrupt, truncated or oversized batch is refused; the log goes on', async () => {
    const { log } = await setup(createMemoryStorage(), { maxMessageBytes: 200 });
    const good = batchOf(['ok']);
    const flipped = good.slice();
    flipped[flipped.length - 1]! ^= 0xff;
    await expect(log.append(flipped)).rejects.toMatchObject({ code: 'CORRUPT_MESSAGE' });
    await expect(log.append(good.subarray(0, 30))).rejects.toBeInstanceOf(LetterboxError);
    await expect(log.append(new Uint8Array(0))).rejects.toBeInstanceOf(LetterboxError);
    await expect(log.append(batchOf(['x'.repeat(300)]))).rejects.toBeInstanceOf(RecordBatchTooLargeError);
    expect(await log.append(good)).toEqual({ baseOffset: 0, lastOffset: 0 });
  });

  it('a compacted topic refuses records without a key', async () => {
    const { log } = await setup(createMemoryStorage(), { cleanupPolicy: 'compact' });
    await expect(log.append(batchOf([{ key: 'k', value: 'v' }, { value: 'no key' }]))).rejects.toBeInstanceOf(InvalidRecordError);
    expect(log.logEndOffset).toBe(0);
  });
});

describe('group commit', () => {
  it('puts concurrent appends to several partitions into one transaction', async () => {
    const storage = createMemoryStorage();
    const logs = createLogManager(storage);
    const parts = await Promise.all([0, 1, 2, 3].map((partition) => logs.open({ topic: 't', partition })));
    const before = storage.writeCount;
    const results = await Promise.all(parts.flatMap((log) => [log.append(batchOf(['a'])), log.append(batchOf(['b']))]));
    expect(storage.writeCount - before).toBe(1);
    expect(logs.transactions).toBe(1);
    expect(results.map((r) => r.baseOffset)).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
  });

  it('a lone append is not held back: it commits with no timer', async () => {
    const { log, logs } = await setup();
    await log.append(batchOf(['alone']));
    expect(logs.transactions).toBe(1);
  });

  it('appends made while a flush is in flight go together in the next one', async () => {
    const { log, logs } = await setup();
    const first = log.append(batchOf(['1']));
    await Promise.resolve(); // the first flush starts
    await Promise.resolve();
    const rest = [log.append(batchOf(['2'])), log.append(batchOf(['3'])), log.append(batchOf(['4']))];
    await Promise.all([first, ...rest]);
    expect(logs.transactions).toBeLessThanOrEqual(2);
    expect(recordsOf(await log.read(0, all)).map((r) => r[2])).toEqual(['1', '2', '3', '4']);
  });
});

describe('durability and recovery', () => {
  it('reopening finds every acknowledged batch at the same offsets', async () => {
    const { storage, log } = await setup();
    for (let i = 0; i < 10; i++) await log.append(batchOf([`v${i}`, `w${i}`]));
    const reopened = await createLogManager(storage).open(id);
    expect(reopened.logEndOffset).toBe(20);
    expect(recordsOf(await reopened.read(0, all))).toEqual(recordsOf(await log.read(0, all)));
    expect(await reopened.append(batchOf(['next']))).toEqual({ baseOffset: 20, lastOffset: 20 });
  });

  it('truncates a corrupt tail at open', async () => {
    const { storage, log } = await setup();
    for (let i = 0; i < 4; i++) await log.append(batchOf([`v${i}`]));
    const tail = storage.storedBatch(id, 3)!;
    tail[tail.length - 1]! ^= 0x01;
    const reopened = await createLogManager(storage).open(id);
    expect(reopened.logEndOffset).toBe(3);
    expect(recordsOf(await reopened.read(0, all)).map((r) => r[2])).toEqual(['v0', 'v1', 'v2']);
    expect(await reopened.append(batchOf(['again']))).toEqual({ baseOffset: 3, lastOffset: 3 });
  });

  it('truncates from the first bad batch after the recovery point, and everything after it', async () => {
    const { storage, log } = await setup();
    for (let i = 0; i < 6; i++) await log.append(batchOf([`v${i}`]));
    storage.storedBatch(id, 2)![20]! ^= 0x10; // inside the CRC-covered part of the header
    const reopened = await createLogManager(storage).open(id);
    expect(reopened.logEndOffset).toBe(2);
    expect(reopened.sizeBytes).toBe((await reopened.read(0, all)).reduce((n, b) => n + b.length, 0));
    // The removed batches are gone from storage, not just hidden: a later open agrees.
    await reopened.append(batchOf(['new']));
    const again = await createLogManager(storage).open(id);
    expect(again.logEndOffset).toBe(3);
    expect(recordsOf(await again.read(0, all)).map((r) => r[2])).toEqual(['v0', 'v1', 'new']);
  });

  it('a checkpoint (a clean close, or every minute in the background) marks what is stored as checked: the next open checks only the last batch', async () => {
    // Timestamps of now: the maintenance round's retention keeps them.
    const { storage, logs, log } = await setup();
    for (let i = 0; i < 6; i++) await log.append(batchOf([`v${i}`], Date.now()));
    vi.useFakeTimers();
    try {
      const maintenance = logs.maintainInBackground();
      await vi.advanceTimersByTimeAsync(RECOVERY_CHECKPOINT_MS);
      maintenance.stop();
      vi.useRealTimers();
      // Rot below the checkpoint is found by readers (their CRC check), not by a slow open.
      storage.storedBatch(id, 2)![20]! ^= 0x10;
      const reopened = await createLogManager(storage).open(id);
      expect(reopened.logEndOffset).toBe(6);
      // Appended after the checkpoint and not yet checkpointed: checked at open again.
      for (let i = 6; i < 9; i++) await reopened.append(batchOf([`v${i}`], Date.now()));
      storage.storedBatch(id, 7)![20]! ^= 0x10;
      const unchecked = createLogManager(storage);
      expect((await unchecked.open(id)).logEndOffset).toBe(7);
      const checkpointed = await unchecked.open(id);
      for (const value of ['v7 again', 'v8 again']) await checkpointed.append(batchOf([value], Date.now()));
      await unchecked.checkpoint();
      storage.storedBatch(id, 7)![20]! ^= 0x10;
      expect((await createLogManager(storage).open(id)).logEndOffset).toBe(9);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a failed transaction (quota) fails the append whole, keeps what was stored, and appends work again', async () => {
    const { storage, log } = await setup();
    await log.append(batchOf(['kept']));
    storage.setFull(true);
    const failed = await log.append(batchOf(['lost', 'lost'])).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StorageFullError);
    expect((failed as StorageFullError).retriable).toBe(true);
    expect(log.logEndOffset).toBe(1);
    storage.setFull(false);
    expect(await log.append(batchOf(['after']))).toEqual({ baseOffset: 1, lastOffset: 1 });
    expect(recordsOf(await log.read(0, all)).map((r) => r[2])).toEqual(['kept', 'after']);
  });
});

describe('truncation (replication)', () => {
  it('removes the suffix from the batch holding the offset; appends continue there', async () => {
    const storage = createMemoryStorage();
    const log = await createLogManager(storage).open(id, {}, { highWatermark: 'replicated' });
    await log.append(batchOf(['a', 'b']));
    await log.append(batchOf(['c', 'd']));
    await log.append(batchOf(['e']));
    log.advanceHighWatermark(2);
    await log.truncateTo(3);
    expect(log.logEndOffset).toBe(2);
    await expect(log.truncateTo(1)).rejects.toBeInstanceOf(InvalidOffsetError);
    expect(await log.append(batchOf(['x']))).toEqual({ baseOffset: 2, lastOffset: 2 });
    log.advanceHighWatermark(3);
    expect(recordsOf(await log.read(0, all)).map((r) => r[2])).toEqual(['a', 'b', 'x']);
  });

  it('a follower append must continue the log exactly', async () => {
    const log = await createLogManager(createMemoryStorage()).open(id, {}, { highWatermark: 'replicated' });
    const leaderBatch = batchOf(['a']);
    await expect(log.append(leaderBatch.slice(), { keepOffsets: true })).resolves.toEqual({ baseOffset: 0, lastOffset: 0 });
    await expect(log.append(leaderBatch.slice(), { keepOffsets: true })).rejects.toBeInstanceOf(InvalidOffsetError);
    expect(log.highWatermark).toBe(0); // the owner advances it, not the append
    expect(await log.read(0, all)).toEqual([]);
    expect(await log.read(0, { maxBytes: Infinity, endOffset: log.logEndOffset })).toHaveLength(1);
  });
});

describe('ListOffsets', () => {
  it('finds earliest, latest and the first offset at or after a timestamp', async () => {
    const { log } = await setup();
    await log.append(batchOf([{ value: 'a', timestamp: 1000 }, { value: 'b', timestamp: 2000 }], 1000));
    await log.append(batchOf([{ value: 'c', timestamp: 3000 }, { value: 'd', timestamp: 4000 }], 3000));
    expect(await log.offsetFor('earliest')).toBe(0);
    expect(await log.offsetFor('latest')).toBe(4);
    expect(await log.offsetFor({ timestamp: 0 })).toBe(0);
    expect(await log.offsetFor({ timestamp: 1500 })).toBe(1);
    expect(await log.offsetFor({ timestamp: 3000 })).toBe(2);
    expect(await log.offsetFor({ timestamp: 3500 })).toBe(3);
    expect(await log.offsetFor({ timestamp: 5000 })).toBeUndefined();
  });
});

describe('retention', () => {
  it('deletes whole batches older than retention.ms, only below the high watermark', async () => {
    const { log } = await setup(createMemoryStorage(), { retentionMs: 1000 });
    await log.append(batchOf(['old1'], 1_000));
    await log.append(batchOf(['old2'], 2_000));
    await log.append(batchOf(['new'], 10_000));
    expect(await log.enforceRetention(10_500)).toBe(2);
    expect(log.logStartOffset).toBe(2);
    await expect(log.read(0, all)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect(recordsOf(await log.read(2, all)).map((r) => r[2])).toEqual(['new']);
    expect(await log.offsetFor('earliest')).toBe(2);
  });

  it('a round in flight when its partition is deleted writes nothing after the delete (a topic created again under the name gets none of it)', async () => {
    const memory = createMemoryStorage();
    let gate: (() => void) | undefined;
    let reached: () => void = () => undefined;
    const reading = new Promise<void>((resolve) => (reached = resolve));
    const storage: MemoryStorage = {
      ...memory,
      async readSummaries(...args) {
        const summaries = await memory.readSummaries(...args);
        if (gate === undefined && holding) {
          reached();
          await new Promise<void>((resolve) => (gate = resolve));
        }
        return summaries;
      },
    };
    let holding = false;
    const { logs, log } = await setup(storage, { retentionMs: 1000 });
    await log.append(batchOf(['old'], 1_000));
    await log.append(batchOf(['new'], 10_000));
    holding = true;
    const round = logs.maintain(10_500); // retention reads the summaries, then would write
    await reading;
    await logs.delete(id);
    gate!();
    await round;
    expect(await memory.readMeta(id)).toBeUndefined();
    expect(await memory.listPartitions()).toEqual([]);
  });

  it('keeps at least retention.bytes, deleting the oldest batches beyond it', async () => {
    const { storage, log } = await setup(createMemoryStorage(), { retentionBytes: 1, retentionMs: -1 });
    for (let i = 0; i < 5; i++) await log.append(batchOf([`v${i}`]));
    const batchBytes = log.sizeBytes / 5;
    log.setConfig({ ...log.config, retentionBytes: batchBytes * 2 });
    expect(await log.enforceRetention(0)).toBe(3);
    expect(log.logStartOffset).toBe(3);
    expect(log.sizeBytes).toBe(batchBytes * 2);
    const reopened = await createLogManager(storage).open(id);
    expect(reopened.logStartOffset).toBe(3);
    expect(reopened.logEndOffset).toBe(5);
  });

  it('never deletes at or above the high watermark', async () => {
    const log = await createLogManager(createMemoryStorage()).open(id, { retentionMs: 0 }, { highWatermark: 'replicated' });
    await log.append(batchOf(['a'], 1));
    await log.append(batchOf(['b'], 1));
    log.advanceHighWatermark(1);
    log.setRemovableThrough(2); // raft's compaction point is past both: the high watermark bounds it
    expect(await log.enforceRetention(1e12)).toBe(1);
    expect(log.logStartOffset).toBe(1);
  });

  it('deleteRecordsBefore moves the log start and drops whole batches below it', async () => {
    const { log } = await setup();
    await log.append(batchOf(['a', 'b']));
    await log.append(batchOf(['c']));
    expect(await log.deleteRecordsBefore(1)).toBe(1);
    await expect(log.read(0, all)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect(recordsOf(await log.read(1, all), 1).map((r) => r[2])).toEqual(['b', 'c']);
    await expect(log.deleteRecordsBefore(9)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
    expect(await log.deleteRecordsBefore(-1)).toBe(3);
  });
});

describe('compaction', () => {
  const drain = async (logs: ReturnType<typeof createLogManager>, now: number) => {
    let steps = 0;
    while (await logs.maintain(now)) steps++;
    return steps;
  };

  it('keeps the latest record per key with unchanged offsets and per-key order', async () => {
    const { logs, log } = await setup(createMemoryStorage(), { cleanupPolicy: 'compact' });
    await log.append(batchOf([{ key: 'a', value: 'a1' }, { key: 'b', value: 'b1' }]));
    await log.append(batchOf([{ key: 'a', value: 'a2' }, { key: 'c', value: 'c1' }]));
    await log.append(batchOf([{ key: 'b', value: 'b2' }]));
    expect(await drain(logs, 0)).toBeGreaterThan(0);
    expect(recordsOf(await log.read(0, all))).toEqual([
      [2, 'a', 'a2'],
      [3, 'c', 'c1'],
      [4, 'b', 'b2'],
    ]);
    expect(log.logEndOffset).toBe(5);
    expect(await log.append(batchOf([{ key: 'a', value: 'a3' }]))).toEqual({ baseOffset: 5, lastOffset: 5 });
  });

  it('drops tombstones only after delete.retention.ms', async () => {
    const { logs, log } = await setup(createMemoryStorage(), { cleanupPolicy: 'compact', deleteRetentionMs: 1000 });
    await log.append(batchOf([{ key: 'a', value: 'a1' }], 5000));
    await log.append(batchOf([{ key: 'a', value: null }], 5000));
    await log.append(batchOf([{ key: 'z', value: 'z' }], 5000));
    await drain(logs, 5500);
    expect(recordsOf(await log.read(0, all))).toEqual([
      [1, 'a', null],
      [2, 'z', 'z'],
    ]);
    await drain(logs, 7000);
    expect(recordsOf(await log.read(0, all))).toEqual([[2, 'z', 'z']]);
  });

  it('keeps the last batch even when all its records are superseded (the log end must not move back)', async () => {
    const storage = createMemoryStorage();
    const logs = createLogManager(storage);
    const log = await logs.open(id, { cleanupPolicy: 'compact', deleteRetentionMs: 0 });
    await log.append(batchOf([{ key: 'a', value: 'a1' }], 1));
    await log.append(batchOf([{ key: 'a', value: null }], 1));
    await drain(logs, 1000);
    expect(recordsOf(await log.read(0, all))).toEqual([]);
    const reopened = await createLogManager(storage).open(id, { cleanupPolicy: 'compact' });
    expect(reopened.logEndOffset).toBe(2);
  });
});

describe('background maintenance', () => {
  it('applies retention on its interval and compacts in steps, each in its own task', async () => {
    vi.useFakeTimers();
    try {
      const storage = createMemoryStorage();
      let clock = 500;
      // The real timers (faked by vitest) with a wall clock of the test's own.
      const logs = createLogManager(storage, { clock: { ...realClock, now: () => clock } });
      const log = await logs.open(id, { retentionMs: 1000 });
      const compacted = await logs.open({ topic: 'kv', partition: 0 }, { cleanupPolicy: 'compact' });
      await log.append(batchOf(['old'], 0));
      for (let i = 0; i < 3; i++) await compacted.append(batchOf([{ key: 'k', value: `v${i}` }]));
      const errors: unknown[] = [];
      const maintenance = logs.maintainInBackground({ intervalMs: 10_000, onError: (e) => errors.push(e) });
      await vi.advanceTimersByTimeAsync(100);
      expect(log.logStartOffset).toBe(0); // not expired yet at 500
      expect(recordsOf(await compacted.read(0, all))).toEqual([[2, 'k', 'v2']]);
      clock = 5000;
      await vi.advanceTimersByTimeAsync(9_000);
      expect(log.logStartOffset).toBe(0); // the next round is due at 10 s
      await vi.advanceTimersByTimeAsync(1_000);
      expect(log.logStartOffset).toBe(1);
      maintenance.stop();
      expect(errors).toEqual([]);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('waiting for data', () => {
  it('a fetch waiting at the end is woken by the append, with no timer firing', async () => {
    vi.useFakeTimers();
    try {
      const { log } = await setup();
      let woken = false;
      const waiting = log.waitForData(0).then(() => (woken = true));
      await Promise.resolve();
      expect(woken).toBe(false);
      await log.append(batchOf(['wake up']));
      await waiting;
      expect(woken).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('resolves at once past the high watermark, and on abort', async () => {
    const { log } = await setup();
    await log.append(batchOf(['a']));
    await log.waitForData(0);
    const controller = new AbortController();
    const waiting = log.waitForData(1, controller.signal);
    controller.abort();
    await waiting;
    expect(log.highWatermark).toBe(1);
  });
});

describe('read-ahead', () => {
  it('serves a sequential reader from the chunk read ahead, and never a stale one after a rewrite', async () => {
    const storage = createMemoryStorage();
    const writer = await createLogManager(storage).open(id);
    for (let i = 0; i < 6; i++) await writer.append(batchOf([`v${i}`]));
    // A reopened log has no tail cache: its reads come from storage.
    const reader = await createLogManager(storage).open(id, {}, { highWatermark: 'replicated' });
    reader.advanceHighWatermark(4);
    const twoBatches = { maxBytes: 100, endOffset: 6 }; // a batch here is ~70 bytes
    expect(recordsOf(await reader.read(0, twoBatches)).map((r) => r[2])).toEqual(['v0', 'v1']);
    expect(recordsOf(await reader.read(2, twoBatches)).map((r) => r[2])).toEqual(['v2', 'v3']); // from the read-ahead
    // The read-ahead now holds v4 and v5; a truncation and a new append must not be hidden by it.
    await reader.truncateTo(4);
    await reader.append(batchOf(['replaced']));
    await reader.append(batchOf(['new']));
    expect(recordsOf(await reader.read(4, twoBatches)).map((r) => r[2])).toEqual(['replaced', 'new']);
  });

  it(`keeps a read-ahead for the ${READ_AHEAD_LOGS_MAX} most recently read partitions only, and every reader still gets its batches in order`, async () => {
    const storage = createMemoryStorage();
    const partitions = Array.from({ length: READ_AHEAD_LOGS_MAX * 2 }, (_, partition) => ({ topic: 'orders', partition }));
    const writers = createLogManager(storage);
    for (const partition of partitions) {
      const log = await writers.open(partition);
      for (let i = 0; i < 6; i++) await log.append(batchOf([`p${partition.partition}v${i}`]));
    }
    // Reopened: no tail cache, so reads come from storage and read ahead.
    const readers = createLogManager(storage);
    const logs = await Promise.all(partitions.map((partition) => readers.open(partition)));
    const oneBatch = { maxBytes: 1 };
    const readingAhead = () => logs.map((log) => log.readingAhead);
    for (const log of logs) await log.read(0, oneBatch);
    // Only the most recently read keep theirs.
    expect(readingAhead()).toEqual(logs.map((_, i) => i >= logs.length - READ_AHEAD_LOGS_MAX));
    // A reader whose read-ahead was dropped reads from storage again, and keeps one from then on.
    expect(recordsOf(await logs[0]!.read(1, oneBatch), 1).map((r) => r[2])).toEqual(['p0v1']);
    expect(readingAhead()[0]).toBe(true);
    expect(readingAhead().filter(Boolean)).toHaveLength(READ_AHEAD_LOGS_MAX);
    for (const [p, log] of logs.entries()) {
      const seen: string[] = [];
      for (let at = p === 0 ? 2 : 1; at < log.highWatermark; at++) seen.push(...recordsOf(await log.read(at, oneBatch), at).map((r) => r[2]!));
      expect(seen).toEqual(Array.from({ length: 6 }, (_, i) => `p${p}v${i}`).slice(p === 0 ? 2 : 1));
    }
  });

  it(`keeps a tail cache for the ${TAIL_CACHE_LOGS_MAX} partitions most recently appended to only: a reader at the tail of another reads storage`, async () => {
    const memory = createMemoryStorage();
    let storageReads = 0;
    const storage: typeof memory = {
      ...memory,
      async readBatches(...args) {
        storageReads++;
        return memory.readBatches(...args);
      },
    };
    const logs = createLogManager(storage);
    const partitions = Array.from({ length: TAIL_CACHE_LOGS_MAX * 2 }, (_, partition) => ({ topic: 'orders', partition }));
    const opened = await Promise.all(partitions.map((partition) => logs.open(partition)));
    for (const [p, log] of opened.entries()) await log.append(batchOf([`p${p}`]));
    const readsFor = async (p: number) => {
      const before = storageReads;
      expect(recordsOf(await opened[p]!.read(0, all)).map((r) => r[2])).toEqual([`p${p}`]);
      return storageReads - before;
    };
    // The most recently appended to are served from memory; the first ones lost their cache and read storage.
    for (let p = opened.length - TAIL_CACHE_LOGS_MAX; p < opened.length; p++) expect(await readsFor(p)).toBe(0);
    for (let p = 0; p < opened.length - TAIL_CACHE_LOGS_MAX; p++) expect(await readsFor(p)).toBe(1);
    // An append makes a partition recent again.
    await opened[0]!.append(batchOf(['p0 again']));
    const before = storageReads;
    expect(recordsOf(await opened[0]!.read(1, all), 1).map((r) => r[2])).toEqual(['p0 again']);
    expect(storageReads).toBe(before);
  });

  it('a sequential reader crossing many summary windows gets every batch once, in order', async () => {
    const storage = createMemoryStorage();
    const writer = await createLogManager(storage).open(id);
    await Promise.all(Array.from({ length: 700 }, (_, i) => writer.append(batchOf([`v${i}`]))));
    const reader = await createLogManager(storage).open(id);
    const seen: string[] = [];
    for (let at = 0; at < reader.highWatermark; ) {
      const records = recordsOf(await reader.read(at, { maxBytes: 150 }), at);
      seen.push(...records.map((r) => r[2]!));
      at = records.at(-1)![0] + 1;
    }
    expect(seen).toEqual(Array.from({ length: 700 }, (_, i) => `v${i}`));
  });

  it('a read overlapping a truncation is read again, never mixing old summaries with new batches', async () => {
    const memory = createMemoryStorage();
    let gate: Promise<void> | undefined;
    const storage: typeof memory = {
      ...memory,
      async readBatches(...args) {
        await gate;
        return memory.readBatches(...args);
      },
    };
    const writer = await createLogManager(storage).open(id);
    for (let i = 0; i < 6; i++) await writer.append(batchOf([`v${i}`]));
    const reader = await createLogManager(storage).open(id, {}, { highWatermark: 'replicated' });
    reader.advanceHighWatermark(4);
    let open = () => {};
    gate = new Promise((resolve) => (open = resolve));
    // Chosen from the summaries of v4 and v5 (two batches), then held at the gate.
    const reading = reader.read(4, { maxBytes: Infinity, endOffset: 6 });
    await reader.truncateTo(4);
    gate = undefined;
    await reader.append(batchOf(['r4', 'r5']));
    await reader.append(batchOf(['r6']));
    open();
    // Two batches from 4 would now include r6, past the read's end: the read must be done again.
    expect(recordsOf(await reading).map((r) => r[2])).toEqual(['r4', 'r5']);
  });
});
