import type { Page } from '@playwright/test';
import { checkHistory, type History, type LogRecord, type Op, type Report } from '../sim/history';
import type {} from './cluster-tabs'; // window.broker
import { expect } from './fixtures';

// Histories recorded in tabs of a cluster, for the project's history checker (test/sim/history,
// the simulator's Jepsen-style checker): each tab records its clients' operations as they
// happen — a producer's sends with their outcomes, a consumer's polls and rebalances — with
// the wall-clock time, and historyOf merges the tabs' records into one history in real-time
// order (the tabs share the machine's clock). A record's value is unique in the history
// (`<producer>-<n>`), sent as both its key and its value.

/** An op with when it happened (Date.now() in its tab). */
interface TimedOp {
  t: number;
  op: Op;
}

/** What a recording producer did so far, as its tab reports it. */
export interface ProducerRun {
  /** Records whose send ended, by outcome. */
  sent: number;
  acked: number;
  /** Records whose send failed (unknown to the history: a send over several partitions may have written some). */
  failed: number;
  /** Failures by error name and code. */
  errors: Record<string, number>;
  /** Sends (of `batch` records) invoked, and the number of the last one acknowledged. */
  sends: number;
  lastAckedSend: number;
  /** Produce requests by broker (`host:port`), from the producer's REQUEST events. */
  requests: Record<string, number>;
  done: boolean;
  /** Each send: when it was invoked and ended (ms since the epoch), how, and the brokers its Produce requests were answered by, in order. */
  log: SendLog[];
}

export interface SendLog {
  invokedAt: number;
  endedAt: number;
  outcome: 'ack' | 'unknown';
  brokers: string[];
}

declare global {
  interface Window {
    historyOps: TimedOp[] | undefined;
    historyProducers: Record<string, { run: ProducerRun; stop: boolean }> | undefined;
    historyConsumers: Record<string, { values: Set<string>; polls: number; rebalances: number; events: string[]; consumer: { disconnect(): Promise<void> } }> | undefined;
  }
}

/** How a recording producer sends: `count` records (or until stopped), `batch` per send, to `partitions` in turn, with acks -1. */
export interface ProduceSpec {
  /** Names the producer; its values are `<name>-<n>`. */
  name: string;
  topic: string;
  partitions: readonly number[];
  /** Records to send; Infinity sends until stopProducer. */
  count: number;
  batch: number;
  /** The send's timeout (ms): past it, the outcome is unknown. */
  timeoutMs?: number;
}

/**
 * Starts a recording producer in `page`'s broker: it sends in a loop, each send's records
 * recorded as `send` ops before it and as `ack` ops (at the offsets the send returned) or
 * `unknown` ops after. A failed send is not sent again by the test: the client's own retries
 * are what keeps producing across a failover. Returns at once; see producerRunOf.
 */
export const startProducer = (page: Page, spec: ProduceSpec): Promise<void> =>
  page.evaluate(
    async ({ name, topic, partitions, count, batch, timeoutMs }) => {
      const ops = (window.historyOps ??= []);
      const run: ProducerRun = { sent: 0, acked: 0, failed: 0, errors: {}, sends: 0, lastAckedSend: 0, requests: {}, done: false, log: [] };
      let current: SendLog | undefined;
      const state = { run, stop: false };
      (window.historyProducers ??= {})[name] = state;
      const producer = window.broker.producer();
      producer.on(producer.events.REQUEST, ({ payload }) => {
        if (payload.apiName !== 'Produce') return;
        run.requests[payload.broker] = (run.requests[payload.broker] ?? 0) + 1;
        current?.brokers.push(payload.broker);
      });
      await producer.connect();
      void (async () => {
        try {
          for (let n = 0; n < count && !state.stop; n += batch) {
            const messages = Array.from({ length: Math.min(batch, count - n) }, (_, j) => {
              const value = `${name}-${n + j}`;
              return { key: value, value, partition: partitions[(n + j) % partitions.length]! };
            });
            for (const { value, partition } of messages) ops.push({ t: Date.now(), op: { kind: 'send', partition, value } });
            run.sends += 1;
            const log: SendLog = { invokedAt: Date.now(), endedAt: 0, outcome: 'unknown', brokers: [] };
            current = log;
            run.log.push(log);
            try {
              const results = await producer.send({ topic, acks: -1, messages, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) });
              const t = Date.now();
              const next = new Map(results.map((r) => [r.partition, Number(r.baseOffset)]));
              for (const { value, partition } of messages) {
                const offset = next.get(partition)!;
                next.set(partition, offset + 1);
                ops.push({ t, op: { kind: 'ack', value, offset } });
              }
              run.acked += messages.length;
              run.lastAckedSend = run.sends;
              log.outcome = 'ack';
            } catch (error) {
              const t = Date.now();
              for (const { value } of messages) ops.push({ t, op: { kind: 'unknown', value } });
              run.failed += messages.length;
              const { name: errorName, code } = error as { name: string; code?: string };
              const what = `${errorName}/${code ?? '?'}`;
              run.errors[what] = (run.errors[what] ?? 0) + 1;
            }
            run.sent += messages.length;
            log.endedAt = Date.now();
          }
        } finally {
          run.done = true;
          await producer.disconnect();
        }
      })();
    },
    { ...spec, count: spec.count === Infinity ? Number.MAX_SAFE_INTEGER : spec.count },
  );

