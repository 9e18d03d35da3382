import { every, realClock, type Clock } from '../clock';
import { SlotNotAdoptableError } from '../errors';
import { adoptLockName, SLOTS_CHANNEL, slotLockName } from '../node/slots';
import type { Logger } from './logger';

// A closed tab's broker, run on by a surviving tab of its origin (issue 21). Every tab of a
// local cluster watches the slots other tabs hold: for each, one tab (the first in line for
// its `letterbox-adopt-<slot>` lock) waits in line for the slot's own lock, and when the tab
// holding it closes, Web Locks grant it exactly there. That tab then runs the slot's broker in
// a worker of its own, on the slot's database: the same raft member restarting on its own
// disk, so quorums hold and nothing is copied. A tab that asks for the slot again (reopened,
// SLOTS_CHANNEL) gets it back: leaderships handed over, the worker closed, the lock released.
// Slots of the origin that no tab runs at all (the last tab closed, so nobody was there to adopt
// them) are adopted the same way, one a second while this tab has room: the first tab opened
// after all closed brings back the brokers its cluster's quorums need.

/** How often the slots other tabs hold are looked up. */
const WATCH_EVERY_MS = 1_000;
/** A slot freed by a reload is asked for again at once: a wish heard this recently means its tab is back. */
const WANTED_RECENTLY_MS = 1_000;
/** A free slot whose broker failed to start for another reason than its database (a worker slow to start on a busy machine) is tried again after this. */
const ADOPT_RETRY_MS = 5_000;

export interface SlotAdopterInit {
  /** The slot this tab's own broker holds (never watched). */
  readonly ownSlot: number;
  /** The slots this origin's tabs have run (free ones among them are adopted when their database holds a broker of the cluster). */
  readonly knownSlots: () => readonly number[];
  /** At most this many adopted brokers run in this tab at once (each a worker and its database). */
  readonly maxAdopted: number;
  /** Starts a worker on the adopted slot (NodeStartInit.adopt), the page holding its lock; SlotNotAdoptableError when its database holds no broker of the cluster. */
  readonly start: (slot: number) => Promise<AdoptedBroker>;
  readonly logger: Logger;
  /** Hears when this tab starts or stops hosting a slot's broker. */
  readonly onChange: (adopted: readonly AdoptedSlot[]) => void;
  /** navigator.locks by default. */
  readonly locks?: AdopterLocks;
  /** Where tabs waiting for their slot say so (SLOTS_CHANNEL); a BroadcastChannel by default. */
  readonly openChannel?: () => SlotsChannel;
  readonly clock?: Clock;
}

/** An adopted slot's broker, running in a worker of this tab. */
export interface AdoptedBroker {
  /** Rejoins the cluster; `onJoined` hears its broker id once it is in. */
  join(onJoined: (brokerId: number) => void): void;
  /** Hands its leaderships over (before closing). */
  handOver(): Promise<unknown>;
  close(): Promise<void>;
}

/** The Web Locks the adopter uses (navigator.locks, or a test's). */
export interface AdopterLocks {
  request<T>(name: string, options: LockOptions, callback: (lock: Lock | null) => Promise<T> | T): Promise<T>;
  query(): Promise<LockManagerSnapshot>;
}

/** SLOTS_CHANNEL as the adopter uses it: it only listens. */
export interface SlotsChannel {
  onmessage: ((event: MessageEvent) => void) | null;
  close(): void;
}

export interface AdoptedSlot {
  readonly slot: number;
  readonly brokerId: number | undefined;
}

/**
 * Watches the other tabs' slots and adopts those whose tab closes, until stopped.
 * @example const adopter = new SlotAdopter({ ownSlot: 0, knownSlots, maxAdopted: 2, start, logger, onChange }); … await adopter.stop();
 */
export class SlotAdopter {
  readonly #init: SlotAdopterInit;
  readonly #stopping = new AbortController();
  /** Slots this tab is in line for, or adopts. */
  readonly #watched = new Set<number>();
  readonly #running = new Map<number, { broker: AdoptedBroker; brokerId: number | undefined }>();
  /** When each slot was last asked for (SLOTS_CHANNEL), and who waits for the next ask. */
  readonly #wanted = new Map<number, number>();
  readonly #wantedWaiters = new Map<number, () => void>();
  /** The slots being hosted (#host), each settling once its broker is closed again. */
  readonly #hosting = new Set<Promise<boolean>>();
  /** Free slots that could not be adopted here (no broker of the cluster in their database): not tried again. */
  readonly #refused = new Set<number>();
  /** Free slots whose broker failed to start otherwise: when each may be tried again (monotonic ms). */
  readonly #retryAt = new Map<number, number>();
  /** Adoptions whose worker is starting: counted against maxAdopted with the running ones. */
  #starting = 0;
  readonly #channel: SlotsChannel;
  readonly #stopTimer: () => void;
  readonly #locks: AdopterLocks;
  readonly #clock: Clock;

  constructor(init: SlotAdopterInit) {
    this.#init = init;
    this.#locks = init.locks ?? navigator.locks;
    this.#clock = init.clock ?? realClock;
    this.#channel = init.openChannel?.() ?? new BroadcastChannel(SLOTS_CHANNEL);
    this.#channel.onmessage = (event: MessageEvent) => {
      const slot = (event.data as { wanted?: unknown } | null)?.wanted;
      if (typeof slot !== 'number') return;
      this.#wanted.set(slot, this.#clock.monotonic());
      if (this.#wantedWaiters.has(slot)) void this.#handBackIfAsked(slot);
    };
    this.#stopTimer = every(this.#clock, WATCH_EVERY_MS, () => void this.#watchSlots());
    void this.#watchSlots();
  }

