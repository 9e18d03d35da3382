import type { FetchedPartition } from '../../node';
import { decodeBatchAsync, nextOffset } from '../../protocol';
import { toKafkaMessage, type KafkaMessage } from '../messages';
import type { OwnedPartition } from './generation';
import type { Batch, BatchPayload } from './types';

/**
 * The records of a fetched partition from its position on, as KafkaJS's Batch, and the offset
 * after its last record batch: where the partition goes on once they are all processed.
 */
export async function readBatch(owned: Readonly<Pick<OwnedPartition, 'topic' | 'partition' | 'position'>>, result: FetchedPartition): Promise<{ batch: Batch; endOffset: number }> {
  const { topic, partition } = owned;
  const messages: KafkaMessage[] = [];
  let endOffset = owned.position;
  for (const bytes of result.batches) {
    const decoded = await decodeBatchAsync(bytes);
    // A control batch (a raft leader's no-op, a configuration change) holds no user record: passed over, as Kafka's consumers do.
    if (!decoded.isControl) for (const record of decoded.records) if (decoded.baseOffset + record.offsetDelta >= owned.position) messages.push(toKafkaMessage(decoded, record));
    // Records a batch no longer holds (compaction) are skipped, not fetched again.
    endOffset = Math.max(endOffset, nextOffset(decoded));
  }
  const highWatermark = result.highWatermark;
  const batch: Batch = {
    topic,
    partition,
    highWatermark: String(highWatermark),
    messages,
    isEmpty: () => messages.length === 0,
    firstOffset: () => messages[0]?.offset ?? null,
    lastOffset: () => messages.at(-1)?.offset ?? String(highWatermark - 1),
    offsetLag: () => String(Math.max(0, highWatermark - 1 - Number(messages.at(-1)?.offset ?? highWatermark - 1))),
    offsetLagLow: () => String(Math.max(0, highWatermark - 1 - Number(messages[0]?.offset ?? highWatermark - 1))),
  };
  return { batch, endOffset };
}

/** What the start_batch_process and end_batch_process events say of `batch`. */
export function batchPayload(batch: Batch): BatchPayload {
  return {
    topic: batch.topic,
    partition: batch.partition,
    highWatermark: batch.highWatermark,
    offsetLag: batch.offsetLag(),
    offsetLagLow: batch.offsetLagLow(),
    batchSize: batch.messages.length,
    firstOffset: batch.firstOffset() ?? batch.lastOffset(),
    lastOffset: batch.lastOffset(),
  };
}
