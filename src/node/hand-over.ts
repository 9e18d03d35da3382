import { every, type Clock } from '../clock';
import { transferTarget } from '../raft';
import type { Executor } from './executor';

// A broker closing on purpose first hands every raft group it leads — the metadata group's
// and its partitions' — to an in-sync follower (leader transfer, raft thesis §3.10), so a
// planned close costs the clients a transfer, a round trip or two, not an election timeout.

export interface HandOverOptions {
  readonly clock: Clock;
  /** A follower heard from within this many ticks is in sync (an election timeout, as the replicas count it). */
  readonly lagTicks: number;
  /** How often to look whether the transfers are done. */
  readonly checkEveryMs: number;
  /** When to stop waiting: a transfer the raft core gives up after an election timeout. */
  readonly boundMs: number;
}

/**
 * Starts a leader transfer in each raft group `executor` leads that has an in-sync follower;
 * resolves once it leads none of them any more, or at the bound, with how many moved and how
 * many it still leads (no follower in sync, or the transfer failed).
 * @example const { handedOver, kept } = await handOverLeadership(executor, { clock, lagTicks: 20, checkEveryMs: 10, boundMs: 2_000 });
 */
export function handOverLeadership(executor: Executor, options: HandOverOptions): Promise<{ handedOver: number; kept: number }> {
  const leads = (group: string) => executor.raftState(group)?.role === 'leader';
  const led = executor.raftGroups().filter(leads);
  const moving = led.filter((group) => {
    const to = transferTarget(executor.raftState(group)!, options.lagTicks);
    if (to !== undefined) executor.input(group, { type: 'transferLeadership', to });
    return to !== undefined;
  });
  const outcome = () => {
    const kept = led.filter(leads).length;
    return { handedOver: led.length - kept, kept };
  };
  const giveUpAt = options.clock.monotonic() + options.boundMs;
  return new Promise((resolve) => {
    const check = () => {
      if (moving.some(leads) && options.clock.monotonic() < giveUpAt) return false;
      resolve(outcome());
      return true;
    };
    if (check()) return;
    const stop = every(options.clock, options.checkEveryMs, () => {
      if (check()) stop();
    });
  });
}
