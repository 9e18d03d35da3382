import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors';
import { decodeRaftEntry, encodeRaftEntry, StoredRaftLog } from '../../src/node';
import type { Effect, Entry } from '../../src/raft';
import { createMemoryStorage } from '../../src/storage';

type PersistEffect = Extract<Effect, { type: 'persist' }>;
const entry = (term: number, byte: number): Entry => ({ term, data: new Uint8Array([byte]) });
const persist = (writeId: number, fields: Omit<PersistEffect, 'type' | 'writeId' | 'thenSend'>): PersistEffect => ({ type: 'persist', writeId, thenSend: [], ...fields });

describe('stored raft log', () => {
  it('encodes entries as FORMATS.md § Raft entry, membership included, and refuses bytes that are not one', () => {
    const membership = { voters: ['a', 'b'], learners: ['c'] };
    expect(decodeRaftEntry(encodeRaftEntry({ term: 7, data: new Uint8Array([1, 2]), membership }))).toEqual({ term: 7, data: new Uint8Array([1, 2]), membership });
    expect(decodeRaftEntry(encodeRaftEntry(entry(3, 9)))).toEqual(entry(3, 9));
    expect(() => decodeRaftEntry(new Uint8Array([2, 0, 0]))).toThrow(StorageError);
    const bad = encodeRaftEntry(entry(1, 1));
    new DataView(bad.buffer).setUint32(9, 1000); // a membership longer than the entry
    expect(() => decodeRaftEntry(bad)).toThrow(StorageError);
  });

  it('reads back from storage what was written: entries after a truncation and a snapshot, the hard state', async () => {
    const storage = createMemoryStorage();
    const log = await StoredRaftLog.open(storage, 'g');
    const writeAll = async (effect: PersistEffect) => storage.write(log.stage(effect));
    await writeAll(persist(1, { hardState: { term: 2, votedFor: 'a' }, entries: { firstIndex: 1, entries: [entry(1, 1), entry(1, 2), entry(1, 3), entry(2, 4)] } }));
    await writeAll(persist(2, { entries: { firstIndex: 3, entries: [entry(2, 5)] } })); // truncates 3..4
    const snapshot = { index: 2, term: 1, membership: { voters: ['a'], learners: [] }, data: new Uint8Array([42]) };
    await writeAll(persist(3, { snapshot }));
    expect([log.lastIndex(), log.term(3)]).toEqual([3, 2]);
    const reopened = await StoredRaftLog.open(storage, 'g');
    expect(reopened.hardState()).toEqual({ term: 2, votedFor: 'a' });
    expect(reopened.snapshot()).toEqual(snapshot);
    expect(reopened.lastIndex()).toBe(3);
    expect(reopened.entries(3, 3, 1 << 20)).toEqual([entry(2, 5)]);
    // Another group's log in the same storage is its own.
    expect((await StoredRaftLog.open(storage, 'other')).lastIndex()).toBe(0);
  });

  it('recover drops what was staged but never written', async () => {
    const storage = createMemoryStorage();
    const log = await StoredRaftLog.open(storage, 'g');
    await storage.write(log.stage(persist(1, { entries: { firstIndex: 1, entries: [entry(1, 1)] } })));
    log.stage(persist(2, { hardState: { term: 5, votedFor: 'b' }, entries: { firstIndex: 2, entries: [entry(5, 2)] } })); // the write failed
    await log.recover();
    expect([log.lastIndex(), log.hardState()]).toEqual([1, { term: 0, votedFor: undefined }]);
  });
});
