/// <reference path="./pages/client.ts" />
import type { Page } from '@playwright/test';
import { expect, openClientPage, test } from './fixtures';


test('the letterbox scenario: 1000 events sent with no consumer, the tab closed and reopened, all received in order', async ({ profile }) => {
  test.setTimeout(60_000);
  const first = profile.pages()[0] ?? (await profile.newPage());
  await openClientPage(first);
  const sent = await first.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'scenario' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'events', numPartitions: 3 }] });
    const producer = letterbox.producer();
    await producer.connect();
    const results = [];
    for (let i = 0; i < 1000; i += 100) {
      const messages = Array.from({ length: 100 }, (_, j) => ({ key: `user-${(i + j) % 17}`, value: `event-${i + j}` }));
      results.push(...(await producer.send({ topic: 'events', messages })));
    }
    return { slot: (await letterbox.nodeInfo()).slot, partitions: results.length };
  });
  expect(sent.partitions).toBeGreaterThan(0);
  await first.close();

  const reopened = await profile.newPage();
  await openClientPage(reopened);
  const received = await reopened.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'scenario' });
    const consumer = letterbox.consumer({ groupId: 'readers' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'events', fromBeginning: true });
    const seen: Array<{ partition: number; offset: string; key: string; value: string }> = [];
    const text = new TextDecoder();
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          seen.push({ partition, offset: message.offset, key: text.decode(message.key!), value: text.decode(message.value!) });
          if (seen.length === 1000) resolve();
        },
      });
    });
    await consumer.disconnect();
    return { slot: (await letterbox.nodeInfo()).slot, seen };
  });
  expect(received.slot).toBe(sent.slot);
  expect(received.seen).toHaveLength(1000);
  // Per partition: offsets 0, 1, 2, ... in order, and each key always in the same partition.
  const byPartition = new Map<number, typeof received.seen>();
  for (const m of received.seen) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
  for (const list of byPartition.values()) {
    expect(list.map((m) => m.offset)).toEqual(list.map((_, i) => String(i)));
    const values = list.map((m) => Number(m.value.slice('event-'.length)));
    expect(values).toEqual([...values].sort((a, b) => a - b));
  }
  const partitionOfKey = new Map<string, number>();
  for (const m of received.seen) {
    expect(partitionOfKey.get(m.key) ?? m.partition).toBe(m.partition);
    partitionOfKey.set(m.key, m.partition);
  }
  expect(new Set(received.seen.map((m) => m.value)).size).toBe(1000);
});

test('two tabs get different slots, and a reloaded tab gets its own slot back', async ({ profile }) => {
  const slotOf = async (page: Page) =>
    page.evaluate(async () => {
      const letterbox = new window.lb.Letterbox({ clientId: 'tabs' });
      return (await letterbox.nodeInfo()).slot;
    });
  const tabA = profile.pages()[0] ?? (await profile.newPage());
  const tabB = await profile.newPage();
  await openClientPage(tabA);
  await openClientPage(tabB);
  const slotA = await slotOf(tabA);
  const slotB = await slotOf(tabB);
  expect(slotA).not.toBe(slotB);
  // Tab A reloads while tab B holds the other slot: A must get its own slot back, not B's
  // and not a third one, even though its old worker may not have let go yet.
  await tabA.reload();
  await tabA.waitForFunction(() => document.body.dataset['ready'] === 'true');
  expect(await slotOf(tabA)).toBe(slotA);
  await tabB.reload();
  await tabB.waitForFunction(() => document.body.dataset['ready'] === 'true');
  expect(await slotOf(tabB)).toBe(slotB);
});

test('several instances on one page each get their own node', async ({ page }) => {
  await openClientPage(page);
  const result = await page.evaluate(async () => {
    const a = new window.lb.Letterbox({ clientId: 'one' });
    const b = new window.lb.Letterbox({ clientId: 'one' });
    const [infoA, infoB] = await Promise.all([a.nodeInfo(), b.nodeInfo()]);
    await a.close();
    await b.close();
    return [infoA.slot, infoB.slot, infoA.databaseName !== infoB.databaseName];
  });
  expect(result[0]).not.toBe(result[1]);
  expect(result[2]).toBe(true);
});

