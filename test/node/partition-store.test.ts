import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { createLogManager } from '../../src/log';
import { PartitionRaftStore } from '../../src/node';
import { decodeBatch } from '../../src/protocol';
import type { Entry } from '../../src/raft';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage';
import { batchOf } from '../log/batches';

// The raft store over a partition log keeps the entries it read back from storage for the
// core (`load`, then `entries`): a leader serving a lagging follower reads them while it
// appends live traffic, and only a write that replaces them may throw them away.

const GROUP = 'orders-0';
const id = { topic: 'orders', partition: 0 };
const MAX_BYTES = 1 << 20;

async function openStore(storage: MemoryStorage) {
  const logs = createLogManager(storage, { clock: new ManualClock() });
  const log = await logs.open(id, {}, { highWatermark: 'replicated' });
  return PartitionRaftStore.open(log, storage, GROUP);
}

/** Stages entries from `firstIndex` in term `term` and writes them. */
async function append(store: PartitionRaftStore, storage: MemoryStorage, firstIndex: number, term: number, values: string[]): Promise<void> {
  const entries: Entry[] = values.map((value) => ({ term, data: batchOf([value]) }));
  await storage.write(store.stage({ type: 'persist', writeId: firstIndex, entries: { firstIndex, entries }, thenSend: [] }));
  store.durable();
}

const valuesOf = (entries: readonly Entry[] | undefined) => entries?.flatMap((e) => decodeBatch(e.data).records.map((r) => new TextDecoder().decode(r.value!)));
const load = (store: PartitionRaftStore, fromIndex: number, toIndex: number) =>
  new Promise<void>((resolve, reject) => store.load(fromIndex, toIndex, MAX_BYTES, (error) => (error === undefined ? resolve() : reject(error))));

describe('PartitionRaftStore: entries read back for the core', () => {
  it('keeps what it loaded across a later append (a leader taking live traffic), and drops what a replacing write rewrites', async () => {
    const first = createMemoryStorage();
    await append(await openStore(first), first, 1, 1, ['a', 'b', 'c']);
    // Reopened, its tail cache is empty: the entries must be loaded.
    const storage = first.reopen();
    const store = await openStore(storage);
    expect(store.entries(1, 3, MAX_BYTES)).toBeUndefined();

    await load(store, 1, 3);
    await append(store, storage, 4, 1, ['d']);
    expect(valuesOf(store.entries(1, 3, MAX_BYTES))).toEqual(['a', 'b', 'c']);

    await load(store, 2, 3);
    // A new leader's entries replace index 3 on: the read of 2..3 keeps only index 2.
    await append(store, storage, 3, 2, ['x']);
    expect(valuesOf(store.entries(2, 3, MAX_BYTES))).toEqual(['b']);
  });
});
