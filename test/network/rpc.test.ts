import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, PeerError, TimeoutError } from '../../src/errors';
import { createPeerFrameCodec, FRAME_HEADER_BYTES, type FrameResult, type PeerMessageTypes } from '../../src/protocol';
import { rawFrame } from '../support/raw-frame';
import {
  createPeerRpc,
  PeerNotConnectedError,
  RPC_BAD_FRAMES_MAX,
  RPC_FRAMES_PER_SECOND_MAX,
  RPC_HANDLING_MAX,
  RPC_IN_FLIGHT_REQUESTS_MAX,
  RPC_SEND_QUEUE_BYTES_MAX,
  PEER_WINDOW_BYTES,
  PEER_WINDOW_UPDATE_BYTES,
  type PeerInfo,
  type PeerLink,
  type PeerLinkEvents,
  type PeerRpc,
  type PeerRequestObservation,
} from '../../src/network/worker';
import { until } from '../support/until';
import { realClock } from '../../src/clock';

const KiB = 1024;
const MiB = 1024 * KiB;
/** What the fake bridge lets one side have unread by the other, as BRIDGE_WINDOW_BYTES does. */
const FAKE_WINDOW_BYTES = 1 * MiB;

/** An in-memory PeerLink: bytes sent to a connected link arrive there a macrotask later, unless it stopped reading. */
interface FakeLink extends PeerLink {
  readonly sends: number;
  /** The other side stops taking bytes (they stay in flight, and the window fills). */
  stopReading(): void;
  /** Takes what was held, in order, and what comes next. */
  resumeReading(): void;
  /** The node behind this link stops consuming, though its bridge keeps taking bytes off the wire (a busy worker behind a reading page). */
  stopConsuming(): void;
  /** Consumes what was held, in order, and what comes next. */
  resumeConsuming(): void;
  connectTo(other: FakeLink): void;
  /** Both sides see the other leave. */
  disconnect(other: FakeLink): void;
  deliver(from: string, bytes: Uint8Array): void;
  join(peerId: string): void;
  leave(peerId: string): void;
  /** The other side took `bytes` this link sent it: they leave the window. */
  credit(peerId: string, bytes: number): void;
  /** Bytes this link sent `peerId` that have not arrived yet (copies the fake network holds). */
  inFlightTo(peerId: string): number;
}

function fakeLink(self: string): FakeLink {
  const listeners = new Map<keyof PeerLinkEvents, Set<(event: never) => void>>();
  const remotes = new Map<string, { link: FakeLink; inFlight: number; waiting: Array<() => void> }>();
  let reading = true;
  let consuming = true;
  const held: Array<() => void> = [];
  const unconsumed: Array<() => void> = [];
  let sends = 0;
  const emit = <E extends keyof PeerLinkEvents>(type: E, event: PeerLinkEvents[E]) => {
    for (const listener of listeners.get(type) ?? []) (listener as (event: PeerLinkEvents[E]) => void)(event);
  };
  const link: FakeLink = {
    peerId: self,
    get sends() {
      return sends;
    },
    peers: () => [...remotes.keys()].map((peerId): PeerInfo => ({ peerId, remoteAddr: `/webrtc/p2p/${peerId}`, limited: false, since: 0 })),
    members: () => [],
    async send(peerId, bytes, { signal } = {}) {
      for (;;) {
        if (signal?.aborted === true) throw new AbortedError();
        const remote = remotes.get(peerId);
        if (remote === undefined) throw new PeerNotConnectedError(peerId);
        if (remote.inFlight === 0 || remote.inFlight + bytes.length <= FAKE_WINDOW_BYTES) {
          sends += 1;
          remote.inFlight += bytes.length;
          const copy = bytes.slice();
          setTimeout(() => remote.link.deliver(self, copy), 0);
          return;
        }
        await new Promise<void>((resume) => {
          const onAbort = () => resume();
          signal?.addEventListener('abort', onAbort, { once: true });
          remote.waiting.push(() => {
            signal?.removeEventListener('abort', onAbort);
            resume();
          });
        });
      }
    },
    on(type, listener) {
      const set = listeners.get(type) ?? new Set();
      set.add(listener as (event: never) => void);
      listeners.set(type, set);
      return () => set.delete(listener as (event: never) => void);
    },
    close() {},
    stopReading() {
      reading = false;
    },
    resumeReading() {
      reading = true;
      for (const take of held.splice(0)) take();
    },
    stopConsuming() {
      consuming = false;
    },
    resumeConsuming() {
      consuming = true;
      for (const consume of unconsumed.splice(0)) consume();
    },
    connectTo(other) {
      remotes.set(other.peerId!, { link: other, inFlight: 0, waiting: [] });
      emit('joined', { peerId: other.peerId!, remoteAddr: '', limited: false, since: 0 });
    },
    disconnect(other) {
      link.leave(other.peerId!);
      other.leave(self);
    },
    deliver(from, bytes) {
      const take = () => {
        remotes.get(from)?.link.credit(self, bytes.length);
        if (consuming) emit('data', { peerId: from, bytes });
        else unconsumed.push(() => emit('data', { peerId: from, bytes }));
      };
      if (reading) take();
      else held.push(take);
    },
    join(peerId) {
      emit('joined', { peerId, remoteAddr: '', limited: false, since: 0 });
    },
    leave(peerId) {
      const remote = remotes.get(peerId);
      remotes.delete(peerId);
      for (const resume of remote?.waiting.splice(0) ?? []) resume();
      emit('left', { peerId, reason: 'test' });
    },
    inFlightTo: (peerId) => remotes.get(peerId)?.inFlight ?? 0,
    credit(peerId, bytes) {
      const remote = remotes.get(peerId);
      if (remote === undefined) return;
      remote.inFlight -= bytes;
      for (const resume of remote.waiting.splice(0)) resume();
    },
  };
  return link;
}

