// fast-check generators of record batches, shared by the protocol tests.
import fc from 'fast-check';
import type { RecordBatchInput, RecordInput } from '../../src/protocol';

const bytesOrNull = (maxLength: number) => fc.option(fc.uint8Array({ maxLength }), { nil: null, freq: 4 });

export const recordInput = (maxValueBytes = 64): fc.Arbitrary<Omit<RecordInput, 'offsetDelta'>> =>
  fc.record({
    attributes: fc.integer({ min: -128, max: 127 }),
    timestampDelta: fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: -(2 ** 50), max: 2 ** 50 })),
    key: bytesOrNull(16),
    value: bytesOrNull(maxValueBytes),
    headers: fc.array(fc.record({ key: fc.string({ maxLength: 8, unit: 'grapheme' }), value: bytesOrNull(8) }), { maxLength: 3 }),
  });

/** Batches of up to `maxRecords` records whose offsetDeltas increase with random gaps (as after compaction). */
export const batchInput = (maxRecords = 20, maxValueBytes = 64): fc.Arbitrary<RecordBatchInput> =>
  fc
    .record({
      baseOffset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      partitionLeaderEpoch: fc.integer({ min: -1, max: 0x7fffffff }),
      timestampType: fc.constantFrom('CreateTime' as const, 'LogAppendTime' as const),
      isTransactional: fc.boolean(),
      isControl: fc.boolean(),
      baseTimestamp: fc.integer({ min: -1, max: 2 ** 45 }),
      producerId: fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER }),
      producerEpoch: fc.integer({ min: -1, max: 0x7fff }),
      baseSequence: fc.integer({ min: -1, max: 0x7fffffff }),
      records: fc.array(fc.tuple(recordInput(maxValueBytes), fc.integer({ min: 1, max: 1000 })), { maxLength: maxRecords }),
      extraOffsets: fc.integer({ min: 0, max: 5 }),
    })
    .map(({ records, extraOffsets, ...header }) => {
      let offsetDelta = -1;
      const withOffsets = records.map(([record, gap]) => ({ ...record, offsetDelta: (offsetDelta += gap) }));
      return { ...header, records: withOffsets, lastOffsetDelta: Math.max(0, offsetDelta + extraOffsets) };
    });
