// Kafka's partitioners: murmur2 of the key bytes for keyed records (the Java client's
// BuiltInPartitioner.partitionForKey, which KafkaJS's default partitioner reproduces), and
// the sticky partitioner of KIP-480 for records without a key.

import { LetterboxError } from '../errors';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's murmur2 hash (Utils.murmur2 of the Java client) of `bytes`, as a signed 32-bit integer.
 * @example murmur2(new TextEncoder().encode('21')) === -973932308
 */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The tail, as the Java switch that falls through from case 3 to case 1.
  const tail = length & 3;
  if (tail === 3) h ^= bytes[whole + 2]! << 16;
  if (tail >= 2) h ^= bytes[whole + 1]! << 8;
  if (tail >= 1) h = Math.imul(h ^ bytes[whole]!, M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h;
}

/**
 * The partition Kafka's default partitioner gives a keyed record: `toPositive(murmur2(key)) % numPartitions`.
 * @example defaultPartition(new TextEncoder().encode('user-42'), 6)
 */
export function defaultPartition(key: Uint8Array, numPartitions: number): number {
  checkPartitionCount(numPartitions);
  // toPositive masks the sign bit rather than taking the absolute value, as Kafka does.
  return (murmur2(key) & 0x7fffffff) % numPartitions;
}

/** KIP-480's sticky choice of partition for records without a key, per topic. */
export interface StickyPartitioner {
  /** The partition for the next keyless record of `topic`; stays the same until `onNewBatch`. */
  partition(topic: string, numPartitions: number, availablePartitions?: readonly number[]): number;
  /**
   * Called when the batch for `previousPartition` is full or sent: switches `topic` to another
   * partition, chosen at random among the available ones, different from the previous one when possible.
   */
  onNewBatch(topic: string, numPartitions: number, previousPartition: number, availablePartitions?: readonly number[]): number;
}

/**
 * A sticky partitioner whose randomness comes from `random` (uniform in [0, 1)), so that tests and simulations replay.
 * @example const sticky = createStickyPartitioner(Math.random); sticky.partition('events', 6);
 */
export function createStickyPartitioner(random: () => number): StickyPartitioner {
  const current = new Map<string, number>();
  const pick = (count: number) => Math.min(count - 1, Math.floor(random() * count));

  // StickyPartitionCache.nextPartition: a random available partition other than the previous one.
  const next = (topic: string, numPartitions: number, previous: number, available?: readonly number[]) => {
    checkPartitionCount(numPartitions);
    const candidates = available !== undefined && available.length > 0 ? available : undefined;
    let chosen: number;
    if (candidates === undefined) {
      const avoidPrevious = numPartitions > 1 && previous >= 0 && previous < numPartitions;
      chosen = pick(avoidPrevious ? numPartitions - 1 : numPartitions);
      if (avoidPrevious && chosen >= previous) chosen++;
    } else {
      const others = candidates.length > 1 ? candidates.filter((p) => p !== previous) : candidates;
      chosen = others[pick(others.length)]!;
    }
    current.set(topic, chosen);
    return chosen;
  };

  return {
    partition(topic, numPartitions, availablePartitions) {
      const sticky = current.get(topic);
      if (sticky !== undefined && sticky < numPartitions && (availablePartitions === undefined || availablePartitions.includes(sticky))) {
        return sticky;
      }
      return next(topic, numPartitions, -1, availablePartitions);
    },
    onNewBatch(topic, numPartitions, previousPartition, availablePartitions) {
      // Only the first caller for the batch that just closed moves the topic on (as in Kafka).
      const sticky = current.get(topic);
      if (sticky !== undefined && sticky !== previousPartition) return sticky;
      return next(topic, numPartitions, previousPartition, availablePartitions);
    },
  };
}

function checkPartitionCount(numPartitions: number): void {
  if (!Number.isInteger(numPartitions) || numPartitions < 1 || numPartitions > 0x7fffffff) {
    throw new LetterboxError('INVALID_PARTITIONS', `numPartitions ${numPartitions} must be a positive int32`);
  }
}