function pair(a: string, b: string): [FakeLink, FakeLink] {
  const left = fakeLink(a);
  const right = fakeLink(b);
  left.connectTo(right);
  right.connectTo(left);
  return [left, right];
}

const codec = createPeerFrameCodec();
/** Reads a raw peer's answers: frame results in arrival order. */
function answersOf(link: FakeLink, from: string): FrameResult<PeerMessageTypes>[] {
  const decoder = codec.createStreamDecoder();
  const results: FrameResult<PeerMessageTypes>[] = [];
  link.on('data', ({ peerId, bytes }) => {
    if (peerId === from) results.push(...decoder.push(bytes));
  });
  return results;
}

const bytesOf = (...values: number[]) => new Uint8Array(values);
const rpcs: PeerRpc[] = [];
function rpcOn(link: PeerLink, init: Parameters<typeof createPeerRpc>[1] = {}): PeerRpc {
  const rpc = createPeerRpc(link, init);
  rpc.handle('echo', (body) => body);
  rpcs.push(rpc);
  return rpc;
}
afterEach(() => {
  for (const rpc of rpcs.splice(0)) rpc.close();
});

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
/** Live JS heap and ArrayBuffers of this process after a full garbage collection. */
function retainedBytes(): number {
  collectGarbage();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** Sends one-way messages (each given 50 ms to find room) until one fails, checking `invariant` after each; how many went, and the failure. */
async function notifyUntilItFails(rpc: PeerRpc, peerId: string, message: Uint8Array, invariant: () => void): Promise<{ sent: number; failure: unknown }> {
  for (let sent = 0; ; sent++) {
    try {
      await rpc.notify(peerId, 'echo', message, { timeoutMs: 50 });
    } catch (failure) {
      return { sent, failure };
    }
    invariant();
  }
}

describe('peer rpc', () => {
  it('answers requests both ways and delivers one-way messages', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    const seen: Array<{ peerId: string; wantsAnswer: boolean; body: number[] }> = [];
    rpcB.handle('echo', (body, context) => {
      seen.push({ peerId: context.peerId, wantsAnswer: context.wantsAnswer, body: [...body] });
      return body.map((x) => x * 2);
    });
    expect(await rpcA.request('B', 'echo', bytesOf(1, 2, 3))).toEqual(bytesOf(2, 4, 6));
    expect(await rpcB.request('A', 'echo', bytesOf(7))).toEqual(bytesOf(7));
    await rpcA.notify('B', 'echo', bytesOf(5));
    await until(() => seen.length === 2, 'notify');
    expect(seen).toEqual([
      { peerId: 'A', wantsAnswer: true, body: [1, 2, 3] },
      { peerId: 'A', wantsAnswer: false, body: [5] },
    ]);
    expect(rpcA.stats('B')).toMatchObject({ inFlightRequests: 0, queuedBytes: 0, badFrames: 0 });
  });

  it('rejects with the peer error answer: its code and retriable flag, or UNKNOWN_SERVER_ERROR', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    let fail: Error = new TimeoutError('slow disk');
    rpcB.handle('echo', () => {
      throw fail;
    });
    const error = await rpcA.request('B', 'echo', bytesOf(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerError);
    expect(error).toMatchObject({ code: 'REQUEST_TIMED_OUT', retriable: true, peerId: 'B' });
    fail = new Error('bug');
    await expect(rpcA.request('B', 'echo', bytesOf(1))).rejects.toMatchObject({ code: 'UNKNOWN_SERVER_ERROR', retriable: false });
  });

  it('answers a type it has no handler for (yet: a broker starting) with the retriable BROKER_NOT_AVAILABLE; once registered, served', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    await expect(rpcA.request('B', 'echo', bytesOf(1))).rejects.toMatchObject({ name: 'PeerError', code: 'BROKER_NOT_AVAILABLE', retriable: true });
    rpcB.handle('echo', (body) => body);
    expect(await rpcA.request('B', 'echo', bytesOf(1))).toEqual(bytesOf(1));
  });

  it('times out with TimeoutError, ignores the late answer, and frees the slot', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    let release: (() => void) | undefined;
    rpcB.handle('echo', (body) => new Promise((resolve) => (release = () => resolve(body))));
    await expect(rpcA.request('B', 'echo', bytesOf(1), { timeoutMs: 30 })).rejects.toBeInstanceOf(TimeoutError);
    expect(rpcA.stats('B')!.inFlightRequests).toBe(0);
    release!();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(rpcA.stats('B')!.inFlightRequests).toBe(0);
  });

  it('stops a request cancelled through its signal with AbortedError', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    rpcB.handle('echo', () => new Promise(() => undefined));
    const controller = new AbortController();
    const pending = rpcA.request('B', 'echo', bytesOf(1), { signal: controller.signal });
    setTimeout(() => controller.abort(), 5);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(rpcA.stats('B')!.inFlightRequests).toBe(0);
    await expect(rpcA.request('B', 'echo', bytesOf(1), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
  });

  it('fails pending requests at once when the peer leaves, and refuses peers it is not connected to', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    rpcB.handle('echo', () => new Promise(() => undefined));
    const pending = Array.from({ length: 3 }, () => rpcA.request('B', 'echo', bytesOf(1), { timeoutMs: 60_000 }));
    await until(() => rpcA.stats('B')?.queuedBytes === 0, 'sent');
    const started = Date.now();
    a.disconnect(b);
    for (const request of pending) await expect(request).rejects.toBeInstanceOf(PeerNotConnectedError);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(rpcA.request('B', 'echo', bytesOf(1))).rejects.toBeInstanceOf(PeerNotConnectedError);
    await expect(rpcA.request('Z', 'echo', bytesOf(1))).rejects.toMatchObject({ code: 'PEER_NOT_CONNECTED' });
  });

  it(`keeps at most ${RPC_IN_FLIGHT_REQUESTS_MAX} requests in flight per peer; the rest wait and all are answered`, async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    rpcOn(b);
    let peak = 0;
    const count = RPC_IN_FLIGHT_REQUESTS_MAX * 2 + 7;
    const answers = Array.from({ length: count }, (_, i) => {
      const answer = rpcA.request('B', 'echo', bytesOf(i % 256, i >> 8));
      peak = Math.max(peak, rpcA.stats('B')?.inFlightRequests ?? 0);
      return answer;
    });
    const timer = setInterval(() => (peak = Math.max(peak, rpcA.stats('B')?.inFlightRequests ?? 0)), 0);
    const results = await Promise.all(answers);
    clearInterval(timer);
    results.forEach((body, i) => expect(body).toEqual(bytesOf(i % 256, i >> 8)));
    expect(peak).toBeLessThanOrEqual(RPC_IN_FLIGHT_REQUESTS_MAX);
  });

  it('reports an observed request: the peer\'s requests waiting to be sent as it joins and leaves them, its answer with id, frame bytes and times, and its timeout sent or unsent', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    const held: Array<() => void> = [];
    rpcB.handle('echo', (body) => new Promise((resolve) => held.push(() => resolve(body))));
    const releaseHeld = () => held.splice(0).forEach((release) => release());
    const busy = Array.from({ length: RPC_IN_FLIGHT_REQUESTS_MAX }, () => rpcA.request('B', 'echo', bytesOf(0), { timeoutMs: 60_000 }));
    await until(() => held.length === RPC_IN_FLIGHT_REQUESTS_MAX, 'every slot taken');
    const seen = (): PeerRequestObservation[] => [];
    const x = seen();
    const answered = rpcA.request('B', 'echo', bytesOf(1, 2, 3), { timeoutMs: 60_000, observe: (o) => x.push(o) });
    const y = seen();
    await expect(rpcA.request('B', 'echo', bytesOf(4), { timeoutMs: 30, observe: (o) => y.push(o) })).rejects.toBeInstanceOf(TimeoutError);
    expect(x).toEqual([{ kind: 'queue', queueSize: 1 }]);
    expect(y.map((o) => o.kind)).toEqual(['queue', 'timedOut', 'queue']);
    expect(y[0]).toEqual({ kind: 'queue', queueSize: 2 });
    expect(y[1]).toMatchObject({ requestId: 0, sentAt: undefined });
    expect(y[2]).toEqual({ kind: 'queue', queueSize: 1 });
    expect(rpcA.stats('B')!.queuedRequests).toBe(1);
    releaseHeld();
    await Promise.all(busy);
    await until(() => held.length === 1, 'x sent');
    expect(x[1]).toEqual({ kind: 'queue', queueSize: 0 });
    expect(rpcA.stats('B')!.queuedRequests).toBe(0);
    releaseHeld();
    expect(await answered).toEqual(bytesOf(1, 2, 3));
    const done = x[2];
    if (done?.kind !== 'answered') throw new Error(`no answer observed: ${JSON.stringify(x)}`);
    expect(done.requestId).toBeGreaterThan(0);
    expect(done.bytes).toBe(codec.encode({ type: 'echo', version: done.version, requestId: done.requestId, isResponse: false, body: bytesOf(1, 2, 3) }).length);
    expect(done.createdAt).toBeLessThanOrEqual(done.sentAt);
    expect(done.sentAt).toBeLessThanOrEqual(done.answeredAt);
    expect(x).toHaveLength(3);
    const z = seen();
    await expect(rpcA.request('B', 'echo', bytesOf(5), { timeoutMs: 30, observe: (o) => z.push(o) })).rejects.toBeInstanceOf(TimeoutError);
    expect(z.map((o) => o.kind)).toEqual(['queue', 'queue', 'timedOut']);
    expect(z[2]).toMatchObject({ kind: 'timedOut', requestId: expect.any(Number) as number, sentAt: expect.any(Number) as number });
    expect((z[2] as { requestId: number }).requestId).toBeGreaterThan(0);
    releaseHeld();
  });

  it('a request larger than the whole window goes once the bytes before it are few enough to stay unacknowledged (no window update would ever come for them)', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    rpcOn(b);
    // A small exchange first leaves a few bytes unacknowledged: under PEER_WINDOW_UPDATE_BYTES, so the receiver never grants them.
    expect(await rpcA.request('B', 'echo', bytesOf(1))).toEqual(bytesOf(1));
    expect(rpcA.stats('B')!.unackedBytes).toBeGreaterThan(0);
    const large = new Uint8Array(PEER_WINDOW_BYTES + 1024 * 1024).fill(7);
    const answer = await rpcA.request('B', 'echo', large, { timeoutMs: 4_000 });
    expect(answer.length).toBe(large.length);
    expect(answer.every((x) => x === 7)).toBe(true);
  });

  it('coalesces small frames into few writes', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    let received = 0;
    rpcB.handle('echo', (body) => {
      received += 1;
      return body;
    });
    await Promise.all(Array.from({ length: 200 }, () => rpcA.notify('B', 'echo', new Uint8Array(100))));
    await until(() => received === 200, 'all delivered');
    expect(a.sends).toBeLessThan(10);
  });

  it('bounds what the sender holds for a peer that stops reading; senders wait, then time out', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    rpcOn(b);
    b.stopReading();
    const message = new Uint8Array(64 * KiB);
    const { sent, failure } = await notifyUntilItFails(rpcA, 'B', message, () => expect(rpcA.stats('B')!.queuedBytes).toBeLessThanOrEqual(RPC_SEND_QUEUE_BYTES_MAX));
    expect(failure).toBeInstanceOf(TimeoutError);
    // queue + the bridge window, and nothing more
    expect(sent * message.length).toBeLessThanOrEqual(RPC_SEND_QUEUE_BYTES_MAX + FAKE_WINDOW_BYTES + message.length * 2);
  });

  it('trySend never waits: it queues while there is room, then drops and counts; the queue drains and it sends again', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    const rpcB = createPeerRpc(b);
    rpcs.push(rpcB);
    const seen: number[] = [];
    rpcB.handle('echo', (body) => {
      seen.push(body[0]!);
      return body;
    });
    expect(rpcA.trySend('B', 'echo', bytesOf(1))).toBe(true);
    expect(rpcA.trySend('Z', 'echo', bytesOf(2))).toBe(false); // not connected
    await until(() => seen.length === 1, 'the first message');
    b.stopReading();
    const message = new Uint8Array(64 * KiB);
    let queued = 0;
    // Synchronous: nothing is awaited, so the sends cannot be waiting for room.
    while (rpcA.trySend('B', 'echo', message)) queued++;
    expect(rpcA.stats('B')!.sendsDropped).toBe(1);
    expect(rpcA.stats('B')!.queuedBytes).toBeLessThanOrEqual(RPC_SEND_QUEUE_BYTES_MAX);
    expect(queued * message.length).toBeLessThanOrEqual(RPC_SEND_QUEUE_BYTES_MAX + FAKE_WINDOW_BYTES + message.length * 2);
    expect(rpcA.trySend('B', 'echo', message)).toBe(false); // still full: nothing was read
    b.resumeReading();
    await until(() => seen.length === 1 + queued, 'every queued message');
    expect(rpcA.trySend('B', 'echo', bytesOf(4))).toBe(true);
    await until(() => seen.at(-1) === 4, 'a message after the queue drained');
    expect(rpcA.stats('B')!.sendsDropped).toBe(2);
  });

  it('end-to-end window: a peer whose node stops consuming makes senders wait, then time out, though its bridge keeps reading; they resume when it consumes', async () => {
    const [a, b] = pair('A', 'B');
    const rpcA = rpcOn(a);
    let received = 0;
    createPeerRpc(b).handle('echo', (body) => {
      received += body.length;
      return body;
    });
    b.stopConsuming();
    const message = new Uint8Array(64 * KiB);
    const { sent, failure } = await notifyUntilItFails(rpcA, 'B', message, () => expect(rpcA.stats('B')!.unackedBytes).toBeLessThanOrEqual(PEER_WINDOW_BYTES));
    expect(failure).toBeInstanceOf(TimeoutError);
    // the peer's window + this node's queue, whatever the bridge would take
    expect(sent * message.length).toBeLessThanOrEqual(PEER_WINDOW_BYTES + RPC_SEND_QUEUE_BYTES_MAX + message.length);
    expect(sent * message.length).toBeGreaterThanOrEqual(PEER_WINDOW_BYTES);
    b.resumeConsuming();
    await until(() => received === sent * message.length, 'everything queued arrives');
    expect(await rpcA.request('B', 'echo', bytesOf(7))).toEqual(bytesOf(7));
    await until(() => rpcA.stats('B')!.unackedBytes < PEER_WINDOW_UPDATE_BYTES, 'the window is given back');
  });

  it(`answers a peer's requests over ${RPC_HANDLING_MAX} unanswered ones with THROTTLING_QUOTA_EXCEEDED`, async () => {
    const [hostile, node] = pair('H', 'N');
    const rpc = createPeerRpc(node);
    rpcs.push(rpc);
    const releases: Array<() => void> = [];
    rpc.handle('echo', (body) => new Promise((resolve) => releases.push(() => resolve(body))));
    const answers = answersOf(hostile, 'N');
    const count = RPC_HANDLING_MAX + 10;
    await hostile.send('N', concatAll(Array.from({ length: count }, (_, i) => rawFrame(1, i + 1, bytesOf(1)))));
    await until(() => releases.length === RPC_HANDLING_MAX && answers.length === 10, 'throttled');
    for (const release of releases) release();
    await until(() => answers.length === count, 'all answered');
    const codes = answers.map((r) => (r.ok ? (r.frame.type === 'error' ? r.frame.body.code : 'ok') : 'bad'));
    expect(codes.filter((code) => code === 'ok')).toHaveLength(RPC_HANDLING_MAX);
    expect(codes.filter((code) => code === 'THROTTLING_QUOTA_EXCEEDED')).toHaveLength(10);
    expect(rpc.stats('H')).toMatchObject({ throttled: 10, handling: 0 });
  });

  it('answers bad frames with typed errors and stays in step', async () => {
    const [hostile, node] = pair('H', 'N');
    rpcOn(node);
    const answers = answersOf(hostile, 'N');
    await hostile.send('N', rawFrame(999, 11, bytesOf(1))); // unknown type
    await hostile.send('N', rawFrame(1, 12, bytesOf(1), { version: 9 })); // unknown version
    const oversize = new Uint8Array(FRAME_HEADER_BYTES);
    new DataView(oversize.buffer).setUint32(0, 0xfffffff0);
    new DataView(oversize.buffer).setUint32(8, 13);
    await hostile.send('N', oversize); // claims 4 GiB: refused from its header
    await until(() => answers.length === 3, 'answers');
    expect(answers.map((r) => (r.ok && r.frame.type === 'error' ? [r.frame.requestId, r.frame.body.code] : r))).toEqual([
      [11, 'INVALID_REQUEST'],
      [12, 'UNSUPPORTED_VERSION'],
      [13, 'MESSAGE_TOO_LARGE'],
    ]);
  });

  it('cuts off a peer after too many corrupt frames: its pending requests fail, its bytes are ignored', async () => {
    const [hostile, node] = pair('H', 'N');
    const rpc = rpcOn(node);
    const answers = answersOf(hostile, 'N');
    const pending = rpc.request('H', 'echo', bytesOf(1), { timeoutMs: 60_000 });
    for (let i = 0; i <= RPC_BAD_FRAMES_MAX; i++) await hostile.send('N', rawFrame(0, 100 + i, bytesOf(0xff))); // an "error answer" as a request, undecodable
    await expect(pending).rejects.toMatchObject({ name: 'PeerError', code: 'CORRUPT_MESSAGE' });
    expect(rpc.stats('H')!.cutOff).toBe(true);
    await until(() => answers.length === RPC_BAD_FRAMES_MAX + 2, 'the request and every error answer');
    const before = answers.length;
    await hostile.send('N', rawFrame(1, 5, bytesOf(1)));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(answers.length).toBe(before);
  });

  it('counts corrupt frames against a peer even over the frame rate: how fast they came never spares it the cut-off', async () => {
    const [hostile, node] = pair('H', 'N');
    const rpc = rpcOn(node, { clock: { ...realClock, monotonic: () => 0 } });
    const answers = answersOf(hostile, 'N');
    // The bucket emptied by valid requests (the clock stands still: it never refills)…
    const valid = Array.from({ length: RPC_FRAMES_PER_SECOND_MAX }, (_, i) => rawFrame(1, i + 1, bytesOf(1)));
    for (let i = 0; i < valid.length; i += 1000) await hostile.send('N', concatAll(valid.slice(i, i + 1000)));
    await until(() => answers.length === valid.length, 'every request answered', 20_000);
    // …then corrupt frames, each over the rate.
    for (let i = 0; i <= RPC_BAD_FRAMES_MAX; i++) await hostile.send('N', rawFrame(0, 100 + i, bytesOf(0xff)));
    await until(() => rpc.stats('H')!.cutOff, 'cut off');
    expect(rpc.stats('H')!.throttled).toBe(RPC_BAD_FRAMES_MAX);
  });

  it(`throttles a peer over ${RPC_FRAMES_PER_SECOND_MAX} frames per second`, async () => {
    let clock = 0;
    const [hostile, node] = pair('H', 'N');
    const rpc = rpcOn(node, { clock: { ...realClock, monotonic: () => clock } });
    const answers = answersOf(hostile, 'N');
    const burst = 100;
    const frames = Array.from({ length: RPC_FRAMES_PER_SECOND_MAX + burst }, (_, i) => rawFrame(1, i + 1, bytesOf(1)));
    for (let i = 0; i < frames.length; i += 1000) await hostile.send('N', concatAll(frames.slice(i, i + 1000)));
    await until(() => answers.length === frames.length, 'every request answered', 20_000);
    const throttled = answers.filter((r) => r.ok && r.frame.type === 'error' && r.frame.body.code === 'THROTTLING_QUOTA_EXCEEDED');
    expect(throttled).toHaveLength(burst);
    clock += 1000; // a second later the bucket is full again
    const more = answers.length;
    await hostile.send('N', rawFrame(1, 1, bytesOf(1)));
    await until(() => answers.length === more + 1, 'answer');
    expect(answers.at(-1)).toMatchObject({ ok: true, frame: { type: 'echo' } });
    expect(rpc.stats('H')!.throttled).toBe(burst);
  });

  it('fuzz: a hostile peer sends random, truncated, oversized and unknown frames and floods; a well-behaved peer is still served and memory stays bounded', async () => {
    const node = fakeLink('N');
    const good = fakeLink('G');
    const hostile = fakeLink('H');
    node.connectTo(good);
    good.connectTo(node);
    node.connectTo(hostile);
    hostile.connectTo(node);
    const rpc = rpcOn(node);
    const goodRpc = rpcOn(good);
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const randomBytes = (length: number) => Uint8Array.from({ length }, () => Math.floor(random() * 256));
    const retainedBefore = retainedBytes();
    let peakHeld = 0;
    const watch = setInterval(() => {
      const stats = rpc.stats('H');
      if (stats !== undefined) peakHeld = Math.max(peakHeld, stats.queuedBytes + stats.bufferedBytes);
    }, 0);
    let attackBytes = 0;
    const junk = new Uint8Array(MiB).fill(0xa5);
    const attack = (async () => {
      for (let round = 0; round < 360; round++) {
        const kind = (round + 5) % 6; // bulk first, before the node stops reading this peer
        let chunk: Uint8Array;
        if (kind === 0) chunk = randomBytes(1 + Math.floor(random() * 4096));
        else if (kind === 1) chunk = rawFrame(1, round, randomBytes(100)).subarray(0, 20); // truncated: the rest never comes
        else if (kind === 2) {
          chunk = rawFrame(1, round, new Uint8Array(0));
          new DataView(chunk.buffer).setUint32(0, 64 * MiB); // oversized
        } else if (kind === 3) chunk = rawFrame(2 + Math.floor(random() * 60000), round, randomBytes(32)); // unknown types
        else if (kind === 4) chunk = concatAll(Array.from({ length: 500 }, (_, i) => rawFrame(1, round * 1000 + i + 1, randomBytes(64)))); // a flood
        else {
          // Bulk: an echo request at the frame limit in 1 MiB pieces (the decoder holds it whole; its answer is as big).
          const head = rawFrame(1, round, new Uint8Array(0));
          new DataView(head.buffer).setUint32(0, codec.maxFrameBytes - 8);
          for (const part of [head, junk, junk, junk, junk, junk, junk, junk, junk]) {
            attackBytes += part.length;
            await hostile.send('N', part).catch(() => undefined);
          }
          continue;
        }
        attackBytes += chunk.length;
        await hostile.send('N', chunk).catch(() => undefined);
      }
    })();
    const served: number[] = [];
    for (let i = 0; i < 50; i++) served.push((await goodRpc.request('N', 'echo', bytesOf(i), { timeoutMs: 5_000 }))[0]!);
    await attack;
    clearInterval(watch);
    expect(served).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(await goodRpc.request('N', 'echo', bytesOf(9))).toEqual(bytesOf(9));
    expect(rpc.stats('G')!.badFrames).toBe(0);
    expect(peakHeld).toBeLessThanOrEqual(RPC_SEND_QUEUE_BYTES_MAX + codec.maxFrameBytes);
    // The node kept none of what the hostile peer sent (hundreds of MiB): what stays live is
    // bounded by what it may hold for one peer — its send queue and one partial frame — plus slack.
    expect(attackBytes).toBeGreaterThan(400 * MiB);
    // What the fake network still carries (answers of up to 8 MiB) is not the node's; and right
    // after the attack some of its garbage is still reachable from settling tasks (seen: 10 MiB
    // for one macrotask, 28 MiB in a loaded run), so the bound is waited for, a GC per check.
    await until(() => hostile.inFlightTo('N') === 0 && node.inFlightTo('H') === 0, 'the fake network is quiet');
    const retainedBound = RPC_SEND_QUEUE_BYTES_MAX + codec.maxFrameBytes + 4 * MiB;
    await until(() => retainedBytes() - retainedBefore < retainedBound, `the node's live memory is back under ${retainedBound / MiB} MiB`, 50);
  });
});