/** The recording producer `name`'s progress. */
export const producerRunOf = (page: Page, name: string): Promise<ProducerRun> => page.evaluate((name) => window.historyProducers![name]!.run, name);

/** The recording producer `name`'s progress without its send log (which grows with every send). */
export const producerProgressOf = (page: Page, name: string): Promise<Omit<ProducerRun, 'log'>> =>
  page.evaluate((name) => {
    const { log: _, ...progress } = window.historyProducers![name]!.run;
    return progress;
  }, name);

/**
 * When (ms since the epoch) the recording producer `name` first had a send acknowledged that
 * it invoked at or after `from` and made no Produce request to `broker` for (`host:port`):
 * undefined while it has none — a write the brokers other than `broker` served after `from`.
 */
export const firstAckWithout = (page: Page, name: string, from: number, broker: string): Promise<number | undefined> =>
  page.evaluate(
    ({ name, from, broker }) => {
      const { log } = window.historyProducers![name]!.run;
      let first: number | undefined;
      // Sends are logged in the order they were invoked: only the tail since `from` is read, backwards.
      for (let i = log.length - 1; i >= 0 && log[i]!.invokedAt >= from; i--) {
        const send = log[i]!;
        if (send.outcome === 'ack' && !send.brokers.includes(broker)) first = Math.min(first ?? send.endedAt, send.endedAt);
      }
      return first;
    },
    { name, from, broker },
  );

/** Asks the recording producer `name` to stop after its current send. */
export const stopProducer = (page: Page, name: string): Promise<void> =>
  page.evaluate((name) => {
    window.historyProducers![name]!.stop = true;
  }, name);

/** Waits (up to `timeoutMs`) until the recording producer `name` has ended, and returns what it did. */
export async function producerDone(page: Page, name: string, timeoutMs: number): Promise<ProducerRun> {
  await expect.poll(async () => (await producerRunOf(page, name)).done, { timeout: timeoutMs }).toBe(true);
  return producerRunOf(page, name);
}

/**
 * Starts a recording consumer of `groupId` on `topic` in `page`, from the beginning: each
 * batch eachBatch receives is a `poll` op of its records; a rebalance, a (re)join and a crash
 * are `rebalance` ops (its positions then restart from the group's committed offsets).
 */
export const startConsumer = (page: Page, name: string, topic: string, groupId: string): Promise<void> =>
  page.evaluate(
    async ({ name, topic, groupId }) => {
      const ops = (window.historyOps ??= []);
      const consumer = window.broker.consumer({ groupId, heartbeatInterval: 300, sessionTimeout: 10_000 });
      const state = { values: new Set<string>(), polls: 0, rebalances: 0, events: [] as string[], consumer };
      (window.historyConsumers ??= {})[name] = state;
      const started = Date.now();
      const rebalance = (why: string) => {
        ops.push({ t: Date.now(), op: { kind: 'rebalance', consumer: name } });
        state.rebalances += 1;
        state.events.push(`${why} @${Date.now() - started} ms`);
      };
      consumer.on(consumer.events.REBALANCING, () => rebalance('rebalancing'));
      consumer.on(consumer.events.GROUP_JOIN, () => rebalance('joined'));
      consumer.on(consumer.events.CRASH, ({ payload }) => rebalance(`crash ${payload.error.name}: ${payload.error.message}`));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachBatch: async ({ batch }) => {
          const records = batch.messages.map((m) => ({ partition: batch.partition, offset: Number(m.offset), value: new TextDecoder().decode(m.key!) }));
          ops.push({ t: Date.now(), op: { kind: 'poll', consumer: name, records } });
          state.polls += 1;
          for (const r of records) state.values.add(r.value);
        },
      });
    },
    { name, topic, groupId },
  );

