// Letterbox's public API: the KafkaJS-shaped client that runs the broker in a worker.
export { Letterbox, ORIGIN_CLUSTER, type LetterboxConfig, type LetterboxEvents } from './letterbox';
export { logLevel, type LogLevel, type LogCreator, type LogEntry, type Logger } from './logger';
export type { InstrumentationEvent } from './events';
export type { RetryOptions } from './retry';
export { AssignerProtocol } from './assigner-protocol';
export { Producer, CompressionTypes, CompressionCodecs, Partitioners, type Partitioner, type ProducerEvents, type CompressionType, type ProducerConfig, type ProducerRecord, type ProducerBatch, type RecordMetadata } from './producer';
export type { CallOptions } from './call-options';
export {
  Consumer,
  PartitionAssigners,
  type Batch,
  type ConsumerConfig,
  type ConsumerEvents,
  type ConsumerRunConfig,
  type ConsumerSubscribeTopics,
  type EachBatchPayload,
  type EachMessagePayload,
  type OffsetsByTopicPartition,
  type TopicPartitionOffset,
  type TopicPartitions,
} from './consumer';
export { Admin, ConfigResourceTypes, type AdminEvents, type ClusterDescription, type TopicMetadata, type PartitionMetadata, type ConfigResource, type DescribedConfigEntry, type GroupDescriptionResult, type GroupMemberDescription, type PartitionOffsets, type GroupPartitionOffset } from './admin';
export { Bytes, type Message, type MessageHeaders, type HeaderValue, type KafkaMessage } from './messages';
export type { TopicSpec, ConfigEntry, NodeInfo } from '../node';
export type { PeerInfo, DialStats } from '../network';
export * from '../errors';
