/// <reference path="./pages/client.ts" />
import { expect, openClientPage, test } from './fixtures';

test('admin calls report what the log holds, and alterConfigs retention takes effect', async ({ page }) => {
  test.setTimeout(60_000);
  await openClientPage(page);
  const outcome = await page.evaluate(async () => {
    const { Letterbox, ConfigResourceTypes } = window.lb;
    const letterbox = new Letterbox({ clientId: 'admin' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: 'ledger', numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'delete' }, { name: 'retention.bytes', value: '1000000' }] },
        { topic: 'scratch' },
      ],
    });
    const producer = letterbox.producer();
    await producer.connect();
    const hourAgo = Date.now() - 3_600_000;
    // Partition 0: 10 old records, then 5 new ones; partition 1: 3 new ones.
    await producer.send({ topic: 'ledger', messages: Array.from({ length: 10 }, (_, i) => ({ value: `old-${i}`, partition: 0, timestamp: String(hourAgo + i) })) });
    const recent = Date.now();
    await producer.send({ topic: 'ledger', messages: Array.from({ length: 5 }, (_, i) => ({ value: `new-${i}`, partition: 0, timestamp: String(recent + i) })) });
    await producer.send({ topic: 'ledger', messages: Array.from({ length: 3 }, (_, i) => ({ value: `p1-${i}`, partition: 1 })) });

    const offsets = await admin.fetchTopicOffsets('ledger');
    const byTime = await admin.fetchTopicOffsetsByTimestamp('ledger', recent);
    const configs = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'ledger' }] });
    const metadata = await admin.fetchTopicMetadata({ topics: ['ledger'] });

    // A group that read part of partition 0.
    await admin.setOffsets({ groupId: 'auditors', topic: 'ledger', partitions: [{ partition: 0, offset: '12' }, { partition: 1, offset: '0' }] });
    const groupOffsets = await admin.fetchOffsets({ groupId: 'auditors', topics: ['ledger'] });
    const groups = await admin.listGroups();
    const described = await admin.describeGroups(['auditors']);

    // Retention shortened to a minute: the hour-old batch goes, the recent ones stay.
    await admin.alterConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'ledger', configEntries: [{ name: 'retention.ms', value: '60000' }] }] });
    const deadline = Date.now() + 20_000;
    let afterRetention = await admin.fetchTopicOffsets('ledger');
    while (afterRetention[0]!.low === '0' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      afterRetention = await admin.fetchTopicOffsets('ledger');
    }
    const alteredConfig = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'ledger', configNames: ['retention.ms'] }] });

    await admin.deleteTopicRecords({ topic: 'ledger', partitions: [{ partition: 1, offset: '2' }] });
    const afterDelete = await admin.fetchTopicOffsets('ledger');
    await admin.createPartitions({ topicPartitions: [{ topic: 'ledger', count: 3 }] });
    const grown = await admin.fetchTopicMetadata({ topics: ['ledger'] });
    await admin.deleteTopics({ topics: ['scratch'] });
    const topics = await admin.listTopics();
    await letterbox.close();
    return { offsets, byTime, configs, metadata, groupOffsets, groups, described, afterRetention, alteredConfig, afterDelete, grown, topics };
  });
  expect(outcome.offsets).toEqual([
    { partition: 0, offset: '15', high: '15', low: '0' },
    { partition: 1, offset: '3', high: '3', low: '0' },
  ]);
  expect(outcome.byTime).toEqual([
    { partition: 0, offset: '10' },
    { partition: 1, offset: '0' },
  ]);
  const entries = Object.fromEntries(outcome.configs.resources[0]!.configEntries.map((e) => [e.configName, [e.configValue, e.isDefault]]));
  expect(entries).toMatchObject({ 'cleanup.policy': ['delete', true], 'retention.bytes': ['1000000', false], 'retention.ms': ['604800000', true], 'max.message.bytes': ['1048588', true] });
  expect(outcome.metadata.topics[0]!.partitions.map((p) => p.partitionId)).toEqual([0, 1]);
  expect(outcome.groupOffsets).toEqual([
    {
      topic: 'ledger',
      partitions: [
        { partition: 0, offset: '12', metadata: null, lag: '3' },
        { partition: 1, offset: '0', metadata: null, lag: '3' },
      ],
    },
  ]);
  expect(outcome.groups.groups).toEqual([{ groupId: 'auditors', protocolType: 'consumer', state: 'Empty' }]);
  expect(outcome.described.groups[0]).toMatchObject({ groupId: 'auditors', state: 'Empty', members: [] });
  expect(outcome.afterRetention[0]).toEqual({ partition: 0, offset: '15', high: '15', low: '10' });
  expect(outcome.alteredConfig.resources[0]!.configEntries).toEqual([{ configName: 'retention.ms', configValue: '60000', readOnly: false, isDefault: false, isSensitive: false }]);
  expect(outcome.afterDelete[1]).toEqual({ partition: 1, offset: '3', high: '3', low: '2' });
  expect(outcome.grown.topics[0]!.partitions.map((p) => p.partitionId)).toEqual([0, 1, 2]);
  expect(outcome.topics).toEqual(['ledger']);
});

