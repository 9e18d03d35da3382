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
