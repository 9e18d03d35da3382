export * from './errors';
export { registerErrorTransfer } from './transfer';
export * from './kafkajs';
