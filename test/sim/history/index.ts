// The history checker: a Jepsen-style check of sends and polls against a Kafka-like log
// (model and checks described in checker.ts), shared by the simulator and the browser e2e.
export { checkHistory } from './checker';
export type { Anomaly, History, LogRecord, Op, Position, Report, Source } from './checker';
