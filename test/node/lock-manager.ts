import type { AdopterLocks } from '../../src/client/slot-adopter';
import type { SlotLocks } from '../../src/node/slots';

/** More lock requests than any test makes: only a client spinning on them gets there. */
const REQUESTS_MAX = 100_000;

/**
 * Exclusive Web Locks shared by several clients (tabs, workers), with `query` naming each
 * holder's client, as navigator.locks does across one origin. A closed client's locks are
 * released and its requests dropped; what it asks afterwards is never granted (its page is gone).
 */
export function lockManager() {
  const held = new Map<string, { clientId: string; grant: object }>();
  const queues = new Map<string, Array<{ clientId: string; grant: (token: object) => void }>>();
  const closed = new Set<string>();
  /** Requests so far: a client asking again and again at once (a loop on microtasks) is stopped here and shows in `spun`. */
  let requests = 0;
  const release = (name: string, grant: object) => {
    if (held.get(name)?.grant !== grant) return; // released already (its client closed)
    held.delete(name);
    const next = queues.get(name)?.shift();
    if (next !== undefined) {
      const token = {};
      held.set(name, { clientId: next.clientId, grant: token });
      next.grant(token);
    }
  };
  const client = (clientId: string): SlotLocks & AdopterLocks => ({
    async request<T>(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<T> | T): Promise<T> {
      if (closed.has(clientId) || ++requests > REQUESTS_MAX) return new Promise<never>(() => undefined);
      let grant: object;
      if (held.has(name)) {
        if (options.ifAvailable === true) return callback(null);
        grant = await new Promise<object>((resolve, reject) => {
          const queue = queues.get(name) ?? [];
          const entry = { clientId, grant: resolve };
          queue.push(entry);
          queues.set(name, queue);
          options.signal?.addEventListener('abort', () => {
            const at = queue.indexOf(entry);
            if (at < 0) return;
            queue.splice(at, 1);
            reject(new DOMException('aborted', 'AbortError'));
          });
        });
      } else {
        grant = {};
        held.set(name, { clientId, grant });
      }
      try {
        return await callback({ name, mode: 'exclusive' } as Lock);
      } finally {
        release(name, grant);
      }
    },
    query: async () => ({
      held: [...held].map(([name, { clientId: holder }]) => ({ name, clientId: holder, mode: 'exclusive' as const })),
      pending: [...queues].flatMap(([name, queue]) => queue.map(({ clientId: waiting }) => ({ name, clientId: waiting, mode: 'exclusive' as const }))),
    }),
  });
  /** Takes `name` for `clientId` until the returned release is called. */
  const take = async (clientId: string, name: string): Promise<() => void> => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    await new Promise<void>((granted) => void client(clientId).request(name, {}, async () => (granted(), released)));
    return release;
  };
  /** A tab closing: every lock its clients hold is released, the requests they wait with are dropped. */
  const closeClients = (clientIds: readonly string[]) => {
    for (const id of clientIds) closed.add(id);
    for (const queue of queues.values()) for (let i = queue.length - 1; i >= 0; i--) if (clientIds.includes(queue[i]!.clientId)) queue.splice(i, 1);
    for (const [name, { clientId: holder, grant }] of [...held]) if (clientIds.includes(holder)) release(name, grant);
  };
  return { client, take, closeClients, holderOf: (name: string) => held.get(name)?.clientId, spun: () => requests > REQUESTS_MAX };
}
