import { createMemoryStorage, type MemoryStorage, type Storage } from '../../src/storage';

/**
 * A broker node's `openStorage` over in-memory databases kept in `databases`: opening a
 * database again finds what the last handle left in it, as a reopened tab finds IndexedDB.
 * @example createBrokerNode({ openStorage: openFrom(databases), ... })
 */
export const openFrom =
  (databases: Map<string, MemoryStorage>) =>
  async (name: string): Promise<Storage> => {
    const storage = databases.get(name)?.reopen() ?? createMemoryStorage();
    databases.set(name, storage);
    return storage;
  };
