// A Jepsen-style checker (after Jepsen's Kafka queue workload) over what clients of one
// Kafka-like topic did and saw. Pure: plain data in, a report out, so the simulator and
// the browser e2e (which records in Playwright and checks in Node) share it.
//
// The history model:
// - A producer's send is a `send` op (the invocation, Jepsen's :invoke) followed by at most
//   one completion naming the same value: `ack` (Jepsen's :ok, with the offset the broker
//   returned), `fail` (definite: not written) or `unknown` (Jepsen's :info, a timeout: it
//   may or may not be written). A send with no completion is unknown too. Each send's value
//   is unique in the history, so a value identifies a record; a send the client retried
//   internally may still have written its value at two offsets (a duplicate).
// - A consumer's poll lists the records it received, in order, optionally with the
//   positions it polled from. A consumer reads each partition sequentially within one
//   assignment; `seek` and `rebalance` ops mark where that legitimately restarts.
// - `final`, when given, is a read of every partition from offset 0 to its end after the
//   faults healed: the ground truth of what the log holds. Offsets it lacks hold nothing a
//   consumer sees (control batches). Without it, only what clients saw is compared.
//
// Each check is a kind of anomaly:
// - `lost-write`: an acknowledged record is not at its acknowledged offset in the final log;
// - `inconsistent-offset`: one (partition, offset) seen holding two values (acks, polls,
//   final read);
// - `poll-skip`: a consumer's next offset in a partition jumps over offsets holding records;
// - `non-monotonic-poll`: a consumer's offsets in a partition go back or repeat;
// - `lost-read`: a consumer read a record the final log does not hold at that offset
//   (read above the high watermark, then truncated).
// A value acknowledged at one offset and seen at another is flagged by what is known of the
// acknowledged offset: another value there is an inconsistent offset, nothing there in the
// final log a lost write (naming where the value is instead), a consumer passing over it a
// poll skip; the value there too is a duplicate, counted, not flagged. Known nothing of it,
// the other copy may be a duplicate no consumer reached the first of, so nothing is flagged.

/** A record as a consumer or the final read saw it: `value` at `offset` of `partition`. */
export interface LogRecord {
  partition: number;
  offset: number;
  value: string;
}

/** Where a consumer will read a partition next. */
export interface Position {
  partition: number;
  offset: number;
}

/** One client operation, in the real-time order the history recorded them. */
export type Op =
  /** A producer asked to write `value` (unique among sends) to `partition`. */
  | { kind: 'send'; partition: number; value: string }
  /** The broker acknowledged the send of `value` at `offset`. */
  | { kind: 'ack'; value: string; offset: number }
  /** The send of `value` failed definitely: not written. */
  | { kind: 'fail'; value: string }
  /** The send of `value` ended without knowing whether it was written (a timeout). */
  | { kind: 'unknown'; value: string }
  /** `consumer` received `records` in this order, polling from `positions` when known. */
  | { kind: 'poll'; consumer: string; records: readonly LogRecord[]; positions?: readonly Position[] }
  /** `consumer` moved its position in `partition` to `offset` on purpose (a reset after an out-of-range offset too). */
  | { kind: 'seek'; consumer: string; partition: number; offset: number }
  /** `consumer`'s assignment changed: its next positions are not tied to its past reads. */
  | { kind: 'rebalance'; consumer: string };

export interface History {
  ops: readonly Op[];
  /** Everything each partition holds from offset 0, read after healing. */
  final?: readonly LogRecord[];
  /** The producers were idempotent (KIP-98): a value at two offsets is an anomaly, not a count. */
  idempotent?: boolean;
}

/** Where a value was seen: the index of the op in `History.ops`, or the final read. */
export type Source = number | 'final';

/** One thing the history shows went wrong; `op` fields are indices into `History.ops`. */
export type Anomaly =
  | {
      kind: 'lost-write';
      partition: number;
      offset: number;
      value: string;
      op: number;
      /** Offsets where the final log holds the value instead, if any. */
      foundAt: number[];
    }
  | { kind: 'inconsistent-offset'; partition: number; offset: number; seen: Array<{ value: string; source: Source }> }
  | {
      kind: 'poll-skip';
      consumer: string;
      partition: number;
      /** The offset the consumer should have gone on from. */
      expected: number;
      /** The offset it went on from instead. */
      offset: number;
      /** Offsets between the two that hold records. */
      skipped: number[];
      op: number;
      previousOp: number;
    }
  | { kind: 'non-monotonic-poll'; consumer: string; partition: number; expected: number; offset: number; op: number; previousOp: number }
  | { kind: 'lost-read'; consumer: string; partition: number; offset: number; value: string; op: number }
  /** With idempotent producers: `value` written at more than one offset (a retry appended again). */
  | { kind: 'duplicate'; partition: number; value: string; offsets: number[] };

