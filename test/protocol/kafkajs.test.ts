// Compatibility with a real Kafka client: record batches built by KafkaJS's own encoder
// (the one its producer uses for Produce v3+) decode to the same fields here, uncompressed
// ones re-encode byte for byte, KafkaJS's decoder reads Letterbox's batches, and the
// partitioner agrees with KafkaJS's Java-compatible default.
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { decodeBatchAsync, defaultPartition, encodeBatch, encodeBatchAsync, type RecordBatch } from '../../src/protocol';

// KafkaJS's internal encoder and decoder modules (CommonJS, untyped): the shapes used here.
interface KafkaLong {
  toString(): string;
}
interface KafkaJsInternals {
  RecordBatch(batch: {
    compression: number;
    firstOffset: KafkaLong;
    firstTimestamp: number;
    maxTimestamp: number;
    partitionLeaderEpoch: number;
    lastOffsetDelta: number;
    producerId: KafkaLong;
    producerEpoch: number;
    firstSequence: number;
    records: unknown[];
  }): Promise<{ buffer: Buffer }>;
  Record(record: { offsetDelta: number; timestampDelta: number; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer | Buffer[]> }): unknown;
  Long: { fromNumber(n: number): KafkaLong };
  Decoder: new (buffer: Buffer) => unknown;
  decodeRecordBatch(decoder: unknown): Promise<{
    firstOffset: string;
    records: Array<{ key: Buffer | null; value: Buffer | null; offset: string; timestamp: string; headers: Record<string, Buffer | null | Array<Buffer | null>> }>;
  }>;
}
const require = createRequire(import.meta.url);
const kafkajs: KafkaJsInternals = {
  RecordBatch: require('kafkajs/src/protocol/recordBatch/v0').RecordBatch,
  Record: require('kafkajs/src/protocol/recordBatch/record/v0'),
  Long: require('kafkajs/src/utils/long'),
  Decoder: require('kafkajs/src/protocol/decoder'),
  decodeRecordBatch: require('kafkajs/src/protocol/recordBatch/v0/decoder'),
};
const GZIP = 1;
const NONE = 0;

interface Message {
  key: Uint8Array | null;
  value: Uint8Array | null;
  timestampDelta: number;
  /** KafkaJS takes headers as an object, several values of one key as an array. */
  headers: Record<string, Uint8Array[]>;
}

const message: fc.Arbitrary<Message> = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 32 }), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
  timestampDelta: fc.integer({ min: 0, max: 100_000 }),
  // Not Object.prototype's names: KafkaJS's header decoder would merge them with the prototype's.
  headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !(k in {})), fc.array(fc.uint8Array({ maxLength: 10 }), { minLength: 1, maxLength: 2 }), {
    maxKeys: 3,
  }),
});

const buffer = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes));

async function kafkaJsBatch(messages: Message[], compression: number, firstOffset: number, firstTimestamp: number): Promise<Uint8Array> {
  const records = messages.map((m, i) =>
    kafkajs.Record({
      offsetDelta: i,
      timestampDelta: m.timestampDelta,
      key: buffer(m.key),
      value: buffer(m.value),
      headers: Object.fromEntries(Object.entries(m.headers).map(([k, vs]) => [k, vs.length === 1 ? Buffer.from(vs[0]!) : vs.map((v) => Buffer.from(v))])),
    }),
  );
  const encoder = await kafkajs.RecordBatch({
    compression,
    firstOffset: kafkajs.Long.fromNumber(firstOffset),
    firstTimestamp,
    maxTimestamp: firstTimestamp + Math.max(0, ...messages.map((m) => m.timestampDelta)),
    partitionLeaderEpoch: 0,
    lastOffsetDelta: messages.length - 1,
    producerId: kafkajs.Long.fromNumber(-1),
    producerEpoch: 0,
    firstSequence: 0,
    records,
  });
  return new Uint8Array(encoder.buffer);
}

const flatHeaders = (m: Message) => Object.entries(m.headers).flatMap(([key, values]) => values.map((value) => ({ key, value })));

