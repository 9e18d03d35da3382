import type { StorageWrite } from './types';

/** A change that only removes: a transaction of these alone goes through when the quota is full (Chromium). */
export const isDelete = (w: StorageWrite): boolean => w.kind === 'deleteBatches' || w.kind === 'deletePartition' || (w.kind === 'putValue' && w.value === undefined);

/**
 * A write that deletes and otherwise only updates partition metadata (retention,
 * deleteRecords): out of quota, its deletes may go first to make room (see Storage.write).
 */
export const freesSpace = (writes: readonly StorageWrite[]): boolean => writes.some(isDelete) && writes.every((w) => isDelete(w) || w.kind === 'putMeta');