test('a wiped database is reported as a typed error and an event, not silently restarted at offset 0', async ({ profile }) => {
  const page = profile.pages()[0] ?? (await profile.newPage());
  await openClientPage(page);
  const outcome = await page.evaluate(async () => {
    const first = new window.lb.Letterbox({ clientId: 'wipe' });
    const producer = first.producer();
    await producer.connect();
    await producer.send({ topic: 'kept', messages: [{ value: 'precious' }] });
    const { slot, databaseName } = await first.nodeInfo();
    await first.close();
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase(databaseName); // what eviction or "clear site data" does
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error);
    });
    const second = new window.lb.Letterbox({ clientId: 'wipe' });
    const events: unknown[] = [];
    second.on('letterbox.storage_lost', (e) => events.push(e.payload));
    const error = await second.nodeInfo().then(
      () => undefined,
      (e: unknown) => e,
    );
    const third = new window.lb.Letterbox({ clientId: 'wipe', onStorageLost: 'continue' });
    const continued: unknown[] = [];
    third.on('letterbox.storage_lost', (e) => continued.push(e.payload.slot));
    const info = await third.nodeInfo();
    await third.close();
    return {
      slot,
      isTyped: error instanceof window.lb.StorageLostError,
      code: (error as { code?: string }).code,
      errorSlot: (error as { slot?: number }).slot,
      events,
      continued,
      continuedInfo: { slot: info.slot, storageLost: info.storageLost },
    };
  });
  expect(outcome.isTyped).toBe(true);
  expect(outcome.code).toBe('STORAGE_LOST');
  expect(outcome.errorSlot).toBe(outcome.slot);
  expect(outcome.events).toEqual([{ slot: outcome.slot }]);
  expect(outcome.continued).toEqual([outcome.slot]);
  expect(outcome.continuedInfo).toEqual({ slot: outcome.slot, storageLost: true });
});

test('gzip batches, headers and RegExp subscriptions round-trip through the worker', async ({ page }) => {
  await openClientPage(page);
  const received = await page.evaluate(async () => {
    const { Letterbox, CompressionTypes } = window.lb;
    const letterbox = new Letterbox({ clientId: 'gzip' });
    const producer = letterbox.producer();
    await producer.connect();
    const [meta] = await producer.send({
      topic: 'audit.gzip',
      compression: CompressionTypes.GZIP,
      messages: Array.from({ length: 50 }, (_, i) => ({
        key: `k${i}`,
        value: i % 10 === 9 ? null : 'payload '.repeat(20) + i,
        headers: { source: 'test', tags: ['a', 'b'] },
        timestamp: String(1_700_000_000_000 + i),
      })),
    });
    await producer.send({ topic: 'other', messages: [{ value: 'not subscribed' }] });
    const consumer = letterbox.consumer({ groupId: 'g' });
    await consumer.connect();
    await consumer.subscribe({ topics: [/^audit\./], fromBeginning: true });
    const text = new TextDecoder();
    const seen: Array<{ topic: string; offset: string; value: string | null; timestamp: string; source: string; tags: string[] }> = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ topic, message }) => {
          const tags = message.headers['tags'];
          seen.push({
            topic,
            offset: message.offset,
            value: message.value === null ? null : text.decode(message.value),
            timestamp: message.timestamp,
            source: text.decode(message.headers['source'] as Uint8Array),
            tags: (Array.isArray(tags) ? tags : []).map((t) => text.decode(t)),
          });
          if (seen.length === 50) resolve();
        },
      });
    });
    await letterbox.close();
    return { meta, seen };
  });
  expect(received.meta).toMatchObject({ topicName: 'audit.gzip', partition: 0, errorCode: 0, baseOffset: '0' });
  expect(received.seen).toHaveLength(50);
  expect(new Set(received.seen.map((m) => m.topic))).toEqual(new Set(['audit.gzip']));
  received.seen.forEach((m, i) => {
    expect(m).toEqual({
      topic: 'audit.gzip',
      offset: String(i),
      value: i % 10 === 9 ? null : 'payload '.repeat(20) + i,
      timestamp: String(1_700_000_000_000 + i),
      source: 'test',
      tags: ['a', 'b'],
    });
  });
});
