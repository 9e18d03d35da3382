export * from './errors';
export { registerErrorTransfer } from './transfer';
