import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { adoptLockName, claimSlot, slotLockName } from '../../src/node/slots';
import { lockManager } from './lock-manager';

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
