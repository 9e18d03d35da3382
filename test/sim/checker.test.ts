import { describe, expect, it } from 'vitest';
import { LivenessChecker, quorumsIntersect, SafetyChecker, type HistoryEvent } from './checker';
import { chain } from './prng';

// Each checker, fed a hand-made history that breaks its invariant, must say so.

/** Prefix hashes of a log of (term, payload) entries. */
const chains = (entries: ReadonlyArray<[number, number]>): number[] => {
  const out: number[] = [];
  for (const [term, payload] of entries) out.push(chain(out.at(-1) ?? 0, term, payload));
  return out;
};
const first = (history: HistoryEvent[]) => {
  const checker = new SafetyChecker();
  for (const event of history) {
    const violation = checker.observe(event);
    if (violation !== undefined) return violation;
  }
  return undefined;
};

describe('SafetyChecker', () => {
  it('accepts a good history', () => {
    const log = chains([[1, 0], [1, 7]]);
    expect(
      first([
        { kind: 'leader', node: 'a', term: 1, chains: log.slice(0, 1) },
        { kind: 'entry', node: 'a', index: 1, term: 1, chain: log[0]! },
        { kind: 'entry', node: 'b', index: 1, term: 1, chain: log[0]! },
        { kind: 'commit', node: 'a', index: 1, chain: log[0]!, leaderTerm: 1 },
        { kind: 'apply', node: 'a', index: 1, term: 1, payload: 0 },
        { kind: 'apply', node: 'b', index: 1, term: 1, payload: 0 },
        { kind: 'crash', node: 'b' },
        { kind: 'apply', node: 'b', index: 1, term: 1, payload: 0 },
      ]),
    ).toBeUndefined();
  });

  it('election safety: two leaders of one term', () => {
    expect(first([
      { kind: 'leader', node: 'a', term: 2, chains: [] },
      { kind: 'leader', node: 'b', term: 2, chains: [] },
    ])?.checker).toBe('election safety');
  });

  it('log matching: one (index, term) with two different prefixes', () => {
    const a = chains([[1, 1], [2, 2]]);
    const b = chains([[1, 9], [2, 2]]);
    expect(first([
      { kind: 'entry', node: 'a', index: 2, term: 2, chain: a[1]! },
      { kind: 'entry', node: 'b', index: 2, term: 2, chain: b[1]! },
    ])?.checker).toBe('log matching');
  });

  it('leader completeness: a later leader lacks an entry committed earlier (either order)', () => {
    const committed = chains([[1, 1], [1, 2]]);
    const other = chains([[1, 1], [2, 5]]);
    const commit: HistoryEvent = { kind: 'commit', node: 'a', index: 2, chain: committed[1]!, leaderTerm: 1 };
    const leader: HistoryEvent = { kind: 'leader', node: 'b', term: 2, chains: other };
    expect(first([commit, leader])?.checker).toBe('leader completeness');
    expect(first([leader, commit])?.checker).toBe('leader completeness');
  });

  it('state machine safety: two nodes apply different entries at one index, or apply out of order', () => {
    expect(first([
      { kind: 'apply', node: 'a', index: 1, term: 1, payload: 1 },
      { kind: 'apply', node: 'b', index: 1, term: 1, payload: 2 },
    ])?.checker).toBe('state machine safety');
    expect(first([{ kind: 'apply', node: 'a', index: 2, term: 1, payload: 1 }])?.checker).toBe('state machine safety');
    expect(first([
      { kind: 'commit', node: 'a', index: 1, chain: 1 },
      { kind: 'commit', node: 'b', index: 1, chain: 2 },
    ])?.checker).toBe('state machine safety');
  });

  it('committed proposal lost: an acknowledged proposal is not what every node applied', () => {
    expect(first([
      { kind: 'apply', node: 'a', index: 1, term: 1, payload: 1 },
      { kind: 'ack', index: 1, term: 1, payload: 9 },
    ])?.checker).toBe('acknowledged proposal');
    const checker = new SafetyChecker();
    checker.observe({ kind: 'apply', node: 'a', index: 1, term: 1, payload: 1 });
    checker.observe({ kind: 'ack', index: 1, term: 1, payload: 1 });
    expect(checker.end([{ node: 'a', applied: 1 }])).toBeUndefined();
    expect(checker.end([{ node: 'a', applied: 1 }, { node: 'b', applied: 0 }])?.checker).toBe('committed proposal lost');
  });

  it('state machine safety: a restored snapshot unlike what was committed; applies go on after it', () => {
    const log = chains([[1, 1], [1, 2]]);
    const commit: HistoryEvent = { kind: 'commit', node: 'a', index: 2, chain: log[1]! };
    expect(first([commit, { kind: 'restore', node: 'b', index: 2, chain: 7 }])?.checker).toBe('state machine safety');
    expect(first([
      commit,
      { kind: 'restore', node: 'b', index: 2, chain: log[1]! },
      { kind: 'apply', node: 'b', index: 3, term: 1, payload: 3 },
    ])).toBeUndefined();
  });

  it('linearizable read: answered below an index committed before it was asked', () => {
    expect(first([{ kind: 'read', node: 'a', index: 4, atLeast: 5 }])?.checker).toBe('linearizable read');
    expect(first([{ kind: 'read', node: 'a', index: 5, atLeast: 5 }])).toBeUndefined();
  });

  it('forced reconfiguration: a left-out voter alive, a forced node lacking a commit, a forced-out node back, quorums apart', () => {
    const committed = chains([[1, 1], [1, 2]]);
    const commit: HistoryEvent = { kind: 'commit', node: 'a', index: 2, chain: committed[1]! };
    const force = (chainsOfForced: number[], alive: string[], configs = [['a', 'b']]): HistoryEvent =>
      ({ kind: 'force', node: 'b', chains: chainsOfForced, voters: ['b'], configs, leftOut: ['a'], alive });
    expect(first([commit, force(committed, ['b'])])).toBeUndefined();
    expect(first([commit, force(committed, ['a', 'b'])])?.checker).toBe('forced reconfiguration');
    expect(first([commit, force(committed.slice(0, 1), ['b'])])?.checker).toBe('forced reconfiguration');
    expect(first([commit, force(committed, ['b']), { kind: 'start', node: 'a' }])?.checker).toBe('forced reconfiguration');
    expect(first([commit, force(committed, ['b']), { kind: 'start', node: 'c' }])).toBeUndefined();
    // c lives on under {b,c,d} (say its log lacks a's removal): c and d may elect a leader apart from b.
    expect(first([commit, force(committed, ['b', 'c', 'd'], [['a', 'b'], ['b', 'c', 'd']])])?.checker).toBe('forced reconfiguration');
  });

  it('quorumsIntersect: majorities of two memberships among the living', () => {
    expect(quorumsIntersect(['b'], ['a', 'b'], ['b'])).toBe(true); // {a,b} cannot form a majority without a
    expect(quorumsIntersect(['b', 'c'], ['a', 'b', 'c'], ['b', 'c'])).toBe(true);
    expect(quorumsIntersect(['b'], ['b', 'c', 'd'], ['b', 'c', 'd'])).toBe(false); // {c,d} against {b}
    expect(quorumsIntersect(['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e'], ['a', 'b', 'c', 'd', 'e'])).toBe(false); // {a,b} and {c,d,e}
  });
});

describe('LivenessChecker', () => {
  it('reports no progress within the bound after the heal, and nothing before the heal', () => {
    const checker = new LivenessChecker(100, 'a leader commits');
    expect(checker.check(1000, false)).toBeUndefined();
    checker.healed(50);
    expect(checker.check(150, false)).toBeUndefined();
    expect(checker.check(151, true)).toBeUndefined();
    expect(checker.check(151, false)?.checker).toBe('liveness');
  });
});