  /** The slots whose broker this tab runs now. @example adopter.adopted() // [{ slot: 1, brokerId: 2 }] */
  adopted(): AdoptedSlot[] {
    return [...this.#running].map(([slot, { brokerId }]) => ({ slot, brokerId }));
  }

  /** Stops watching; each adopted broker hands its leaderships over and closes. @example await adopter.stop(); */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#stopTimer();
    this.#channel.close();
    for (const wake of this.#wantedWaiters.values()) wake();
    // Each hosting ends as if its slot were asked for: leaderships handed over, the broker closed.
    await Promise.all(this.#hosting);
  }

  /** Gets in line for every slot another tab holds now, and for one free slot of the origin while this tab has room. */
  async #watchSlots(): Promise<void> {
    if (this.#stopping.signal.aborted) return;
    const { held = [], pending = [] } = await this.#locks.query();
    for (const { name } of held) {
      const slot = Number(/^letterbox-slot-(\d+)$/.exec(name ?? '')?.[1] ?? NaN);
      if (Number.isInteger(slot) && slot !== this.#init.ownSlot && !this.#watched.has(slot)) this.#watch(slot);
    }
    if (this.#running.size + this.#starting >= this.#init.maxAdopted) return;
    // Free: nobody holds or waits for its lock or the right to adopt it (a tab starting on it waits in line).
    const busy = new Set([...held, ...pending].map(({ name }) => name));
    const now = this.#clock.monotonic();
    const free = this.#init.knownSlots().find(
      (slot) =>
        slot !== this.#init.ownSlot &&
        !this.#watched.has(slot) &&
        !this.#refused.has(slot) &&
        (this.#retryAt.get(slot) ?? -Infinity) <= now &&
        !busy.has(slotLockName(slot)) &&
        !busy.has(adoptLockName(slot)),
    );
    if (free !== undefined) this.#watch(free, true);
  }

  /** In line for `slot` (a `free` one: no tab runs it): first for the right to adopt it, then for its lock, as long as this tab watches. */
  #watch(slot: number, free = false): void {
    this.#watched.add(slot);
    const { signal } = this.#stopping;
    const watching = this.#locks.request(adoptLockName(slot), { signal }, async () => {
      while (!signal.aborted) {
        const keep = await this.#locks.request(slotLockName(slot), { signal }, () => {
          const hosting = this.#host(slot, free);
          this.#hosting.add(hosting);
          return hosting.finally(() => this.#hosting.delete(hosting));
        });
        if (!keep) return;
      }
    });
    watching
      .catch((error: unknown) => {
        if (!signal.aborted) this.#init.logger.warn('stopped watching a slot', { slot, error: String(error) });
      })
      .finally(() => this.#watched.delete(slot));
  }

  /**
   * Holds `slot`'s lock, its tab gone: runs its broker until a tab asks for the slot, then
   * hands it back. Resolves whether to stay in line for it (false: it cannot be adopted here).
   */
  async #host(slot: number, free: boolean): Promise<boolean> {
    if (this.#stopping.signal.aborted) return false;
    // Reloaded: its tab is back in line and takes it. (Only when in line: given back at once to
    // nobody, the lock would come straight back here, again and again, freezing the page.)
    const wantedAt = this.#wanted.get(slot);
    if (wantedAt !== undefined && this.#clock.monotonic() - wantedAt < WANTED_RECENTLY_MS && (await this.#awaited(slot))) return true;
    if (this.#running.size + this.#starting >= this.#init.maxAdopted) {
      this.#init.logger.warn('not adopting a closed tab’s slot: this tab hosts its most already', { slot, maxAdopted: this.#init.maxAdopted });
      return false;
    }
    let broker: AdoptedBroker;
    this.#starting++;
    try {
      broker = await this.#init.start(slot);
    } catch (error) {
      // Its database holds no broker of the cluster: never adoptable here. Anything else may pass.
      if (error instanceof SlotNotAdoptableError) {
        if (free) this.#refused.add(slot);
      } else {
        this.#init.logger.warn('could not adopt a closed tab’s slot; trying again later', { slot, error: String(error) });
        this.#retryAt.set(slot, this.#clock.monotonic() + ADOPT_RETRY_MS);
      }
      return false;
    } finally {
      this.#starting--;
    }
    const hosted = { broker, brokerId: undefined as number | undefined };
    this.#running.set(slot, hosted);
    this.#changed();
    broker.join((brokerId) => {
      hosted.brokerId = brokerId;
      this.#changed();
    });
    this.#init.logger.info('adopted a closed tab’s slot', { slot });
    await this.#untilWanted(slot);
    this.#running.delete(slot);
    this.#changed();
    await broker.handOver().catch(() => undefined);
    await broker.close();
    this.#init.logger.info('handed a slot back', { slot });
    return true;
  }

  /**
   * Hands `slot` back only when a tab waits in line for its lock: a wish on the channel alone
   * (a stale one, or any script of the origin) must not make this tab close a broker it runs.
   */
  async #handBackIfAsked(slot: number): Promise<void> {
    if (await this.#awaited(slot)) this.#wantedWaiters.get(slot)?.();
  }

  /** Whether a tab waits in line for `slot`'s lock. */
  async #awaited(slot: number): Promise<boolean> {
    const { pending = [] } = await this.#locks.query();
    return pending.some((request) => request.name === slotLockName(slot));
  }

  #untilWanted(slot: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopping.signal.aborted) return resolve();
      this.#wantedWaiters.set(slot, () => {
        this.#wantedWaiters.delete(slot);
        resolve();
      });
    });
  }

  #changed(): void {
    this.#init.onChange(this.adopted());
  }
}
