/// <reference path="./pages/client.ts" />
import { expect, openClientPage, test } from './fixtures';

// Issue 26: nothing half-done. Each test drives the public client in real Chromium (worker,
// IndexedDB) the way a careless or hostile user would, and checks that what was refused left
// nothing behind.

test.beforeEach(async ({ page }) => {
  await openClientPage(page);
});

test('a refused send writes nothing: one partition with a message over max.message.bytes, and a sendBatch with another topic that is fine', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'refused-send' });
    const admin = letterbox.admin();
    const producer = letterbox.producer({ allowAutoTopicCreation: false });
    await admin.connect();
    await producer.connect();
    await admin.createTopics({ topics: [{ topic: 'one' }, { topic: 'other' }] });
    const big = 'x'.repeat(2 * 1024 * 1024);
    const messages = ['a', 'b', 'c', big, 'd', 'e', 'f'].map((value) => ({ value, partition: 0 }));
    const codeOf = (call: Promise<unknown>) => call.then(() => 'resolved', (error: { code?: string }) => error.code ?? String(error));
    const send = await codeOf(producer.send({ topic: 'one', messages }));
    const sendBatch = await codeOf(producer.sendBatch({ topicMessages: [{ topic: 'other', messages: [{ value: 'fine' }] }, { topic: 'one', messages }] }));
    const offsets = [...(await admin.fetchTopicOffsets('one')), ...(await admin.fetchTopicOffsets('other'))].map((o) => o.high);
    await letterbox.close();
    return { send, sendBatch, offsets };
  });
  expect(outcome).toEqual({ send: 'MESSAGE_TOO_LARGE', sendBatch: 'MESSAGE_TOO_LARGE', offsets: ['0', '0'] });
});

test('every public method called with missing, null, wrongly typed or hostile arguments fails with a LetterboxError, and writes nothing', async ({ page }) => {
  test.setTimeout(120_000);
  const outcome = await page.evaluate(async () => {
    const lb = window.lb;
    const { badCalls, outcomeOf, producerMethods, consumerMethods, adminMethods, letterboxMethods, letterboxConfig } = window.badInput;
    const letterbox = new lb.Letterbox({ clientId: 'hostile' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 't' }] });
    const producer = letterbox.producer();
    await producer.connect();
    await producer.send({ topic: 't', messages: [{ value: 'kept' }] });
    await admin.setOffsets({ groupId: 'g', topic: 't', partitions: [{ partition: 0, offset: '1' }] });
    const state = async () => ({
      topics: await admin.listTopics(),
      offsets: await admin.fetchTopicOffsets('t'),
      group: await admin.fetchOffsets({ groupId: 'g', topics: ['t'] }),
      groups: (await admin.listGroups()).groups.map((g) => g.groupId),
      config: (await admin.describeConfigs({ resources: [{ type: 2, name: 't' }] })).resources[0]?.configEntries,
    });
    const before = await state();
    const failures: Array<{ label: string; outcome: string; detail: string }> = [];
    let calls = 0;
    const record = async (label: string, run: () => unknown) => {
      calls++;
      const result = await outcomeOf(lb, run);
      if (result.outcome !== 'letterbox') failures.push({ label, ...result });
    };
    const invoke = (target: object, method: string, args: unknown[]) => (target as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
    for (const { label, args } of badCalls({ constructor: letterboxConfig })) {
      await record(`new Letterbox ${label}`, () => new lb.Letterbox(...(args as [])));
    }
    for (const { method, label, args } of badCalls(letterboxMethods)) await record(`letterbox.${label}`, () => invoke(letterbox, method, args));
    for (const { method, label, args } of badCalls(adminMethods)) await record(`admin.${label}`, () => invoke(admin, method, args));
    for (const { method, label, args } of badCalls(producerMethods)) await record(`producer.${label}`, () => invoke(producer, method, args));
    for (const { method, label, args } of badCalls(consumerMethods)) {
      const consumer = letterbox.consumer({ groupId: 'hostile-readers' });
      await consumer.connect();
      if (method !== 'subscribe') await consumer.subscribe({ topic: 't' });
      await record(`consumer.${label}`, () => invoke(consumer, method, args));
      await consumer.disconnect();
    }
    const after = await state();
    await letterbox.close();
    return { calls, failures, unchanged: JSON.stringify(before) === JSON.stringify(after), before, after };
  });
  expect(outcome.failures).toEqual([]);
  expect(outcome.calls).toBeGreaterThan(1000);
  expect(outcome.after).toEqual(outcome.before);
});