/** Of `values`, those the recording consumer `name` has not received yet (at most 20 listed, and how many). */
export const unreadOf = (page: Page, name: string, values: readonly string[]): Promise<{ count: number; some: string[] }> =>
  page.evaluate(
    ({ name, values }) => {
      const seen = window.historyConsumers![name]!.values;
      const unread = values.filter((v) => !seen.has(v));
      return { count: unread.length, some: unread.slice(0, 20) };
    },
    { name, values },
  );

/** Stops the recording consumer `name`; returns its polls, rebalances and events. */
export const stopConsumer = (page: Page, name: string): Promise<{ polls: number; rebalances: number; events: string[] }> =>
  page.evaluate(async (name) => {
    const { consumer, polls, rebalances, events } = window.historyConsumers![name]!;
    await consumer.disconnect();
    return { polls, rebalances, events };
  }, name);

/** `page`'s recorded ops. */
const opsOf = (page: Page): Promise<TimedOp[]> => page.evaluate(() => window.historyOps ?? []);

/**
 * The history of `pages`' recorded ops, merged in real-time order (a stable sort: each tab's
 * own order is kept), with `final`, the read of the whole log after the faults.
 */
export async function historyOf(pages: readonly Page[], final: readonly LogRecord[]): Promise<History> {
  const timed = (await Promise.all(pages.map(opsOf))).flat();
  timed.sort((a, b) => a.t - b.t);
  return { ops: timed.map(({ op }) => op), final };
}

/** The acknowledged records of `history`, by value: their partition and offset. */
export function acknowledged(history: History): Map<string, { partition: number; offset: number }> {
  const partitionOf = new Map<string, number>();
  const out = new Map<string, { partition: number; offset: number }>();
  for (const op of history.ops) {
    if (op.kind === 'send') partitionOf.set(op.value, op.partition);
    if (op.kind === 'ack') out.set(op.value, { partition: partitionOf.get(op.value)!, offset: op.offset });
  }
  return out;
}

/**
 * Reads all of `topic` in `page` with a consumer of a new group, from the beginning, until it
 * has every partition's record at or past `ends` (a partition → offset of a record acknowledged
 * after the faults: the log is whole below it); every record, as the final read of a history.
 */
export const finalRead = (page: Page, topic: string, groupId: string, ends: ReadonlyMap<number, number>): Promise<LogRecord[]> =>
  page.evaluate(
    async ({ topic, groupId, ends }) => {
      const consumer = window.broker.consumer({ groupId });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const records: Array<{ partition: number; offset: number; value: string }> = [];
      const reached = new Map<number, number>();
      try {
        await new Promise<void>((resolve, reject) => {
          consumer
            .run({
              eachBatch: async ({ batch }) => {
                for (const m of batch.messages) {
                  records.push({ partition: batch.partition, offset: Number(m.offset), value: new TextDecoder().decode(m.key!) });
                  reached.set(batch.partition, Math.max(reached.get(batch.partition) ?? -1, Number(m.offset)));
                }
                if (ends.every(([partition, end]) => (reached.get(partition) ?? -1) >= end)) resolve();
              },
            })
            .catch(reject);
        });
      } finally {
        await consumer.disconnect();
      }
      return records;
    },
    { topic, groupId, ends: [...ends] },
  );

/**
 * Judges `history` with the history checker: prints its counts (`what` names the run) and
 * expects no anomaly (with `history.idempotent`, a record written twice is one); returns the report.
 */
export function expectConsistent(history: History, what: string): Report {
  const report = checkHistory(history);
  const { counts } = report;
  console.log(
    `${what}: history of ${history.ops.length} ops — sent ${counts.sent}, acknowledged ${counts.acknowledged}, failed ${counts.failed}, unknown ${counts.unknown}; ` +
      `read ${counts.read} distinct, acknowledged unread ${counts.unread}; duplicates ${counts.duplicates} (${history.idempotent === true ? 'idempotent producers: each an anomaly' : 'retried sends, counted'}); final log ${history.final?.length ?? 0} records; anomalies ${report.anomalies.length}`,
  );
  expect(report.anomalies.slice(0, 20), `${what}: ${report.anomalies.length} anomalies`).toEqual([]);
  expect(counts.unread, `${what}: acknowledged records no consumer read at their offsets`).toBe(0);
  return report;
}
