/// <reference path="./pages/client.ts" />
import { expect, openClientPage, test } from './fixtures';

// The idempotent producer in real Chromium (the broker in its worker, partitions in IndexedDB):
// on by default, and a batch sent again with its sequence is answered with its first offset,
// written once.

test('a producer is idempotent by default; a resent batch is answered with its original offset and written once', async ({ page }) => {
  await openClientPage(page);
  const outcome = await page.evaluate(async () => {
    const letterbox = new window.lb.Letterbox({ clientId: 'idempotence' });
    const producer = letterbox.producer();
    const plain = letterbox.producer({ idempotent: false });
    await producer.connect();
    const [sent] = await producer.send({ topic: 'idem', messages: [{ value: 'by the producer', partition: 0 }] });
    // A batch as the producer builds it, sent twice with the same producer id and sequence (a retry after a lost answer).
    const node = await letterbox.node();
    const { producerId, producerEpoch } = await node.initProducerId();
    const resend = () =>
      node.produce({
        acks: -1,
        allowAutoTopicCreation: false,
        batches: [{ topic: 'idem', partition: 0, bytes: window.lbEncodeBatch({ baseTimestamp: Date.now(), producerId, producerEpoch, baseSequence: 0, records: [{ value: new TextEncoder().encode('retried') }] }) }],
      });
    const [first] = await resend();
    const [again] = await resend();
    const gap = await node
      .produce({
        acks: -1,
        allowAutoTopicCreation: false,
        batches: [{ topic: 'idem', partition: 0, bytes: window.lbEncodeBatch({ baseTimestamp: Date.now(), producerId, producerEpoch, baseSequence: 5, records: [{ value: new TextEncoder().encode('gap') }] }) }],
      })
      .then(
        () => 'written',
        (error: { name: string; code: string }) => `${error.name} ${error.code}`,
      );
    const [end] = await node.listOffsets([{ topic: 'idem', partition: 0, query: 'latest' }]);
    await letterbox.close();
    return { idempotent: producer.isIdempotent(), plain: plain.isIdempotent(), sent: sent!.baseOffset, first: first!.baseOffset, again: again!.baseOffset, gap, end };
  });
  expect(outcome).toEqual({ idempotent: true, plain: false, sent: '0', first: 1, again: 1, gap: 'OutOfOrderSequenceNumberError OUT_OF_ORDER_SEQUENCE_NUMBER', end: 2 });
});
