import { Letterbox } from '../../../src/client';
import { median, quantile } from '../stats';
import type { BenchCase } from '../types';

// The broker node through the public client: producer → worker → log on IndexedDB, and
// back to a consumer on the same page.

const RECORD_BYTES = 1024;
const CALLS = 48;
const PER_CALL = 1000;
const LATENCY_ROUNDS = 300;
const CONSUME_RECORDS = 100_000;

let runs = 0;
const freshTopic = (name: string) => `${name}-${Date.now()}-${runs++}`;

function randomValues(count: number): Uint8Array[] {
  return Array.from({ length: count }, () => crypto.getRandomValues(new Uint8Array(RECORD_BYTES)));
}

export const cases: BenchCase[] = [
  {
    id: 'node.produce',
    title: 'producer.sendBatch of 1000 × 1 KiB per call, acks 1, through the worker into IndexedDB',
    baselines: ['raw.idb.put'],
    runs: 3,
    async run() {
      const letterbox = new Letterbox({ clientId: 'bench-produce' });
      try {
        const topic = freshTopic('produce');
        const admin = letterbox.admin();
        await admin.connect();
        await admin.createTopics({ topics: [{ topic }] });
        const producer = letterbox.producer();
        await producer.connect();
        const values = randomValues(64);
        const messages = Array.from({ length: PER_CALL }, (_, i) => ({ value: values[i % values.length]! }));
        const start = performance.now();
        for (let call = 0; call < CALLS; call++) await producer.sendBatch({ acks: 1, topicMessages: [{ topic, messages }] });
        const seconds = (performance.now() - start) / 1000;
        return [
          { id: 'node.produce', value: (CALLS * PER_CALL) / seconds, unit: 'records/s', better: 'higher', baseline: 'raw.idb.put' },
          { id: 'node.produce.mbps', value: (CALLS * PER_CALL * RECORD_BYTES) / 1e6 / seconds, unit: 'MB/s', better: 'higher', baseline: 'raw.idb.put.mbps' },
        ];
      } finally {
        await letterbox.close();
      }
    },
  },
  {
    id: 'node.latency',
    title: 'one 1 KiB record at a time: producer.send → eachMessage on the same page',
    baselines: ['raw.idb.rtt'],
    runs: 3,
    async run() {
      const letterbox = new Letterbox({ clientId: 'bench-latency' });
      try {
        const topic = freshTopic('latency');
        const producer = letterbox.producer();
        await producer.connect();
        await producer.send({ topic, messages: [{ value: 'warm-up' }] });
        const consumer = letterbox.consumer({ groupId: 'bench' });
        await consumer.connect();
        await consumer.subscribe({ topic });
        let delivered: (() => void) | undefined;
        // run() returns before the group is joined; a record sent before the join would be skipped (latest).
        const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
        await consumer.run({ eachMessage: async () => delivered?.() });
        await joined;
        const value = new Uint8Array(RECORD_BYTES);
        const times: number[] = [];
        for (let i = 0; i < LATENCY_ROUNDS; i++) {
          const received = new Promise<void>((resolve) => (delivered = resolve));
          const start = performance.now();
          await producer.send({ topic, acks: 1, messages: [{ value }] });
          await received;
          times.push(performance.now() - start);
        }
        await consumer.disconnect();
        return [
          { id: 'node.latency', value: median(times), unit: 'ms', better: 'lower', baseline: 'raw.idb.rtt' },
          { id: 'node.latency.p99', value: quantile(times, 0.99), unit: 'ms', better: 'lower', baseline: 'raw.idb.rtt.p99' },
        ];
      } finally {
        await letterbox.close();
      }
    },
  },
  {
    id: 'node.consume',
    title: 'eachBatch over a 100k-record topic (1 KiB records), through the worker, from the beginning',
    baselines: ['raw.idb.read'],
    runs: 3,
    async run() {
      const letterbox = new Letterbox({ clientId: 'bench-consume' });
      try {
        const topic = freshTopic('consume');
        const producer = letterbox.producer();
        await producer.connect();
        const values = randomValues(64);
        const messages = Array.from({ length: PER_CALL }, (_, i) => ({ value: values[i % values.length]! }));
        for (let sent = 0; sent < CONSUME_RECORDS; sent += PER_CALL) await producer.sendBatch({ acks: 1, topicMessages: [{ topic, messages }] });
        const consumer = letterbox.consumer({ groupId: `bench-${topic}` });
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        let received = 0;
        const start = performance.now();
        await new Promise<void>((resolve) => {
          void consumer.run({
            eachBatch: async ({ batch }) => {
              received += batch.messages.length;
              if (received >= CONSUME_RECORDS) resolve();
            },
          });
        });
        const seconds = (performance.now() - start) / 1000;
        await consumer.stop();
        return [
          { id: 'node.consume', value: received / seconds, unit: 'records/s', better: 'higher', baseline: 'raw.idb.read' },
          { id: 'node.consume.mbps', value: (received * RECORD_BYTES) / 1e6 / seconds, unit: 'MB/s', better: 'higher', baseline: 'raw.idb.read.mbps' },
        ];
      } finally {
        await letterbox.close();
      }
    },
  },
];
