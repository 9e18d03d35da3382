// Peer RPC in the worker: requests, responses and one-way messages between this node and its
// peers, as peer frames (FORMATS.md § Peer frame) over the PeerLink's byte streams. Every
// bound is per peer (constants.ts), so a slow, flooding or hostile peer costs a fixed amount
// of memory and work and never stops this node from serving the others. Nothing a peer sends
// throws out of here: a bad frame becomes an error answer, a count, and at worst the end of
// listening to that peer.

import { realClock, type Clock } from '../clock';
import { AbortedError, InvalidArgumentError, LetterboxError, PeerError, TimeoutError } from '../errors';
import { createPeerFrameCodec, PEER_MESSAGE_TYPES, type AdmissionBody, type Frame, type FrameResult, type FrameStreamDecoder, type MessageType, type PeerMessageTypes } from '../protocol';
import {
  RPC_BAD_FRAMES_MAX,
  RPC_COALESCE_BYTES_MAX,
  RPC_FRAMES_PER_SECOND_MAX,
  RPC_HANDLING_MAX,
  RPC_IN_FLIGHT_REQUESTS_MAX,
  RPC_SEND_QUEUE_BYTES_MAX,
  RPC_TIMEOUT_MS,
} from './constants';
import { AdmissionState, createAdmission, type AdmissionChannel } from './admission';
import { PeerWindow } from './flow-control';
import { PeerNotConnectedError, type PeerLink } from './peer-link';

/** Names of the message types a node can send (the error answer is the RPC layer's own). */
export type PeerMessageName = Exclude<keyof PeerMessageTypes & string, 'error' | 'admission' | 'window'>;
/** The body of message type `Name`: a request's and its response's (one codec per type, as Kafka's api key names both). */
export type PeerMessageBody<Name extends PeerMessageName> = PeerMessageTypes[Name] extends MessageType<infer Body> ? Body : never;

/** What a handler learns about a request besides its body. */
export interface PeerRequestContext {
  peerId: string;
  /** Body version the peer used; the answer is encoded in the same one. */
  version: number;
  /** Aborted when the peer leaves or the RPC layer closes: the answer would go nowhere. */
  signal: AbortSignal;
  /** False for a one-way message: what the handler returns is dropped. */
  wantsAnswer: boolean;
}

export type PeerHandler<Name extends PeerMessageName> = (
  body: PeerMessageBody<Name>,
  context: PeerRequestContext,
) => PeerMessageBody<Name> | Promise<PeerMessageBody<Name>>;

export interface PeerRequestOptions {
  /** Default {@link RPC_TIMEOUT_MS}; covers waiting for a slot, for queue room and for the answer. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Body version; default the newest this node speaks. */
  version?: number;
  /** Told of this request's life (requests only; never for one-way messages): for instrumentation, as KafkaJS reports a request to a broker. */
  observe?: (observation: PeerRequestObservation) => void;
}

/**
 * What an observed request reports. Times are the clock's wall time (`now()`); a request is
 * sent once its frame is queued for the peer (after waiting for admission, one of the peer's
 * {@link RPC_IN_FLIGHT_REQUESTS_MAX} slots and queue room).
 */
export type PeerRequestObservation =
  /** The peer's requests waiting to be sent changed (`queueSize` of them now): this one joined or left them. */
  | { kind: 'queue'; queueSize: number }
  /** The peer answered (an error answer too). `bytes`: the request's frame. */
  | { kind: 'answered'; requestId: number; version: number; bytes: number; createdAt: number; sentAt: number; answeredAt: number }
  /** Its timeout passed before an answer; `sentAt` undefined and `requestId` 0 when it timed out waiting to be sent. */
  | { kind: 'timedOut'; requestId: number; version: number; createdAt: number; sentAt: number | undefined; timedOutAt: number };

