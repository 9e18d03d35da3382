import { describe, expect, it } from 'vitest';
import type { AppendRequest, Effect } from '../../src/raft';
import { TestCluster } from './harness';

// Entries not in memory (`RaftLog.entries` answers undefined): the core asks for them
// with one `loadEntries` per place it reads from (of the durable ones) and carries on at `entriesLoaded`.

const ofType = <T extends Effect['type']>(effects: readonly Effect[], type: T) =>
  effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);
const appendsTo = (c: TestCluster, to: string) => c.inbox.filter((m): m is AppendRequest => m.type === 'append' && m.to === to && m.entries.length > 0);

/**
 * `a` leads `a, b, c` and has committed and applied entries 1..9 with `c` down; then `a`'s
 * durable entries leave memory and `c` comes back with only entry 1.
 */
function followerBehindMemory(): TestCluster {
  const c = new TestCluster(['a', 'b', 'c']);
  c.elect('a');
  c.tick('a');
  c.deliver();
  c.crash('c');
  c.propose('a', 1, 2, 3, 4, 5, 6, 7, 8);
  c.deliver();
  expect(c.state('a')).toMatchObject({ commit: 9, applied: 9 });
  c.member('a').log.inMemoryFrom = 10;
  c.restart('c');
  return c;
}

/** `c` answers a heartbeat; `a` finds it behind and wants entries it must load first. */
function probeC(c: TestCluster): void {
  c.tick('a');
  c.deliver();
}

describe('entries not in memory', () => {
  it('a lagging follower catches up through a load; nothing is sent to it before, heartbeats go on', () => {
    const c = followerBehindMemory();
    probeC(c);
    expect(ofType(c.member('a').effects, 'loadEntries')).toEqual([{ type: 'loadEntries', fromIndex: 2, toIndex: 9, maxBytes: 1 << 20 }]);
    for (let i = 0; i < 3; i++) {
      c.tick('a');
      expect(c.inbox.some((m) => m.type === 'heartbeat' && m.to === 'c')).toBe(true);
      c.deliver();
    }
    // One load for the range, however often the follower is retried; c got nothing meanwhile.
    expect(ofType(c.member('a').effects, 'loadEntries')).toHaveLength(1);
    expect(c.terms('c')).toEqual([1]);
    c.finishLoads('a');
    // Its progress stayed put: the append starts right after the last match.
    expect(appendsTo(c, 'c').map((m) => [m.prevIndex, m.entries.length])).toEqual([[1, 8]]);
    c.deliver();
    c.tick('a');
    c.deliver();
    expect(c.terms('c')).toHaveLength(9);
    expect(c.state('c').commit).toBe(9);
  });

  it('loads only durable entries: the append joins them to those not yet durable, in memory', () => {
    const c = followerBehindMemory();
    c.member('a').manualDisk = true;
    c.propose('a', 9, 10);
    probeC(c);
    expect(ofType(c.member('a').effects, 'loadEntries').map((e) => [e.fromIndex, e.toIndex])).toEqual([[2, 9]]);
    c.finishLoads('a');
    expect(appendsTo(c, 'c').map((m) => [m.prevIndex, m.entries.length])).toEqual([[1, 10]]);
  });

  it('applies wait for their entries to load, asking once', () => {
    const c = new TestCluster(['a', 'b', 'c']);
    c.member('b').log.inMemoryFrom = Infinity; // nothing durable stays in b's memory
    c.elect('a');
    c.propose('a', 1, 2, 3);
    for (let i = 0; i < 3; i++) {
      c.tick('a');
      c.deliver();
    }
    // Asked for the no-op when it committed; the later commits wait behind that load.
    const loads = () => ofType(c.member('b').effects, 'loadEntries').map((e) => [e.fromIndex, e.toIndex]);
    expect(c.state('b')).toMatchObject({ commit: 4, applied: 0 });
    expect(loads()).toEqual([[1, 1]]);
    c.finishLoads('b');
    expect(c.state('b').applied).toBe(1);
    c.tick('b'); // the next step reads on, from 2
    expect(loads()).toEqual([[1, 1], [2, 4]]);
    c.finishLoads('b');
    expect(c.state('b').applied).toBe(4);
    expect(c.member('b').applied).toEqual([1, 2, 3, 4]);
  });

  it('entries gone from memory again by the retry are asked for again', () => {
    const c = followerBehindMemory();
    probeC(c);
    c.finishLoads('a', 'evicted');
    expect(appendsTo(c, 'c')).toEqual([]);
    expect(ofType(c.member('a').effects, 'loadEntries').map((e) => [e.fromIndex, e.toIndex])).toEqual([[2, 9], [2, 9]]);
    c.finishLoads('a');
    c.deliver();
    expect(c.terms('c')).toHaveLength(9);
  });

  it('a log compacted while the load was out: the follower gets the snapshot', () => {
    const c = followerBehindMemory();
    probeC(c);
    c.input('a', { type: 'compact', index: 9, data: new Uint8Array([42]) });
    c.finishLoads('a');
    expect(c.inbox.filter((m) => m.to === 'c').map((m) => m.type)).toEqual(['snapshot']);
    c.deliver();
    expect(ofType(c.member('c').effects, 'restore')[0]?.snapshot).toMatchObject({ index: 9, data: new Uint8Array([42]) });
  });

  it('a failed load stops the group, as a failed write does (it restarts from its disk after a backoff)', () => {
    const c = followerBehindMemory();
    probeC(c);
    c.finishLoads('a', new Error('the database closed'));
    expect(c.member('a').executor.raftState('g')).toBeUndefined();
  });
});