function expectSameFields(batch: RecordBatch, messages: Message[], firstOffset: number, firstTimestamp: number) {
  expect(batch.baseOffset).toBe(firstOffset);
  expect(batch.baseTimestamp).toBe(firstTimestamp);
  expect(batch.recordCount).toBe(messages.length);
  expect(batch.lastOffsetDelta).toBe(messages.length - 1);
  expect(batch.producerId).toBe(-1);
  expect(batch.timestampType).toBe('CreateTime');
  expect(batch.records).toEqual(
    messages.map((m, i) => ({
      attributes: 0,
      offsetDelta: i,
      timestampDelta: m.timestampDelta,
      key: m.key === null ? null : new Uint8Array(m.key),
      value: m.value === null ? null : new Uint8Array(m.value),
      headers: flatHeaders(m),
    })),
  );
}

const batchArgs = fc.tuple(fc.array(message, { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 42 }));

describe('KafkaJS compatibility', () => {
  it('decodes uncompressed KafkaJS batches to the same fields and re-encodes them byte for byte', async () => {
    await fc.assert(
      fc.asyncProperty(batchArgs, async ([messages, firstOffset, firstTimestamp]) => {
        const bytes = await kafkaJsBatch(messages, NONE, firstOffset, firstTimestamp);
        const batch = await decodeBatchAsync(bytes);
        expectSameFields(batch, messages, firstOffset, firstTimestamp);
        expect(encodeBatch(batch)).toEqual(bytes);
      }),
      { numRuns: 100 },
    );
  });

  it('decodes gzip KafkaJS batches to the same fields', async () => {
    await fc.assert(
      fc.asyncProperty(batchArgs, async ([messages, firstOffset, firstTimestamp]) => {
        const bytes = await kafkaJsBatch(messages, GZIP, firstOffset, firstTimestamp);
        const batch = await decodeBatchAsync(bytes);
        expect(batch.compression).toBe('gzip');
        expectSameFields(batch, messages, firstOffset, firstTimestamp);
      }),
      { numRuns: 50 },
    );
  });

  it('writes batches, plain and gzip, that KafkaJS decodes to the same records', async () => {
    await fc.assert(
      fc.asyncProperty(batchArgs, fc.boolean(), async ([messages, firstOffset, firstTimestamp], gzip) => {
        const bytes = await encodeBatchAsync({
          compression: gzip ? 'gzip' : 'none',
          baseOffset: firstOffset,
          baseTimestamp: firstTimestamp,
          records: messages.map((m) => ({ key: m.key, value: m.value, timestampDelta: m.timestampDelta, headers: flatHeaders(m) })),
        });
        const decoded = await kafkajs.decodeRecordBatch(new kafkajs.Decoder(Buffer.from(bytes)));
        expect(decoded.firstOffset).toBe(String(firstOffset));
        expect(decoded.records).toHaveLength(messages.length);
        decoded.records.forEach((record, i) => {
          const m = messages[i]!;
          expect(record.offset).toBe(String(firstOffset + i));
          expect(record.timestamp).toBe(String(firstTimestamp + m.timestampDelta));
          expect(record.key === null ? null : new Uint8Array(record.key)).toEqual(m.key);
          expect(record.value === null ? null : new Uint8Array(record.value)).toEqual(m.value);
          const headers = Object.fromEntries(
            Object.entries(record.headers).map(([k, v]) => [k, (Array.isArray(v) ? v : [v]).map((b) => new Uint8Array(b!))]),
          );
          expect(headers).toEqual(m.headers);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('partitions keyed records as KafkaJS\'s default (Java-compatible) partitioner does', () => {
    const kafkaPartition = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 500 }), (key, numPartitions) => {
        const partitionMetadata = Array.from({ length: numPartitions }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], offlineReplicas: [], partitionErrorCode: 0 }));
        const expected = kafkaPartition({ topic: 't', partitionMetadata, message: { key: Buffer.from(key), value: null } });
        expect(defaultPartition(key, numPartitions)).toBe(expected);
      }),
      { numRuns: 5000 },
    );
  });
});
