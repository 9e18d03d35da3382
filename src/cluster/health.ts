import type { MetadataImage } from './image';

/** Kafka's UnderReplicatedPartitions and OfflinePartitionsCount, as the image shows them. */
export interface ReplicationHealth {
  /** Partitions with a live leader and fewer live in-sync replicas than replicas. */
  readonly underReplicated: number;
  /** Partitions with no live leader (none named, or its broker fenced): nothing can be read or written there. */
  readonly offline: number;
}

/**
 * Counts the image's under-replicated and offline partitions. A fenced broker counts as out of
 * sync at once (its partitions' leaders report the shrunk ISR only after the lag bound).
 * @example const { underReplicated, offline } = replicationHealth(image);
 */
export function replicationHealth(image: MetadataImage): ReplicationHealth {
  const live = (brokerId: number) => image.broker(brokerId)?.fenced === false;
  let underReplicated = 0;
  let offline = 0;
  for (const topic of image.topics()) {
    for (const { leader, replicas, isr } of topic.partitions) {
      if (!live(leader)) offline++;
      else if (isr.filter(live).length < replicas.length) underReplicated++;
    }
  }
  return { underReplicated, offline };
}
