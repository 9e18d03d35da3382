import { afterEach, describe, expect, it } from 'vitest';
import { realClock } from '../../src/clock';
import { InvalidArgumentError, InvalidProducerEpochError, LeaderNotAvailableError, OutOfOrderSequenceNumberError, UnknownProducerIdError } from '../../src/errors';
import { Producer } from '../../src/client/producer';
import { PeerRequestReports } from '../../src/client/requests';
import type { ClientContext, RemoteNode } from '../../src/client/context';
import { createBrokerNode, type NodeApi, type NodeStartInit } from '../../src/node';
import { encodeBatch, readBatchHeader } from '../../src/protocol';
import { type MemoryStorage } from '../../src/storage';
import { openFrom } from './databases';
import { createFakeLocks } from './fake-locks';

// Idempotence (KIP-98) on a private broker, through its node API as the client calls it: producer
// ids from the broker's block, the leader's decisions (duplicate, gap, stale epoch, forged id)
// where it numbers offsets, the state rebuilt on reopen, and the client's producer on top.

const utf8 = new TextEncoder();
const init: NodeStartInit = { clientId: 'test', slotWaitMs: 50, knownIncarnations: {}, onStorageLost: 'fail' };
const batch = (producerId: number, producerEpoch: number, baseSequence: number, ...values: string[]) =>
  encodeBatch({ baseTimestamp: 1, producerId, producerEpoch, baseSequence, records: values.map((v) => ({ value: utf8.encode(v) })) });

let started: NodeApi[] = [];
afterEach(async () => {
  await Promise.all(started.map((n) => n.close()));
  started = [];
});

async function startNode(databases = new Map<string, MemoryStorage>(), locks = createFakeLocks(), options: Partial<NodeStartInit> = {}) {
  let ids = 0;
  const node = createBrokerNode({ openStorage: openFrom(databases), locks, clock: realClock, randomId: () => `incarnation-${ids++}` });
  const info = await node.start({ ...init, ...options });
  started.push(node);
  await node.createTopics([{ topic: 't' }], false);
  return { node, databases, locks, info };
}

const produce = (node: NodeApi, bytes: Uint8Array, acks: -1 | 1 = -1) => node.produce({ acks, allowAutoTopicCreation: false, batches: [{ topic: 't', partition: 0, bytes }] });
const endOf = async (node: NodeApi) => (await node.listOffsets([{ topic: 't', partition: 0, query: 'latest' }]))[0];

describe('idempotent produce at the broker', () => {
  it('hands out producer ids from its block, each once', async () => {
    const { node } = await startNode();
    const ids = await Promise.all(Array.from({ length: 5 }, () => node.initProducerId()));
    expect(new Set(ids.map((i) => i.producerId)).size).toBe(5);
    expect(ids.every((i) => i.producerEpoch === 0)).toBe(true);
  });

  it('answers a resent batch with its original offset and writes it once', async () => {
    const { node } = await startNode();
    const { producerId } = await node.initProducerId();
    const [first] = await produce(node, batch(producerId, 0, 0, 'a', 'b'));
    const [second] = await produce(node, batch(producerId, 0, 2, 'c'));
    const [again] = await produce(node, batch(producerId, 0, 0, 'a', 'b'));
    expect([first!.baseOffset, second!.baseOffset, again!.baseOffset]).toEqual([0, 2, 0]);
    expect(await endOf(node)).toBe(3);
  });

  it('refuses a sequence gap, a stale epoch and a forged producer id with typed errors, writing nothing', async () => {
    const { node } = await startNode();
    const { producerId } = await node.initProducerId();
    await produce(node, batch(producerId, 1, 0, 'a'));
    await expect(produce(node, batch(producerId, 1, 5, 'gap'))).rejects.toBeInstanceOf(OutOfOrderSequenceNumberError);
    await expect(produce(node, batch(producerId, 0, 1, 'stale'))).rejects.toBeInstanceOf(InvalidProducerEpochError);
    await expect(produce(node, batch(producerId + 1_000_000, 0, 0, 'forged'))).rejects.toBeInstanceOf(UnknownProducerIdError);
    const gap = await produce(node, batch(producerId, 1, 7, 'x')).catch((error: unknown) => error);
    expect(gap).toMatchObject({ code: 'OUT_OF_ORDER_SEQUENCE_NUMBER', expected: 1, sequence: 7, topic: 't', partition: 0, retriable: false });
    expect(await endOf(node)).toBe(1);
  });

  it('remembers its producers across a restart (rebuilt from the log)', async () => {
    const databases = new Map<string, MemoryStorage>();
    const locks = createFakeLocks();
    const first = await startNode(databases, locks);
    const { producerId } = await first.node.initProducerId();
    await produce(first.node, batch(producerId, 0, 0, 'a'));
    await first.node.close();
    started = [];
    const { node } = await startNode(databases, locks, { preferredSlot: first.info.slot, knownIncarnations: { [first.info.slot]: first.info.incarnation } });
    const [again] = await produce(node, batch(producerId, 0, 0, 'a'));
    expect(again!.baseOffset).toBe(0);
    await expect(produce(node, batch(producerId, 0, 3, 'gap'))).rejects.toBeInstanceOf(OutOfOrderSequenceNumberError);
    expect(await endOf(node)).toBe(1);
    // Ids handed out before the restart are known; the next block starts after them.
    expect((await node.initProducerId()).producerId).toBeGreaterThan(producerId);
  });
});

