import { describe, expect, it } from 'vitest';
import { checkHistory, type History, type LogRecord, type Op } from './index';

// Each check, fed a hand-made history that breaks it, must flag exactly its kind; a
// correct history with every legitimate oddity (duplicates, unknown outcomes, control
// batches, rewinds after a rebalance) must pass.

const send = (partition: number, value: string): Op => ({ kind: 'send', partition, value });
const ack = (value: string, offset: number): Op => ({ kind: 'ack', value, offset });
const rec = (partition: number, offset: number, value: string): LogRecord => ({ partition, offset, value });
const poll = (consumer: string, records: LogRecord[], positions?: Array<{ partition: number; offset: number }>): Op =>
  positions === undefined ? { kind: 'poll', consumer, records } : { kind: 'poll', consumer, records, positions };
const kinds = (history: History) => checkHistory(history).anomalies.map((a) => a.kind);

/** Partition 0: a, b, a control batch at 2, c. Partition 1: d. */
const log = [rec(0, 0, 'a'), rec(0, 1, 'b'), rec(0, 3, 'c'), rec(1, 0, 'd')];
const written: Op[] = [send(0, 'a'), ack('a', 0), send(0, 'b'), ack('b', 1), send(0, 'c'), ack('c', 3), send(1, 'd'), ack('d', 0)];

