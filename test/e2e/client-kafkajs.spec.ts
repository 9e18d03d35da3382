/// <reference path="./pages/client.ts" />
// KafkaJS 2.2.4 behaviour the consumer must match: run() resolves once joined, autoCommit: false
// never commits, a handler failing while its partition is paused runs again after resume.
import { Partitioners } from 'kafkajs';
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

test('KafkaJS names and bad input: error classes, Buffer-like values, auto-created topics, seek offsets, unknown events, commitOffsets mid-batch', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox, KafkaJSError, KafkaJSNonRetriableError, KafkaJSProtocolError, KafkaJSConnectionError, LetterboxError } = window.lb;
    const letterbox = new Letterbox({ clientId: 'kafkajs-names' });
    const producer = letterbox.producer();
    const consumer = letterbox.consumer({ groupId: 'names', maxWaitTimeInMs: 100 });
    const thrown = (call: () => unknown) => {
      try {
        call();
        return 'returned';
      } catch (e) {
        return { name: (e as Error).name, kafkajs: e instanceof KafkaJSError, nonRetriable: e instanceof KafkaJSNonRetriableError, letterbox: e instanceof LetterboxError };
      }
    };
    const unknownEvent = thrown(() => consumer.on('no.such.event' as never, () => undefined));
    const notConnected = await producer.send({ topic: 'x', messages: [{ value: 'v' }] }).catch((e: unknown) => ({ connection: e instanceof KafkaJSConnectionError, protocol: e instanceof KafkaJSProtocolError }));
    const created: string[] = [];
    producer.on(producer.events.TOPIC_CREATED, (e) => created.push(`producer:${e.payload.topic}:${e.payload.numPartitions}`));
    consumer.on(consumer.events.TOPIC_CREATED, (e) => created.push(`consumer:${e.payload.topic}:${e.payload.numPartitions}`));
    await producer.connect();
    await consumer.connect();
    // Neither topic exists: subscribe and send create them, with one partition.
    await consumer.subscribe({ topics: ['auto-sub'], fromBeginning: true });
    await producer.send({ topic: 'auto-send', messages: [{ value: 'x' }] });
    const admin = letterbox.admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: ['auto-sub', 'auto-send'] });
    const strict = letterbox.consumer({ groupId: 'strict', allowAutoTopicCreation: false });
    await strict.connect();
    const refused = await strict.subscribe({ topic: 'never-made' }).catch((e: unknown) => ({ protocol: e instanceof KafkaJSProtocolError, code: (e as { code?: string }).code }));
    const values: string[] = [];
    const texts: string[] = [];
    let midBatch: string = 'not called';
    await producer.send({ topic: 'auto-sub', messages: [0, 1, 2, 3, 4].map((i) => ({ key: Uint8Array.of(0xca, 0xfe), value: JSON.stringify({ i }), headers: { h: `h${i}` } })) });
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(`${message.value}`);
        texts.push(`${JSON.parse(message.value as unknown as string).i}:${message.key!.toString('hex')}:${message.headers['h']!.toString()}`);
        if (message.offset === '1') {
          midBatch = await consumer.commitOffsets([{ topic: 'auto-sub', partition: 0, offset: '2' }]).then(() => 'committed', (e: unknown) => String(e));
        }
      },
    });
    const deadline = Date.now() + 30_000;
    while (values.length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const seeks = {
      negative: thrown(() => consumer.seek({ topic: 'auto-sub', partition: 0, offset: -3 as unknown as string })),
      text: thrown(() => consumer.seek({ topic: 'auto-sub', partition: 0, offset: 'ten' })),
      numeric: thrown(() => consumer.seek({ topic: 'auto-sub', partition: 0, offset: 3 as unknown as string })),
    };
    while (values.length < 7 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    consumer.seek({ topic: 'auto-sub', partition: 0, offset: '-2' }); // earliest
    while (values.length < 12 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await consumer.disconnect();
    const committed = await admin.fetchOffsets({ groupId: 'names', topics: ['auto-sub'] });
    await letterbox.close();
    return {
      unknownEvent,
      notConnected,
      partitions: metadata.topics.map((t) => [t.name, t.partitions.length]),
      refused,
      values,
      texts,
      midBatch,
      seeks,
      committed: committed[0]!.partitions[0]!.offset,
      idempotent: producer.isIdempotent(),
      created,
    };
  });
  expect(outcome.unknownEvent).toEqual({ name: 'InvalidArgumentError', kafkajs: true, nonRetriable: true, letterbox: true });
  expect(outcome.notConnected).toEqual({ connection: true, protocol: false });
  expect(outcome.partitions).toEqual([
    ['auto-sub', 1],
    ['auto-send', 1],
  ]);
  expect(outcome.created).toEqual(['consumer:auto-sub:1', 'producer:auto-send:1']);
  expect(outcome.refused).toEqual({ protocol: true, code: 'UNKNOWN_TOPIC_OR_PARTITION' });
  expect(outcome.texts.slice(0, 5)).toEqual(['0:cafe:h0', '1:cafe:h1', '2:cafe:h2', '3:cafe:h3', '4:cafe:h4']);
  // 5 in order, then 3 and 4 again from the numeric seek, then all 5 from -2 (earliest).
  expect(outcome.values.map((v) => JSON.parse(v).i)).toEqual([0, 1, 2, 3, 4, 3, 4, 0, 1, 2, 3, 4]);
  // As KafkaJS: a commit mid-batch with autoCommit on is accepted; auto-commit then moves past it.
  expect(outcome.midBatch).toBe('committed');
  expect(outcome.committed).toBe('5');
  expect(outcome.seeks.negative).toMatchObject({ name: 'InvalidArgumentError', kafkajs: true });
  expect(outcome.seeks.text).toMatchObject({ name: 'InvalidArgumentError', kafkajs: true });
  expect(outcome.seeks.numeric).toBe('returned');
  expect(outcome.idempotent).toBe(true); // on by default, as since Kafka 3.0
});

