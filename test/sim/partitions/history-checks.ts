import type { PartitionsHistory } from './simulator';

// The minimal history checks of the partitions simulation, over what its clients saw and each
// partition's final read from its leader (values are unique per send). What retention deleted
// (below the final read's log start) is not judged: its records cannot be read back.
// - lost acknowledged write: a send acknowledged at an offset whose record is not there at the end;
// - inconsistent offset: one offset of a partition seen holding two values (acks, polls, the end);
// - failed write visible: a send refused for certain whose value is in the log;
// - read later lost: a polled record that the final read does not hold at its offset;
// - non-monotonic poll: a consumer's offsets not increasing across its polls;
// - poll skip: a record of the final read between a consumer's consecutive records it never got
//   (unless retention deleted it on the leader it polled: the consumer reset to the log start).
// Duplicates (a retried send's value at two offsets) are counted, not failures.

export interface HistoryAnomaly {
  readonly kind: 'lost acknowledged write' | 'inconsistent offset' | 'failed write visible' | 'read later lost' | 'non-monotonic poll' | 'poll skip';
  readonly message: string;
}

/**
 * Checks a partitions history; the anomalies found (first of each kind first) and the duplicates counted.
 * @example const { anomalies, duplicates } = checkPartitionsHistory(report.history);
 */
export function checkPartitionsHistory(history: PartitionsHistory): { anomalies: HistoryAnomaly[]; duplicates: number } {
  const anomalies: HistoryAnomaly[] = [];
  const add = (kind: HistoryAnomaly['kind'], message: string) => anomalies.push({ kind, message });
  /** Per partition: where the final read starts, offset → value at the end, and each value's offsets at the end. */
  const finals = new Map<number, { start: number; byOffset: Map<number, string>; offsets: number[] }>();
  const finalOffsetsOf = new Map<string, number[]>();
  for (const [partition, { logStartOffset, records }] of history.finalReads) {
    finals.set(partition, { start: logStartOffset, byOffset: new Map(records.map((r) => [r.offset, r.value])), offsets: records.map((r) => r.offset) });
    for (const { value, offset } of records) finalOffsetsOf.set(`${partition}/${value}`, [...(finalOffsetsOf.get(`${partition}/${value}`) ?? []), offset]);
  }
  let duplicates = 0;
  for (const offsets of finalOffsetsOf.values()) duplicates += offsets.length - 1;

  /** Every value seen at each offset, for the inconsistent-offset check. */
  const seen = new Map<string, string>();
  const see = (partition: number, offset: number, value: string, where: string) => {
    const key = `${partition}@${offset}`;
    const before = seen.get(key);
    if (before !== undefined && before !== value) add('inconsistent offset', `p${partition}@${offset} held ${before} and ${value} (${where})`);
    else seen.set(key, value);
  };
  for (const [partition, { byOffset }] of finals) for (const [offset, value] of byOffset) see(partition, offset, value, 'final read');

  for (const send of history.sends) {
    const final = finals.get(send.partition)!;
    if (send.outcome?.type === 'ok') {
      const { offset } = send.outcome;
      see(send.partition, offset, send.value, `acknowledged to ${send.process}`);
      if (offset >= final.start && final.byOffset.get(offset) !== send.value) add('lost acknowledged write', `${send.value} acknowledged at p${send.partition}@${offset} to ${send.process} at ${send.completeMs}ms; the final read has ${final.byOffset.get(offset) ?? 'nothing'} there`);
    } else if (send.outcome?.type === 'fail' && finalOffsetsOf.has(`${send.partition}/${send.value}`)) {
      add('failed write visible', `${send.value} was refused for certain but is at p${send.partition}@${finalOffsetsOf.get(`${send.partition}/${send.value}`)!.join(',')}`);
    }
  }

  /** Each consumer's last record: where its next poll must continue. */
  const last = new Map<string, number>();
  for (const poll of history.polls) {
    const final = finals.get(poll.partition)!;
    // A reset to the log start: what lies before it was deleted for this consumer (another replica may still have had it).
    if (poll.resetTo !== undefined) last.set(poll.process, Math.max(last.get(poll.process) ?? -1, poll.resetTo - 1));
    for (const { offset, value } of poll.records) {
      see(poll.partition, offset, value, `polled by ${poll.process}`);
      if (offset >= final.start && final.byOffset.get(offset) !== value) add('read later lost', `${poll.process} polled ${value} at p${poll.partition}@${offset} at ${poll.atMs}ms; the final read has ${final.byOffset.get(offset) ?? 'nothing'} there`);
      const previous = last.get(poll.process) ?? -1;
      if (offset <= previous) add('non-monotonic poll', `${poll.process} polled p${poll.partition}@${offset} at ${poll.atMs}ms after @${previous}`);
      else {
        // The record the final read holds next after the previous one polled.
        const expected = final.offsets.find((o) => o > previous);
        if (expected !== undefined && expected < offset) add('poll skip', `${poll.process} polled p${poll.partition}@${offset} at ${poll.atMs}ms after @${previous}, skipping @${expected}`);
      }
      last.set(poll.process, Math.max(previous, offset));
    }
  }
  return { anomalies, duplicates };
}
