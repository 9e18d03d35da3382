export { createLogManager, RECOVERY_CHECKPOINT_MS, type BackgroundMaintenance, type LogManager, type LogManagerInit, type OpenLogOptions } from './manager';
export type { PartitionLog, AppendResult, ReadOptions, OffsetSpec, BatchPlaces, StagedBatch } from './partition-log';
export { BatchIndex, type BatchPlace } from './batch-index';
export { checkBatch, producerRefusal, READ_AHEAD_LOGS_MAX, TAIL_CACHE_LOGS_MAX } from './partition-log';
export { ProducerStateTable, PRODUCER_BATCHES_KEPT, decodeProducerImage, encodeProducerImage, isIdempotentBatch, type ProducerBatch, type ProducerDecision, type ProducerFields, type ProducerImage } from './producer-state';
export { defaultLogConfig, type LogConfig } from './config';
export { createGroupCommitter, storageSink, type CommitSink, type FlushPart, type FlushSource, type GroupCommitter } from './group-commit';
