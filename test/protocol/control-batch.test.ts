import { describe, expect, it } from 'vitest';
import { CorruptBatchError } from '../../src/errors';
import { decodeBatch, decodeControlBatch, encodeBatch, encodeControlBatch, verifyBatch } from '../../src/protocol';

describe('control batches (FORMATS.md § Control batch)', () => {
  it('encode a raft no-op and a configuration change as Kafka control batches of one record, taking one offset', () => {
    const noop = encodeControlBatch({ type: 'leaderChange', value: new Uint8Array(0) }, 7, 1_700_000_000_000);
    const header = verifyBatch(noop);
    expect([header.isControl, header.partitionLeaderEpoch, header.recordCount, header.lastOffsetDelta]).toEqual([true, 7, 1, 0]);
    // Kafka's control key: version 0, type LEADER_CHANGE (2).
    expect([...decodeBatch(noop).records[0]!.key!]).toEqual([0, 0, 0, 2]);
    expect(decodeControlBatch(noop)).toEqual({ type: 'leaderChange', value: new Uint8Array(0) });
    const value = new TextEncoder().encode('{"voters":["1.a"],"learners":[]}');
    expect(decodeControlBatch(encodeControlBatch({ type: 'voters', value }, 2, 0))).toEqual({ type: 'voters', value });
  });

  it('refuse a batch that is not one of ours with CorruptBatchError', () => {
    const data = encodeBatch({ baseTimestamp: 0, records: [{ value: new Uint8Array([1]) }] });
    expect(() => decodeControlBatch(data)).toThrow(CorruptBatchError);
    const unknownType = encodeBatch({ isControl: true, baseTimestamp: 0, records: [{ key: new Uint8Array([0, 0, 0, 1]), value: null }] });
    expect(() => decodeControlBatch(unknownType)).toThrow(/type 1/);
    const shortKey = encodeBatch({ isControl: true, baseTimestamp: 0, records: [{ key: new Uint8Array([0, 2]), value: null }] });
    expect(() => decodeControlBatch(shortKey)).toThrow(CorruptBatchError);
  });
});
