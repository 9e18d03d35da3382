import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { adoptLockName, claimSlot, slotLockName, type SlotLocks } from '../../src/node/slots';

/**
 * Exclusive Web Locks shared by several clients (tabs, workers), with `query` naming each
 * holder's client, as navigator.locks does across one origin.
 */
function lockManager() {
  const held = new Map<string, string>();
  const queues = new Map<string, Array<{ clientId: string; grant: () => void }>>();
  const release = (name: string) => {
    held.delete(name);
    const next = queues.get(name)?.shift();
    if (next !== undefined) {
      held.set(name, next.clientId);
      next.grant();
    }
  };
  const client = (clientId: string): SlotLocks => ({
    async request(name, options, callback) {
      if (held.has(name)) {
        if (options.ifAvailable === true) return callback(null);
        await new Promise<void>((resolve, reject) => {
          const queue = queues.get(name) ?? [];
          const entry = { clientId, grant: resolve };
          queue.push(entry);
          queues.set(name, queue);
          options.signal?.addEventListener('abort', () => {
            queue.splice(queue.indexOf(entry), 1);
            reject(new DOMException('aborted', 'AbortError'));
          });
        });
      } else held.set(name, clientId);
      try {
        await callback({ name, mode: 'exclusive' } as Lock);
      } finally {
        release(name);
      }
    },
    query: async () => ({
      held: [...held].map(([name, holder]) => ({ name, clientId: holder, mode: 'exclusive' as const })),
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
  return { client, take, holderOf: (name: string) => held.get(name) };
}

describe('claimSlot and adopted slots', () => {
  it('a new tab of a cluster asks an adopted slot back and gets it once the adopter lets go', async () => {
    const locks = lockManager();
    await locks.take('tab-a', slotLockName(0));
    // Tab a adopted slot 1: its page holds the slot's lock and the right to adopt it.
    const handBack = await locks.take('tab-a-page', slotLockName(1));
    await locks.take('tab-a-page', adoptLockName(1));
    const clock = new ManualClock();
    const claiming = claimSlot(locks.client('tab-c'), undefined, 3_000, clock, true);
    await expect.poll(async () => (await locks.client('x').query!()).pending?.map((p) => p.name)).toEqual([slotLockName(1)]);
    handBack();
    const claim = await claiming;
    expect(claim.slot).toBe(1);
    expect(locks.holderOf(slotLockName(1))).toBe('tab-c');
    claim.release();
  });

  it('a slot whose own tab still runs it, another tab merely in line to adopt it, is not asked for: the lowest free slot is taken', async () => {
    const locks = lockManager();
    await locks.take('tab-a', slotLockName(0));
    await locks.take('tab-b', adoptLockName(0));
    const claim = await claimSlot(locks.client('tab-c'), undefined, 3_000, new ManualClock(), true);
    expect(claim.slot).toBe(1);
  });

  it('without takeAdopted (no cluster), or past the wait, the lowest free slot is taken', async () => {
    const locks = lockManager();
    await locks.take('tab-a-page', slotLockName(0));
    await locks.take('tab-a-page', adoptLockName(0));
    expect((await claimSlot(locks.client('tab-c'), undefined, 3_000, new ManualClock(), false)).slot).toBe(1);
    const clock = new ManualClock();
    const claiming = claimSlot(locks.client('tab-d'), undefined, 3_000, clock, true);
    await expect.poll(async () => (await locks.client('x').query!()).pending?.length).toBe(1);
    clock.advance(3_000);
    // The adopter never let go: slot 1 is held by tab c, so the next free one.
    expect((await claiming).slot).toBe(2);
  });
});
