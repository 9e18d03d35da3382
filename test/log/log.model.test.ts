import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidOffsetError } from '../../src/errors';
import { createLogManager, type PartitionLog } from '../../src/log';
import { createMemoryStorage } from '../../src/storage';
import { batchOf, recordsOf } from './batches';

// Model-based test: the log against a plain array of batches, over random operations
// including crashes with appends in flight (a crash reopens the log from storage).

const id = { topic: 'model', partition: 0 };

type Op =
  | { op: 'append'; values: string[] }
  | { op: 'appendAndCrash'; values: string[] }
  | { op: 'advance'; fraction: number }
  | { op: 'truncate'; fraction: number }
  | { op: 'deleteBefore'; fraction: number }
  | { op: 'read'; fraction: number; maxRecords: number }
  | { op: 'crash' };

const values = fc.array(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 4 });
const fraction = fc.double({ min: 0, max: 1, noNaN: true });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: values.map((v) => ({ op: 'append' as const, values: v })) },
  { weight: 1, arbitrary: values.map((v) => ({ op: 'appendAndCrash' as const, values: v })) },
  { weight: 2, arbitrary: fraction.map((f) => ({ op: 'advance' as const, fraction: f })) },
  { weight: 1, arbitrary: fraction.map((f) => ({ op: 'truncate' as const, fraction: f })) },
  { weight: 1, arbitrary: fraction.map((f) => ({ op: 'deleteBefore' as const, fraction: f })) },
  { weight: 3, arbitrary: fc.tuple(fraction, fc.integer({ min: 1, max: 6 })).map(([f, m]) => ({ op: 'read' as const, fraction: f, maxRecords: m })) },
  { weight: 1, arbitrary: fc.constant({ op: 'crash' as const }) },
);

interface ModelBatch {
  baseOffset: number;
  values: string[];
}

const pick = (from: number, to: number, f: number) => from + Math.floor(f * (to - from + 1 - 1e-9));

describe('partition log vs. an array model', () => {
  it('agrees on contents, offsets and bounds across random operations and crashes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const storage = createMemoryStorage();
        const open = () => createLogManager(storage).open(id, {}, { highWatermark: 'replicated' });
        let log: PartitionLog = await open();
        let model: ModelBatch[] = [];
        let logStart = 0;
        const modelEnd = () => (model.length === 0 ? logStart : model.at(-1)!.baseOffset + model.at(-1)!.values.length);
        const modelRecords = (from: number, to: number) =>
          model.flatMap((b) => b.values.map((v, i): [number, string] => [b.baseOffset + i, v])).filter(([o]) => o >= from && o < to);

        for (const step of ops) {
          switch (step.op) {
            case 'append': {
              const result = await log.append(batchOf(step.values));
              expect(result.baseOffset).toBe(modelEnd());
              model.push({ baseOffset: result.baseOffset, values: step.values });
              break;
            }
            case 'appendAndCrash': {
              // The append is never acknowledged: after the crash it may or may not be there.
              const unacknowledged = log.append(batchOf(step.values)).catch(() => undefined);
              const before = modelEnd();
              log = await open();
              void unacknowledged;
              if (log.logEndOffset !== before) {
                expect(log.logEndOffset).toBe(before + step.values.length);
                model.push({ baseOffset: before, values: step.values });
              }
              break;
            }
            case 'advance':
              log.advanceHighWatermark(pick(log.highWatermark, log.logEndOffset, step.fraction));
              break;
            case 'truncate': {
              const offset = pick(log.highWatermark, modelEnd(), step.fraction);
              // A batch is removed whole, so one the high watermark cuts cannot go: refused, nothing removed.
              if (model.some((b) => b.baseOffset < log.highWatermark && b.baseOffset + b.values.length > offset)) {
                await expect(log.truncateTo(offset)).rejects.toThrow(InvalidOffsetError);
                break;
              }
              await log.truncateTo(offset);
              model = model.filter((b) => b.baseOffset + b.values.length <= offset);
              break;
            }
            case 'deleteBefore': {
              const offset = pick(logStart, log.highWatermark, step.fraction);
              await log.deleteRecordsBefore(offset);
              logStart = Math.max(logStart, offset);
              model = model.filter((b) => b.baseOffset + b.values.length > logStart);
              break;
            }
            case 'read': {
              const offset = pick(logStart, log.highWatermark, step.fraction);
              const batches = await log.read(offset, { maxBytes: Infinity, maxRecords: step.maxRecords });
              const got = recordsOf(batches, offset).map(([o, , v]): [number, string] => [o, v!]);
              // Visible: the batches wholly below the high watermark (one it cuts is not, as in Kafka).
              const visibleEnd = Math.max(logStart, ...model.map((b) => b.baseOffset + b.values.length).filter((end) => end <= log.highWatermark));
              const want = modelRecords(offset, visibleEnd);
              expect(got.length).toBeGreaterThanOrEqual(Math.min(step.maxRecords, want.length));
              expect(got).toEqual(want.slice(0, got.length));
              break;
            }
            case 'crash':
              log = await open();
              break;
          }
          expect(log.logEndOffset).toBe(modelEnd());
          expect(log.logStartOffset).toBe(logStart);
          expect(log.highWatermark).toBeLessThanOrEqual(log.logEndOffset);
        }
        // Everything the model holds is in the log, in order, with its offsets.
        const whole = await log.read(logStart, { maxBytes: Infinity, endOffset: log.logEndOffset });
        expect(recordsOf(whole, logStart).map(([o, , v]) => [o, v])).toEqual(modelRecords(logStart, Infinity));
      }),
      { numRuns: 300 },
    );
  });

  it('regression: a truncation into a batch the high watermark cuts is refused, not a removal of committed records (fast-check seed 1117456093)', async () => {
    const storage = createMemoryStorage();
    const log = await createLogManager(storage).open(id, {}, { highWatermark: 'replicated' });
    await log.append(batchOf(['a', 'b']));
    log.advanceHighWatermark(1); // inside the batch
    await expect(log.truncateTo(1)).rejects.toThrow(InvalidOffsetError);
    expect([log.logEndOffset, log.highWatermark]).toEqual([2, 1]);
    expect(recordsOf(await log.read(0, { maxBytes: Infinity, endOffset: 2 })).map((r) => r[2])).toEqual(['a', 'b']);
  });

  it('regression: a batch the high watermark cuts is not read (fast-check seed -1489044151)', async () => {
    const storage = createMemoryStorage();
    const log = await createLogManager(storage).open(id, {}, { highWatermark: 'replicated' });
    await log.append(batchOf(['a', 'b']));
    await log.append(batchOf(['c']));
    log.advanceHighWatermark(1); // inside the first batch
    expect(await log.read(0, { maxBytes: Infinity })).toEqual([]);
    log.advanceHighWatermark(2);
    expect(recordsOf(await log.read(0, { maxBytes: Infinity })).map((r) => r[2])).toEqual(['a', 'b']);
    const reopened = await createLogManager(storage).open(id, {}, { highWatermark: 'replicated' }); // from storage, not the tail cache
    reopened.advanceHighWatermark(1);
    expect(await reopened.read(0, { maxBytes: Infinity })).toEqual([]);
  });
});
