import { describe, expect, it } from 'vitest';
import { createSession, stepSession, type SessionEffect, type SessionInput, type SessionState } from '../../src/cluster';

// The broker's session (src/cluster/session.ts) as a pure machine: inputs in, effects out.

const REQUEST_TIMEOUT_MS = 1_000;

function session(): SessionState {
  return createSession({
    clusterName: 'origin',
    incarnation: 'inc-2',
    deviceId: 'device',
    self: 'p2',
    endpoints: ['p2'],
    identity: { clusterId: 'c1', brokerId: 2 },
    newClusterId: 'unused',
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    formationRounds: 3,
    formationRoundsMax: 3,
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
});