test('close settles everything in flight at once with a typed, non-retriable error; a running consumer crashes without restart, stops, and disconnects', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const describe = (error: unknown) => ({ name: (error as Error).name, code: (error as { code?: string }).code, retriable: (error as { retriable?: boolean }).retriable });
    const settle = (call: Promise<unknown>) => call.then(() => ({ name: 'resolved' }), describe);
    const messages = Array.from({ length: 30_000 }, (_, i) => ({ value: `record-${i}`, partition: 0 }));

    // 1. close while the producer's first send looks up (and auto-creates) its topic.
    const first = new Letterbox({ clientId: 'close-lookup' });
    const lookupProducer = first.producer();
    await lookupProducer.connect();
    const duringLookup = settle(lookupProducer.send({ topic: 'fresh', messages: [{ value: 'x' }], timeout: 600_000 }));
    await first.close();

    // 2. close while a large send is at the node, and while a consumer runs.
    const second = new Letterbox({ clientId: 'close-running' });
    const admin = second.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'busy' }] });
    const producer = second.producer();
    await producer.connect();
    await producer.send({ topic: 'busy', messages: [{ value: 'before' }] });
    const consumer = second.consumer({ groupId: 'closing-readers' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'busy', fromBeginning: true });
    const events: string[] = [];
    const crashes: Array<{ name: string; restart: boolean }> = [];
    consumer.on(consumer.events.CRASH, ({ payload }) => crashes.push({ name: payload.error.name, restart: payload.restart }));
    const stopped = new Promise<void>((resolve) => consumer.on(consumer.events.STOP, () => (events.push('stop'), resolve())));
    const consumed = new Promise<void>((resolve) => void consumer.run({ eachMessage: async () => resolve() }));
    await consumed;
    const atNode = settle(producer.send({ topic: 'busy', messages, timeout: 600_000 }));
    await second.close();
    const results = { duringLookup: await duringLookup, atNode: await atNode };
    await stopped;
    const disconnect = await settle(consumer.disconnect());
    const afterClose = await settle(producer.send({ topic: 'busy', messages: [{ value: 'late' }] }));
    return { ...results, crashes, events, disconnect, afterClose };
  });
  const closed = { name: 'NotConnectedError', code: 'NOT_CONNECTED', retriable: false };
  expect(outcome.duringLookup).toEqual(closed);
  expect(outcome.atNode).toEqual(closed);
  expect(outcome.crashes).toEqual([{ name: 'NotConnectedError', restart: false }]);
  expect(outcome.events).toEqual(['stop']);
  expect(outcome.disconnect).toEqual({ name: 'resolved' });
  expect(outcome.afterClose).toEqual(closed);
});

