import { describe, expect, it } from 'vitest';
import { createLogger, logLevel } from '../../src/client/logger';
import { SlotAdopter, type AdoptedBroker, type SlotsChannel } from '../../src/client/slot-adopter';
import { ManualClock } from '../../src/clock';
import { SlotNotAdoptableError, WorkerStartError } from '../../src/errors';
import { claimSlot, slotLockName } from '../../src/node/slots';
import { Prng } from '../sim/prng';
import { lockManager } from '../node/lock-manager';

// The slot adopter (src/client/slot-adopter.ts) on a shared in-memory lock manager, a channel
// bus and a manual clock: which slots it adopts and when it hands them back; and, under churn
// of tabs opening, closing and reopening at random, that no slot is ever run twice at once.

const WATCH_MS = 1_000;
const silent = createLogger(logLevel.NOTHING);

/** Lets every promise settle (the lock manager and the adopter chain many). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** One origin: its locks, its slots channel, its clock, and who runs which slot now. */
function origin(options: { adoptable?: (slot: number) => boolean; failFirstStart?: boolean } = {}) {
  const locks = lockManager();
  const clock = new ManualClock();
  const channels = new Set<SlotsChannel>();
  /** Per slot, who runs its broker now: a tab's own, or an adopter's. */
  const runners = new Map<number, string[]>();
  const violations: string[] = [];
  const starts: number[] = [];
  let handedBack = 0;
  const run = (slot: number, who: string) => {
    const now = [...(runners.get(slot) ?? []), who];
    runners.set(slot, now);
    if (now.length > 1) violations.push(`slot ${slot} run by ${now.join(' and ')}`);
  };
  const stop = (slot: number, who: string) => runners.set(slot, (runners.get(slot) ?? []).filter((w) => w !== who));
  const say = (data: unknown) => {
    for (const channel of channels) channel.onmessage?.({ data } as MessageEvent);
  };
  const adopter = (tab: string, ownSlot: number, knownSlots: () => number[], maxAdopted = 2) =>
    new SlotAdopter({
      ownSlot,
      knownSlots,
      maxAdopted,
      logger: silent,
      onChange: () => undefined,
      locks: locks.client(`${tab}-page`),
      clock,
      openChannel: () => {
        const channel: SlotsChannel = { onmessage: null, close: () => void channels.delete(channel) };
        channels.add(channel);
        return channel;
      },
      start: async (slot): Promise<AdoptedBroker> => {
        starts.push(slot);
        if (options.adoptable !== undefined && !options.adoptable(slot)) throw new SlotNotAdoptableError(slot, 'no broker of the cluster');
        if (options.failFirstStart === true && starts.length === 1) throw new WorkerStartError('the Letterbox worker did not start in time', { retriable: true });
        run(slot, `${tab} (adopted)`);
        let closed = false;
        return {
          join: () => undefined,
          handOver: async () => void handedBack++,
          close: async () => {
            if (!closed) stop(slot, `${tab} (adopted)`);
            closed = true;
          },
        };
      },
    });
  return { locks, clock, runners, violations, starts, handedBack: () => handedBack, run, stop, say, adopter };
}

