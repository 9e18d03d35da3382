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
