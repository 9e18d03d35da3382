/// <reference path="./pages/client.ts" />
import { expect, openClientPage, test } from './fixtures';


test('two consumers of one group split a 4-partition topic; when one stops the other takes over from the committed offsets', async ({ profile }) => {
  test.setTimeout(90_000);
  const page = profile.pages()[0] ?? (await profile.newPage());
  await openClientPage(page);
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'groups' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'work', numPartitions: 4 }] });
    const producer = letterbox.producer();
    await producer.connect();
    const send = async (from: number, count: number) => {
      const messages = Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: String(from + i) }));
      await producer.send({ topic: 'work', messages });
    };
    await send(0, 400);

    const text = new TextDecoder();
    const seen: Array<{ by: string; partition: number; value: number }> = [];
    const assignments: Record<string, Record<string, number[]>> = {};
    const startConsumer = async (name: string) => {
      const consumer = letterbox.consumer({ groupId: 'workers', heartbeatInterval: 200, sessionTimeout: 5000, partitionAssigners: ['range'] });
      consumer.on(consumer.events.GROUP_JOIN, (e) => (assignments[name] = e.payload.memberAssignment));
      await consumer.connect();
      await consumer.subscribe({ topic: 'work', fromBeginning: true });
      await consumer.run({
        // Commits after every batch: the uncommitted window is the batch being processed.
        eachMessage: async ({ partition, message }) => {
          seen.push({ by: name, partition, value: Number(text.decode(message.value!)) });
          await new Promise((resolve) => setTimeout(resolve, 1));
        },
      });
      return consumer;
    };
    const until = async (condition: () => boolean, what: string, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const a = await startConsumer('a');
    await until(() => assignments['a'] !== undefined, 'a to join');
    const b = await startConsumer('b');
    // Both hold partitions only once the rebalance has given b its share.
    await until(() => (assignments['b']?.['work']?.length ?? 0) > 0 && (assignments['a']?.['work']?.length ?? 0) < 4, 'the rebalance');
    const split = { a: [...(assignments['a']!['work'] ?? [])], b: [...(assignments['b']!['work'] ?? [])] };
    await until(() => new Set(seen.map((s) => s.value)).size === 400, 'the first 400');
    await b.stop(); // commits and leaves: a takes over b's partitions from b's committed offsets
    await until(() => (assignments['a']?.['work']?.length ?? 0) === 4, 'a to own all 4');
    await send(400, 200);
    await until(() => new Set(seen.map((s) => s.value)).size === 600, 'all 600');
    await a.stop();
    const committed = await admin.fetchOffsets({ groupId: 'workers', topics: ['work'] });
    const offsets = await admin.fetchTopicOffsets('work');
    await letterbox.close();
    return { seen, split, committed, offsets };
  });
  // The split: disjoint, together all four partitions.
  expect([...outcome.split.a, ...outcome.split.b].sort()).toEqual([0, 1, 2, 3]);
  expect(outcome.split.a.length).toBe(2);
  // No record lost; duplicates only from the uncommitted window of the rebalances.
  const values = outcome.seen.map((s) => s.value);
  expect(new Set(values).size).toBe(600);
  const duplicates = values.length - 600;
  expect(duplicates).toBeLessThanOrEqual(50);
  // Every partition's committed offset reached its high watermark: zero lag.
  const lag = outcome.committed[0]!.partitions.map((p) => Number(p.lag));
  expect(lag).toEqual([0, 0, 0, 0]);
  expect(outcome.committed[0]!.partitions.map((p) => p.offset)).toEqual(outcome.offsets.map((o) => o.offset));
  test.info().annotations.push({ type: 'duplicates', description: String(duplicates) });
});

test('after a reload the group resumes after its committed offsets', async ({ profile }) => {
  test.setTimeout(60_000);
  const page = profile.pages()[0] ?? (await profile.newPage());
  await openClientPage(page);
  const consumeUntil = (count: number) =>
    page.evaluate(async (n) => {
      const { Letterbox } = window.lb;
      const letterbox = new Letterbox({ clientId: 'resume' });
      const consumer = letterbox.consumer({ groupId: 'resumers', heartbeatInterval: 200 });
      await consumer.connect();
      await consumer.subscribe({ topic: 'journal', fromBeginning: true });
      const text = new TextDecoder();
      const values: string[] = [];
      await new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            values.push(text.decode(message.value!));
            if (values.length === n) resolve();
          },
        });
      });
      await consumer.stop();
      await letterbox.close();
      return values;
    }, count);
  await page.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'resume' });
    const producer = letterbox.producer();
    await producer.connect();
    await producer.send({ topic: 'journal', messages: Array.from({ length: 30 }, (_, i) => ({ value: `entry-${i}` })) });
    await letterbox.close();
  });
  const first = await consumeUntil(30);
  expect(first).toEqual(Array.from({ length: 30 }, (_, i) => `entry-${i}`));
  await page.reload();
  await openClientPage(page);
  await page.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'resume' });
    const producer = letterbox.producer();
    await producer.connect();
    await producer.send({ topic: 'journal', messages: Array.from({ length: 5 }, (_, i) => ({ value: `later-${i}` })) });
    await letterbox.close();
  });
  // fromBeginning applies only without a committed offset: the group continues where it was.
  expect(await consumeUntil(5)).toEqual(Array.from({ length: 5 }, (_, i) => `later-${i}`));
});

