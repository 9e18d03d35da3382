import type { SlotLocks } from '../../src/node/slots';

/** Exclusive named locks in memory, with the Web Locks API's request semantics used by the slots. */
export function createFakeLocks(): SlotLocks & { held(): string[] } {
  const holders = new Set<string>();
  const waiting = new Map<string, Array<() => void>>();
  const release = (name: string) => {
    holders.delete(name);
    waiting.get(name)?.shift()?.();
  };
  return {
    async request(name, options, callback) {
      if (holders.has(name)) {
        if (options.ifAvailable === true) return callback(null);
        await new Promise<void>((resolve, reject) => {
          const queue = waiting.get(name) ?? [];
          const grant = () => resolve();
          queue.push(grant);
          waiting.set(name, queue);
          options.signal?.addEventListener('abort', () => {
            queue.splice(queue.indexOf(grant), 1);
            reject(new DOMException('aborted', 'AbortError'));
          });
        });
      }
      holders.add(name);
      try {
        await callback({ name, mode: 'exclusive' } as Lock);
      } finally {
        release(name);
      }
    },
    held: () => [...holders],
  };
}
