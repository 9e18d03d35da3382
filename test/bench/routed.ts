import type { Letterbox } from '../../src/client';
import { quantile } from './stats';
import type { BenchFigure } from './types';

// What the routed cases of both transports share (local.ts, rpc.ts): a topic with one partition
// led by this page's broker and one by the peer page's, and the two measurements on it.

export const RECORD_BYTES = 1024;
const ROUTED_CALLS = 16;
const PER_CALL = 1000;
/**
 * sendBatch calls kept in flight by the throughput measurement: a Kafka producer keeps up to
 * five requests in flight per broker (max.in.flight.requests.per.connection), and
 * kafka-producer-perf-test measures with them; one at a time would measure round trips.
 */
export const IN_FLIGHT = 4;
const WARMUP_ROUNDS = 40;
const LATENCY_ROUNDS = 200;
let topics = 0;

/**
 * A topic of the two brokers' cluster with a partition led by this page's broker (`here`) and
 * one by the peer's (`there`), trying again until the peer's broker is live; `explain` says
 * why not when `timeoutMs` runs out.
 */
export async function splitTopic(letterbox: Letterbox, timeoutMs: number, explain: () => Promise<string>): Promise<{ topic: string; here: number; there: number }> {
  const admin = letterbox.admin();
  await admin.connect();
  try {
    // The peer's broker may still be joining, or coming back on the slot of the last case's
    // peer tab (fenced when that tab closed, unfenced by its first heartbeat): a topic placed
    // while it is not live lands on this broker alone and is passed over.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while ((await admin.describeCluster()).brokers.length < 2) {
        if (Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const topic = `routed-${Date.now()}-${topics++}`;
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
      // Known once registered, which the change waited for.
      const { brokerId } = await letterbox.nodeInfo();
      const { topics: [described] } = await admin.fetchTopicMetadata({ topics: [topic] });
      const here = described?.partitions.find((p) => p.leader === brokerId)?.partitionId;
      const there = described?.partitions.find((p) => p.leader !== brokerId)?.partitionId;
      if (here !== undefined && there !== undefined) return { topic, here, there };
      if (Date.now() > deadline) throw new Error(`no topic placed over both brokers within ${timeoutMs} ms: ${await explain()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await admin.disconnect();
  }
}

/** The acks a measurement sends with: 1 for the routed (replication factor 1) cases, -1 for the replicated ones. */
export type Acks = -1 | 1;

/** send → eachMessage on this page for one 1 KiB record at a time to `partition`, with `acks` (ms each, after a warm-up), committing no offsets. */
export async function latencies(letterbox: Letterbox, topic: string, partition: number, acks: Acks = 1): Promise<number[]> {
  const producer = letterbox.producer();
  await producer.connect();
  const consumer = letterbox.consumer({ groupId: `bench-routed-${Date.now()}` });
  await consumer.connect();
  // From the beginning: the group's first assignment may come after the first send, which a
  // consumer starting at the latest offset would never see. Each round waits for its own key
  // on its own partition, so earlier records of the topic are passed over.
  await consumer.subscribe({ topic, fromBeginning: true });
  let expected: { key: string; delivered: () => void } | undefined;
  await consumer.run({
    // As Kafka's EndToEndLatency tool (enable.auto.commit=false): a commit after every round
    // would put an offset write of __consumer_offsets (replicated) between the rounds.
    autoCommit: false,
    eachMessage: async ({ partition: from, message }) => {
      const round = expected;
      if (round !== undefined && from === partition && message.key?.toString() === round.key) round.delivered();
    },
  });
  const value = new Uint8Array(RECORD_BYTES);
  const times: number[] = [];
  try {
    for (let i = 0; i < WARMUP_ROUNDS + LATENCY_ROUNDS; i++) {
      const key = String(i);
      const received = new Promise<void>((resolve) => (expected = { key, delivered: resolve }));
      const start = performance.now();
      await producer.send({ topic, acks, messages: [{ key, value, partition }] });
      await received;
      if (i >= WARMUP_ROUNDS) times.push(performance.now() - start);
    }
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
  return times;
}

/** producer.sendBatch of 1000 × 1 KiB to `partition`, with `acks`, IN_FLIGHT calls at a time, 16 calls (MB/s). */
export async function produceMbps(letterbox: Letterbox, topic: string, partition: number, acks: Acks = 1, idempotent = true): Promise<number> {
  const producer = letterbox.producer({ idempotent });
  await producer.connect();
  try {
    const values = Array.from({ length: 64 }, () => crypto.getRandomValues(new Uint8Array(RECORD_BYTES)));
    const messages = Array.from({ length: PER_CALL }, (_, i) => ({ value: values[i % values.length]!, partition }));
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next++ < ROUTED_CALLS) await producer.sendBatch({ acks, topicMessages: [{ topic, messages }] });
      }),
    );
    return (ROUTED_CALLS * PER_CALL * RECORD_BYTES) / 1e6 / ((performance.now() - start) / 1000);
  } finally {
    await producer.disconnect();
  }
}

/** Where a latency measurement sends: a topic's partition, with `acks` (default 1). */
export interface LatencyTarget {
  topic: string;
  partition: number;
  acks?: Acks;
}

/**
 * The latency case of one transport: send → eachMessage to the partition led here (node.latency),
 * a peer round trip (`rttMs`), then to the partition led by the peer, or to `measured` when
 * given (a replicated partition, acks -1); figures `<id>`, `<id>.base` (node.latency + rtt, the
 * ratio's baseline) and `<id>.p99`.
 */
export async function latencyFigures(letterbox: Letterbox, split: { topic: string; here: number; there: number }, id: string, rttName: string, rttMs: () => Promise<number>, measured?: LatencyTarget): Promise<BenchFigure[]> {
  const local = quantile(await latencies(letterbox, split.topic, split.here), 0.5);
  const rtt = await rttMs();
  const target = measured ?? { topic: split.topic, partition: split.there };
  const routed = await latencies(letterbox, target.topic, target.partition, target.acks);
  return [
    { id, value: quantile(routed, 0.5), unit: 'ms', better: 'lower', baseline: `${id}.base` },
    { id: `${id}.base`, value: local + rtt, unit: `ms (node.latency ${local.toFixed(2)} + ${rttName} ${rtt.toFixed(2)}, same run)`, better: 'lower' },
    { id: `${id}.node`, value: local, unit: 'ms (node.latency, same run)', better: 'lower' },
    { id: `${id}.p99`, value: quantile(routed, 0.99), unit: 'ms', better: 'lower' },
  ];
}
