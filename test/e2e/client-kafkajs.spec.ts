/// <reference path="./pages/client.ts" />
// KafkaJS 2.2.4 behaviour the consumer must match: run() resolves once joined, autoCommit: false
// never commits, a handler failing while its partition is paused runs again after resume.
import { expect, openClientPage, test } from './fixtures';

test.beforeEach(async ({ page }) => {
  await openClientPage(page);
});

test('await run() resolves after join and sync; with autoCommit: false only the hand-made commits are kept, also on disconnect', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'kafkajs-lifecycle' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'manual', numPartitions: 3 }] });
    const producer = letterbox.producer();
    await producer.connect();
    await producer.send({ topic: 'manual', messages: [0, 1, 2].flatMap((partition) => Array.from({ length: 5 }, (_, i) => ({ partition, value: `p${partition}-${i}` }))) });
    const consumer = letterbox.consumer({ groupId: 'manual-commits' });
    let joinedEvents = 0;
    consumer.on(consumer.events.GROUP_JOIN, () => joinedEvents++);
    await consumer.connect();
    await consumer.subscribe({ topic: 'manual', fromBeginning: true });
    let consumed = 0;
    await consumer.run({ autoCommit: false, eachMessage: async () => void consumed++ });
    const joinedWhenRunResolved = joinedEvents;
    const described = await consumer.describeGroup();
    // Right after run(): commitOffsets works (no NotConnectedError) and the group is listed as stable.
    await consumer.commitOffsets([
      { topic: 'manual', partition: 0, offset: '1' },
      { topic: 'manual', partition: 1, offset: '3' },
      { topic: 'manual', partition: 2, offset: '2' },
    ]);
    const deadline = Date.now() + 30_000;
    while (consumed < 15 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await consumer.disconnect();
    const committed = await admin.fetchOffsets({ groupId: 'manual-commits', topics: ['manual'] });
    await letterbox.close();
    return {
      joinedWhenRunResolved,
      state: described.state,
      members: described.members.length,
      consumed,
      committed: committed[0]!.partitions.map((p) => [p.partition, p.offset]).sort(),
    };
  });
  expect(outcome.joinedWhenRunResolved).toBe(1);
  expect(outcome.state).toBe('Stable');
  expect(outcome.members).toBe(1);
  expect(outcome.consumed).toBe(15);
  expect(outcome.committed).toEqual([
    [0, '1'],
    [1, '3'],
    [2, '2'],
  ]);
});

test('a handler that throws while its partition is paused is called again after resume, not retried in place', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'kafkajs-pause' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'throttled', numPartitions: 1 }] });
    const producer = letterbox.producer();
    await producer.connect();
    await producer.send({ topic: 'throttled', messages: [{ value: 'a' }, { value: 'b' }] });
    const consumer = letterbox.consumer({ groupId: 'pauser', retry: { retries: 0, initialRetryTime: 10 }, maxWaitTimeInMs: 100 });
    let crashed = 0;
    consumer.on(consumer.events.CRASH, () => crashed++);
    await consumer.connect();
    await consumer.subscribe({ topic: 'throttled', fromBeginning: true });
    // The docs' pause example: the dependency says "too many requests", the handler pauses and throws.
    const calls: Array<{ value: string; pausedAt: boolean }> = [];
    let throttled = true;
    let resumeLater: (() => void) | undefined;
    await consumer.run({
      eachMessage: async ({ message, pause }) => {
        const value = message.value!.toString();
        calls.push({ value, pausedAt: consumer.paused().length > 0 });
        if (throttled) {
          throttled = false;
          resumeLater = pause();
          throw new Error('429: try again later');
        }
      },
    });
    const until = async (condition: () => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await until(() => resumeLater !== undefined, 'the first call');
    // While paused, the consumer goes on fetching (nothing for this partition) and does not call the handler.
    const fetchedWhilePaused = new Promise<void>((resolve) => {
      let fetches = 0;
      const off = consumer.on(consumer.events.FETCH, () => {
        if (++fetches === 2) {
          off();
          resolve();
        }
      });
    });
    await fetchedWhilePaused;
    const callsWhilePaused = calls.length;
    resumeLater!();
    await until(() => calls.length >= 3, 'a and b after resume');
    await consumer.disconnect();
    await letterbox.close();
    return { calls, callsWhilePaused, crashed };
  });
  expect(outcome.callsWhilePaused).toBe(1);
  expect(outcome.calls).toEqual([
    { value: 'a', pausedAt: false },
    { value: 'a', pausedAt: false },
    { value: 'b', pausedAt: false },
  ]);
  expect(outcome.crashed).toBe(0);
});