test('a deleted topic leaves nothing: its committed offsets go with it, a consumer still subscribed reads the recreated topic, and a producer picks up its new partition count', async ({ page }) => {
  test.setTimeout(90_000);
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const text = new TextDecoder();
    const letterbox = new Letterbox({ clientId: 'deleted-topics' });
    const admin = letterbox.admin();
    await admin.connect();
    const producer = letterbox.producer();
    await producer.connect();
    const values = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ value: `${prefix}-${i}` }));
    /** Runs a consumer until `count` messages arrived; resolves them (value@offset) in order. */
    const consume = async (groupId: string, topic: string, count: number, whileRunning: () => Promise<void> = async () => undefined) => {
      const consumer = letterbox.consumer({ groupId, heartbeatInterval: 500 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen: string[] = [];
      let progress: () => void = () => undefined;
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(`${text.decode(message.value!)}@${message.offset}`);
          progress();
        },
      });
      const reached = (n: number) =>
        new Promise<void>((resolve) => {
          progress = () => void (seen.length >= n && resolve());
          progress();
        });
      await reached(Math.min(count, 1));
      await whileRunning();
      await reached(count);
      await consumer.disconnect();
      return seen;
    };

    // 1. Commit offset 10, delete, recreate, produce 20: the group reads all 20.
    await admin.createTopics({ topics: [{ topic: 'orders' }] });
    await producer.send({ topic: 'orders', messages: values('old', 10) });
    const firstRead = await consume('g', 'orders', 10);
    const committedBefore = await admin.fetchOffsets({ groupId: 'g' });
    await admin.deleteTopics({ topics: ['orders'] });
    const committedAfterDelete = await admin.fetchOffsets({ groupId: 'g' });
    await admin.createTopics({ topics: [{ topic: 'orders' }] });
    await producer.send({ topic: 'orders', messages: values('new', 20) });
    const secondRead = await consume('g', 'orders', 20);

    // 2. A consumer still subscribed while its topic is deleted and recreated reads the new records.
    await admin.createTopics({ topics: [{ topic: 'live' }] });
    await producer.send({ topic: 'live', messages: values('before', 5) });
    const live = await consume('live-readers', 'live', 55, async () => {
      await admin.deleteTopics({ topics: ['live'] });
      await admin.createTopics({ topics: [{ topic: 'live' }] });
      await producer.send({ topic: 'live', messages: values('after', 50) });
    });
    const liveOffsets = await admin.fetchOffsets({ groupId: 'live-readers' });

    // 3. A keyed topic of 8 partitions deleted and auto-created again with 1: the same producer's keyed sends succeed.
    await admin.createTopics({ topics: [{ topic: 'keyed', numPartitions: 8 }] });
    const keyed = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `user-${i}`, value: `v${i}` }));
    await producer.send({ topic: 'keyed', messages: keyed(50) });
    await admin.deleteTopics({ topics: ['keyed'] });
    const outcomes: string[] = [];
    for (let i = 0; i < 50; i++) {
      outcomes.push(await producer.send({ topic: 'keyed', messages: [{ key: `user-${i}`, value: 'again' }] }).then((r) => `ok:${r[0]?.partition}`, (e: Error) => e.name));
    }
    const keyedPartitions = (await admin.fetchTopicMetadata({ topics: ['keyed'] })).topics[0]?.partitions.length;
    await letterbox.close();
    return { firstRead, committedBefore, committedAfterDelete, secondRead, live, liveOffsets, outcomes, keyedPartitions };
  });
  expect(outcome.firstRead).toHaveLength(10);
  expect(outcome.committedBefore).toEqual([{ topic: 'orders', partitions: [{ partition: 0, offset: '10', metadata: null, lag: '0' }] }]);
  expect(outcome.committedAfterDelete).toEqual([]);
  expect(outcome.secondRead).toEqual(Array.from({ length: 20 }, (_, i) => `new-${i}@${i}`));
  expect(outcome.live.slice(5)).toEqual(Array.from({ length: 50 }, (_, i) => `after-${i}@${i}`));
  expect(outcome.liveOffsets).toEqual([{ topic: 'live', partitions: [{ partition: 0, offset: '50', metadata: null, lag: '0' }] }]);
  expect(outcome.outcomes).toEqual(Array.from({ length: 50 }, () => 'ok:0'));
  expect(outcome.keyedPartitions).toBe(1);
});