export interface Report {
  anomalies: Anomaly[];
  counts: {
    sent: number;
    acknowledged: number;
    failed: number;
    /** Sends that ended unknown or never ended. */
    unknown: number;
    /** Distinct records consumers read. */
    read: number;
    /** Acknowledged records no consumer read at their acknowledged offset. */
    unread: number;
    /** Extra copies of values at a second offset: in the final log, or as read without one. */
    duplicates: number;
  };
}

/**
 * Checks a history of sends and polls against one topic's log; throws if the history is
 * malformed (a completion without its send, two completions, a value sent twice).
 * @example
 * const report = checkHistory({
 *   ops: [{ kind: 'send', partition: 0, value: 'a' }, { kind: 'ack', value: 'a', offset: 0 }],
 *   final: [{ partition: 0, offset: 0, value: 'a' }],
 * }); // report.anomalies: []
 */
export function checkHistory(history: History): Report {
  const { ops, final } = history;
  const sends = sendsOf(ops);
  const acks = [...sends.values()].flatMap((send) => send.ack ?? []);
  const seen = seenOf(history, acks);
  const anomalies: Anomaly[] = [...inconsistentOffsets(seen.values)];
  if (final !== undefined) {
    anomalies.push(...lostWrites(acks, seen), ...lostReads(ops, seen.final));
  }
  // Which offsets hold records, to tell a skip from a gap a consumer rightly passes over:
  // the final log says so when there is one; otherwise every offset a client saw holding one.
  const holding = new Map<number, number[]>();
  for (const [partition, offsets] of final === undefined ? seen.values : seen.final) holding.set(partition, [...offsets.keys()].sort(byNumber));
  anomalies.push(...sequenceAnomalies(ops, holding));

  const outcomes = [...sends.values()].map((send) => send.outcome);
  const count = (outcome: Send['outcome']) => outcomes.filter((o) => o === outcome).length;
  let duplicates = 0;
  for (const [partition, byValue] of final === undefined ? seen.polledOffsets : seen.finalOffsets) {
    for (const [value, offsets] of byValue) {
      duplicates += offsets.size - 1;
      if (history.idempotent === true && offsets.size > 1) anomalies.push({ kind: 'duplicate', partition, value, offsets: [...offsets].sort(byNumber) });
    }
  }
  return {
    anomalies,
    counts: {
      sent: sends.size,
      acknowledged: count('ack'),
      failed: count('fail'),
      unknown: count('unknown'),
      read: [...seen.polledOffsets.values()].reduce((sum, byValue) => sum + byValue.size, 0),
      unread: acks.filter((ack) => !seen.polledOffsets.get(ack.partition)?.get(ack.value)?.has(ack.offset)).length,
      duplicates,
    },
  };
}

interface Ack {
  partition: number;
  offset: number;
  value: string;
  op: number;
}

/** partition → value → the offsets it was seen at. */
type OffsetsOfValues = Map<number, Map<string, Set<number>>>;

/** What the history shows at each offset, indexed every way the checks look it up. */
interface Seen {
  /** Every value seen at each offset (acknowledged, polled, read at the end), with where first. */
  values: Map<number, Map<number, Map<string, Source>>>;
  /** partition → the offsets the final read found a record at. */
  final: Map<number, Set<number>>;
  finalOffsets: OffsetsOfValues;
  polledOffsets: OffsetsOfValues;
}

function seenOf({ ops, final }: History, acks: readonly Ack[]): Seen {
  const seen: Seen = { values: new Map(), final: new Map(), finalOffsets: new Map(), polledOffsets: new Map() };
  const see = (partition: number, offset: number, value: string, source: Source) => {
    const values = inner(inner(seen.values, partition), offset);
    if (!values.has(value)) values.set(value, source);
  };
  for (const { partition, offset, value, op } of acks) see(partition, offset, value, op);
  ops.forEach((op, index) => {
    if (op.kind !== 'poll') return;
    for (const { partition, offset, value } of op.records) {
      see(partition, offset, value, index);
      add(seen.polledOffsets, partition, value, offset);
    }
  });
  for (const { partition, offset, value } of final ?? []) {
    see(partition, offset, value, 'final');
    let offsets = seen.final.get(partition);
    if (offsets === undefined) seen.final.set(partition, (offsets = new Set()));
    offsets.add(offset);
    add(seen.finalOffsets, partition, value, offset);
  }
  return seen;
}

function inconsistentOffsets(values: Seen['values']): Anomaly[] {
  const anomalies: Anomaly[] = [];
  for (const [partition, offsets] of values) {
    for (const [offset, seenThere] of offsets) {
      if (seenThere.size > 1) {
        anomalies.push({ kind: 'inconsistent-offset', partition, offset, seen: [...seenThere].map(([value, source]) => ({ value, source })) });
      }
    }
  }
  return anomalies;
}

