import { describe, expect, it } from 'vitest';
import { readBatch } from '../../src/client/consumer/batch';
import { encodeBatch, encodeControlBatch, setBaseOffset } from '../../src/protocol';

const at = (bytes: Uint8Array, offset: number) => {
  setBaseOffset(bytes, offset);
  return bytes;
};

describe('the consumer and control batches', () => {
  it('passes over a control batch: no message from it, and the position moves past it', async () => {
    const noop = at(encodeControlBatch({ type: 'leaderChange', value: new Uint8Array(0) }, 3, 0), 5);
    const data = at(encodeBatch({ baseTimestamp: 0, records: [{ value: new TextEncoder().encode('v') }] }), 6);
    const trailing = at(encodeControlBatch({ type: 'voters', value: new TextEncoder().encode('{}') }, 3, 0), 7);
    const owned = { topic: 't', partition: 0, position: 5 };
    const { batch, endOffset } = await readBatch(owned, { topic: 't', partition: 0, highWatermark: 8, logStartOffset: 0, batches: [noop, data, trailing] });
    expect(batch.messages.map((m) => [m.offset, m.value?.toString()])).toEqual([['6', 'v']]);
    expect(endOffset).toBe(8);
  });
});
