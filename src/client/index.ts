// Letterbox's public API: the KafkaJS-shaped client that runs the broker in a worker.
export { Letterbox, type LetterboxConfig, type LetterboxEvents, type LogLevel } from './letterbox';
export { Producer, CompressionTypes, type CompressionType, type ProducerConfig, type ProducerRecord, type ProducerBatch, type RecordMetadata, type CallOptions } from './producer';
export { Consumer, type ConsumerConfig, type ConsumerRunConfig, type ConsumerSubscribeTopics, type EachMessagePayload } from './consumer';
export { Admin, type TopicMetadata, type PartitionMetadata } from './admin';
export type { Message, MessageHeaders, HeaderValue, KafkaMessage } from './messages';
export type { TopicSpec, ConfigEntry, NodeInfo } from '../node/api';
export type { PeerInfo, DialStats } from '../network';
export * from '../errors';
