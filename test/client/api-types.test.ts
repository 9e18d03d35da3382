import { describe, expectTypeOf, it } from 'vitest';
import type {
  Admin,
  Batch,
  Bytes,
  Consumer,
  ConsumerEvents,
  EachBatchPayload,
  EachMessagePayload,
  InstrumentationEvent,
  KafkaMessage,
  Letterbox,
  LetterboxError,
  Message,
  Producer,
  ProducerEvents,
  RecordMetadata,
} from '../../src/client';

// Type-level tests of the public API: checked by `npm run typecheck` (tsc over test/**), so a
// change that loosens or breaks these types fails the build. The runtime part is trivial.

describe('public API types', () => {
  it('send resolves to RecordMetadata with string offsets', () => {
    expectTypeOf<ReturnType<Producer['send']>>().toEqualTypeOf<Promise<RecordMetadata[]>>();
    expectTypeOf<RecordMetadata['baseOffset']>().toEqualTypeOf<string>();
    expectTypeOf<RecordMetadata['partition']>().toEqualTypeOf<number>();
  });

  it('messages accept text or bytes when sent and are Buffer-like bytes when consumed', () => {
    expectTypeOf<Message['value']>().toEqualTypeOf<string | Uint8Array | null>();
    expectTypeOf<KafkaMessage['value']>().toEqualTypeOf<Bytes | null>();
    expectTypeOf<Bytes>().toMatchTypeOf<Uint8Array>();
    expectTypeOf<Bytes['toString']>().parameter(0).toEqualTypeOf<'utf8' | 'utf-8' | 'hex' | 'base64' | 'latin1' | 'binary' | undefined>();
    expectTypeOf<KafkaMessage['offset']>().toEqualTypeOf<string>();
    expectTypeOf<KafkaMessage['timestamp']>().toEqualTypeOf<string>();
    // @ts-expect-error a number is not a message value
    const bad: Message = { value: 42 };
    void bad;
  });

  it('event listeners receive typed payloads and on() returns an unsubscribe function', () => {
    type JoinListener = Parameters<Consumer['on']>[1] & ((event: InstrumentationEvent<ConsumerEvents['consumer.group_join']>) => void);
    expectTypeOf<ConsumerEvents['consumer.group_join']['memberAssignment']>().toEqualTypeOf<Record<string, number[]>>();
    expectTypeOf<ConsumerEvents['consumer.fetch']['numberOfBatches']>().toEqualTypeOf<number>();
    expectTypeOf<ConsumerEvents['consumer.crash']['error']>().toEqualTypeOf<Error>();
    expectTypeOf<ReturnType<Consumer['on']>>().toEqualTypeOf<() => void>();
    expectTypeOf<JoinListener>().toBeFunction();
    expectTypeOf<Consumer['events']['GROUP_JOIN']>().toEqualTypeOf<'consumer.group_join'>();
    expectTypeOf<ReturnType<Letterbox['on']>>().toEqualTypeOf<() => void>();
  });

  it('request events carry KafkaJS’s payload fields under KafkaJS’s names', () => {
    expectTypeOf<Producer['events']['REQUEST']>().toEqualTypeOf<'producer.network.request'>();
    expectTypeOf<Consumer['events']['REQUEST_TIMEOUT']>().toEqualTypeOf<'consumer.network.request_timeout'>();
    expectTypeOf<Admin['events']['REQUEST_QUEUE_SIZE']>().toEqualTypeOf<'admin.network.request_queue_size'>();
    expectTypeOf<keyof ProducerEvents['producer.network.request']>().toEqualTypeOf<
      'broker' | 'clientId' | 'correlationId' | 'size' | 'createdAt' | 'sentAt' | 'pendingDuration' | 'duration' | 'apiName' | 'apiKey' | 'apiVersion'
    >();
    expectTypeOf<keyof ConsumerEvents['consumer.network.request_timeout']>().toEqualTypeOf<'broker' | 'clientId' | 'correlationId' | 'createdAt' | 'sentAt' | 'pendingDuration' | 'apiName' | 'apiKey' | 'apiVersion'>();
    expectTypeOf<ProducerEvents['producer.network.request_queue_size']>().toEqualTypeOf<{ broker: string; clientId: string; queueSize: number }>();
  });

  it('eachMessage and eachBatch payloads have KafkaJS’s helpers', () => {
    expectTypeOf<EachMessagePayload['message']>().toEqualTypeOf<KafkaMessage>();
    expectTypeOf<EachBatchPayload['batch']>().toEqualTypeOf<Batch>();
    expectTypeOf<EachBatchPayload['resolveOffset']>().parameter(0).toEqualTypeOf<string>();
    expectTypeOf<ReturnType<EachBatchPayload['isStale']>>().toEqualTypeOf<boolean>();
    expectTypeOf<ReturnType<Batch['offsetLag']>>().toEqualTypeOf<string>();
  });

  it('admin results are typed, and errors carry code and retriable', () => {
    expectTypeOf<Awaited<ReturnType<Admin['fetchTopicOffsets']>>[number]>().toEqualTypeOf<{ partition: number; offset: string; high: string; low: string }>();
    expectTypeOf<Awaited<ReturnType<Admin['listTopics']>>>().toEqualTypeOf<string[]>();
    expectTypeOf<LetterboxError['code']>().toEqualTypeOf<string>();
    expectTypeOf<LetterboxError['retriable']>().toEqualTypeOf<boolean>();
  });
});
