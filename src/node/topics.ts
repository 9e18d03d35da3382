import { collisionKey, validateTopicName, type MetadataImage } from '../cluster';
import { InvalidConfigError, InvalidTopicError } from '../errors';
import { defaultLogConfig, type LogConfig } from '../log';
import type { ConfigEntry, TopicDefinition, TopicSpec } from './api';

// Topic names follow Kafka's rules, checked in one place (the controller checks them too).
export { validateTopicName };

/** Partitions one topic may have on a node: bounds the logs a node opens. */
export const PARTITIONS_MAX = 1000;

/**
 * The topic among `existing` that `name` collides with: Kafka refuses a topic whose name
 * differs from another's only by "." against "_" (metric names cannot tell them apart).
 * @example collidingTopic('a_b', ['a.b']) // → 'a.b'
 */
export function collidingTopic(name: string, existing: Iterable<string>): string | undefined {
  const key = collisionKey(name);
  for (const other of existing) if (collisionKey(other) === key) return other;
  return undefined;
}

const wholeNumber = (name: string, value: string, min: number): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new InvalidConfigError(`${name} must be a whole number ≥ ${min}, got "${value}"`);
  return n;
};

/**
 * Topic config entries (Kafka names, string values) applied over `base`.
 * @example parseConfigEntries([{ name: 'retention.ms', value: '60000' }])
 */
export function parseConfigEntries(entries: readonly ConfigEntry[] = [], base: LogConfig = defaultLogConfig): LogConfig {
  const config = { ...base };
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string' || typeof entry.value !== 'string') {
      throw new InvalidConfigError('config entries are { name: string, value: string }');
    }
    switch (entry.name) {
      case 'retention.ms':
        config.retentionMs = wholeNumber(entry.name, entry.value, -1);
        break;
      case 'retention.bytes':
        config.retentionBytes = wholeNumber(entry.name, entry.value, -1);
        break;
      case 'delete.retention.ms':
        config.deleteRetentionMs = wholeNumber(entry.name, entry.value, 0);
        break;
      case 'max.message.bytes':
        config.maxMessageBytes = wholeNumber(entry.name, entry.value, 64);
        break;
      case 'min.insync.replicas':
        config.minInsyncReplicas = wholeNumber(entry.name, entry.value, 1);
        break;
      case 'cleanup.policy': {
        const policy = entry.value.split(',').map((p) => p.trim()).sort().join(',');
        if (policy !== 'delete' && policy !== 'compact' && policy !== 'compact,delete') {
          throw new InvalidConfigError(`cleanup.policy must be delete, compact or both, got "${entry.value}"`);
        }
        config.cleanupPolicy = policy;
        break;
      }
      default:
        throw new InvalidConfigError(`unknown or unsupported topic config "${entry.name}"`);
    }
  }
  return config;
}

/** Kafka's names and string values for a config, as describeConfigs reports them. */
export function configEntriesOf(config: LogConfig): ConfigEntry[] {
  return [
    { name: 'cleanup.policy', value: config.cleanupPolicy },
    { name: 'delete.retention.ms', value: String(config.deleteRetentionMs) },
    { name: 'max.message.bytes', value: String(config.maxMessageBytes) },
    { name: 'min.insync.replicas', value: String(config.minInsyncReplicas) },
    { name: 'retention.bytes', value: String(config.retentionBytes) },
    { name: 'retention.ms', value: String(config.retentionMs) },
  ];
}

/**
 * A validated topic definition from a createTopics spec.
 * @example defineTopic({ topic: 'orders', numPartitions: 3 })
 */
export function defineTopic(spec: TopicSpec): TopicDefinition {
  if (typeof spec !== 'object' || spec === null) throw new InvalidTopicError('a topic spec is an object { topic, numPartitions?, ... }');
  validateTopicName(spec.topic);
  const numPartitions = spec.numPartitions ?? 1;
  if (!Number.isSafeInteger(numPartitions) || numPartitions < 1 || numPartitions > PARTITIONS_MAX) {
    throw new InvalidConfigError(`numPartitions must be a whole number from 1 to ${PARTITIONS_MAX}, got ${String(numPartitions)}`, 'INVALID_PARTITIONS');
  }
  const replicationFactor = spec.replicationFactor ?? 1;
  if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1) {
    throw new InvalidConfigError(`replicationFactor must be a whole number ≥ 1, got ${String(replicationFactor)}`, 'INVALID_REPLICATION_FACTOR');
  }
  return { name: spec.topic, numPartitions, replicationFactor, config: parseConfigEntries(spec.configEntries) };
}

/** A topic of the metadata image as this broker holds it: its definition and the partitions placed on it. */
export interface HostedTopic {
  readonly definition: TopicDefinition & { readonly topicId: number };
  readonly partitions: readonly number[];
}

/**
 * Every topic of the image as broker `brokerId` holds it: each topic's definition (so the
 * broker knows where its other partitions live) and the partitions whose replicas include it.
 * @example for (const [name, { partitions }] of hostedTopics(image, 3)) console.log(name, partitions);
 */
export function hostedTopics(image: MetadataImage, brokerId: number): Map<string, HostedTopic> {
  const hosted = new Map<string, HostedTopic>();
  for (const topic of image.topics()) {
    const config = parseConfigEntries([...topic.configs].map(([name, value]) => ({ name, value })));
    hosted.set(topic.name, {
      definition: { name: topic.name, numPartitions: topic.partitions.length, replicationFactor: topic.partitions[0]?.replicas.length ?? 1, config, topicId: topic.topicId },
      partitions: topic.partitions.filter((p) => p.replicas.includes(brokerId)).map((p) => p.partition),
    });
  }
  return hosted;
}
