import { describe, expect, it } from 'vitest';
import { createMembership, DiscoveryError } from '../../src/discovery';

describe('membership table', () => {
  it('tells a new member who is there and the others that it joined, and that it left', () => {
    const table = createMembership<string>();
    expect(table.join('demo', 'A', 'sA').deliveries).toEqual([{ to: 'sA', event: { type: 'members', cluster: 'demo', peers: [] } }]);
    expect(table.join('demo', 'B', 'sB').deliveries).toEqual([
      { to: 'sB', event: { type: 'members', cluster: 'demo', peers: ['A'] } },
      { to: 'sA', event: { type: 'joined', peer: 'B' } },
    ]);
    expect(table.join('other', 'C', 'sC').deliveries).toEqual([{ to: 'sC', event: { type: 'members', cluster: 'other', peers: [] } }]);
    expect(table.leave('sA')).toEqual([{ to: 'sB', event: { type: 'left', peer: 'A' } }]);
    expect(table.leave('sA')).toEqual([]);
    expect(table.members('demo')).toEqual(['B']);
  });

  it('lets a peer that registers again replace its older session without a leave', () => {
    const table = createMembership<string>();
    table.join('demo', 'A', 'old');
    table.join('demo', 'B', 'sB');
    const { deliveries, replaced } = table.join('demo', 'A', 'new');
    expect(replaced).toBe('old');
    expect(deliveries).toEqual([{ to: 'new', event: { type: 'members', cluster: 'demo', peers: ['B'] } }]);
    expect(table.leave('old')).toEqual([]);
    expect(table.members('demo')).toEqual(['A', 'B']);
    expect(table.leave('new')).toEqual([{ to: 'sB', event: { type: 'left', peer: 'A' } }]);
  });

  it('refuses members and clusters past its limits', () => {
    const table = createMembership<string>({ clustersMax: 1, membersMax: 2 });
    table.join('demo', 'A', 'sA');
    table.join('demo', 'B', 'sB');
    expect(() => table.join('demo', 'C', 'sC')).toThrow(DiscoveryError);
    expect(() => table.join('other', 'C', 'sC')).toThrow(/at most 1 clusters/);
    table.leave('sA');
    table.leave('sB');
    expect(table.join('other', 'C', 'sC').deliveries).toHaveLength(1);
  });
});
