import { decodeBatch, encodeBatch } from '../../src/protocol';

const utf8 = new TextEncoder();
const text = new TextDecoder();

export interface TestRecord {
  key?: string | null;
  /** null is a tombstone. */
  value: string | null;
  timestamp?: number;
}

/** An uncompressed RecordBatch v2 of `records` (baseOffset 0; the log assigns offsets). */
export function batchOf(records: readonly (TestRecord | string)[], baseTimestamp = 1_700_000_000_000): Uint8Array {
  const list = records.map((r) => (typeof r === 'string' ? { value: r } : r));
  return encodeBatch({
    baseTimestamp,
    records: list.map((r, i) => ({
      offsetDelta: i,
      timestampDelta: (r.timestamp ?? baseTimestamp) - baseTimestamp,
      key: r.key === undefined || r.key === null ? null : utf8.encode(r.key),
      value: r.value === null ? null : utf8.encode(r.value),
    })),
  });
}

/** The records of stored batches as [offset, key, value] from `from` on. */
export function recordsOf(batches: readonly Uint8Array[], from = 0): Array<[number, string | null, string | null]> {
  return batches.flatMap((bytes) => {
    const batch = decodeBatch(bytes);
    return batch.records
      .map((r): [number, string | null, string | null] => [
        batch.baseOffset + r.offsetDelta,
        r.key === null ? null : text.decode(r.key),
        r.value === null ? null : text.decode(r.value),
      ])
      .filter(([offset]) => offset >= from);
  });
}