test('a full disk can be freed through the API, and every metadata change is all-or-nothing between memory and disk', async ({ profile }) => {
  test.setTimeout(120_000);
  const page = profile.pages()[0] ?? (await profile.newPage());
  await openClientPage(page);
  // Chromium's IndexedDB caches the space it may use once writing starts: the quota is set before the first write.
  const cdp = await profile.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(page.url()).origin, quotaSize: 12 * 1024 * 1024 });
  const full = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    // A private broker: in a cluster a full disk also stops the metadata log's member (README § Clusters, full disk).
    const letterbox = new Letterbox({ clientId: 'full-disk', cluster: false });
    const admin = letterbox.admin();
    await admin.connect();
    const producer = letterbox.producer();
    await producer.connect();
    const codeOf = (call: Promise<unknown>) => call.then(() => 'ok', (error: { code?: string; name?: string }) => `${error.name}:${error.code}`);
    await admin.createTopics({ topics: [{ topic: 'keep' }, { topic: 'filler-a' }, { topic: 'filler-b' }] });
    await producer.send({ topic: 'keep', messages: Array.from({ length: 100 }, (_, i) => ({ value: `keep-${i}` })) });
    /**
     * Sends records of random bytes (IndexedDB compresses values) to `topic` until the disk is
     * full: 1 MB ones until one is refused, then ever smaller ones down to 1 byte, so that no
     * write of a few hundred bytes fits either. Resolves how many went in, and the last refusal.
     */
    const fill = async (topic: string) => {
      let stored = 0;
      let outcome = 'ok';
      for (const size of [1_000_000, 100_000, 10_000, 1000, 100, 10, 1]) {
        for (;;) {
          const value = new Uint8Array(size);
          for (let at = 0; at < value.length; at += 65_536) crypto.getRandomValues(value.subarray(at, at + 65_536));
          outcome = await codeOf(producer.send({ topic, messages: [{ value }] }));
          if (outcome !== 'ok') break;
          stored++;
        }
      }
      return { stored, outcome };
    };
    const filledB = await fill('filler-b');
    const filledA = await fill('filler-a');
    const whenFull = {
      create: await codeOf(admin.createTopics({ topics: [{ topic: 'created-when-full' }] })),
      autoCreate: await codeOf(producer.send({ topic: 'auto-when-full', messages: [{ value: 'x' }] })),
      grow: await codeOf(admin.createPartitions({ topicPartitions: [{ topic: 'keep', count: 3 }] })),
      topicsAfterRefusals: await admin.listTopics(),
      partitionsOfKeep: (await admin.fetchTopicOffsets('keep')).length,
      deleteTopic: await codeOf(admin.deleteTopics({ topics: ['filler-b'] })),
    };
    const refilled = await fill('filler-a');
    const deleteRecords = await codeOf(admin.deleteTopicRecords({ topic: 'filler-a', partitions: [{ partition: 0, offset: '-1' }] }));
    const afterFreeing = {
      create: await codeOf(admin.createTopics({ topics: [{ topic: 'created-when-full' }] })),
      autoCreate: await codeOf(producer.send({ topic: 'auto-when-full', messages: [{ value: 'x' }] })),
      topics: (await admin.listTopics()).sort(),
      fillerA: await admin.fetchTopicOffsets('filler-a'),
    };
    await letterbox.close();
    return { filledA, filledB, whenFull, refilled, deleteRecords, afterFreeing };
  });
  const fullError = 'StorageFullError:KAFKA_STORAGE_ERROR';
  expect(full.filledB.outcome).toBe(fullError);
  expect(full.filledB.stored).toBeGreaterThan(0);
  expect(full.whenFull).toEqual({ create: fullError, autoCreate: fullError, grow: fullError, topicsAfterRefusals: ['keep', 'filler-a', 'filler-b'], partitionsOfKeep: 1, deleteTopic: 'ok' });
  expect(full.refilled.outcome).toBe(fullError);
  expect(full.deleteRecords).toBe('ok');
  expect(full.afterFreeing.create).toBe('ok');
  expect(full.afterFreeing.autoCreate).toBe('ok');
  expect(full.afterFreeing.topics).toEqual(['auto-when-full', 'created-when-full', 'filler-a', 'keep']);
  const end = String(full.filledA.stored + full.refilled.stored);
  expect(full.afterFreeing.fillerA).toEqual([{ partition: 0, offset: end, high: end, low: end }]);

  // After a restart memory and disk agree: the deleted topic stays deleted, nothing refused appeared.
  await page.reload();
  await openClientPage(page);
  const reopened = await page.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'full-disk', cluster: false });
    const admin = letterbox.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).sort();
    const keep = await admin.fetchTopicOffsets('keep');
    const fillerA = await admin.fetchTopicOffsets('filler-a');
    await letterbox.close();
    return { topics, keep, fillerA };
  });
  expect(reopened.topics).toEqual(['auto-when-full', 'created-when-full', 'filler-a', 'keep']);
  expect(reopened.keep).toEqual([{ partition: 0, offset: '100', high: '100', low: '0' }]);
  expect(reopened.fillerA).toEqual(full.afterFreeing.fillerA);
});

