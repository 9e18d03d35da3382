import { afterEach, expect, it } from 'vitest';
import { StorageFullError } from '../../src/errors';
import type { ApplicationEffect } from '../../src/node';
import { ManyGroups } from './many-groups';

// The browser's quota runs out under raft groups in the middle of a flush: the group
// commit's transaction fails (StorageFullError), every group in it stops (fail-stop) and
// says so, and restarts from its disk after a backoff, stopping again while the disk is
// still full. Nothing acknowledged is lost; once space returns the groups recover and
// commit again. Every broker shares the one quota here, as tabs of one browser do.

const BROKERS = 3;
const GROUPS = 3;
const SETTLE_MS_MAX = 20_000;

let cluster: ManyGroups | undefined;
afterEach(() => cluster?.stop());

const payloadOf = (id: number) => new Uint8Array(new Uint32Array([id]).buffer);
const idOf = (data: Uint8Array) => (data.length === 4 ? new Uint32Array(data.slice().buffer)[0]! : 0);

it('a full disk mid-flush: groups stop and report it, lose nothing acknowledged, and recover when space returns', async () => {
  /** Per broker and group: index → payload id applied there (replays after a restart must agree). */
  const applied = new Map<string, Map<number, number>>();
  /** Per group: index → { term, payload } a leader accepted and has not yet applied. */
  const pending = new Map<string, Map<number, { term: number; payload: number }>>();
  /** Acknowledged proposals: group → index → payload id. */
  const acked = new Map<string, Map<number, number>>();
  const stops: Array<{ broker: string; group: string; error: unknown }> = [];
  let restarts = 0;
  let conflict: string | undefined;
  let proposing: number[] = [];
  const handler = (broker: string, group: string) => ({
    effect(effect: ApplicationEffect) {
      const mine = applied.get(`${broker}/${group}`) ?? new Map<number, number>();
      applied.set(`${broker}/${group}`, mine);
      if (effect.type === 'proposed') {
        const accepted = pending.get(group) ?? new Map();
        pending.set(group, accepted);
        for (let index = effect.firstIndex; index <= effect.lastIndex; index++) accepted.set(index, { term: effect.term, payload: proposing[index - effect.firstIndex]! });
      }
      if (effect.type !== 'apply') return;
      for (const entry of effect.entries) {
        const payload = idOf(entry.data);
        const before = mine.get(entry.index);
        if (before !== undefined && before !== payload) conflict ??= `${broker}/${group} applied ${payload} at ${entry.index} after ${before}`;
        mine.set(entry.index, payload);
        const accepted = pending.get(group)?.get(entry.index);
        if (accepted !== undefined && accepted.term === entry.term && accepted.payload === payload) {
          const groupAcks = acked.get(group) ?? new Map<number, number>();
          acked.set(group, groupAcks);
          groupAcks.set(entry.index, payload);
        }
      }
    },
    stopped: (error: unknown) => void stops.push({ broker, group, error }),
    restarted: () => void restarts++,
  });
  cluster = await ManyGroups.start(BROKERS, GROUPS, { handler, restartBackoffMs: 200, restartBackoffMaxMs: 1_000 });
  const c = cluster;
  expect(await c.settle(SETTLE_MS_MAX)).toBe(true);

  let nextPayload = 1;
  const proposeEverywhere = () => {
    for (const group of c.groups) {
      proposing = [nextPayload++, nextPayload++];
      c.leaderOf(group)?.executor.input(group, { type: 'propose', payloads: proposing.map(payloadOf) });
    }
  };
  for (let round = 0; round < 20; round++) {
    proposeEverywhere();
    await c.run(20);
  }
  const ackedBefore = [...acked.values()].reduce((n, m) => n + m.size, 0);
  expect(ackedBefore).toBeGreaterThan(0);

  // Proposals accepted, their flush queued and not yet written: the quota runs out now.
  proposeEverywhere();
  for (const broker of c.brokers.values()) broker.storage.setFull(true);
  for (let round = 0; round < 50; round++) {
    proposeEverywhere();
    await c.run(20);
  }
  // Every broker's groups stopped on the full disk and said why; none leads now.
  expect(new Set(stops.map((s) => s.broker)).size).toBe(BROKERS);
  expect(stops.every((s) => s.error instanceof StorageFullError)).toBe(true);
  const ackedWhileFull = [...acked.values()].reduce((n, m) => n + m.size, 0);
  await c.run(2_000);
  expect(c.groups.some((g) => c.leaderOf(g)?.executor.raftState(g)?.commit)).toBe(false);
  expect([...acked.values()].reduce((n, m) => n + m.size, 0)).toBe(ackedWhileFull); // nothing commits without a disk

  for (const broker of c.brokers.values()) broker.storage.setFull(false);
  expect(await c.settle(SETTLE_MS_MAX)).toBe(true);
  expect(restarts).toBeGreaterThan(0);
  for (let round = 0; round < 20; round++) {
    proposeEverywhere();
    await c.run(20);
  }
  await c.run(500);
  expect(conflict).toBeUndefined();
  // Everything acknowledged, before and after, is applied on every member at its index.
  for (const [group, groupAcks] of acked) {
    for (const broker of c.brokerIds) {
      const mine = applied.get(`${broker}/${group}`)!;
      for (const [index, payload] of groupAcks) expect(mine.get(index), `${broker}/${group} at ${index}`).toBe(payload);
    }
  }
  expect([...acked.values()].reduce((n, m) => n + m.size, 0)).toBeGreaterThan(ackedWhileFull);
}, 120_000);