/** A client producer over a node in this thread (no worker): what a page's producer does through Comlink. */
function producerOn(node: NodeApi, config: ConstructorParameters<typeof Producer>[1] = {}) {
  const context: ClientContext = {
    clientId: 'test',
    node: async () => node as unknown as RemoteNode,
    peerReports: new PeerRequestReports(),
    nodeInfo: async () => ({ slot: 0, incarnation: 'x', databaseName: 'x', storageLost: false }),
  };
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  return new Producer(context, config, silent as never);
}

describe('the idempotent producer', () => {
  it('is idempotent by default, stamps its id and per-partition sequences; idempotent: false turns it off', async () => {
    const { node } = await startNode();
    const sent: Uint8Array[] = [];
    const spy: NodeApi = { ...node, produce: async (request, trace) => (sent.push(...request.batches.map((b) => b.bytes.slice())), node.produce(request, trace)) };
    const producer = producerOn(spy);
    expect(producer.isIdempotent()).toBe(true);
    await producer.connect();
    await producer.send({ topic: 't', messages: [{ value: 'a' }, { value: 'b' }] });
    await producer.send({ topic: 't', messages: [{ value: 'c' }] });
    const headers = sent.map((b) => readBatchHeader(b));
    expect(headers.map((h) => [h.producerEpoch, h.baseSequence])).toEqual([
      [0, 0],
      [0, 2],
    ]);
    expect(headers[0]!.producerId).toBeGreaterThanOrEqual(0);
    expect(headers[1]!.producerId).toBe(headers[0]!.producerId);
    const plain = producerOn(spy, { idempotent: false });
    expect(plain.isIdempotent()).toBe(false);
    await plain.connect();
    await plain.send({ topic: 't', messages: [{ value: 'd' }] });
    expect(readBatchHeader(sent.at(-1)!).producerId).toBe(-1);
  });

  it('a retry after a lost answer resends the same batch, written once', async () => {
    const { node } = await startNode();
    let lose = 1;
    const lossy: NodeApi = {
      ...node,
      produce: async (request, trace) => {
        const result = await node.produce(request, trace);
        // Written, but the answer is lost: the client sees a retriable error and sends again.
        if (lose-- > 0) throw new LeaderNotAvailableError('t', 0);
        return result;
      },
    };
    const producer = producerOn(lossy, { retry: { retries: 3, initialRetryTime: 1 } });
    await producer.connect();
    const [meta] = await producer.send({ topic: 't', messages: [{ value: 'once' }] });
    expect(meta!.baseOffset).toBe('0');
    expect(await endOf(node)).toBe(1);
  });

  it('a send given up: the next goes under the next epoch from sequence 0, and a late attempt of the given-up one is then fenced (KIP-360), nothing written', async () => {
    const { node } = await startNode();
    const attempts: Uint8Array[] = [];
    let lost = 2;
    const lossy: NodeApi = {
      ...node,
      produce: async (request, trace) => {
        attempts.push(...request.batches.map((b) => b.bytes.slice()));
        // Both attempts of the first send stay on the wire (never delivered): the send is given up.
        if (lost-- > 0) throw new LeaderNotAvailableError('t', 0);
        return node.produce(request, trace);
      },
    };
    const producer = producerOn(lossy, { retry: { retries: 1, initialRetryTime: 1 } });
    await producer.connect();
    await expect(producer.send({ topic: 't', messages: [{ value: 'given up' }] })).rejects.toThrow();
    await producer.send({ topic: 't', messages: [{ value: 'next' }] });
    const [givenUp, , next] = attempts.map((b) => readBatchHeader(b));
    expect([next!.producerId, next!.producerEpoch, next!.baseSequence]).toEqual([givenUp!.producerId, givenUp!.producerEpoch + 1, 0]);
    // The given-up send's attempt arrives late: fenced, not written after the next send.
    await expect(produce(node, attempts[0]!)).rejects.toBeInstanceOf(InvalidProducerEpochError);
    expect(await endOf(node)).toBe(1);
  });

  it('refuses more than 5 requests in flight, and no retries, with idempotence', () => {
    const fake = {} as NodeApi;
    expect(() => producerOn(fake, { maxInFlightRequests: 6 })).toThrow(InvalidArgumentError);
    expect(() => producerOn(fake, { retry: { retries: 0 } })).toThrow(InvalidArgumentError);
    expect(producerOn(fake, { maxInFlightRequests: 6, idempotent: false }).isIdempotent()).toBe(false);
  });

  it('keeps each partition in order under concurrent sends', async () => {
    const { node } = await startNode();
    const producer = producerOn(node);
    await producer.connect();
    await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send({ topic: 't', messages: [{ value: `v${i}` }] })));
    expect(await endOf(node)).toBe(20);
  });
});
