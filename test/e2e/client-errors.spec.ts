/// <reference path="./pages/client.ts" />
import { expect, openClientPage, test } from './fixtures';

test.beforeEach(async ({ page }) => {
  await openClientPage(page);
});

test('bad input from user code gets typed errors, and nothing is stored', async ({ page }) => {
  const outcomes = await page.evaluate(async () => {
    const { Letterbox, LetterboxError } = window.lb;
    const letterbox = new Letterbox({ clientId: 'bad-input' });
    const admin = letterbox.admin();
    const producer = letterbox.producer({ allowAutoTopicCreation: false });
    const consumer = letterbox.consumer({ groupId: 'g', allowAutoTopicCreation: false });
    const attempt = async (what: string, call: () => Promise<unknown>) => {
      try {
        await call();
        return { what, outcome: 'resolved' };
      } catch (error) {
        return {
          what,
          typed: error instanceof LetterboxError,
          name: (error as Error).name,
          code: (error as { code?: string }).code,
          retriable: (error as { retriable?: boolean }).retriable,
        };
      }
    };
    const results = [];
    results.push(await attempt('send before connect', () => producer.send({ topic: 't', messages: [{ value: 'x' }] })));
    await admin.connect();
    await producer.connect();
    await consumer.connect();
    await admin.createTopics({ topics: [{ topic: 'small', configEntries: [{ name: 'max.message.bytes', value: '1000' }] }] });
    results.push(await attempt('illegal topic name', () => admin.createTopics({ topics: [{ topic: 'no spaces allowed' }] })));
    results.push(await attempt('reserved topic name', () => admin.createTopics({ topics: [{ topic: '__internal' }] })));
    results.push(await attempt('too long topic name', () => admin.createTopics({ topics: [{ topic: 'x'.repeat(250) }] })));
    results.push(await attempt('readUncommitted not a boolean', async () => letterbox.consumer({ groupId: 'g2', readUncommitted: 'yes' as unknown as boolean })));
    results.push(await attempt('readUncommitted accepted', async () => void letterbox.consumer({ groupId: 'g3', readUncommitted: true })));
    results.push(await attempt('zero partitions', () => admin.createTopics({ topics: [{ topic: 'zero', numPartitions: 0 }] })));
    results.push(await attempt('bad config value', () => admin.createTopics({ topics: [{ topic: 'cfg', configEntries: [{ name: 'retention.ms', value: 'soon' }] }] })));
    results.push(await attempt('unknown config', () => admin.createTopics({ topics: [{ topic: 'cfg', configEntries: [{ name: 'colour', value: 'blue' }] }] })));
    results.push(await attempt('unknown topic', () => producer.send({ topic: 'nowhere', messages: [{ value: 'x' }] })));
    results.push(await attempt('message over max.message.bytes', () => producer.send({ topic: 'small', messages: [{ value: 'x'.repeat(2000) }] })));
    results.push(await attempt('value of a wrong type', () => producer.send({ topic: 'small', messages: [{ value: 42 as unknown as string }] })));
    results.push(await attempt('key of a wrong type', () => producer.send({ topic: 'small', messages: [{ key: { a: 1 } as unknown as string, value: 'v' }] })));
    results.push(await attempt('header of a wrong type', () => producer.send({ topic: 'small', messages: [{ value: 'v', headers: { h: 7 as unknown as string } }] })));
    results.push(await attempt('partition out of range', () => producer.send({ topic: 'small', messages: [{ value: 'v', partition: 3 }] })));
    results.push(await attempt('bad acks', () => producer.send({ topic: 'small', acks: 2 as 1, messages: [{ value: 'v' }] })));
    results.push(await attempt('subscribe to an unknown topic', () => consumer.subscribe({ topic: 'nowhere' })));
    results.push(await attempt('run without eachMessage', () => consumer.run({} as never)));
    const aborted = new AbortController();
    aborted.abort();
    results.push(await attempt('aborted send', () => producer.send({ topic: 'small', messages: [{ value: 'v' }] }, { signal: aborted.signal })));
    await producer.disconnect();
    results.push(await attempt('send after disconnect', () => producer.send({ topic: 'small', messages: [{ value: 'x' }] })));
    await letterbox.close();
    results.push(await attempt('use after close', () => letterbox.nodeInfo()));
    // Nothing of the refused calls was stored: no stray topics, and the next record is offset 0.
    const reopened = new Letterbox({ clientId: 'bad-input' });
    const reader = reopened.admin();
    await reader.connect();
    const topics = await reader.listTopics();
    const writer = reopened.producer();
    await writer.connect();
    const [first] = await writer.send({ topic: 'small', messages: [{ value: 'first' }] });
    await reopened.close();
    return { results, topics, firstOffset: first?.baseOffset };
  });
  const byWhat = Object.fromEntries(outcomes.results.map((r) => [r.what, r]));
  const expectTyped = (what: string, name: string, code: string, retriable = false) =>
    expect(byWhat[what], what).toEqual({ what, typed: true, name, code, retriable });
  expectTyped('send before connect', 'NotConnectedError', 'NOT_CONNECTED');
  expectTyped('illegal topic name', 'InvalidTopicError', 'INVALID_TOPIC_EXCEPTION');
  expectTyped('reserved topic name', 'InvalidTopicError', 'INVALID_TOPIC_EXCEPTION');
  expectTyped('too long topic name', 'InvalidTopicError', 'INVALID_TOPIC_EXCEPTION');
  expectTyped('readUncommitted not a boolean', 'InvalidArgumentError', 'INVALID_ARGUMENT');
  expect(byWhat['readUncommitted accepted']).toEqual({ what: 'readUncommitted accepted', outcome: 'resolved' });
  expectTyped('zero partitions', 'InvalidConfigError', 'INVALID_PARTITIONS');
  expectTyped('bad config value', 'InvalidConfigError', 'INVALID_CONFIG');
  expectTyped('unknown config', 'InvalidConfigError', 'INVALID_CONFIG');
  // Thrown in the worker: class, code and retriable survive the hop.
  expectTyped('unknown topic', 'UnknownTopicOrPartitionError', 'UNKNOWN_TOPIC_OR_PARTITION', true);
  expectTyped('message over max.message.bytes', 'RecordBatchTooLargeError', 'MESSAGE_TOO_LARGE');
  expectTyped('value of a wrong type', 'InvalidArgumentError', 'INVALID_ARGUMENT');
  expectTyped('key of a wrong type', 'InvalidArgumentError', 'INVALID_ARGUMENT');
  expectTyped('header of a wrong type', 'InvalidArgumentError', 'INVALID_ARGUMENT');
  expectTyped('partition out of range', 'InvalidArgumentError', 'INVALID_ARGUMENT');
  expectTyped('bad acks', 'InvalidArgumentError', 'INVALID_ARGUMENT');
  expectTyped('subscribe to an unknown topic', 'UnknownTopicOrPartitionError', 'UNKNOWN_TOPIC_OR_PARTITION', true);
  expectTyped('run without eachMessage', 'InvalidArgumentError', 'INVALID_ARGUMENT');
  expectTyped('aborted send', 'AbortError', 'ABORTED');
  expectTyped('send after disconnect', 'NotConnectedError', 'NOT_CONNECTED');
  expectTyped('use after close', 'NotConnectedError', 'NOT_CONNECTED');
  expect(outcomes.topics).toEqual(['small']);
  expect(outcomes.firstOffset).toBe('0');
});

