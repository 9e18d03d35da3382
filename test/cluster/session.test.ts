import { describe, expect, it } from 'vitest';
import { createSession, stepSession, type SessionEffect, type SessionInput, type SessionState } from '../../src/cluster';

// The broker's session (src/cluster/session.ts) as a pure machine: inputs in, effects out.

const REQUEST_TIMEOUT_MS = 1_000;

function session(identity: { clusterId: string; brokerId: number } | null = { clusterId: 'c1', brokerId: 2 }): SessionState {
  return createSession({
    clusterName: 'origin',
    incarnation: 'inc-2',
    deviceId: 'device',
    self: 'p2',
    endpoints: ['p2'],
    ...(identity !== null && { identity }),
    newClusterId: 'new-cluster',
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    formationRounds: 3,
    formationRoundsMax: 8,
    peerFreshRounds: 3,
  });
}

const step = (s: SessionState, input: SessionInput): SessionEffect[] => stepSession(s, input).effects;
const goneRequests = (effects: SessionEffect[]) => effects.filter((e): e is Extract<SessionEffect, { type: 'request' }> => e.type === 'request' && e.request.type === 'brokerGone');
const peer = (incarnation: string) => ({ incarnation, cluster: { clusterName: 'origin', clusterId: 'c1', brokers: 3, records: 9 } });

describe('session', () => {
  it('a broker known gone is reported until a controller answers: kept while nowhere to send it, sent again when its request is lost (the gone broker may be the controller)', () => {
    const s = session();
    // Nobody to tell yet: nothing sent, nothing forgotten.
    expect(goneRequests(step(s, { type: 'brokerGone', brokerId: 1, incarnation: 'inc-1' }))).toEqual([]);
    step(s, { type: 'hello', from: 'p1', hello: peer('inc-1') });
    const [first] = goneRequests(step(s, { type: 'tick', nowMs: 100 }));
    expect(first).toMatchObject({ request: { type: 'brokerGone', brokerId: 1, incarnation: 'inc-1', clusterId: 'c1' } });

    // Its target never answers (it was the gone controller): once the request expires, asked again.
    step(s, { type: 'hello', from: 'p3', hello: peer('inc-3') });
    expect(goneRequests(step(s, { type: 'tick', nowMs: 200 }))).toEqual([]);
    const [again] = goneRequests(step(s, { type: 'tick', nowMs: 100 + REQUEST_TIMEOUT_MS + 1 }));
    expect(again).toMatchObject({ request: { type: 'brokerGone', brokerId: 1 } });
    expect(again!.requestId).not.toBe(first!.requestId);

    // A controller's answer ends it.
    step(s, { type: 'reply', requestId: again!.requestId, reply: { type: 'brokerGone', controllerEpoch: 2 }, member: '3.inc-3' });
    expect(goneRequests(step(s, { type: 'tick', nowMs: 100 + 3 * REQUEST_TIMEOUT_MS }))).toEqual([]);
  });

  it('a broker without a cluster decides only once the transport has listed the members (or at its longest wait): a relay slow to list them must not make it bootstrap beside them', () => {
    const roundsUntil = (s: SessionState, members: () => readonly string[] | 'unlisted', decided: (effects: SessionEffect[]) => boolean) => {
      for (let round = 1; round <= 20; round++) if (decided(step(s, { type: 'tick', nowMs: round * 500, members: members() }))) return round;
      return undefined;
    };
    const bootstraps = (effects: SessionEffect[]) => effects.some((e) => e.type === 'registered' && e.identity.bootstrap === true);
    // Listed as nobody: it decides after its formation rounds.
    expect(roundsUntil(session(null), () => [], bootstraps)).toBe(3);
    // Never listed (the relay never answers): it bootstraps at its longest wait, not before.
    expect(roundsUntil(session(null), () => 'unlisted', bootstraps)).toBe(8);
    // Listed at round 5 with a member it then hears from: it joins that member's cluster, never bootstraps.
    const s = session(null);
    let round = 0;
    const joins = (effects: SessionEffect[]) => {
      if (++round === 5) step(s, { type: 'hello', from: 'p1', hello: peer('inc-1') });
      expect(bootstraps(effects)).toBe(false);
      return effects.some((e) => e.type === 'request' && e.request.type === 'register' && e.request.clusterId === 'c1');
    };
    expect(roundsUntil(s, () => (round < 4 ? 'unlisted' : ['p1', 'p2']), joins)).toBe(6);
  });

  it('a broker that leaves asks to be fenced as itself and sends no heartbeat again (a heartbeat would unfence it)', () => {
    const s = session();
    step(s, { type: 'hello', from: 'p1', hello: peer('inc-1') });
    const requests = (effects: SessionEffect[]) => effects.flatMap((e) => (e.type === 'request' ? [e.request] : []));
    const [register] = requests(step(s, { type: 'tick', nowMs: 100 }));
    expect(register).toMatchObject({ type: 'register', brokerId: 2 });
    expect(requests(step(s, { type: 'leave' }))).toEqual([expect.objectContaining({ type: 'brokerGone', brokerId: 2, incarnation: 'inc-2' })]);
    expect(requests(step(s, { type: 'leave' }))).toEqual([]);
    expect(requests(step(s, { type: 'tick', nowMs: 200 })).filter((r) => r.type === 'heartbeat' || r.type === 'register')).toEqual([]);
  });
});
