import { describe, expect, it } from 'vitest';
import { decodeProducerImage, encodeProducerImage, PRODUCER_BATCHES_KEPT, PRODUCERS_MAX, ProducerStateTable, type ProducerFields } from '../../src/log/producer-state';

const batch = (producerId: number, producerEpoch: number, baseSequence: number, records = 1): ProducerFields => ({ producerId, producerEpoch, baseSequence, lastOffsetDelta: records - 1 });

/** Records `fields` as appended after the table's last batch, numbering offsets and indices. */
function appendAll(table: ProducerStateTable, list: ProducerFields[], start = { offset: 0, index: 1 }) {
  let { offset, index } = start;
  for (const fields of list) {
    expect(table.decide(fields).kind).toBe('append');
    table.record(fields, { baseOffset: offset, lastOffset: offset + fields.lastOffsetDelta, index });
    offset += fields.lastOffsetDelta + 1;
    index++;
  }
  return { offset, index };
}

describe('producer state decisions', () => {
  it('appends in-sequence batches, answers a retry with the batch it repeats, refuses a gap', () => {
    const table = new ProducerStateTable();
    appendAll(table, [batch(7, 0, 0, 3), batch(7, 0, 3, 2)]);
    expect(table.decide(batch(7, 0, 5))).toEqual({ kind: 'append' });
    expect(table.decide(batch(7, 0, 0, 3))).toMatchObject({ kind: 'duplicate', batch: { baseOffset: 0, lastOffset: 2, index: 1 } });
    expect(table.decide(batch(7, 0, 3, 2))).toMatchObject({ kind: 'duplicate', batch: { baseOffset: 3, lastOffset: 4, index: 2 } });
    expect(table.decide(batch(7, 0, 6))).toEqual({ kind: 'outOfOrder', expected: 5, got: 6 });
    // Same first sequence, other length: not a retry of it.
    expect(table.decide(batch(7, 0, 3, 1))).toEqual({ kind: 'outOfOrder', expected: 5, got: 3 });
  });

  it('refuses a stale epoch; a new epoch starts at sequence 0', () => {
    const table = new ProducerStateTable();
    appendAll(table, [batch(1, 2, 0), batch(1, 2, 1)]);
    expect(table.decide(batch(1, 1, 2))).toEqual({ kind: 'staleEpoch', current: 2, got: 1 });
    expect(table.decide(batch(1, 3, 5))).toEqual({ kind: 'outOfOrder', expected: 0, got: 5 });
    expect(table.decide(batch(1, 3, 0))).toEqual({ kind: 'append' });
  });

  it('takes an unknown producer at any sequence (KIP-360) and batches without a producer as they are', () => {
    const table = new ProducerStateTable();
    expect(table.decide(batch(9, 0, 42))).toEqual({ kind: 'append' });
    expect(table.decide({ producerId: -1, producerEpoch: -1, baseSequence: -1, lastOffsetDelta: 0 })).toEqual({ kind: 'append' });
    expect(table.decide(batch(9, -1, 0)).kind).toBe('invalid');
  });

  it('keeps the last five batches of a producer', () => {
    const table = new ProducerStateTable();
    appendAll(table, Array.from({ length: 8 }, (_, i) => batch(3, 0, i)));
    expect(table.get(3)?.batches).toHaveLength(PRODUCER_BATCHES_KEPT);
    expect(table.decide(batch(3, 0, 3)).kind).toBe('duplicate');
    expect(table.decide(batch(3, 0, 2)).kind).toBe('outOfOrder');
  });

  it('remembers at most PRODUCERS_MAX producers, forgetting the one written longest ago', () => {
    const table = new ProducerStateTable();
    appendAll(table, [batch(0, 0, 0), ...Array.from({ length: PRODUCERS_MAX - 1 }, (_, i) => batch(i + 1, 0, 0)), batch(0, 0, 1), batch(PRODUCERS_MAX, 0, 0)]);
    expect(table.size).toBe(PRODUCERS_MAX);
    expect(table.get(1)).toBeUndefined(); // the oldest last write
    expect(table.get(0)?.lastSequence).toBe(1);
    const restored = new ProducerStateTable();
    restored.restore(table.imageAt());
    expect(restored.size).toBe(PRODUCERS_MAX);
  });

  it('decides a request’s batches in order', () => {
    const table = new ProducerStateTable();
    appendAll(table, [batch(4, 0, 0)]);
    expect(table.decide(batch(4, 0, 2), [batch(4, 0, 1)])).toEqual({ kind: 'append' });
    expect(table.decide(batch(4, 0, 1), [batch(4, 0, 1)])).toEqual({ kind: 'outOfOrder', expected: 2, got: 1 });
  });

  it('wraps sequences after 2^31 - 1', () => {
    const table = new ProducerStateTable();
    appendAll(table, [batch(5, 0, 0x7ffffffe, 3)]);
    expect(table.get(5)?.lastSequence).toBe(0);
    expect(table.decide(batch(5, 0, 1))).toEqual({ kind: 'append' });
  });
});

describe('producer state across truncation and snapshots', () => {
  it('forgets a truncated suffix, and a producer whose batches all went', () => {
    const table = new ProducerStateTable();
    appendAll(table, [batch(1, 0, 0), batch(2, 0, 0), batch(1, 0, 1)]);
    table.truncateFrom(2);
    expect(table.get(1)?.lastSequence).toBe(0);
    expect(table.get(2)).toBeUndefined();
    expect(table.decide(batch(1, 0, 1))).toEqual({ kind: 'append' });
  });

  it('images the state at an index, and restores and merges it', () => {
    const table = new ProducerStateTable();
    appendAll(table, [batch(1, 0, 0), batch(1, 0, 1), batch(2, 0, 0)]);
    const image = table.imageAt(2);
    expect(image).toEqual([[1, [expect.objectContaining({ index: 1 }), expect.objectContaining({ index: 2 })]]]);
    expect(decodeProducerImage(JSON.parse(JSON.stringify(encodeProducerImage(image))))).toEqual(image);
    const restored = new ProducerStateTable();
    restored.restore(image);
    expect(restored.decide(batch(1, 0, 1)).kind).toBe('duplicate');
    // Rebuilt from the batches after index 2 only (the head is gone), then merged with the image.
    const reopened = new ProducerStateTable();
    appendAll(reopened, [batch(1, 0, 2)], { offset: 2, index: 3 });
    reopened.mergeUnder(image, 2);
    expect(reopened.get(1)?.batches.map((b) => b.index)).toEqual([1, 2, 3]);
  });

  it('refuses a malformed image', () => {
    expect(decodeProducerImage('x')).toBeUndefined();
    expect(decodeProducerImage([[1, [[0, 0, 0, 0, 0]]]])).toBeUndefined();
    expect(decodeProducerImage([[-1, []]])).toBeUndefined();
  });
});
