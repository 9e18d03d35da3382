import { describe, expect, it } from 'vitest';
import { assign } from '../../src/group';

// The vectors are the examples in the javadoc of Kafka's RangeAssignor and
// RoundRobinAssignor (clients/src/main/java/org/apache/kafka/clients/consumer/), with
// C0, C1, C2 as member ids (sorted as Kafka sorts them).

const both = (topics: string[]) => [
  { memberId: 'C0', topics },
  { memberId: 'C1', topics },
];

describe('range (Kafka RangeAssignor)', () => {
  it('javadoc: C0 and C1 on t0, t1 with 3 partitions each → C0 [t0p0, t0p1, t1p0, t1p1], C1 [t0p2, t1p2]', () => {
    expect(assign('range', both(['t0', 't1']), { t0: 3, t1: 3 })).toEqual({
      C0: { t0: [0, 1], t1: [0, 1] },
      C1: { t0: [2], t1: [2] },
    });
  });

  it('splits each topic over its own subscribers only, in member-id order whatever the input order', () => {
    const members = [
      { memberId: 'b', topics: ['x', 'y'] },
      { memberId: 'a', topics: ['x'] },
      { memberId: 'c', topics: ['x', 'y'] },
    ];
    expect(assign('range', members, { x: 7, y: 2 })).toEqual({
      a: { x: [0, 1, 2] },
      b: { x: [3, 4], y: [0] },
      c: { x: [5, 6], y: [1] },
    });
  });

  it('more members than partitions: the last members get nothing; unknown topics are skipped', () => {
    const members = ['m1', 'm2', 'm3'].map((memberId) => ({ memberId, topics: ['t', 'not-yet'] }));
    expect(assign('range', members, { t: 2 })).toEqual({ m1: { t: [0] }, m2: { t: [1] }, m3: {} });
  });
});

describe('round-robin (Kafka RoundRobinAssignor)', () => {
  it('javadoc: C0 and C1 on t0, t1 with 3 partitions each → C0 [t0p0, t0p2, t1p1], C1 [t0p1, t1p0, t1p2]', () => {
    expect(assign('roundrobin', both(['t0', 't1']), { t0: 3, t1: 3 })).toEqual({
      C0: { t0: [0, 2], t1: [1] },
      C1: { t0: [1], t1: [0, 2] },
    });
  });

  it('javadoc: C0 on t0; C1 on t0, t1; C2 on t0, t1, t2 (1, 2, 3 partitions) → C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2]', () => {
    const members = [
      { memberId: 'C2', topics: ['t0', 't1', 't2'] },
      { memberId: 'C0', topics: ['t0'] },
      { memberId: 'C1', topics: ['t0', 't1'] },
    ];
    expect(assign('roundrobin', members, { t0: 1, t1: 2, t2: 3 })).toEqual({
      C0: { t0: [0] },
      C1: { t1: [0] },
      C2: { t1: [1], t2: [0, 1, 2] },
    });
  });
});

describe('both assignors', () => {
  it('hand every subscribed partition to exactly one subscriber, for many shapes', () => {
    for (const assignor of ['range', 'roundrobin'] as const) {
      for (let members = 1; members <= 5; members++) {
        for (let count = 0; count <= 7; count++) {
          const subscribers = Array.from({ length: members }, (_, i) => ({ memberId: `m${i}`, topics: i % 2 === 0 ? ['t', 'u'] : ['u'] }));
          const result = assign(assignor, subscribers, { t: count, u: count + 1 });
          for (const topic of ['t', 'u']) {
            const owners = subscribers.flatMap((m) => (result[m.memberId]![topic] ?? []).map((p) => ({ p, m })));
            expect(owners.map((o) => o.p).sort((a, b) => a - b)).toEqual(Array.from({ length: topic === 't' ? count : count + 1 }, (_, i) => i));
            expect(owners.every((o) => o.m.topics.includes(topic))).toBe(true);
          }
        }
      }
    }
  });

  it('treat `__proto__` as an ordinary topic name', () => {
    expect(assign('range', [{ memberId: 'a', topics: ['__proto__'] }], { ['__proto__']: 2 })).toEqual({ a: { ['__proto__']: [0, 1] } });
  });
});
