// The binary formats of Letterbox (specified in FORMATS.md): Kafka RecordBatch v2,
// compression, Kafka's partitioners and the peer frame envelope. Pure: no I/O, no clock,
// no randomness of its own.

export { crc32c } from './crc32c';
// Kafka's primitives, for other binary formats (the metadata records): a field writer and a bounded reader.
export { FieldWriter } from './fields';
export { ByteReader } from './bytes';
export {
  BATCH_HEADER_BYTES,
  readBatchHeader,
  nextOffset,
  verifyBatch,
  setBaseOffset,
  setPartitionLeaderEpoch,
  encodeBatch,
  decodeBatch,
  type BatchHeader,
  type BatchRecord,
  type Compression,
  type RecordBatch,
  type RecordBatchInput,
  type RecordHeader,
  type RecordInput,
  type TimestampType,
} from './record-batch';
export { encodeControlBatch, decodeControlBatch, type ControlRecord, type ControlType } from './control-batch';
export { encodeBatchAsync, decodeBatchAsync, DEFAULT_MAX_DECOMPRESSED_BYTES, type DecodeBatchOptions } from './compression';
export { murmur2, defaultPartition, createStickyPartitioner, type StickyPartitioner } from './partitioner';
export {
  FRAME_HEADER_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  ERROR_ANSWER_TYPE_ID,
  createFrameCodec,
  type ErrorAnswer,
  type Frame,
  type FrameCodec,
  type FrameCodecInit,
  type FrameResult,
  type FrameStreamDecoder,
  type MessageType,
  type MessageTypes,
  type WithErrorAnswer,
} from './frame';
export { PEER_MESSAGE_TYPES, ADMISSION_NONCE_BYTES, createPeerFrameCodec, type PeerMessageTypes, type AdmissionBody } from './peer-messages';
export type { ControllerMessage, RaftFrame } from './cluster-messages';
export type {
  FetchErrorCode,
  FetchMessage,
  FetchPartition,
  FetchedPartitionBody,
  ListOffsetsMessage,
  OffsetQueryBody,
  PartitionBatch,
  ProduceMessage,
  ProducePartitionResult,
} from './data-messages';
export type { GroupAnswer, GroupCall, GroupMessage } from './group-messages';
export { decodeOffsetKey, decodeOffsetValue, encodeOffsetKey, encodeOffsetValue, type OffsetKey, type OffsetValue } from './offset-records';
export { encodeMemberMetadata, decodeMemberMetadata, encodeMemberAssignment, decodeMemberAssignment, type MemberMetadata, type MemberAssignment } from './consumer-protocol';
export { KAFKA_API_KEYS, type KafkaApiName } from './api-keys';
