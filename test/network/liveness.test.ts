import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LINK_DEAD_AFTER_MS, PING_TIMEOUT_MS, PINGS_LOST_MAX, QUALITY_INTERVAL_MS } from '../../src/network';
import { watchLiveness } from '../../src/network/liveness';
import { realClock } from '../../src/clock';

// The page's liveness check on its connections (src/network/liveness.ts), on fake timers:
// a ping is a promise the test answers, or leaves to time out.

/** A peer whose answers the test controls: `answering` false leaves each ping unanswered until its timeout. */
function fakePeer() {
  const peer = {
    answering: true,
    pings: 0,
    ping(signal: AbortSignal): Promise<number> {
      peer.pings++;
      if (peer.answering) return Promise.resolve(1);
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('lost')), { once: true }));
    },
  };
  return peer;
}

function watch(peer: ReturnType<typeof fakePeer>, stop = new AbortController()) {
  const outcome = { dead: undefined as string | undefined, deadAt: -1, rtts: 0 };
  const started = Date.now();
  // The real clock on vitest's fake timers: the test moves time.
  const done = watchLiveness({
    clock: realClock,
    ping: peer.ping,
    timeoutMs: PING_TIMEOUT_MS,
    intervalMs: QUALITY_INTERVAL_MS,
    lostMax: PINGS_LOST_MAX,
    onRtt: () => outcome.rtts++,
    onDead: (reason) => {
      outcome.dead = reason;
      outcome.deadAt = Date.now() - started;
    },
    signal: stop.signal,
  });
  return { outcome, done, stop };
}

describe('watchLiveness', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('reports each round trip of a peer that answers, and never declares it dead', async () => {
    const peer = fakePeer();
    const { outcome, stop, done } = watch(peer);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(outcome.dead).toBeUndefined();
    expect(outcome.rtts).toBe(peer.pings);
    expect(peer.pings).toBeGreaterThanOrEqual(60_000 / QUALITY_INTERVAL_MS - 1);
    stop.abort();
    await done;
  });

  it(`declares a silent peer dead after ${PINGS_LOST_MAX} pings lost in a row: LINK_DEAD_AFTER_MS after it fell silent`, async () => {
    const peer = fakePeer();
    peer.answering = false;
    const { outcome, done } = watch(peer);
    await vi.advanceTimersByTimeAsync(LINK_DEAD_AFTER_MS - 1);
    expect(outcome.dead).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome.dead).toMatch(/3 pings in a row unanswered/);
    expect(outcome.deadAt).toBe(LINK_DEAD_AFTER_MS);
    await done;
    // The watch ended: no more pings.
    const pings = peer.pings;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(peer.pings).toBe(pings);
  });

  it('keeps a peer that was silent for less than that (a frozen tab): losses count only in a row', async () => {
    const peer = fakePeer();
    const { outcome, stop, done } = watch(peer);
    for (let round = 0; round < 5; round++) {
      peer.answering = false;
      // Two pings lost (just under the bound), then the peer answers again.
      await vi.advanceTimersByTimeAsync((PINGS_LOST_MAX - 1) * (PING_TIMEOUT_MS + QUALITY_INTERVAL_MS));
      peer.answering = true;
      await vi.advanceTimersByTimeAsync(3 * QUALITY_INTERVAL_MS);
    }
    expect(outcome.dead).toBeUndefined();
    stop.abort();
    await done;
  });

  it('stops when its signal aborts, even in the middle of a ping, and declares nothing', async () => {
    const peer = fakePeer();
    peer.answering = false;
    const { outcome, stop, done } = watch(peer);
    await vi.advanceTimersByTimeAsync(PING_TIMEOUT_MS / 2);
    stop.abort();
    await done;
    await vi.advanceTimersByTimeAsync(LINK_DEAD_AFTER_MS * 2);
    expect(outcome.dead).toBeUndefined();
    expect(peer.pings).toBe(1);
  });
});
