import { every, type Cancel, type Clock } from '../clock';
import { transferTarget } from '../raft';
import type { Executor } from './executor';

// A broker closing on purpose first hands every raft group it leads — the metadata group's
// and its partitions' — to an in-sync follower (leader transfer, raft thesis §3.10), so a
// planned close costs the clients a transfer, a round trip or two, not an election timeout.
// It keeps doing so until it closes: a transfer the raft core gave up (its target was slow
// on a busy machine) is tried again, and a group that comes back to it goes again.

export interface HandOverOptions {
  readonly clock: Clock;
  /** A follower heard from within this many ticks is in sync (an election timeout, as the replicas count it). */
  readonly lagTicks: number;
  /** How often to look whether the transfers are done, and start them again where they are not. */
  readonly checkEveryMs: number;
  /** When `settled` resolves at the latest: a transfer the raft core gives up after an election timeout. */
  readonly boundMs: number;
}

export interface HandOver {
  /** Once none of the groups it led can still move (moved, or no follower in sync), or at the bound: how many moved and how many it still leads. */
  readonly settled: Promise<{ handedOver: number; kept: number }>;
  /** Stops handing over (the broker closed). */
  readonly stop: Cancel;
}

/**
 * Hands each raft group `executor` leads to an in-sync follower, again and again until stopped.
 * @example const { settled, stop } = handOverLeadership(executor, { clock, lagTicks: 20, checkEveryMs: 10, boundMs: 2_000 }); await settled; … stop();
 */
export function handOverLeadership(executor: Executor, options: HandOverOptions): HandOver {
  const leads = (group: string) => executor.raftState(group)?.role === 'leader';
  const targetOf = (group: string) => transferTarget(executor.raftState(group)!, options.lagTicks);
  const led = executor.raftGroups().filter(leads);
  const transferAll = () => {
    // A group with a transfer under way ignores another (the raft core keeps the first).
    for (const group of executor.raftGroups().filter(leads)) {
      const to = targetOf(group);
      if (to !== undefined) executor.input(group, { type: 'transferLeadership', to });
    }
  };
  transferAll();
  const giveUpAt = options.clock.monotonic() + options.boundMs;
  let settle: (outcome: { handedOver: number; kept: number }) => void = () => undefined;
  const settled = new Promise<{ handedOver: number; kept: number }>((resolve) => (settle = resolve));
  const check = () => {
    const leading = led.filter(leads);
    // Settled once none is left that could still move (no follower in sync: it says so at once).
    const movable = leading.some((group) => targetOf(group) !== undefined);
    if (!movable || options.clock.monotonic() >= giveUpAt) settle({ handedOver: led.length - leading.length, kept: leading.length });
  };
  check();
  const stop = every(options.clock, options.checkEveryMs, () => {
    transferAll();
    check();
  });
  return { settled, stop };
}
