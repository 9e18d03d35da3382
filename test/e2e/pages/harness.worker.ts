import { expose } from 'comlink';
import { openDB } from 'idb';
import type { HarnessApi } from './harness-api';

const open = () =>
  openDB('letterbox-harness', 1, {
    upgrade(db) {
      db.createObjectStore('kv');
    },
  });

const api: HarnessApi = {
  async putAndGet(key, value) {
    const db = await open();
    await db.put('kv', value, key);
    const read: unknown = await db.get('kv', key);
    db.close();
    return typeof read === 'string' ? read : undefined;
  },
  async get(key) {
    const db = await open();
    const read: unknown = await db.get('kv', key);
    db.close();
    return typeof read === 'string' ? read : undefined;
  },
  scope: () => self.constructor.name,
};

expose(api);