test('seek, pause and resume change what eachMessage sees', async ({ page }) => {
  test.setTimeout(60_000);
  await openClientPage(page);
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'control' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'two', numPartitions: 2 }] });
    const producer = letterbox.producer();
    await producer.connect();
    const put = (partition: number, values: string[]) => producer.send({ topic: 'two', messages: values.map((value) => ({ value, partition })) });
    await put(0, ['p0-0', 'p0-1', 'p0-2']);
    await put(1, ['p1-0', 'p1-1', 'p1-2']);
    const consumer = letterbox.consumer({ groupId: 'control', heartbeatInterval: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'two', fromBeginning: true });
    const text = new TextDecoder();
    const seen: string[] = [];
    const until = async (condition: () => boolean, what: string) => {
      const deadline = Date.now() + 20_000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: saw ${JSON.stringify(seen)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(text.decode(message.value!)) });
    await until(() => seen.length === 6, 'the first six');
    const phases: Record<string, string[]> = { initial: [...seen].sort() };

    consumer.pause([{ topic: 'two', partitions: [1] }]);
    const pausedList = consumer.paused();
    seen.length = 0;
    await put(0, ['p0-3']);
    await put(1, ['p1-3']);
    await until(() => seen.includes('p0-3'), 'p0-3 while p1 is paused');
    // p1-3 was appended before p0-3 was consumed; a paused partition is not fetched.
    phases['whilePaused'] = [...seen];

    consumer.resume([{ topic: 'two', partitions: [1] }]);
    await until(() => seen.includes('p1-3'), 'p1-3 after resume');
    phases['afterResume'] = [...seen];

    seen.length = 0;
    consumer.seek({ topic: 'two', partition: 0, offset: '1' });
    await until(() => seen.length === 3, 'the records after the seek');
    phases['afterSeek'] = [...seen];
    await consumer.stop();
    const committed = await admin.fetchOffsets({ groupId: 'control', topics: ['two'] });
    await letterbox.close();
    return { phases, pausedList, committed: committed[0]!.partitions.map((p) => [p.partition, p.offset]) };
  });
  expect(outcome.phases['initial']).toEqual(['p0-0', 'p0-1', 'p0-2', 'p1-0', 'p1-1', 'p1-2']);
  expect(outcome.pausedList).toEqual([{ topic: 'two', partitions: [1] }]);
  expect(outcome.phases['whilePaused']).toEqual(['p0-3']);
  expect(outcome.phases['afterResume']).toEqual(['p0-3', 'p1-3']);
  expect(outcome.phases['afterSeek']).toEqual(['p0-1', 'p0-2', 'p0-3']);
  expect(outcome.committed).toEqual([
    [0, '4'],
    [1, '4'],
  ]);
});

test('auto-commit: a running consumer commits everything it processed, also the batches handled while a commit was in flight', async ({ page }) => {
  await openClientPage(page);
  const outcome = await page.evaluate(async () => {
    const { Letterbox } = window.lb;
    const letterbox = new Letterbox({ clientId: 'autocommit' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'ticks', numPartitions: 1 }] });
    const producer = letterbox.producer();
    await producer.connect();
    // One batch per send, and one batch per fetch: batches come faster than commits become
    // durable. Fetches wait up to a minute for data, so nothing but the commit itself can
    // bring the last offsets in once the records are processed.
    for (let i = 0; i < 60; i++) await producer.send({ topic: 'ticks', messages: [{ value: String(i) }] });
    const consumer = letterbox.consumer({ groupId: 'tickers', maxBytesPerPartition: 1, maxWaitTimeInMs: 60_000 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'ticks', fromBeginning: true });
    let processed = 0;
    let commits = 0;
    consumer.on(consumer.events.COMMIT_OFFSETS, () => void commits++);
    await consumer.run({ eachMessage: async () => void processed++ });
    const committed = async () => Number((await admin.fetchOffsets({ groupId: 'tickers', topics: ['ticks'] }))[0]!.partitions[0]!.offset);
    // The consumer keeps running and no more records come: its last offsets must still be committed.
    const deadline = performance.now() + 20_000;
    while ((processed < 60 || (await committed()) < 60) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const result = { processed, committed: await committed(), commits };
    await consumer.stop();
    await letterbox.close();
    return result;
  });
  expect(outcome.processed).toBe(60);
  expect(outcome.committed).toBe(60);
  expect(outcome.commits).toBeLessThan(60); // commits were coalesced, so some batches were handled while one was in flight
});
