import type { LocalLocks } from '../../src/network/worker';

// Web Locks in memory (Node 20 has no navigator.locks): exclusive and shared modes, ifAvailable,
// abort signals, and clients whose locks all go at once when they `end()` (a tab whose worker ended).

interface Request {
  client: object;
  mode: 'exclusive' | 'shared';
  grant(): void;
}

export interface MemoryLocks {
  /** A client's view: the locks a `LocalLocks` user takes through it are its own. */
  client(): LocalLocks & { end(): void };
}

export function createMemoryLocks(): MemoryLocks {
  const held = new Map<string, Array<{ client: object; mode: 'exclusive' | 'shared'; release(): void }>>();
  const queues = new Map<string, Request[]>();
  const grantable = (name: string, mode: 'exclusive' | 'shared') => {
    const holders = held.get(name) ?? [];
    return mode === 'exclusive' ? holders.length === 0 : holders.every((h) => h.mode === 'shared');
  };
  const process = (name: string) => {
    const queue = queues.get(name) ?? [];
    while (queue.length > 0 && grantable(name, queue[0]!.mode)) queue.shift()!.grant();
  };
  const abortError = () => new DOMException('the request was aborted', 'AbortError');

  return {
    client() {
      const client = {};
      let ended = false;
      const request: LocalLocks['request'] = (name, options, callback) =>
        new Promise((resolve, reject) => {
          const mode = options.mode ?? 'exclusive';
          if (ended || options.signal?.aborted === true) return reject(abortError());
          const queue = queues.get(name) ?? [];
          queues.set(name, queue);
          if (options.ifAvailable === true && (queue.length > 0 || !grantable(name, mode))) {
            return Promise.resolve(callback(null)).then(resolve, reject);
          }
          const entry: Request = {
            client,
            mode,
            grant() {
              options.signal?.removeEventListener('abort', onAbort);
              const holders = held.get(name) ?? [];
              held.set(name, holders);
              let released = false;
              const release = () => {
                if (released) return;
                released = true;
                holders.splice(holders.indexOf(holder), 1);
                process(name);
              };
              const holder = { client, mode, release };
              holders.push(holder);
              Promise.resolve()
                .then(() => callback({ name, mode }))
                .then(
                  (value) => {
                    release();
                    resolve(value);
                  },
                  (error: unknown) => {
                    release();
                    reject(error);
                  },
                );
            },
          };
          const onAbort = () => {
            const at = queue.indexOf(entry);
            if (at < 0) return;
            queue.splice(at, 1);
            reject(abortError());
            process(name);
          };
          options.signal?.addEventListener('abort', onAbort, { once: true });
          queue.push(entry);
          process(name);
        });
      return {
        request,
        end() {
          ended = true;
          for (const [name, queue] of queues) {
            for (let i = queue.length - 1; i >= 0; i--) if (queue[i]!.client === client) queue.splice(i, 1);
            for (const holder of [...(held.get(name) ?? [])]) if (holder.client === client) holder.release();
            process(name);
          }
        },
      };
    },
  };
}