describe('admission', () => {
  it('admits peers that share the secret; requests wait for it and then flow both ways', async () => {
    const [a, b] = [fakeLink('A'), fakeLink('B')];
    const rpcA = rpcOn(a, { admission: { secret: 'sesame' } });
    const rpcB = rpcOn(b, { admission: { secret: 'sesame' } });
    a.connectTo(b);
    b.connectTo(a);
    expect(await rpcA.request('B', 'echo', bytesOf(1))).toEqual(bytesOf(1));
    expect(await rpcB.request('A', 'echo', bytesOf(2))).toEqual(bytesOf(2));
    expect(rpcA.stats('B')!.admission).toBe('admitted');
    expect(rpcB.stats('A')!.admission).toBe('admitted');
  });

  it('repeats a challenge whose proof was lost because the peer had not yet seen this node join', async () => {
    const [a, b] = [fakeLink('A'), fakeLink('B')];
    const rpcA = rpcOn(a, { admission: { secret: 'sesame' } });
    const rpcB = rpcOn(b, { admission: { secret: 'sesame' } });
    a.connectTo(b); // A challenges B at once; B cannot answer until its own link reports A
    await new Promise((resolve) => setTimeout(resolve, 100));
    b.connectTo(a);
    expect(await rpcA.request('B', 'echo', bytesOf(1), { timeoutMs: 8_000 })).toEqual(bytesOf(1));
    expect(await rpcB.request('A', 'echo', bytesOf(2))).toEqual(bytesOf(2));
  }, 10_000);

  it('keeps challenging a peer that does not answer for a long while (a tab starting), and admits it once it answers', async () => {
    // Protocol time runs 100 times faster: a challenge's 2 s attempt is 20 ms here.
    const fast = { ...realClock, monotonic: () => performance.now() * 100, after: (ms: number, fn: () => void) => realClock.after(ms / 100, fn) };
    const [a, b] = [fakeLink('A'), fakeLink('B')];
    let challenges = 0;
    const sent = codec.createStreamDecoder();
    const send = a.send.bind(a);
    a.send = (peerId, bytes, options) => {
      for (const r of sent.push(bytes)) if (r.ok && r.frame.type === 'admission' && !r.frame.isResponse && r.frame.body.kind === 'challenge') challenges += 1;
      return send(peerId, bytes, options);
    };
    const rpcA = rpcOn(a, { admission: { secret: 'sesame' }, clock: fast });
    const rpcB = rpcOn(b, { admission: { secret: 'sesame' }, clock: fast });
    b.stopReading();
    a.connectTo(b);
    b.connectTo(a);
    // Six unanswered attempts: over 13 s of protocol time, past the 10 s that used to refuse it.
    await until(() => challenges >= 6, 'six challenges unanswered');
    expect(rpcA.stats('B')!.admission).toBe('pending');
    b.resumeReading();
    expect(await rpcA.request('B', 'echo', bytesOf(1))).toEqual(bytesOf(1));
    expect(await rpcB.request('A', 'echo', bytesOf(2))).toEqual(bytesOf(2));
    expect(rpcA.stats('B')!.admission).toBe('admitted');
  });

  it('a peer whose channel was replaced on its side only (a switch of transport) is admitted again both ways', async () => {
    const [a, b] = [fakeLink('A'), fakeLink('B')];
    const rpcA = rpcOn(a, { admission: { secret: 'sesame' } });
    const rpcB = rpcOn(b, { admission: { secret: 'sesame' } });
    a.connectTo(b);
    b.connectTo(a);
    expect(await rpcB.request('A', 'echo', bytesOf(1))).toEqual(bytesOf(1));
    // B sees A leave and join again; A sees nothing: its channel to B stays admitted.
    b.leave('A');
    b.connectTo(a);
    expect(await rpcB.request('A', 'echo', bytesOf(2))).toEqual(bytesOf(2));
    expect(await rpcA.request('B', 'echo', bytesOf(3))).toEqual(bytesOf(3));
    expect(rpcB.stats('A')!.admission).toBe('admitted');
  });

  it('refuses a peer with another secret, with a clear error on both sides', async () => {
    const [a, b] = [fakeLink('A'), fakeLink('B')];
    const refusals: string[] = [];
    const onRefused = (peerId: string, error: PeerError) => refusals.push(`${peerId}: ${error.code} ${error.message}`);
    const rpcA = rpcOn(a, { admission: { secret: 'sesame' }, onRefused });
    const rpcB = rpcOn(b, { admission: { secret: 'wrong' }, onRefused });
    a.connectTo(b);
    b.connectTo(a);
    await expect(rpcA.request('B', 'echo', bytesOf(1))).rejects.toMatchObject({ name: 'PeerError', code: 'CLUSTER_AUTHORIZATION_FAILED', peerId: 'B' });
    await expect(rpcB.request('A', 'echo', bytesOf(1))).rejects.toMatchObject({ code: 'CLUSTER_AUTHORIZATION_FAILED', message: expect.stringMatching(/secret/) });
    await until(() => refusals.length >= 2, 'both refused');
    expect(refusals.join('\n')).toMatch(/B: CLUSTER_AUTHORIZATION_FAILED peer B could not prove it knows the cluster secret/);
    expect(refusals.join('\n')).toMatch(/A: CLUSTER_AUTHORIZATION_FAILED peer A (could not prove|refused this node)/);
    expect(rpcA.stats('B')!.admission).toBe('refused');
  });

  it('answers frames from a peer that has not proved the secret with CLUSTER_AUTHORIZATION_FAILED, without running handlers', async () => {
    const [hostile, node] = pair('H', 'N');
    const rpc = createPeerRpc(node, { admission: { secret: 'sesame' } });
    rpcs.push(rpc);
    let ran = 0;
    rpc.handle('echo', (body) => {
      ran += 1;
      return body;
    });
    const answers = answersOf(hostile, 'N');
    await hostile.send('N', rawFrame(1, 7, bytesOf(1)));
    await until(() => answers.some((r) => r.ok && r.frame.requestId === 7), 'answer');
    const refusal = answers.find((r) => r.ok && r.frame.requestId === 7);
    expect(refusal).toMatchObject({ ok: true, frame: { type: 'error', body: { code: 'CLUSTER_AUTHORIZATION_FAILED' } } });
    expect(ran).toBe(0);
    await until(() => answers.some((r) => r.ok && r.frame.type === 'admission'), 'the node challenged it');
  });
});

function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let position = 0;
  for (const part of parts) {
    out.set(part, position);
    position += part.length;
  }
  return out;
}
