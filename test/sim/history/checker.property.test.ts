import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkHistory, type History, type LogRecord, type Op } from './index';

// Histories recorded against a model log that keeps every promise — sends landing zero, one
// or two times (a retry), completions arriving late or never, control batches, consumers
// reading in order, seeking and rewinding after rebalances — must pass; the same histories
// broken (an acknowledged record dropped from the final log, two of its records swapped, a
// record dropped from the middle of a poll) must be flagged with the anomaly that break is.

const PARTITIONS = 3;

type Outcome = 'ack' | 'retried' | 'fail' | 'unknown-landed' | 'unknown-lost';
type Action =
  | { action: 'send'; partition: number; outcome: Outcome; ackFirstCopy: boolean }
  | { action: 'complete'; fraction: number }
  | { action: 'control'; partition: number }
  | { action: 'poll'; consumer: number; maxRecords: number; withPositions: boolean }
  | { action: 'seek'; consumer: number; partition: number; fraction: number }
  | { action: 'rebalance'; consumer: number; fractions: number[] };

const partition = fc.integer({ min: 0, max: PARTITIONS - 1 });
const consumer = fc.integer({ min: 0, max: 2 });
const fraction = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      action: fc.constant('send' as const),
      partition,
      outcome: fc.constantFrom<Outcome>('ack', 'ack', 'ack', 'retried', 'fail', 'unknown-landed', 'unknown-lost'),
      ackFirstCopy: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ action: fc.constant('complete' as const), fraction }) },
  { weight: 1, arbitrary: fc.record({ action: fc.constant('control' as const), partition }) },
  {
    weight: 4,
    arbitrary: fc.record({ action: fc.constant('poll' as const), consumer, maxRecords: fc.integer({ min: 0, max: 5 }), withPositions: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ action: fc.constant('seek' as const), consumer, partition, fraction }) },
  {
    weight: 1,
    arbitrary: fc.record({ action: fc.constant('rebalance' as const), consumer, fractions: fc.array(fraction, { minLength: PARTITIONS, maxLength: PARTITIONS }) }),
  },
);

interface Recorded {
  history: History & { final: LogRecord[] };
  /** Copies of values beyond their first, as the model log holds them. */
  duplicates: number;
}

/** Plays `actions` against a model log (null entries: control batches) and records the history. */
function record(actions: readonly Action[]): Recorded {
  const logs: Array<Array<string | null>> = Array.from({ length: PARTITIONS }, () => []);
  const ops: Op[] = [];
  const inFlight: Op[] = [];
  const positions = new Map<number, number[]>();
  const positionsOf = (c: number) => {
    let p = positions.get(c);
    if (p === undefined) positions.set(c, (p = new Array<number>(PARTITIONS).fill(0)));
    return p;
  };
  let duplicates = 0;
  let sent = 0;
  for (const step of actions) {
    switch (step.action) {
      case 'send': {
        const value = `v${sent++}`;
        const log = logs[step.partition]!;
        ops.push({ kind: 'send', partition: step.partition, value });
        if (step.outcome === 'ack' || step.outcome === 'retried') {
          const first = log.push(value) - 1;
          if (step.outcome === 'retried') {
            log.push(value);
            duplicates++;
          }
          // A retried send's answer may be either attempt's.
          const offset = step.outcome === 'retried' && !step.ackFirstCopy ? first + 1 : first;
          inFlight.push({ kind: 'ack', value, offset });
        } else {
          if (step.outcome === 'unknown-landed') log.push(value);
          inFlight.push({ kind: step.outcome === 'fail' ? 'fail' : 'unknown', value });
        }
        break;
      }
      case 'complete':
        if (inFlight.length > 0) ops.push(...inFlight.splice(Math.floor(step.fraction * inFlight.length), 1));
        break;
      case 'control':
        logs[step.partition]!.push(null);
        break;
      case 'poll': {
        const from = positionsOf(step.consumer);
        const polledFrom = from.map((offset, p) => ({ partition: p, offset }));
        const records: LogRecord[] = [];
        for (let p = 0; p < PARTITIONS; p++) {
          const log = logs[p]!;
          while (from[p]! < log.length && records.length < step.maxRecords) {
            const offset = from[p]!++;
            const value = log[offset];
            if (value !== null && value !== undefined) records.push({ partition: p, offset, value });
          }
        }
        ops.push(step.withPositions ? { kind: 'poll', consumer: `c${step.consumer}`, records, positions: polledFrom } : { kind: 'poll', consumer: `c${step.consumer}`, records });
        break;
      }
      case 'seek': {
        const offset = Math.floor(step.fraction * (logs[step.partition]!.length + 1));
        positionsOf(step.consumer)[step.partition] = offset;
        ops.push({ kind: 'seek', consumer: `c${step.consumer}`, partition: step.partition, offset });
        break;
      }
      case 'rebalance': {
        // The new assignment starts from committed offsets: at or before where it was.
        const from = positionsOf(step.consumer);
        step.fractions.forEach((f, p) => (from[p] = Math.floor(f * (from[p]! + 1))));
        ops.push({ kind: 'rebalance', consumer: `c${step.consumer}` });
        break;
      }
    }
  }
  const final = logs.flatMap((log, p) => log.flatMap((value, offset) => (value === null ? [] : [{ partition: p, offset, value }])));
  return { history: { ops, final }, duplicates };
}

