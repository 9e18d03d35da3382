import { every, timeoutSignal, type Clock } from '../clock';
import { NoFreeSlotError } from '../errors';

/** Slots an origin offers: bounds the databases and locks one origin can accumulate. */
export const SLOTS_MAX = 64;

export interface SlotClaim {
  slot: number;
  /** Releases the slot's lock (the tab's worker ending releases it too). */
  release(): void;
}

/** The subset of the Web Locks API the slots need (a structural type, so tests can pass their own). */
export interface SlotLocks {
  request(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<void>): Promise<void>;
  /** Who holds which lock (without it, no adopted slot is ever found). */
  query?(): Promise<LockManagerSnapshot>;
}

export const slotLockName = (slot: number) => `letterbox-slot-${slot}`;
/** Lock whose holder is, for slot `slot`, the one tab in line to adopt it (src/client/slot-adopter.ts), or the one running it. */
export const adoptLockName = (slot: number) => `letterbox-adopt-${slot}`;

/**
 * The BroadcastChannel on which a tab waiting for its slot says so, `{ wanted: slot }`: a tab
 * that adopted that slot (src/client/slot-adopter.ts) hands it back.
 */
export const SLOTS_CHANNEL = 'letterbox-slots';
/** How often a tab waiting for its slot says so again (an adopter may be starting up). */
const WANTED_EVERY_MS = 250;

/** Says on SLOTS_CHANNEL that `slot` is wanted, now and until the returned stop is called. */
function announceWanted(slot: number, clock: Clock): () => void {
  if (typeof BroadcastChannel !== 'function') return () => undefined;
  const channel = new BroadcastChannel(SLOTS_CHANNEL);
  const say = () => channel.postMessage({ wanted: slot });
  say();
  const stop = every(clock, WANTED_EVERY_MS, say);
  return () => {
    stop();
    channel.close();
  };
}

/** Takes the lock `name` and holds it until the returned release is called; undefined if not granted. */
function hold(locks: SlotLocks, name: string, options: LockOptions): Promise<(() => void) | undefined> {
  return new Promise((resolve, reject) => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    locks
      .request(name, options, async (lock) => {
        if (lock === null) return resolve(undefined);
        resolve(release);
        await released;
      })
      .catch((error: unknown) => {
        // Aborted: by the wait's timeout (browsers reject with the signal's reason) or otherwise.
        if (error instanceof DOMException && (error.name === 'AbortError' || error.name === 'TimeoutError')) resolve(undefined);
        else reject(error);
      });
  });
}

/**
 * The lowest slot another tab adopted: one client holds both its lock and the right to adopt it
 * (a tab merely in line to adopt holds the latter while the slot's own tab holds the former).
 */
async function adoptedSlot(locks: SlotLocks): Promise<number | undefined> {
  const { held = [] } = (await locks.query?.()) ?? {};
  const holders = new Map(held.map((lock) => [lock.name, lock.clientId]));
  for (let slot = 0; slot < SLOTS_MAX; slot++) {
    const holder = holders.get(slotLockName(slot));
    if (holder !== undefined && holder === holders.get(adoptLockName(slot))) return slot;
  }
  return undefined;
}

/**
 * Claims a node slot with Web Locks: the `preferred` one (a reloaded tab's own, waiting up to
 * `waitMs` for its previous worker, or the tab that adopted it, to let go); with no preference
 * and `takeAdopted`, a slot another tab adopted, asked back the same way (a new tab relieves the
 * adopter, and the cluster keeps its brokers instead of gaining one); else the lowest free one.
 * The lock is held for the worker's life, so two tabs never open one slot's database.
 * @example const { slot } = await claimSlot(navigator.locks, 0, 3000, realClock);
 */
export async function claimSlot(locks: SlotLocks, preference: number | undefined, waitMs: number, clock: Clock, takeAdopted = false): Promise<SlotClaim> {
  const preferred = preference ?? (takeAdopted ? await adoptedSlot(locks) : undefined);
  if (preferred !== undefined && Number.isInteger(preferred) && preferred >= 0 && preferred < SLOTS_MAX) {
    // In line first, then said: the adopter hands the slot back only to a tab waiting in line.
    const held = hold(locks, slotLockName(preferred), { signal: timeoutSignal(clock, waitMs) });
    const stopAnnouncing = announceWanted(preferred, clock);
    const release = await held.finally(stopAnnouncing);
    if (release !== undefined) return { slot: preferred, release };
  }
  for (let slot = 0; slot < SLOTS_MAX; slot++) {
    const release = await hold(locks, slotLockName(slot), { ifAvailable: true });
    if (release !== undefined) return { slot, release };
  }
  throw new NoFreeSlotError(SLOTS_MAX);
}