/** Counters of one peer's channel, for tests, metrics and the demo. */
export interface PeerRpcStats {
  /** Requests to the peer awaiting an answer. */
  inFlightRequests: number;
  /** Requests to the peer waiting to be sent: for admission, an in-flight slot or queue room. */
  queuedRequests: number;
  /** The peer's requests being handled here. */
  handling: number;
  /** Encoded frames queued for the peer, not yet taken by the bridge. */
  queuedBytes: number;
  /** Bytes sent to the peer that its node has not yet said it consumed (at most about PEER_WINDOW_BYTES). */
  unackedBytes: number;
  /** Bytes of an incomplete frame from the peer held by the decoder. */
  bufferedBytes: number;
  /** Frames from the peer that could not be accepted. */
  badFrames: number;
  /** The peer's frames refused for going over its rate or handling limit. */
  throttled: number;
  /** Answers to the peer dropped because its queue was full. */
  answersDropped: number;
  /** `trySend` messages dropped: the queue was full, or the peer not (yet) admitted. */
  sendsDropped: number;
  /** Whether this node stopped reading the peer (too many corrupt frames) until it reconnects. */
  cutOff: boolean;
  /** `admitted` once both peers proved the cluster secret to each other (always, without admission). */
  admission: 'pending' | 'admitted' | 'refused';
}

export interface PeerRpc {
  /**
   * Sends a request and resolves with the peer's answer. Rejects with TimeoutError, AbortedError,
   * PeerNotConnectedError (not connected, or left before answering) or PeerError (the peer's error answer).
   */
  request<Name extends PeerMessageName>(peerId: string, type: Name, body: PeerMessageBody<Name>, options?: PeerRequestOptions): Promise<PeerMessageBody<Name>>;
  /** Sends a one-way message; resolves once it is queued for the peer (waiting for room, within the timeout). */
  notify<Name extends PeerMessageName>(peerId: string, type: Name, body: PeerMessageBody<Name>, options?: PeerRequestOptions): Promise<void>;
  /**
   * Queues a one-way message if it can go now — the peer is connected and admitted and its
   * queue has room — and returns true; otherwise drops it and returns false. Never waits:
   * for senders that retry by themselves (raft), for whom a late message is worse than none.
   * @example if (!rpc.trySend(peerId, 'echo', bytes)) dropped++;
   */
  trySend<Name extends PeerMessageName>(peerId: string, type: Name, body: PeerMessageBody<Name>, options?: { version?: number }): boolean;
  /** Answers requests (and takes one-way messages) of `type`; returns a function that unregisters it. One handler per type. */
  handle<Name extends PeerMessageName>(type: Name, handler: PeerHandler<Name>): () => void;
  /** Counters of the channel to `peerId`, or undefined when there is none. */
  stats(peerId: string): PeerRpcStats | undefined;
  /** Fails everything pending with AbortedError and stops listening to the link. */
  close(): void;
}

export interface PeerRpcInit {
  /** Largest frame sent or accepted; default the codec's (8 MiB). */
  maxFrameBytes?: number;
  /** Time and timers: the rate limit, deadlines, admission retries; default the real clock. */
  clock?: Clock;
  /**
   * Require every peer to prove it knows the cluster's `secret` (an HMAC challenge-response
   * bound to both peer ids, FORMATS.md § Admission) before any of its frames is accepted or
   * any is sent to it. Peers with another secret are refused on both sides.
   */
  admission?: { secret: string };
  /** Told when a peer is refused admission, by this node or by the peer. */
  onRefused?(peerId: string, error: PeerError): void;
}

/** Request id 0 marks a one-way message: nothing answers it (FORMATS.md § Peer frame). */
const ONE_WAY_REQUEST_ID = 0;
const MAX_REQUEST_ID = 0xffffffff;

interface Pending {
  type: PeerMessageName;
  /** Called when the peer's answer (or error answer) arrives, before it settles the request. */
  onAnswer(): void;
  resolve(body: unknown): void;
  reject(error: unknown): void;
}

