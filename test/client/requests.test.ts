import { describe, expect, it } from 'vitest';
import { Admin, Consumer, InvalidArgumentError, NotConnectedError, Producer, TimeoutError, UnknownTopicOrPartitionError, type InstrumentationEvent } from '../../src/client';
import type { ClientContext, RemoteNode } from '../../src/client/context';
import { Instrumentation } from '../../src/client/events';
import { createLogger, logLevel } from '../../src/client/logger';
import { ClientRequests, PeerRequestReports, requestEmitter, type RequestEvents, type RequestEventsOf } from '../../src/client/requests';
import { NotLeaderOrFollowerError, OutOfOrderSequenceNumberError } from '../../src/errors';
import type { FetchedPartition, PeerRequestReport, ProduceRequest } from '../../src/node';
import { readBatchHeader } from '../../src/protocol';
import { until } from '../support/until';

/** A broker node as a client sees it, answering as `answers` says; records each call's arguments. */
function fakeNode(answers: Record<string, (...args: unknown[]) => Promise<unknown>> = {}) {
  const calls: Array<{ method: string; args: unknown[] }> = [];
  let report: ((report: PeerRequestReport) => void) | undefined;
  const node = new Proxy(
    {},
    {
      get: (_, method) => {
        if (typeof method !== 'string' || method === 'then') return undefined;
        return (...args: unknown[]) => {
          calls.push({ method, args });
          if (method === 'reportPeerRequests') report = args[0] as (report: PeerRequestReport) => void;
          if (method === 'clusterInfo') return Promise.resolve(undefined);
          return answers[method]?.(...args) ?? Promise.resolve([]);
        };
      },
    },
  ) as RemoteNode;
  return { node, calls, report: (r: PeerRequestReport) => report?.(r) };
}

function contextOf(node: RemoteNode | Promise<RemoteNode>): ClientContext {
  return { clientId: 'my-app', peerReports: new PeerRequestReports(), node: () => Promise.resolve(node), nodeInfo: () => Promise.reject(new Error('unused')) };
}

/** A ClientRequests over `context` with an admin's request events, and what they emitted. */
function requestsOn(context: ClientContext) {
  const instrumentation = new Instrumentation<RequestEventsOf<'admin'>>();
  const requests = new ClientRequests(context, requestEmitter(instrumentation, 'admin'));
  const events: Array<{ type: string; payload: RequestEvents[keyof RequestEvents] }> = [];
  const record = (event: InstrumentationEvent<RequestEvents[keyof RequestEvents]>) => events.push({ type: event.type, payload: event.payload });
  const listen = (kind: keyof RequestEvents) => instrumentation.on(`admin.network.${kind}`, record);
  return { requests, events, listen };
}

const batch = (length: number) => ({ topic: 't', partition: 0, bytes: new Uint8Array(length) });

