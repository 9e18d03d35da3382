export { createLogManager, type BackgroundMaintenance, type LogManager, type OpenLogOptions } from './manager';
export type { PartitionLog, AppendResult, ReadOptions, OffsetSpec } from './partition-log';
export { defaultLogConfig, type LogConfig } from './config';