interface Channel {
  decoder: FrameStreamDecoder<PeerMessageTypes>;
  queue: Uint8Array[];
  queuedBytes: number;
  /** `window` frames for the peer: sent ahead of the queue and never held back by the window (that could deadlock two full windows). */
  control: Uint8Array[];
  window: PeerWindow;
  pumping: boolean;
  /** Senders waiting for queue room, or for a request slot; woken together, each re-checks. */
  waiting: Set<() => void>;
  pending: Map<number, Pending>;
  nextRequestId: number;
  handling: number;
  /** Aborted when the channel closes: stops its handlers and waiters. */
  closed: AbortController;
  tokens: number;
  tokensAt: number;
  badFrames: number;
  throttled: number;
  answersDropped: number;
  sendsDropped: number;
  cutOff: boolean;
  admission: AdmissionState;
}

/**
 * Peer RPC over `link`: one channel per peer with a frame decoder, request ids, bounded queues and limits.
 * @example const rpc = createPeerRpc(link); rpc.handle('echo', (body) => body); const back = await rpc.request(peerId, 'echo', bytes, { timeoutMs: 2_000 });
 */
export function createPeerRpc(link: PeerLink, init: PeerRpcInit = {}): PeerRpc {
  const codec = createPeerFrameCodec(init.maxFrameBytes === undefined ? {} : { maxFrameBytes: init.maxFrameBytes });
  const clock = init.clock ?? realClock;
  const now = () => clock.monotonic();
  const channels = new Map<string, Channel>();
  const handlers = new Map<string, PeerHandler<any>>();
  const closedAll = new AbortController();

  const open = (): Channel => ({
    decoder: codec.createStreamDecoder(),
    queue: [],
    queuedBytes: 0,
    control: [],
    window: new PeerWindow(),
    pumping: false,
    waiting: new Set(),
    pending: new Map(),
    nextRequestId: 1,
    handling: 0,
    closed: new AbortController(),
    tokens: RPC_FRAMES_PER_SECOND_MAX,
    tokensAt: now(),
    badFrames: 0,
    throttled: 0,
    answersDropped: 0,
    sendsDropped: 0,
    cutOff: false,
    admission: new AdmissionState(init.admission !== undefined),
  });

  /** The channel to a peer the link is connected to, opened on first use. */
  const channelTo = (peerId: string): Channel => {
    if (closedAll.signal.aborted) throw new AbortedError('peer RPC is closed');
    let channel = channels.get(peerId);
    if (channel === undefined) {
      if (!link.peers().some((peer) => peer.peerId === peerId)) throw new PeerNotConnectedError(peerId);
      channel = open();
      channels.set(peerId, channel);
    }
    return channel;
  };

  const wake = (channel: Channel) => {
    for (const resume of [...channel.waiting]) resume();
  };

  /** Waits until woken or `signal` aborts; the caller re-checks its condition either way. */
  const waitOn = (channel: Channel, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const resume = () => {
        channel.waiting.delete(resume);
        signal.removeEventListener('abort', resume);
        resolve();
      };
      channel.waiting.add(resume);
      signal.addEventListener('abort', resume, { once: true });
    });

  const closeChannel = (peerId: string, channel: Channel, error: Error) => {
    if (channels.get(peerId) === channel) channels.delete(peerId);
    channel.closed.abort(error);
    channel.queue = [];
    channel.queuedBytes = 0;
    channel.control = [];
    for (const pending of channel.pending.values()) pending.reject(error);
    channel.pending.clear();
    wake(channel);
  };

  /**
   * Hands queued frames to the link, small ones joined into one chunk, until the queue is
   * empty; waits while the peer's window is used up (a chunk larger than what is left goes once
   * less than PEER_WINDOW_UPDATE_BYTES is unacknowledged).
   */
  const pump = async (peerId: string, channel: Channel) => {
    if (channel.pumping) return;
    channel.pumping = true;
    try {
      while ((channel.queue.length > 0 || channel.control.length > 0) && !channel.closed.signal.aborted) {
        if (channel.control.length > 0) {
          const frames = channel.control.splice(0);
          const bytes = frames.reduce((sum, frame) => sum + frame.length, 0);
          channel.window.sent(bytes);
          await link.send(peerId, concat(frames, bytes), { signal: channel.closed.signal });
          continue;
        }
        let count = 0;
        let bytes = 0;
        while (count < channel.queue.length && (count === 0 || bytes + channel.queue[count]!.length <= RPC_COALESCE_BYTES_MAX)) {
          bytes += channel.queue[count]!.length;
          count += 1;
        }
        if (!channel.window.allows(bytes)) {
          await waitOn(channel, channel.closed.signal);
          continue;
        }
        const frames = channel.queue.splice(0, count);
        channel.window.sent(bytes);
        await link.send(peerId, count === 1 ? frames[0]! : concat(frames, bytes), { signal: channel.closed.signal });
        channel.queuedBytes -= bytes;
        wake(channel);
      }
    } catch (error) {
      // The link fails a send only when the peer is gone (or the channel closed meanwhile).
      closeChannel(peerId, channel, error instanceof Error ? error : new PeerNotConnectedError(peerId));
    } finally {
      channel.pumping = false;
    }
  };

  /** Queues a frame, waiting for room; one larger than the whole queue goes alone into an empty one. */
  const enqueue = async (peerId: string, frame: Uint8Array, signal: AbortSignal) => {
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const channel = channelTo(peerId);
      if (channel.queuedBytes === 0 || channel.queuedBytes + frame.length <= RPC_SEND_QUEUE_BYTES_MAX) {
        channel.queue.push(frame);
        channel.queuedBytes += frame.length;
        void pump(peerId, channel);
        return;
      }
      await waitOn(channel, signal);
    }
  };

  /** Queues a frame if there is room now (one larger than the whole queue goes alone into an empty one); false when it must be dropped. */
  const offer = (peerId: string, channel: Channel, frame: Uint8Array): boolean => {
    if (channel.closed.signal.aborted) return false;
    if (channel.queuedBytes > 0 && channel.queuedBytes + frame.length > RPC_SEND_QUEUE_BYTES_MAX) return false;
    channel.queue.push(frame);
    channel.queuedBytes += frame.length;
    void pump(peerId, channel);
    return true;
  };

  /** Queues an answer if there is room; otherwise it is dropped and its requester times out (never wait on a peer that does not read). */
  const answer = (peerId: string, channel: Channel, frame: Uint8Array) => {
    if (!offer(peerId, channel, frame) && !channel.closed.signal.aborted) channel.answersDropped += 1;
  };

  const answerError = (peerId: string, channel: Channel, requestId: number | undefined, error: LetterboxError) => {
    if (requestId === undefined || requestId === ONE_WAY_REQUEST_ID) return;
    answer(peerId, channel, codec.encodeErrorAnswer(requestId, error));
  };

  /** Takes one token of the peer's frame rate; false when it has none left. */
  const admitFrame = (channel: Channel): boolean => {
    const at = now();
    channel.tokens = Math.min(RPC_FRAMES_PER_SECOND_MAX, channel.tokens + ((at - channel.tokensAt) * RPC_FRAMES_PER_SECOND_MAX) / 1000);
    channel.tokensAt = at;
    if (channel.tokens < 1) return false;
    channel.tokens -= 1;
    return true;
  };

  const onResponse = (peerId: string, channel: Channel, frame: Frame<PeerMessageTypes>) => {
    const pending = channel.pending.get(frame.requestId);
    if (pending === undefined) return; // an answer after its request timed out or was cancelled
    channel.pending.delete(frame.requestId);
    wake(channel);
    pending.onAnswer();
    if (frame.type === 'error') {
      const { code, message, retriable } = frame.body;
      pending.reject(new PeerError(peerId, code, `peer ${peerId}: ${message}`, { retriable }));
    } else if (frame.type !== pending.type) {
      pending.reject(new PeerError(peerId, 'CORRUPT_MESSAGE', `peer ${peerId} answered a ${pending.type} request with ${(frame as { type: string }).type}`));
    } else {
      pending.resolve(frame.body);
    }
  };

  const onRequest = (peerId: string, channel: Channel, frame: Frame<PeerMessageTypes>) => {
    const wantsAnswer = frame.requestId !== ONE_WAY_REQUEST_ID;
    if (frame.type === 'admission') {
      if (admission === undefined) return answerError(peerId, channel, frame.requestId, new PeerError(peerId, 'INVALID_REQUEST', 'this node runs without admission'));
      return admission.receive(peerId, admissionChannel(peerId, channel), frame.requestId, frame.body);
    }
    if (!channel.admission.verified) {
      return answerError(peerId, channel, frame.requestId, new PeerError(peerId, 'CLUSTER_AUTHORIZATION_FAILED', 'not admitted: this node has not checked your proof of the cluster secret'));
    }
    if (frame.type === 'error') {
      channel.badFrames += 1;
      return answerError(peerId, channel, frame.requestId, new PeerError(peerId, 'INVALID_REQUEST', 'an error answer must be a response'));
    }
    const handler = handlers.get(frame.type);
    if (handler === undefined) {
      // A known type this node serves no handler for yet: a broker just starting (an adopted
      // slot's, say) registers its handlers after its link is up, so the caller may try again.
      return answerError(peerId, channel, frame.requestId, new PeerError(peerId, 'BROKER_NOT_AVAILABLE', `this node does not serve ${frame.type} requests (yet)`, { retriable: true }));
    }
    if (channel.handling >= RPC_HANDLING_MAX) {
      channel.throttled += 1;
      return answerError(peerId, channel, frame.requestId, throttled(`over ${RPC_HANDLING_MAX} requests in progress`));
    }
    const context: PeerRequestContext = { peerId, version: frame.version, signal: channel.closed.signal, wantsAnswer };
    const reply = (body: unknown) => {
      if (!wantsAnswer) return;
      try {
        answer(peerId, channel, codec.encode({ type: frame.type, version: frame.version, requestId: frame.requestId, isResponse: true, body } as Frame<PeerMessageTypes>));
      } catch (error) {
        answerError(peerId, channel, frame.requestId, asLetterboxError(peerId, error)); // e.g. an answer over the frame limit
      }
    };
    const fail = (error: unknown) => answerError(peerId, channel, frame.requestId, asLetterboxError(peerId, error));
    let outcome: unknown;
    try {
      outcome = handler(frame.body, context);
    } catch (error) {
      return fail(error);
    }
    // A synchronous answer holds nothing; only a pending one takes one of the peer's handling slots.
    if (!(outcome instanceof Promise)) return reply(outcome);
    channel.handling += 1;
    void outcome.then(reply, fail).finally(() => {
      channel.handling -= 1;
    });
  };

  /** Tells the peer this node consumed `bytes` more of its stream, so it may send as much more. */
  const grant = (peerId: string, channel: Channel, bytes: number) => {
    channel.control.push(codec.encode({ type: 'window', version: 0, requestId: ONE_WAY_REQUEST_ID, isResponse: false, body: { bytes } }));
    wake(channel); // a pump waiting for the peer's window sends it first
    void pump(peerId, channel);
  };

  const onResult = (peerId: string, channel: Channel, result: FrameResult<PeerMessageTypes>) => {
    // The peer's window: O(1), so neither admission nor the frame rate holds it back (a lost one would stall this node's sends for good).
    if (result.ok && result.frame.type === 'window' && !result.frame.isResponse) {
      channel.window.acknowledged(result.frame.body.bytes);
      wake(channel);
      return;
    }
    // A corrupt frame counts against its peer whatever the rate (so how fast it came, or how
    // busy this node was, never decides whether it is cut off). Unknown types and versions are
    // what a newer peer sends: answered, not held against it.
    if (!result.ok && result.error.code !== 'INVALID_REQUEST' && result.error.code !== 'UNSUPPORTED_VERSION') {
      channel.badFrames += 1;
      if (channel.badFrames > RPC_BAD_FRAMES_MAX) {
        answerError(peerId, channel, result.requestId, result.error);
        return cutOff(peerId, channel);
      }
    }
    if (!admitFrame(channel)) {
      channel.throttled += 1;
      const requestId = result.ok ? (result.frame.isResponse ? undefined : result.frame.requestId) : result.requestId;
      return answerError(peerId, channel, requestId, throttled(`over ${RPC_FRAMES_PER_SECOND_MAX} frames per second`));
    }
    if (!result.ok) return answerError(peerId, channel, result.requestId, result.error);
    if (result.frame.isResponse) onResponse(peerId, channel, result.frame);
    else onRequest(peerId, channel, result.frame);
  };

  /** Stops reading a peer that keeps sending corrupt frames: its bytes are dropped until it reconnects. */
  const cutOff = (peerId: string, channel: Channel) => {
    channel.cutOff = true;
    channel.decoder = codec.createStreamDecoder(); // releases a partial frame
    const error = new PeerError(peerId, 'CORRUPT_MESSAGE', `peer ${peerId} sent over ${RPC_BAD_FRAMES_MAX} corrupt frames; not reading it until it reconnects`);
    for (const pending of channel.pending.values()) pending.reject(error);
    channel.pending.clear();
    wake(channel);
  };

  /** Stops talking to a peer that failed admission (or refused this node); tells the caller's listener. */
  const refuse = (peerId: string, channel: Channel, error: PeerError) => {
    if (channel.admission.refusal !== undefined || channel.closed.signal.aborted) return;
    channel.admission.refusal = error;
    for (const pending of channel.pending.values()) if (pending.type !== ('admission' as string)) pending.reject(error);
    wake(channel);
    init.onRefused?.(peerId, error);
  };

  /** The handshake's view of a peer's channel. */
  const admissionChannel = (peerId: string, channel: Channel): AdmissionChannel => ({
    state: channel.admission,
    answer: (requestId, body) => answer(peerId, channel, codec.encode({ type: 'admission', version: 0, requestId, isResponse: true, body })),
    changed: () => wake(channel),
    refuse: (error) => refuse(peerId, channel, error),
  });

  const admission =
    init.admission === undefined
      ? undefined
      : createAdmission(init.admission.secret, {
          clock,
          closed: closedAll.signal,
          localPeerId: () => link.peerId ?? '',
          isConnected: (peerId) => link.peers().some((peer) => peer.peerId === peerId),
          channel(peerId) {
            const channel = channels.get(peerId);
            return channel === undefined ? undefined : admissionChannel(peerId, channel);
          },
          request: (peerId, body, timeoutMs) => send(peerId, 'admission', body, { timeoutMs }, false) as Promise<AdmissionBody>,
          notify: (peerId, body) => sendOneWay(peerId, 'admission', body, {}, false),
        });

  const offJoined = link.on('joined', ({ peerId }) => admission?.start(peerId));
  const offData = link.on('data', ({ peerId, bytes }) => {
    let channel = channels.get(peerId);
    if (channel === undefined) {
      channel = open();
      channels.set(peerId, channel);
    }
    if (channel.cutOff) return;
    for (const result of channel.decoder.push(bytes)) {
      onResult(peerId, channel, result);
      if (channel.cutOff) return;
    }
    const granted = channel.window.consumed(bytes.length);
    if (granted > 0 && !channel.closed.signal.aborted) grant(peerId, channel, granted);
  });
  const offLeft = link.on('left', ({ peerId, reason }) => {
    const channel = channels.get(peerId);
    if (channel !== undefined) closeChannel(peerId, channel, new PeerNotConnectedError(peerId, `peer ${peerId} left (${reason})`));
  });

  /** What aborts each live deadline when this RPC closes: a set, not a listener each on one signal (a node has hundreds of requests in flight). */
  const deadlines = new Set<() => void>();
  /** A signal that aborts with TimeoutError after `timeoutMs`, or AbortedError when `signal` does (or this RPC closes). */
  const deadline = (what: string, timeoutMs: number, signal: AbortSignal | undefined) => {
    const controller = new AbortController();
    const cancelTimer = clock.after(timeoutMs, () => controller.abort(new TimeoutError(`${what} got no answer within ${timeoutMs} ms`)));
    const onAbort = () => controller.abort(new AbortedError(`${what} was cancelled`, { cause: signal?.reason }));
    if (signal?.aborted === true) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const onClose = () => controller.abort(new AbortedError('peer RPC is closed'));
    deadlines.add(onClose);
    return {
      signal: controller.signal,
      dispose() {
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
        deadlines.delete(onClose);
      },
    };
  };

  const newestVersion = (type: string) => Math.max(...PEER_MESSAGE_TYPES[type as keyof typeof PEER_MESSAGE_TYPES].versions);

  /** Waits until frames may go to the peer: admitted both ways (`gated`), and fewer than the in-flight limit of requests when `request`. */
  const readyChannel = async (peerId: string, signal: AbortSignal, gated: boolean, request: boolean): Promise<Channel> => {
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const channel = channelTo(peerId);
      if (channel.cutOff) throw new PeerError(peerId, 'CORRUPT_MESSAGE', `not talking to peer ${peerId}: it sent corrupt frames`);
      if (gated && channel.admission.refusal !== undefined) throw channel.admission.refusal;
      const admitted = !gated || channel.admission.status === 'admitted';
      if (admitted && (!request || channel.pending.size < RPC_IN_FLIGHT_REQUESTS_MAX)) return channel;
      await waitOn(channel, signal);
    }
  };

  /** Requests per peer waiting to be sent (admission, an in-flight slot, queue room), by peer id; absent when none. */
  const waitingToSend = new Map<string, number>();
  const countWaiting = (peerId: string, delta: 1 | -1): number => {
    const count = (waitingToSend.get(peerId) ?? 0) + delta;
    if (count === 0) waitingToSend.delete(peerId);
    else waitingToSend.set(peerId, count);
    return count;
  };

  const send = async (peerId: string, type: string, body: unknown, options: PeerRequestOptions, gated: boolean): Promise<unknown> => {
    const { signal, dispose } = deadline(`${type} request to ${peerId}`, options.timeoutMs ?? RPC_TIMEOUT_MS, options.signal);
    const { observe } = options;
    const version = options.version ?? newestVersion(type);
    const createdAt = observe === undefined ? 0 : clock.now();
    let channel: Channel | undefined;
    let requestId: number | undefined;
    let waiting = true;
    const sent = () => {
      waiting = false;
      const queueSize = countWaiting(peerId, -1);
      observe?.({ kind: 'queue', queueSize });
    };
    const queueSize = countWaiting(peerId, 1);
    observe?.({ kind: 'queue', queueSize });
    let sentAt: number | undefined;
    let answeredAt: number | undefined;
    let frameBytes = 0;
    try {
      // Checked again after the wait: other requests may have taken the free slots meanwhile.
      do channel = await readyChannel(peerId, signal, gated, true);
      while (channel.pending.size >= RPC_IN_FLIGHT_REQUESTS_MAX);
      requestId = takeRequestId(channel);
      const frame = codec.encode({ type, version, requestId, isResponse: false, body } as Frame<PeerMessageTypes>);
      frameBytes = frame.length;
      const onAnswer = observe === undefined ? () => undefined : () => (answeredAt = clock.now());
      const answered = new Promise<unknown>((resolve, reject) => {
        channel!.pending.set(requestId!, { type: type as PeerMessageName, onAnswer, resolve, reject });
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      answered.catch(() => undefined); // it may fail while the frame still waits for queue room; awaited below
      await enqueue(peerId, frame, signal);
      sent();
      if (observe !== undefined) sentAt = clock.now();
      return await answered;
    } catch (error) {
      if (observe !== undefined && answeredAt === undefined && error instanceof TimeoutError && error === signal.reason) {
        observe({ kind: 'timedOut', requestId: sentAt === undefined ? ONE_WAY_REQUEST_ID : requestId!, version, createdAt, sentAt, timedOutAt: clock.now() });
      }
      throw error;
    } finally {
      if (waiting) sent();
      if (observe !== undefined && answeredAt !== undefined && sentAt !== undefined) observe({ kind: 'answered', requestId: requestId!, version, bytes: frameBytes, createdAt, sentAt, answeredAt });
      dispose();
      if (channel !== undefined && requestId !== undefined && channel.pending.delete(requestId)) wake(channel);
    }
  };

  const sendOneWay = async (peerId: string, type: string, body: unknown, options: PeerRequestOptions, gated: boolean): Promise<void> => {
    const { signal, dispose } = deadline(`${type} message to ${peerId}`, options.timeoutMs ?? RPC_TIMEOUT_MS, options.signal);
    try {
      await readyChannel(peerId, signal, gated, false);
      const frame = codec.encode({ type, version: options.version ?? newestVersion(type), requestId: ONE_WAY_REQUEST_ID, isResponse: false, body } as Frame<PeerMessageTypes>);
      await enqueue(peerId, frame, signal);
    } finally {
      dispose();
    }
  };

  // Peers connected before this layer started are challenged now; later ones when they join.
  for (const peer of link.peers()) admission?.start(peer.peerId);

  return {
    request: (peerId, type, body, options = {}) => send(peerId, type, body, options, true) as Promise<PeerMessageBody<typeof type>>,
    notify: (peerId, type, body, options = {}) => sendOneWay(peerId, type, body, options, true),

    trySend(peerId, type, body, options = {}) {
      let channel: Channel;
      try {
        channel = channelTo(peerId);
      } catch {
        return false; // not connected, or this RPC is closed
      }
      if (channel.cutOff || channel.admission.status !== 'admitted') {
        channel.sendsDropped += 1;
        return false;
      }
      const frame = codec.encode({ type, version: options.version ?? newestVersion(type), requestId: ONE_WAY_REQUEST_ID, isResponse: false, body } as Frame<PeerMessageTypes>);
      if (offer(peerId, channel, frame)) return true;
      channel.sendsDropped += 1;
      return false;
    },

    handle(type, handler) {
      if (handlers.has(type)) throw new InvalidArgumentError(`a handler for ${type} is already registered`);
      handlers.set(type, handler);
      return () => {
        if (handlers.get(type) === handler) handlers.delete(type);
      };
    },

    stats(peerId) {
      const channel = channels.get(peerId);
      if (channel === undefined) return undefined;
      return {
        inFlightRequests: channel.pending.size,
        queuedRequests: waitingToSend.get(peerId) ?? 0,
        handling: channel.handling,
        queuedBytes: channel.queuedBytes,
        unackedBytes: channel.window.unackedBytes,
        bufferedBytes: channel.decoder.bufferedBytes,
        badFrames: channel.badFrames,
        throttled: channel.throttled,
        answersDropped: channel.answersDropped,
        sendsDropped: channel.sendsDropped,
        cutOff: channel.cutOff,
        admission: channel.admission.status,
      };
    },

    close() {
      offJoined();
      offData();
      offLeft();
      closedAll.abort();
      for (const abort of [...deadlines]) abort();
      for (const [peerId, channel] of channels) closeChannel(peerId, channel, new AbortedError('peer RPC is closed'));
    },
  };
}

/** The next free request id of a channel: 1 to 2^32 − 1, wrapping, skipping ids still awaiting answers. */
function takeRequestId(channel: Channel): number {
  for (;;) {
    const id = channel.nextRequestId;
    channel.nextRequestId = id === MAX_REQUEST_ID ? 1 : id + 1;
    if (!channel.pending.has(id)) return id;
  }
}

function concat(parts: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let position = 0;
  for (const part of parts) {
    out.set(part, position);
    position += part.length;
  }
  return out;
}

function throttled(why: string): PeerError {
  return new PeerError('', 'THROTTLING_QUOTA_EXCEEDED', `throttled: ${why}`, { retriable: true });
}

/** What a failed handler answers: its own code when it is ours, else Kafka's catch-all. */
function asLetterboxError(peerId: string, error: unknown): LetterboxError {
  if (error instanceof LetterboxError) return error;
  return new PeerError(peerId, 'UNKNOWN_SERVER_ERROR', `handler failed: ${String((error as Error)?.message ?? error)}`);
}