describe('request events', () => {
  it('report each call to the broker as a REQUEST: Kafka’s apiName and apiKey, a correlationId per client, record bytes as size, this tab’s broker; nothing is measured or traced while nobody listens', async () => {
    const fetched: FetchedPartition[] = [{ topic: 't', partition: 0, highWatermark: 3, logStartOffset: 0, batches: [new Uint8Array(70), new Uint8Array(30)] }];
    const { node, calls } = fakeNode({ fetch: () => Promise.resolve(fetched) });
    const { requests, events, listen } = requestsOn(contextOf(node));
    const remote = await requests.node();
    const produce: ProduceRequest = { acks: -1, allowAutoTopicCreation: true, batches: [batch(100), batch(20)] };

    await remote.produce(produce);
    expect(calls.map((c) => [c.method, c.args.length])).toEqual([['produce', 1]]);

    const stop = listen('request');
    await remote.produce(produce);
    await remote.fetch({ requestId: 1, maxWaitMs: 0, minBytes: 1, maxBytes: 1000, partitions: [] });
    await remote.listTopics();
    await remote.joinGroup({ groupId: 'g', memberId: null, clientId: 'my-app', sessionTimeoutMs: 1, rebalanceTimeoutMs: 1, topics: [], assignors: ['range'] });
    await until(() => events.length === 4, 'four REQUEST events');
    expect(events.map((e) => e.type)).toEqual(Array(4).fill('admin.network.request'));
    expect(events.map(({ payload: p }) => ['apiName' in p && p.apiName, 'apiKey' in p && p.apiKey, 'correlationId' in p && p.correlationId, 'size' in p && p.size])).toEqual([
      ['Produce', 0, 0, 120],
      ['Fetch', 1, 1, 100],
      ['Metadata', 3, 2, 0],
      ['JoinGroup', 11, 3, 0],
    ]);
    for (const { payload } of events) {
      expect(payload).toMatchObject({ broker: 'localhost:80', clientId: 'my-app', apiVersion: 0, pendingDuration: 0 });
      if (!('duration' in payload)) throw new Error('a REQUEST has a duration');
      expect(payload.duration).toBeGreaterThanOrEqual(0);
      expect(payload.sentAt).toBe(payload.createdAt);
    }
    // Calls whose peer requests the broker reports carry the client's trace while someone listens.
    expect(calls.filter((c) => c.method !== 'reportPeerRequests' && c.method !== 'clusterInfo').map((c) => [c.method, c.args.length])).toEqual([
      ['produce', 1],
      ['produce', 2],
      ['fetch', 2],
      ['listTopics', 0],
      ['joinGroup', 1],
    ]);

    stop();
    await remote.fetch({ requestId: 2, maxWaitMs: 0, minBytes: 1, maxBytes: 1000, partitions: [] });
    expect(calls.at(-1)).toMatchObject({ method: 'fetch', args: [{ requestId: 2 }] });
    expect(calls.at(-1)!.args).toHaveLength(1);
  });

  it('report a refusal as an answer, not a broker gone (NotConnectedError)', async () => {
    const { node } = fakeNode({
      deleteTopics: () => Promise.reject(new UnknownTopicOrPartitionError('t')),
      listGroups: () => Promise.reject(new NotConnectedError('closed')),
    });
    const { requests, events, listen } = requestsOn(contextOf(node));
    listen('request');
    const remote = await requests.node();
    await expect(remote.deleteTopics(['t'])).rejects.toBeInstanceOf(UnknownTopicOrPartitionError);
    await expect(remote.listGroups()).rejects.toBeInstanceOf(NotConnectedError);
    await remote.listTopics();
    await until(() => events.length === 2, 'two REQUEST events');
    expect(events.map((e) => 'apiName' in e.payload && e.payload.apiName)).toEqual(['DeleteTopics', 'Metadata']);
  });

  it('pass the broker’s peer-request reports of traced calls to the client that traced them, with its clientId; the broker is asked once', async () => {
    const { node, calls, report } = fakeNode();
    const context = contextOf(node);
    const mine = requestsOn(context);
    const other = requestsOn({ ...context, clientId: 'other' });
    mine.listen('request');
    mine.listen('request_timeout');
    mine.listen('request_queue_size');
    other.listen('request');
    await (await mine.requests.node()).listOffsets([]);
    await (await mine.requests.node()).listOffsets([]);
    await (await other.requests.node()).listOffsets([]);
    expect(calls.filter((c) => c.method === 'reportPeerRequests')).toHaveLength(1);
    const traces = calls.filter((c) => c.method === 'listOffsets').map((c) => c.args[1]);
    expect(traces[0]).toBe(traces[1]);
    expect(traces[2]).not.toBe(traces[0]);
    const requested = (events: typeof mine.events) => events.filter((e) => e.type === 'admin.network.request').length;
    await until(() => requested(mine.events) === 2 && requested(other.events) === 1, 'the calls’ own events');
    mine.events.length = 0;
    other.events.length = 0;

    const trace = traces[0] as number;
    const sent = { broker: 'peer-b:0', correlationId: 7, createdAt: 1000, sentAt: 1002, pendingDuration: 2, apiName: 'ListOffsets', apiKey: 2, apiVersion: 0 };
    report({ type: 'request_queue_size', trace, payload: { broker: 'peer-b:0', queueSize: 3 } });
    report({ type: 'request', trace, payload: { ...sent, size: 42, duration: 5 } });
    report({ type: 'request_timeout', trace, payload: sent });
    report({ type: 'request', trace: 999, payload: { ...sent, size: 1, duration: 1 } });
    expect(mine.events).toEqual([
      { type: 'admin.network.request_queue_size', payload: { broker: 'peer-b:0', clientId: 'my-app', queueSize: 3 } },
      { type: 'admin.network.request', payload: { ...sent, size: 42, duration: 5, clientId: 'my-app' } },
      { type: 'admin.network.request_timeout', payload: { ...sent, clientId: 'my-app' } },
    ]);
    expect(other.events).toEqual([]);
  });

  it('report a call given up by withTimeout as REQUEST_TIMEOUT, and not as a REQUEST when its answer comes later', async () => {
    let answer: (results: unknown) => void = () => undefined;
    const { node } = fakeNode({ produce: () => new Promise((resolve) => (answer = resolve)) });
    const { requests, events, listen } = requestsOn(contextOf(node));
    listen('request');
    listen('request_timeout');
    const remote = await requests.node();
    const produce: ProduceRequest = { acks: -1, allowAutoTopicCreation: true, batches: [batch(10)] };
    const late = remote.produce(produce);
    await expect(requests.withTimeout(late, 5, 'send')).rejects.toBeInstanceOf(TimeoutError);
    await until(() => events.length === 1, 'REQUEST_TIMEOUT');
    expect(events[0]).toMatchObject({ type: 'admin.network.request_timeout', payload: { apiName: 'Produce', apiKey: 0, correlationId: 0, broker: 'localhost:80', clientId: 'my-app', pendingDuration: 0 } });
    answer([]);
    await late;
    await remote.listTopics();
    await until(() => events.length === 2, 'the next call’s REQUEST');
    expect(events[1]).toMatchObject({ type: 'admin.network.request', payload: { apiName: 'Metadata', correlationId: 1 } });
  });

  it('report calls waiting for the broker to start as REQUEST_QUEUE_SIZE, and none once it runs', async () => {
    const { node } = fakeNode();
    let start: (node: RemoteNode) => void = () => undefined;
    const starting = new Promise<RemoteNode>((resolve) => (start = resolve));
    const { requests, events, listen } = requestsOn(contextOf(starting));
    listen('request_queue_size');
    const first = requests.node();
    const second = requests.node();
    expect(events.map((e) => 'queueSize' in e.payload && e.payload.queueSize)).toEqual([1, 2]);
    start(node);
    await Promise.all([first, second]);
    await requests.node();
    expect(events.map((e) => 'queueSize' in e.payload && e.payload.queueSize)).toEqual([1, 2, 1, 0]);
    expect(events[0]!.payload).toEqual({ broker: 'localhost:80', clientId: 'my-app', queueSize: 1 });
  });

  it('are KafkaJS’s event names on producer, consumer and admin, which on() takes (and refuses the old producer.request)', () => {
    const context = contextOf(fakeNode().node);
    const logger = createLogger(logLevel.NOTHING);
    const producer = new Producer(context, {}, logger);
    const consumer = new Consumer(context, { groupId: 'g' }, logger);
    const admin = new Admin(context, logger);
    for (const [client, prefix] of [
      [producer, 'producer'],
      [consumer, 'consumer'],
      [admin, 'admin'],
    ] as const) {
      expect([client.events.REQUEST, client.events.REQUEST_TIMEOUT, client.events.REQUEST_QUEUE_SIZE]).toEqual([`${prefix}.network.request`, `${prefix}.network.request_timeout`, `${prefix}.network.request_queue_size`]);
    }
    expect(typeof producer.on(producer.events.REQUEST_QUEUE_SIZE, () => undefined)).toBe('function');
    expect(typeof consumer.on(consumer.events.REQUEST_TIMEOUT, () => undefined)).toBe('function');
    expect(typeof admin.on(admin.events.REQUEST, () => undefined)).toBe('function');
    expect(() => producer.on('producer.request' as never, () => undefined)).toThrow(InvalidArgumentError);
  });
});

