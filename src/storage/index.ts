export type { BatchSummary, PartitionId, PartitionMeta, Storage, StorageWrite } from './types';
export { createMemoryStorage, type MemoryStorage } from './memory';
export { openIndexedDbStorage, type IndexedDbStorageInit } from './indexeddb';