test('deleteGroups removes an empty group and its offsets, and refuses a group with a live member or none, typed', async ({ page }) => {
  test.setTimeout(60_000);
  await openClientPage(page);
  const outcome = await page.evaluate(async () => {
    const { Letterbox, DeleteGroupsError, KafkaJSDeleteGroupsError } = window.lb;
    const letterbox = new Letterbox({ clientId: 'groups' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'jobs' }] });
    const producer = letterbox.producer();
    await producer.connect();
    await producer.send({ topic: 'jobs', messages: [{ value: 'a' }, { value: 'b' }] });

    // 'done' reads both messages, commits and disconnects; 'busy' stays a member.
    const readBoth = async (groupId: string) => {
      const consumer = letterbox.consumer({ groupId });
      await consumer.connect();
      await consumer.subscribe({ topic: 'jobs', fromBeginning: true });
      let seen = 0;
      let resolveRead!: () => void;
      const read = new Promise<void>((resolve) => (resolveRead = resolve));
      await consumer.run({ eachMessage: async () => void (++seen === 2 && resolveRead()) });
      await read;
      await consumer.commitOffsets([{ topic: 'jobs', partition: 0, offset: '2' }]);
      return consumer;
    };
    await (await readBoth('done')).disconnect();
    const busy = await readBoth('busy');
    const before = (await admin.listGroups()).groups.map((g) => g.groupId);
    const offsetsBefore = await admin.fetchOffsets({ groupId: 'done', topics: ['jobs'] });
    const deleted = await admin.deleteGroups(['done']);
    const after = (await admin.listGroups()).groups.map((g) => g.groupId);
    const offsetsAfter = await admin.fetchOffsets({ groupId: 'done', topics: ['jobs'] });
    const refused = await admin.deleteGroups(['busy', 'never-was']).then(
      () => 'resolved',
      (e: unknown) => ({
        typed: e instanceof DeleteGroupsError && e instanceof KafkaJSDeleteGroupsError,
        groups: (e as InstanceType<typeof DeleteGroupsError>).groups.map((g) => ({ groupId: g.groupId, errorCode: g.errorCode, code: g.error.code })),
      }),
    );
    const busyStill = (await admin.describeGroups(['busy'])).groups[0]!.members.length;
    await busy.disconnect();
    await letterbox.close();
    return { before, offsetsBefore, deleted, after, offsetsAfter, refused, busyStill };
  });
  expect(outcome.before).toEqual(['busy', 'done']);
  expect(outcome.offsetsBefore).toEqual([{ topic: 'jobs', partitions: [{ partition: 0, offset: '2', metadata: null, lag: '0' }] }]);
  expect(outcome.deleted).toEqual([{ groupId: 'done', errorCode: 0 }]);
  expect(outcome.after).toEqual(['busy']);
  expect(outcome.offsetsAfter).toEqual([{ topic: 'jobs', partitions: [{ partition: 0, offset: '-1', metadata: null, lag: '2' }] }]);
  expect(outcome.refused).toEqual({
    typed: true,
    groups: [
      { groupId: 'busy', errorCode: 68, code: 'NON_EMPTY_GROUP' },
      { groupId: 'never-was', errorCode: 69, code: 'GROUP_ID_NOT_FOUND' },
    ],
  });
  expect(outcome.busyStill).toBe(1);
});