test('a batch corrupted on disk reaches the consumer as CorruptBatchError (CRCs are checked end to end); the node keeps serving', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'bit-rot' });
    const admin = letterbox.admin();
    const producer = letterbox.producer();
    await admin.connect();
    await producer.connect();
    await admin.createTopics({ topics: [{ topic: 'rot', numPartitions: 2 }] });
    // Three ~600 KiB batches on partition 0: the first is no longer in the node's 1 MiB tail cache.
    const big = 'x'.repeat(600 * 1024);
    for (let i = 0; i < 3; i++) await producer.send({ topic: 'rot', messages: [{ value: `${i}${big}`, partition: 0 }] });
    await producer.send({ topic: 'rot', messages: [{ value: 'fine', partition: 1 }] });
    // Flip one byte of the first batch's value, as bit rot would, through a second connection.
    const { slot } = await letterbox.nodeInfo();
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(`letterbox-slot-${slot}`);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    await new Promise<void>((resolve, reject) => {
      const store = db.transaction('batches', 'readwrite').objectStore('batches');
      const key = ['rot', 0, 0];
      const get = store.get(key);
      get.onsuccess = () => {
        const bytes = new Uint8Array(get.result as ArrayBuffer);
        bytes[bytes.length - 100]! ^= 0xff;
        store.put(bytes.buffer, key).onsuccess = () => resolve();
      };
      store.transaction.onerror = () => reject(store.transaction.error);
    });
    db.close();

    const consumer = letterbox.consumer({ groupId: 'rot-readers', retry: { retries: 0 } });
    await consumer.connect();
    await consumer.subscribe({ topic: 'rot', fromBeginning: true });
    const seen: string[] = [];
    const crashed = new Promise<{ name: string; code: string; restart: boolean }>((resolve) =>
      consumer.on(consumer.events.CRASH, ({ payload }) => resolve({ name: payload.error.name, code: (payload.error as { code?: string }).code ?? '', restart: payload.restart })),
    );
    await consumer.run({ eachMessage: async ({ partition, message }) => void seen.push(`${partition}:${message.value!.toString().slice(0, 4)}`) });
    const crash = await crashed;
    // The node still serves: a new producer's send and a fresh read of partition 1 work.
    await producer.send({ topic: 'rot', messages: [{ value: 'after', partition: 1 }] });
    const offsets = await admin.fetchTopicOffsets('rot');
    await letterbox.close();
    return { crash, seen, partition1End: offsets.find((o) => o.partition === 1)?.high };
  });
  expect(outcome.crash).toEqual({ name: 'CorruptBatchError', code: 'CORRUPT_MESSAGE', restart: false });
  expect(outcome.seen.filter((s) => s.startsWith('0:'))).toEqual([]); // nothing of the corrupt batch was delivered
  expect(outcome.partition1End).toBe('2');
});