const actions = fc.array(actionArb, { minLength: 1, maxLength: 60 });

describe('checkHistory against a model log', () => {
  it('finds no anomaly in a correct history, with or without the final read', () => {
    fc.assert(
      fc.property(actions, (steps) => {
        const { history, duplicates } = record(steps);
        const report = checkHistory(history);
        expect(report.anomalies).toEqual([]);
        expect(report.counts).toMatchObject({ acknowledged: history.ops.filter((op) => op.kind === 'ack').length, duplicates });
        expect(checkHistory({ ops: history.ops }).anomalies).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('flags an acknowledged record dropped from the final log as a lost write', () => {
    fc.assert(
      fc.property(actions, fc.nat(), (steps, pick) => {
        const { history } = record(steps);
        const acks = history.ops.flatMap((op, index) => (op.kind === 'ack' ? [{ ...op, index }] : []));
        fc.pre(acks.length > 0);
        const dropped = acks[pick % acks.length]!;
        const [partition] = history.ops.flatMap((op) => (op.kind === 'send' && op.value === dropped.value ? [op.partition] : []));
        const final = history.final.filter((r) => r.partition !== partition || r.offset !== dropped.offset);
        expect(final).toHaveLength(history.final.length - 1);
        const anomalies = checkHistory({ ops: history.ops, final }).anomalies;
        expect(anomalies).toContainEqual(expect.objectContaining({ kind: 'lost-write', partition, offset: dropped.offset, value: dropped.value, op: dropped.index }));
        // A consumer that read it read a record later lost; nothing else is wrong.
        for (const { kind } of anomalies) expect(['lost-write', 'lost-read']).toContain(kind);
        expect(new Set(anomalies.map((a) => `${a.partition}:${'offset' in a ? a.offset : a.offsets.join()}`))).toEqual(new Set([`${partition}:${dropped.offset}`]));
      }),
      { numRuns: 300 },
    );
  });

  it('flags two records swapped in the final log as inconsistent offsets', () => {
    fc.assert(
      fc.property(actions, fc.nat(), fc.nat(), (steps, pickAck, pickOther) => {
        const { history } = record(steps);
        const acked = new Set(history.ops.flatMap((op) => (op.kind === 'ack' ? [`${op.value}@${op.offset}`] : [])));
        const ackedRecords = history.final.filter((r) => acked.has(`${r.value}@${r.offset}`));
        fc.pre(ackedRecords.length > 0);
        const a = ackedRecords[pickAck % ackedRecords.length]!;
        const others = history.final.filter((r) => r.partition === a.partition && r.value !== a.value);
        fc.pre(others.length > 0);
        const b = others[pickOther % others.length]!;
        const final = history.final.map((r) => (r === a ? { ...a, value: b.value } : r === b ? { ...b, value: a.value } : r));
        const anomalies = checkHistory({ ops: history.ops, final }).anomalies;
        expect(anomalies).toContainEqual(expect.objectContaining({ kind: 'inconsistent-offset', partition: a.partition, offset: a.offset }));
        // b's offset is flagged too when its record was acknowledged or read; nothing else is.
        const where = anomalies.map((anomaly) => (anomaly.kind === 'inconsistent-offset' ? `${anomaly.partition}:${anomaly.offset}` : anomaly.kind));
        for (const at of where) expect([`${a.partition}:${a.offset}`, `${b.partition}:${b.offset}`]).toContain(at);
      }),
      { numRuns: 300 },
    );
  });

  it('flags a record dropped from the middle of a poll as a poll skip, with or without the final read', () => {
    fc.assert(
      fc.property(actions, fc.nat(), fc.boolean(), (steps, pick, withFinal) => {
        const { history } = record(steps);
        // A record between two of its partition in one poll, so the consumer is known to have
        // gone on past it; without the final read, only if its acknowledgement shows it is there.
        const acked = new Set(history.ops.flatMap((op) => (op.kind === 'ack' ? [`${op.value}@${op.offset}`] : [])));
        const samePartition = (records: readonly LogRecord[], r: LogRecord) => records.some((other) => other.partition === r.partition);
        const candidates = history.ops.flatMap((op, index) =>
          op.kind !== 'poll'
            ? []
            : op.records.flatMap((r, i) =>
                samePartition(op.records.slice(0, i), r) && samePartition(op.records.slice(i + 1), r) && (withFinal || acked.has(`${r.value}@${r.offset}`)) ? [{ index, i }] : [],
              ),
        );
        fc.pre(candidates.length > 0);
        const { index, i } = candidates[pick % candidates.length]!;
        const poll = history.ops[index] as Extract<Op, { kind: 'poll' }>;
        const dropped = poll.records[i]!;
        const ops = history.ops.map((op) => (op === poll ? { ...poll, records: poll.records.filter((r) => r !== dropped) } : op));
        const anomalies = checkHistory(withFinal ? { ops, final: history.final } : { ops }).anomalies;
        expect(anomalies).toEqual([expect.objectContaining({ kind: 'poll-skip', consumer: poll.consumer, partition: dropped.partition, op: index })]);
        expect(anomalies[0]).toMatchObject({ skipped: [dropped.offset] });
      }),
      { numRuns: 300 },
    );
  });
});