test('KafkaJS names: AssignerProtocol round trip, a custom partitioner, CompressionCodecs refuses a codec, describeCluster names this node', async ({ page }) => {
  const outcome = await page.evaluate(async () => {
    const { Letterbox, AssignerProtocol, CompressionCodecs, CompressionTypes, Partitioners, InvalidArgumentError, InvalidRecordError } = window.lb;
    const metadata = AssignerProtocol.MemberMetadata.encode({ version: 1, topics: ['a', 'b'], userData: new TextEncoder().encode('ud') });
    const decodedMetadata = AssignerProtocol.MemberMetadata.decode(metadata);
    const assignment = AssignerProtocol.MemberAssignment.decode(AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: { a: [0, 2], b: [1] } }));
    const truncated = (() => {
      try {
        AssignerProtocol.MemberAssignment.decode(metadata.subarray(0, 5));
        return 'decoded';
      } catch (e) {
        return e instanceof InvalidRecordError;
      }
    })();
    const codec = (() => {
      try {
        (CompressionCodecs as Record<number, unknown>)[2] = () => ({});
        return 'registered';
      } catch (e) {
        return e instanceof InvalidArgumentError;
      }
    })();
    const letterbox = new Letterbox({ clientId: 'kafkajs-names-2' });
    const admin = letterbox.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'custom', numPartitions: 4 }] });
    const seen: Array<{ topic: string; partitions: number }> = [];
    const producer = letterbox.producer({
      createPartitioner: () => ({ topic, partitionMetadata, message }) => {
        seen.push({ topic, partitions: partitionMetadata.length });
        return Number(message.value) % partitionMetadata.length;
      },
    });
    await producer.connect();
    const written = await producer.send({ topic: 'custom', messages: ['5', '6', '7'].map((value) => ({ value })) });
    const badPartitioner = letterbox.producer({ createPartitioner: () => () => 9 });
    await badPartitioner.connect();
    const refused = await badPartitioner.send({ topic: 'custom', messages: [{ value: 'x' }] }).then(() => 'sent', (e: unknown) => (e as Error).name);
    const defaultOk = letterbox.producer({ createPartitioner: Partitioners.LegacyPartitioner });
    await defaultOk.connect();
    const keyed = await defaultOk.send({ topic: 'custom', messages: [{ key: 'k', value: 'x' }] });
    const cluster = await admin.describeCluster();
    const info = await letterbox.nodeInfo();
    await letterbox.close();
    return {
      decodedMetadata: { ...decodedMetadata, userData: decodedMetadata.userData!.toString() },
      assignment: assignment?.assignment,
      truncated,
      codec,
      gzip: CompressionCodecs[CompressionTypes.GZIP] !== undefined,
      seen,
      partitionsWritten: written.map((w) => w.partition).sort(),
      refused,
      keyedPartition: keyed[0]!.partition,
      cluster,
      brokerId: info.brokerId,
      clusterId: info.clusterId,
      incarnation: info.incarnation,
    };
  });
  expect(outcome.decodedMetadata).toEqual({ version: 1, topics: ['a', 'b'], userData: 'ud' });
  expect(outcome.assignment).toEqual({ a: [0, 2], b: [1] });
  expect(outcome.truncated).toBe(true);
  expect(outcome.codec).toBe(true);
  expect(outcome.gzip).toBe(true);
  expect(outcome.seen).toEqual([0, 1, 2].map(() => ({ topic: 'custom', partitions: 4 })));
  expect(outcome.partitionsWritten).toEqual([1, 2, 3]);
  expect(outcome.refused).toBe('InvalidArgumentError');
  // The partition KafkaJS's own DefaultPartitioner picks for key "k" over 4 partitions (Kafka's murmur2).
  const kafkajs = Partitioners.DefaultPartitioner()({ topic: 'custom', partitionMetadata: [0, 1, 2, 3].map((partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0, offlineReplicas: [] })), message: { key: 'k', value: 'x' } });
  expect(outcome.keyedPartition).toBe(kafkajs);
  // The page's broker is the one broker of its origin's cluster, and its controller; its address is its storage on the local transport.
  expect(outcome.cluster).toEqual({ brokers: [{ nodeId: outcome.brokerId, host: `local:${outcome.incarnation}`, port: 0 }], controller: outcome.brokerId, clusterId: outcome.clusterId, underReplicatedPartitions: 0, offlinePartitions: 0 });
});