describe('SlotAdopter', () => {
  it('adopts a slot when the tab holding it closes, and hands it back only to a tab waiting in line that says so', async () => {
    const o = origin();
    await o.locks.take('b-worker', slotLockName(1));
    const a = o.adopter('a', 0, () => [0, 1]);
    await settle();
    expect(o.runners.get(1) ?? []).toEqual([]);
    o.locks.closeClients(['b-worker', 'b-page']);
    await settle();
    expect(a.adopted()).toEqual([{ slot: 1, brokerId: undefined }]);
    expect(o.locks.holderOf(slotLockName(1))).toBe('a-page');
    // A wish with nobody in line for the lock is ignored.
    o.say({ wanted: 1 });
    await settle();
    expect(a.adopted()).toHaveLength(1);
    // The reopened tab gets in line, then says so: handed back.
    const reopened = claimSlot(o.locks.client('b2-worker'), 1, 10_000, o.clock);
    await settle();
    o.say({ wanted: 1 });
    const claim = await reopened;
    expect(claim.slot).toBe(1);
    expect(a.adopted()).toEqual([]);
    expect(o.runners.get(1)).toEqual([]);
    await a.stop();
  });

  it('adopts free slots of the origin (the last tab closed) one a tick while it has room; one whose database holds no broker is not tried again', async () => {
    const o = origin({ adoptable: (slot) => slot !== 2 });
    const a = o.adopter('a', 0, () => [0, 1, 2, 3, 4], 2);
    await settle();
    expect(a.adopted().map((s) => s.slot)).toEqual([1]);
    for (let tick = 0; tick < 5; tick++) {
      o.clock.advance(WATCH_MS);
      await settle();
    }
    // Slot 2 refused once and left alone; slots 1 and 3 run; slot 4 waits for room.
    expect(a.adopted().map((s) => s.slot)).toEqual([1, 3]);
    expect(o.starts).toEqual([1, 2, 3]);
    await a.stop();
    expect(o.runners.get(1)).toEqual([]);
    expect(o.runners.get(3)).toEqual([]);
  });

  it('a free slot whose broker failed to start for another reason (a slow worker) is tried again later, not given up', async () => {
    const o = origin({ failFirstStart: true });
    const a = o.adopter('a', 0, () => [0, 1]);
    await settle();
    expect(a.adopted()).toEqual([]);
    // Not at the next round: after a pause.
    o.clock.advance(WATCH_MS);
    await settle();
    expect(o.starts).toEqual([1]);
    for (let tick = 0; tick < 5; tick++) {
      o.clock.advance(WATCH_MS);
      await settle();
    }
    expect(o.starts).toEqual([1, 1]);
    expect(a.adopted().map((s) => s.slot)).toEqual([1]);
    await a.stop();
  });

  it('under churn of tabs opening, closing and reopening, no slot is ever run by two at once', async () => {
    let adoptions = 0;
    let handedBack = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const o = origin();
      const prng = new Prng(seed);
      const known = new Set<number>();
      const tabs = new Map<string, { slot: number; adopter: SlotAdopter }>();
      let next = 0;
      let opening = '';
      const open = async (preferred: number | undefined) => {
        const tab = `t${next++}`;
        opening = tab;
        const claim = await claimSlot(o.locks.client(`${tab}-worker`), preferred, 2_000, o.clock, true);
        o.run(claim.slot, tab);
        known.add(claim.slot);
        tabs.set(tab, { slot: claim.slot, adopter: o.adopter(tab, claim.slot, () => [...known].sort((x, y) => x - y), prng.int(1, 2)) });
      };
      const close = (tab: string) => {
        const { slot, adopter } = tabs.get(tab)!;
        tabs.delete(tab);
        o.stop(slot, tab);
        for (const [adopted] of adopter.adopted().map((s) => [s.slot] as const)) o.stop(adopted, `${tab} (adopted)`);
        o.locks.closeClients([`${tab}-worker`, `${tab}-page`]);
      };
      for (let step = 0; step < 30; step++) {
        const names = [...tabs.keys()];
        const roll = prng.int(0, 9);
        if (roll < 4 || names.length === 0) {
          // A new tab, or one reopened on a slot the origin knows (its sessionStorage remembers it).
          const opened = open(prng.chance(0.5) && known.size > 0 ? [...known][prng.int(0, known.size - 1)] : undefined);
          // While it waits in line for a slot, it says so (claimSlot's own wishes go to the page's BroadcastChannel).
          for (let i = 0; i < 4; i++) {
            await settle();
            const { pending = [] } = await o.locks.client('observer').query();
            for (const { name, clientId } of pending) if (clientId === `${opening}-worker`) o.say({ wanted: Number(name!.split('-').pop()) });
            o.clock.advance(500);
          }
          await opened;
        } else if (roll < 8) close(names[prng.int(0, names.length - 1)]!);
        o.clock.advance(prng.int(0, 2) * WATCH_MS);
        await settle();
        expect(o.violations, `seed ${seed}`).toEqual([]);
        expect(o.locks.spun(), `seed ${seed}: lock requests looping`).toBe(false);
      }
      for (const tab of [...tabs.keys()]) close(tab);
      adoptions += o.starts.length;
      handedBack += o.handedBack();
    }
    // The churn exercises what it claims to.
    expect(adoptions).toBeGreaterThan(40);
    expect(handedBack).toBeGreaterThan(10);
  }, 120_000);
});