test('questionable input, decided: header arrays, undefined values and detached buffers are refused; colliding topic names are refused as in Kafka', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'questionable' });
    const admin = letterbox.admin();
    await admin.connect();
    const producer = letterbox.producer();
    await producer.connect();
    await admin.createTopics({ topics: [{ topic: 'q' }] });
    const codeOf = (call: Promise<unknown>) => call.then(() => 'ok', (error: { code?: string; name?: string }) => `${error.name}:${error.code}`);
    const detached = new Uint8Array([1, 2, 3]);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const outcomes = {
      headerArray: await codeOf(producer.send({ topic: 'q', messages: [{ value: 'v', headers: ['a', 'b'] as never }] })),
      undefinedValue: await codeOf(producer.send({ topic: 'q', messages: [{ value: undefined as never }] })),
      detachedValue: await codeOf(producer.send({ topic: 'q', messages: [{ value: detached }] })),
      detachedHeader: await codeOf(producer.send({ topic: 'q', messages: [{ value: 'v', headers: { h: detached } }] })),
      nullValue: await codeOf(producer.send({ topic: 'q', messages: [{ value: null, key: 'k' }] })),
      dotted: await codeOf(admin.createTopics({ topics: [{ topic: 'a.b' }] })),
      underscored: await codeOf(admin.createTopics({ topics: [{ topic: 'a_b' }] })),
      bothInOne: await codeOf(admin.createTopics({ topics: [{ topic: 'x.y' }, { topic: 'x_y' }] })),
      autoCreated: await codeOf(producer.send({ topic: 'a_b', messages: [{ value: 'v' }] })),
    };
    const topics = (await admin.listTopics()).sort();
    const offsets = await admin.fetchTopicOffsets('q');
    await letterbox.close();
    return { outcomes, topics, offsets };
  });
  expect(outcome.outcomes).toEqual({
    headerArray: 'InvalidArgumentError:INVALID_ARGUMENT',
    undefinedValue: 'InvalidArgumentError:INVALID_ARGUMENT',
    detachedValue: 'InvalidArgumentError:INVALID_ARGUMENT',
    detachedHeader: 'InvalidArgumentError:INVALID_ARGUMENT',
    nullValue: 'ok', // a tombstone, as in Kafka
    dotted: 'ok',
    underscored: 'InvalidTopicError:INVALID_TOPIC_EXCEPTION',
    bothInOne: 'InvalidArgumentError:INVALID_ARGUMENT',
    autoCreated: 'InvalidTopicError:INVALID_TOPIC_EXCEPTION',
  });
  expect(outcome.topics).toEqual(['a.b', 'q']);
  expect(outcome.offsets).toEqual([{ partition: 0, offset: '1', high: '1', low: '0' }]); // only the tombstone
});

test('after "Clear site data" a reload starts afresh and cannot report it: the evidence was cleared too (documented)', async ({ profile }) => {
  const page = profile.pages()[0] ?? (await profile.newPage());
  await openClientPage(page);
  const first = await page.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'cleared' });
    const producer = letterbox.producer();
    await producer.connect();
    await producer.send({ topic: 'kept', messages: [{ value: 'v' }] });
    const info = await letterbox.nodeInfo();
    await letterbox.close();
    return info;
  });
  const cdp = await profile.newCDPSession(page);
  await cdp.send('Storage.clearDataForOrigin', { origin: new URL(page.url()).origin, storageTypes: 'all' });
  await page.reload();
  await openClientPage(page);
  const second = await page.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'cleared' });
    const lost: unknown[] = [];
    letterbox.on('letterbox.storage_lost', (event) => lost.push(event.payload));
    const info = await letterbox.nodeInfo();
    const admin = letterbox.admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await letterbox.close();
    return { info, lost, topics };
  });
  expect(second.info.incarnation).not.toBe(first.incarnation);
  expect(second).toMatchObject({ info: { storageLost: false }, lost: [], topics: [] });
});

test('admin calls that name several topics change all of them or none', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox, ConfigResourceTypes } = window.lb;
    const letterbox = new Letterbox({ clientId: 'all-or-none' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'one' }, { topic: 'two', numPartitions: 2 }] });
    const codeOf = (call: Promise<unknown>) => call.then(() => 'ok', (error: { code?: string }) => error.code);
    const retention = (topic: string) => ({ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '60000' }] });
    const refused = {
      grow: await codeOf(admin.createPartitions({ topicPartitions: [{ topic: 'one', count: 4 }, { topic: 'two', count: 1 }] })),
      alter: await codeOf(admin.alterConfigs({ resources: [retention('one'), retention('missing')] })),
      create: await codeOf(admin.createTopics({ topics: [{ topic: 'three' }, { topic: 'bad name' }] })),
      deleteRecords: await codeOf(admin.deleteTopicRecords({ topic: 'two', partitions: [{ partition: 0, offset: '0' }, { partition: 1, offset: '9' }] })),
    };
    const partitions = (await admin.fetchTopicMetadata()).topics.map((t) => `${t.name}:${t.partitions.length}`).sort();
    const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'one', configNames: ['retention.ms'] }] });
    await letterbox.close();
    return { refused, partitions, retention: resources[0]?.configEntries[0]?.configValue };
  });
  expect(outcome).toEqual({
    refused: { grow: 'INVALID_PARTITIONS', alter: 'UNKNOWN_TOPIC_OR_PARTITION', create: 'INVALID_TOPIC_EXCEPTION', deleteRecords: 'OFFSET_OUT_OF_RANGE' },
    partitions: ['one:1', 'two:2'],
    retention: '604800000',
  });
});
