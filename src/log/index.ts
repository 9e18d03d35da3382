export { createLogManager, type BackgroundMaintenance, type LogManager, type OpenLogOptions } from './manager';
export type { PartitionLog, AppendResult, ReadOptions, OffsetSpec } from './partition-log';
export { checkBatch, READ_AHEAD_LOGS_MAX, TAIL_CACHE_LOGS_MAX } from './partition-log';
export { defaultLogConfig, type LogConfig } from './config';