describe('checkHistory', () => {
  it('passes a correct history with duplicates, unknown outcomes, a control batch and a rewind after a rebalance', () => {
    const report = checkHistory({
      ops: [
        send(0, 'a'),
        ack('a', 0),
        send(0, 'r'), // retried inside the client: written at 1 and 2, acknowledged at 2
        ack('r', 2),
        send(0, 'landed'),
        { kind: 'unknown', value: 'landed' },
        send(0, 'missing'),
        { kind: 'unknown', value: 'missing' },
        send(1, 'refused'),
        { kind: 'fail', value: 'refused' },
        send(1, 'x'),
        ack('x', 0),
        send(1, 'pending'), // never completed: unknown, and it did not land
        poll('c1', [rec(0, 0, 'a'), rec(0, 1, 'r'), rec(1, 0, 'x')], [{ partition: 0, offset: 0 }]),
        poll('c1', [rec(0, 2, 'r')]),
        // Offset 3 is a control batch: the consumer passes over it.
        poll('c1', [rec(0, 4, 'landed')], [{ partition: 0, offset: 3 }]),
        { kind: 'rebalance', consumer: 'c1' },
        poll('c1', [rec(0, 2, 'r')]),
        { kind: 'seek', consumer: 'c1', partition: 1, offset: 0 },
        poll('c1', [rec(1, 0, 'x')]),
      ],
      final: [rec(0, 0, 'a'), rec(0, 1, 'r'), rec(0, 2, 'r'), rec(0, 4, 'landed'), rec(1, 0, 'x')],
    });
    expect(report).toEqual({
      anomalies: [],
      counts: { sent: 7, acknowledged: 3, failed: 1, unknown: 3, read: 4, unread: 0, duplicates: 1 },
    });
  });

  it('passes an empty history, with or without a final read', () => {
    const counts = { sent: 0, acknowledged: 0, failed: 0, unknown: 0, read: 0, unread: 0, duplicates: 0 };
    expect(checkHistory({ ops: [] })).toEqual({ anomalies: [], counts });
    expect(checkHistory({ ops: [], final: [] })).toEqual({ anomalies: [], counts });
  });

  it('counts acknowledged records no consumer read at their offset', () => {
    expect(checkHistory({ ops: [...written, poll('c', [rec(0, 0, 'a')])], final: log }).counts.unread).toBe(3);
  });

  it('lost-write: an acknowledged record missing from the final log, or not at its acknowledged offset', () => {
    expect(checkHistory({ ops: written, final: log.filter((r) => r.value !== 'b') }).anomalies).toEqual([
      { kind: 'lost-write', partition: 0, offset: 1, value: 'b', op: 3, foundAt: [] },
    ]);
    const moved = [rec(0, 0, 'a'), rec(0, 2, 'b'), rec(0, 3, 'c'), rec(1, 0, 'd')];
    expect(checkHistory({ ops: written, final: moved }).anomalies).toEqual([
      { kind: 'lost-write', partition: 0, offset: 1, value: 'b', op: 3, foundAt: [2] },
    ]);
  });

  it('unknown sends are not lost writes, whether they landed or not', () => {
    const ops: Op[] = [send(0, 'u'), { kind: 'unknown', value: 'u' }, send(0, 'v'), { kind: 'unknown', value: 'v' }];
    expect(kinds({ ops, final: [rec(0, 0, 'u')] })).toEqual([]);
    expect(kinds({ ops, final: [] })).toEqual([]);
  });

  it('inconsistent-offset: one offset seen holding two values', () => {
    // The broker acknowledged b at 1 but a consumer read c there.
    const ops = [...written.slice(0, 4), poll('c', [rec(0, 0, 'a'), rec(0, 1, 'c')])];
    expect(checkHistory({ ops }).anomalies).toEqual([
      { kind: 'inconsistent-offset', partition: 0, offset: 1, seen: [{ value: 'b', source: 3 }, { value: 'c', source: 4 }] },
    ]);
    // Two consumers disagree, and the final log holds a third value.
    expect(checkHistory({ ops: [poll('c1', [rec(2, 0, 'p')]), poll('c2', [rec(2, 0, 'q')])], final: [rec(2, 0, 'r')] }).anomalies).toEqual([
      {
        kind: 'inconsistent-offset',
        partition: 2,
        offset: 0,
        seen: [
          { value: 'p', source: 0 },
          { value: 'q', source: 1 },
          { value: 'r', source: 'final' },
        ],
      },
    ]);
  });

  it('a value acknowledged at one offset and read at another: flagged by what is known of the acknowledged offset', () => {
    const acked = [send(0, 'a'), ack('a', 0), send(0, 'b'), ack('b', 1)];
    // A consumer passed over it.
    expect(kinds({ ops: [...acked, poll('c', [rec(0, 0, 'a'), rec(0, 2, 'b')])] })).toEqual(['poll-skip']);
    // Another consumer read another value there.
    expect(kinds({ ops: [...acked, poll('c', [rec(0, 2, 'b')]), poll('d', [rec(0, 1, 'e')])] })).toEqual(['inconsistent-offset']);
    // The final log holds nothing there (the lost-write test), or the value there too: a duplicate.
    expect(checkHistory({ ops: [...acked, poll('c', [rec(0, 2, 'b')])], final: [rec(0, 0, 'a'), rec(0, 1, 'b'), rec(0, 2, 'b')] })).toMatchObject({
      anomalies: [],
      counts: { duplicates: 1, unread: 2 },
    });
    // Nothing known of it: the copy read may be a duplicate whose first no consumer reached.
    expect(kinds({ ops: [...acked, poll('c', [rec(0, 2, 'b')])] })).toEqual([]);
  });

  it('with idempotent producers, a value at two offsets is a duplicate anomaly', () => {
    const ops: Op[] = [send(0, 'a'), { kind: 'ack', value: 'a', offset: 0 }];
    expect(checkHistory({ ops, final: [rec(0, 0, 'a'), rec(0, 1, 'a')], idempotent: true }).anomalies).toEqual([{ kind: 'duplicate', partition: 0, value: 'a', offsets: [0, 1] }]);
    expect(checkHistory({ ops, final: [rec(0, 0, 'a')], idempotent: true }).anomalies).toEqual([]);
  });

  it('a value read at its acknowledged offset and at another is a duplicate, not an error', () => {
    const ops = [send(0, 'a'), ack('a', 1), poll('c', [rec(0, 0, 'a'), rec(0, 1, 'a')])];
    expect(checkHistory({ ops })).toMatchObject({ anomalies: [], counts: { duplicates: 1, read: 1, unread: 0 } });
    expect(checkHistory({ ops, final: [rec(0, 0, 'a'), rec(0, 1, 'a')] })).toMatchObject({ anomalies: [], counts: { duplicates: 1 } });
  });

  it('poll-skip: a consumer jumps over an offset holding a record, across polls or within one', () => {
    const ops = [...written, poll('c', [rec(0, 0, 'a')]), poll('c', [rec(0, 3, 'c')])];
    expect(checkHistory({ ops, final: log }).anomalies).toEqual([
      { kind: 'poll-skip', consumer: 'c', partition: 0, expected: 1, offset: 3, skipped: [1], op: 9, previousOp: 8 },
    ]);
    // Without a final read, the acknowledgement shows offset 1 holds a record.
    expect(kinds({ ops })).toEqual(['poll-skip']);
    expect(kinds({ ops: [...written, poll('c', [rec(0, 0, 'a'), rec(0, 3, 'c')])], final: log })).toEqual(['poll-skip']);
    // A position past what the consumer read skips too.
    expect(kinds({ ops: [...written, poll('c', [rec(0, 0, 'a')]), poll('c', [], [{ partition: 0, offset: 2 }])], final: log })).toEqual(['poll-skip']);
  });

  it('non-monotonic-poll: a consumer goes back or repeats without a seek or rebalance', () => {
    const ops = [...written, poll('c', [rec(0, 0, 'a'), rec(0, 1, 'b')]), poll('c', [rec(0, 1, 'b')])];
    expect(checkHistory({ ops, final: log }).anomalies).toEqual([
      { kind: 'non-monotonic-poll', consumer: 'c', partition: 0, expected: 2, offset: 1, op: 9, previousOp: 8 },
    ]);
    expect(kinds({ ops: [...written, poll('c', [rec(0, 1, 'b'), rec(0, 0, 'a')])], final: log })).toEqual(['non-monotonic-poll']);
    expect(kinds({ ops: [...written, poll('c', [rec(0, 1, 'b')]), poll('c', [], [{ partition: 0, offset: 0 }])], final: log })).toEqual(['non-monotonic-poll']);
    // Another consumer, a seek or a rebalance may go back.
    expect(kinds({ ops: [...written, poll('c', [rec(0, 1, 'b')]), poll('d', [rec(0, 1, 'b')])], final: log })).toEqual([]);
    expect(kinds({ ops: [...written, poll('c', [rec(0, 1, 'b')]), { kind: 'seek', consumer: 'c', partition: 0, offset: 0 }, poll('c', [rec(0, 0, 'a')])], final: log })).toEqual([]);
    expect(kinds({ ops: [...written, poll('c', [rec(0, 1, 'b')]), { kind: 'rebalance', consumer: 'c' }, poll('c', [rec(0, 0, 'a')])], final: log })).toEqual([]);
  });

  it('lost-read: a consumer read a record the final log does not hold', () => {
    const ops = [...written, poll('c', [rec(0, 3, 'c'), rec(0, 4, 'e')])];
    expect(checkHistory({ ops, final: log }).anomalies).toEqual([{ kind: 'lost-read', consumer: 'c', partition: 0, offset: 4, value: 'e', op: 8 }]);
  });

  it('throws on a malformed history', () => {
    expect(() => checkHistory({ ops: [ack('a', 0)] })).toThrow(/op 0: ack of "a" before its send/);
    expect(() => checkHistory({ ops: [send(0, 'a'), ack('a', 0), { kind: 'fail', value: 'a' }] })).toThrow(/op 2: fail of "a" after its send completed/);
    expect(() => checkHistory({ ops: [send(0, 'a'), send(1, 'a')] })).toThrow(/op 1: value "a" sent twice/);
  });
});
