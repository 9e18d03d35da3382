import type { Connection } from '@libp2p/interface';
import { sleep, type Clock } from '../clock';

/** libp2p's ping protocol (@libp2p/ping answers it): 32 bytes out, the same 32 back. */
const PING_PROTOCOL = '/ipfs/ping/1.0.0';
const PING_BYTES = 32;

export interface LivenessInit {
  /** Times the pings and the pauses between them. */
  clock: Clock;
  /** One round trip to the other end; rejects when `signal` aborts (its timeout, or stop). */
  ping(signal: AbortSignal): Promise<number>;
  /** How long one ping may take before it counts as lost. */
  timeoutMs: number;
  /** Pause after each ping, answered or lost, before the next. */
  intervalMs: number;
  /** Pings lost in a row after which the other end is declared dead. */
  lostMax: number;
  onRtt?(rttMs: number): void;
  /** Called once, when `lostMax` pings in a row were lost; the watch then ends. */
  onDead(reason: string): void;
  /** Ends the watch. */
  signal: AbortSignal;
}

/**
 * Pings the other end of a link, one ping at a time, and declares it dead only after
 * `lostMax` pings in a row were lost. One ping at a time, because libp2p allows one
 * outbound ping stream per connection: a second pinger (libp2p's connection monitor beside
 * the quality probe) failed with TooManyOutboundProtocolStreamsError on a busy machine, and
 * the monitor took that for a dead peer. Losses in a row, because a page that was itself
 * frozen finds its in-flight ping timed out when it runs again: that costs one loss, never
 * the link. A silent peer is declared dead within
 * `lostMax × timeoutMs + (lostMax − 1) × intervalMs` (README § Network).
 * @example void watchLiveness({ clock, ping: (signal) => pingConnection(clock, connection, signal), timeoutMs: 5_000, intervalMs: 2_000, lostMax: 3, onDead: (why) => connection.abort(new Error(why)), signal });
 */
export async function watchLiveness(init: LivenessInit): Promise<void> {
  let lost = 0;
  while (!init.signal.aborted) {
    const attempt = withTimeout(init.clock, init.signal, init.timeoutMs);
    try {
      const rttMs = await init.ping(attempt.signal);
      lost = 0;
      init.onRtt?.(rttMs);
    } catch {
      if (init.signal.aborted) return;
      lost++;
      if (lost >= init.lostMax) {
        init.onDead(`${lost} pings in a row unanswered within ${init.timeoutMs} ms each`);
        return;
      }
    } finally {
      attempt.clear();
    }
    await sleep(init.clock, init.intervalMs, init.signal);
  }
}

/**
 * One ping on exactly this connection (libp2p's own `ping(peerId)` may pick another
 * connection to the peer, such as a relayed one): resolves with the round trip in ms.
 * @example const rttMs = await pingConnection(clock, connection, timeoutSignal(clock, 5_000));
 */
export async function pingConnection(clock: Clock, connection: Connection, signal: AbortSignal): Promise<number> {
  const stream = await connection.newStream(PING_PROTOCOL, { signal });
  try {
    const sent = crypto.getRandomValues(new Uint8Array(PING_BYTES));
    const started = clock.monotonic();
    const back = new Uint8Array(PING_BYTES);
    await new Promise<void>((resolve, reject) => {
      let received = 0;
      const fail = (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      };
      const onAbort = () => fail(signal.reason instanceof Error ? signal.reason : new Error('ping aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      stream.addEventListener('message', (event) => {
        const bytes = event.data instanceof Uint8Array ? event.data : event.data.subarray();
        back.set(bytes.subarray(0, PING_BYTES - received), received);
        received += bytes.byteLength;
        if (received < PING_BYTES) return;
        signal.removeEventListener('abort', onAbort);
        if (back.every((byte, i) => byte === sent[i])) resolve();
        else reject(new Error('ping answered with other bytes'));
      });
      stream.addEventListener('close', () => fail(new Error('ping stream closed before the answer')));
      stream.send(sent);
    });
    const rttMs = clock.monotonic() - started;
    await stream.close({ signal }).catch(() => stream.abort(new Error('ping stream close failed')));
    return rttMs;
  } catch (error) {
    stream.abort(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/** A signal that aborts with `parent` or after `ms` on `clock`. */
function withTimeout(clock: Clock, parent: AbortSignal, ms: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const cancel = clock.after(ms, () => controller.abort(new Error(`no answer within ${ms} ms`)));
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    clear() {
      cancel();
      parent.removeEventListener('abort', onAbort);
    },
  };
}