/** Acknowledged records the final log lacks at their offset (another value there is an inconsistent offset). */
function lostWrites(acks: readonly Ack[], seen: Seen): Anomaly[] {
  return acks.flatMap(({ partition, offset, value, op }): Anomaly[] =>
    seen.final.get(partition)?.has(offset) === true
      ? []
      : [{ kind: 'lost-write', partition, offset, value, op, foundAt: [...(seen.finalOffsets.get(partition)?.get(value) ?? [])].sort(byNumber) }],
  );
}

/** Polled records the final log lacks at their offset. */
function lostReads(ops: readonly Op[], final: Seen['final']): Anomaly[] {
  return ops.flatMap((op, index): Anomaly[] =>
    op.kind !== 'poll'
      ? []
      : op.records
          .filter(({ partition, offset }) => final.get(partition)?.has(offset) !== true)
          .map(({ partition, offset, value }) => ({ kind: 'lost-read', consumer: op.consumer, partition, offset, value, op: index })),
  );
}

interface Send {
  partition: number;
  /** `unknown` until a completion says otherwise: a send that never ends may have been written. */
  outcome: 'ack' | 'fail' | 'unknown';
  completed: boolean;
  ack?: Ack;
}

/** Each send by value, with its outcome. */
function sendsOf(ops: readonly Op[]): Map<string, Send> {
  const sends = new Map<string, Send>();
  ops.forEach((op, index) => {
    if (op.kind === 'send') {
      if (sends.has(op.value)) throw new Error(`history op ${index}: value ${JSON.stringify(op.value)} sent twice; values must identify sends`);
      sends.set(op.value, { partition: op.partition, outcome: 'unknown', completed: false });
      return;
    }
    if (op.kind !== 'ack' && op.kind !== 'fail' && op.kind !== 'unknown') return;
    const send = sends.get(op.value);
    if (send === undefined || send.completed) {
      throw new Error(`history op ${index}: ${op.kind} of ${JSON.stringify(op.value)} ${send === undefined ? 'before its send' : 'after its send completed'}`);
    }
    send.completed = true;
    send.outcome = op.kind;
    if (op.kind === 'ack') send.ack = { partition: send.partition, offset: op.offset, value: op.value, op: index };
  });
  return sends;
}

/** Poll skips and non-monotonic polls: each consumer's walk through each partition. */
function sequenceAnomalies(ops: readonly Op[], holding: ReadonlyMap<number, readonly number[]>): Anomaly[] {
  const anomalies: Anomaly[] = [];
  /** consumer → partition → the offset it should go on from, and the op that said so. */
  const next = new Map<string, Map<number, { offset: number; op: number }>>();
  /** The consumer goes on from `offset` (read there, or polled from there) and next expects `then`. */
  const goOn = (consumer: string, partition: number, offset: number, then: number, op: number) => {
    const positions = inner(next, consumer);
    const expected = positions.get(partition);
    positions.set(partition, { offset: then, op });
    if (expected !== undefined && offset < expected.offset) {
      anomalies.push({ kind: 'non-monotonic-poll', consumer, partition, expected: expected.offset, offset, op, previousOp: expected.op });
    } else if (expected !== undefined && offset > expected.offset) {
      const skipped = within(holding.get(partition) ?? [], expected.offset, offset);
      if (skipped.length > 0) anomalies.push({ kind: 'poll-skip', consumer, partition, expected: expected.offset, offset, skipped, op, previousOp: expected.op });
    }
  };
  ops.forEach((op, index) => {
    switch (op.kind) {
      case 'rebalance':
        next.delete(op.consumer);
        return;
      case 'seek':
        inner(next, op.consumer).set(op.partition, { offset: op.offset, op: index });
        return;
      case 'poll':
        for (const { partition, offset } of op.positions ?? []) goOn(op.consumer, partition, offset, offset, index);
        for (const { partition, offset } of op.records) goOn(op.consumer, partition, offset, offset + 1, index);
        return;
    }
  });
  return anomalies;
}

/** The offsets of `sortedOffsets` in [from, to). */
function within(sortedOffsets: readonly number[], from: number, to: number): number[] {
  let low = 0;
  let high = sortedOffsets.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sortedOffsets[middle]! < from) low = middle + 1;
    else high = middle;
  }
  const out: number[] = [];
  for (let i = low; i < sortedOffsets.length && sortedOffsets[i]! < to; i++) out.push(sortedOffsets[i]!);
  return out;
}

function inner<K, K2, V>(map: Map<K, Map<K2, V>>, key: K): Map<K2, V> {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = new Map()));
  return value;
}

function add(map: OffsetsOfValues, partition: number, value: string, offset: number): void {
  const byValue = inner(map, partition);
  let offsets = byValue.get(value);
  if (offsets === undefined) byValue.set(value, (offsets = new Set()));
  offsets.add(offset);
}

const byNumber = (a: number, b: number) => a - b;