describe('the idempotent producer', () => {
  it('holds later sends back while one is retried: a retry of a batch written but answered with a retriable error lands within the leader’s window of recent batches (answered as a duplicate), however many sends wait behind it', async () => {
    // The leader of t-0 as Kafka's keeps it for one producer: the next sequence, and the first
    // sequences of its last five batches with their offsets (a retry of one of those is a duplicate).
    let expected = 0;
    let end = 0;
    const recent: Array<{ sequence: number; baseOffset: number }> = [];
    /** The second batch is written, but its answer is the retriable NOT_LEADER_OR_FOLLOWER (a leader change while it committed). */
    let failAfterWrite = 1;
    let batches = 0;
    const produce = async (request: unknown): Promise<unknown> => {
      const { batches: sent } = request as ProduceRequest;
      return sent.map(({ topic, partition, bytes }) => {
        const header = readBatchHeader(bytes);
        const duplicate = recent.find((b) => b.sequence === header.baseSequence);
        if (duplicate !== undefined) return { topic, partition, baseOffset: duplicate.baseOffset, logStartOffset: 0 };
        if (header.baseSequence !== expected) throw new OutOfOrderSequenceNumberError(topic, partition, header.producerId, expected, header.baseSequence);
        const baseOffset = end;
        end += header.lastOffsetDelta + 1;
        expected += header.lastOffsetDelta + 1;
        recent.push({ sequence: header.baseSequence, baseOffset });
        if (recent.length > 5) recent.shift();
        if (batches++ === failAfterWrite) {
          failAfterWrite = -1;
          throw new NotLeaderOrFollowerError(topic, partition, -1);
        }
        return { topic, partition, baseOffset, logStartOffset: 0 };
      });
    };
    const { node } = fakeNode({
      initProducerId: () => Promise.resolve({ producerId: 7, producerEpoch: 0 }),
      listTopics: () => Promise.resolve(['t']),
      describeTopics: () => Promise.resolve([{ name: 't', numPartitions: 1 }]),
      produce,
    });
    const logger = createLogger(logLevel.NOTHING);
    const producer = new Producer(contextOf(node), { retry: { initialRetryTime: 20, retries: 3 } }, logger);
    await producer.connect();
    // Twenty sends at once, each a batch of one record; the second is retried after 20 ms.
    const sends = Array.from({ length: 20 }, (_, i) => producer.send({ topic: 't', messages: [{ value: `v${i}`, partition: 0 }] }));
    const offsets = (await Promise.all(sends)).map(([r]) => Number(r!.baseOffset));
    expect(offsets).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(end).toBe(20); // written once each
  });
});
