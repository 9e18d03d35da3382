import { realClock, sleep } from '../clock';
import type { BridgePort, PageToWorker, WorkerToPage } from './bridge-messages';
import { BRIDGE_COPY_BYTES_MAX, RECEIVE_BACKLOG_BYTES_MAX, STREAM_WRITE_BUFFER_BYTES_MAX, WRITER_YIELD_BYTES } from './constants';

/** What the bridge needs of a libp2p stream (a structural subset, so tests can fake one). */
export interface WritableStream {
  readonly writeBufferLength: number;
  readonly writableNeedsDrain: boolean;
  send(data: Uint8Array): boolean;
  addEventListener(type: 'drain' | 'close', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'drain' | 'close', listener: () => void): void;
}

/** Bytes of a libp2p message event: a Uint8Array or a Uint8ArrayList (which has `subarray()`). */
export type Chunk = Uint8Array | { subarray(): Uint8Array };

/** The page's end of the frame bridge: moves bytes between peers' libp2p streams and the worker. */
export interface PageBridge {
  /** Tells the worker about connectivity; a `joined` peer's direct channel is transferred with it. */
  report(message: Exclude<PageToWorker, { type: 'data' | 'credit' }>): void;
  /** `peerId`'s outbound stream is open: the worker's sends to it are written there. */
  attach(peerId: string, stream: WritableStream): void;
  /** `peerId` is gone: its queued bytes are dropped (and credited, so the worker's sends do not hang). */
  detach(peerId: string): void;
  /**
   * Bytes that arrived from `peerId`, passed to the worker in a transferred buffer — unless
   * the worker has RECEIVE_BACKLOG_BYTES_MAX of the peer's bytes still unread: then the bytes
   * are dropped and `onDisconnect` is told, to cut off a peer that ignores the window.
   */
  deliver(peerId: string, chunk: Chunk): void;
  close(): void;
}

interface Outbound {
  stream: WritableStream;
  queue: ArrayBuffer[];
  writing: boolean;
  closed: AbortController;
}

/**
 * Lets the page's other tasks run before the writer goes on. A task of the Prioritized Task
 * Scheduling API where it exists: queued behind what is already waiting, like a timer, but
 * not clamped to 4 ms once nested, which capped 64 KiB slices at ~16 MB/s. (A yield, not a wait on
 * time: the page's own real clock where there is no scheduler, as in Node tests.) Not `background`
 * priority: an app that keeps the page busy would starve replication.
 */
const yieldToPage = (): Promise<void> =>
  typeof scheduler === 'undefined' ? sleep(realClock, 0) : scheduler.postTask(() => undefined, { priority: 'user-visible' });

/**
 * Resolves at the stream's next `drain` (or `close`, or when `signal` aborts). Not
 * `stream.onDrain()`: in @libp2p/utils 7.4 it keeps returning the first drain's settled
 * promise, so a writer awaiting it while the channel is full again loops on microtasks,
 * freezes the page and never lets the channel's `bufferedamountlow` (the next drain) run.
 */
const nextDrain = (stream: WritableStream, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      stream.removeEventListener('drain', done);
      stream.removeEventListener('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    stream.addEventListener('drain', done, { once: true });
    stream.addEventListener('close', done, { once: true });
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * The page side of the bridge over `port`. Writes are bounded twice: the worker has at most
 * BRIDGE_WINDOW_BYTES in flight per peer (credit), and the page hands a stream more only
 * while its write buffer is under STREAM_WRITE_BUFFER_BYTES_MAX, yielding to the event loop
 * every WRITER_YIELD_BYTES so that a bulk transfer cannot starve the page.
 * @example const bridge = createPageBridge(port); bridge.attach(peerId, stream);
 */
export function createPageBridge(
  port: BridgePort,
  onError: (error: unknown) => void = () => undefined,
  /** Told to close the connection to `peerId`: it sent past its window, or the worker asked. */
  onDisconnect: (peerId: string, reason: string) => void = () => undefined,
): PageBridge {
  const outbound = new Map<string, Outbound>();
  /** Per peer: bytes delivered to the worker that it has not reported consumed. */
  const unread = new Map<string, number>();
  const post = (message: PageToWorker, transfer: Transferable[] = []) => port.postMessage(message, transfer);
  const credit = (peerId: string, bytes: number) => post({ type: 'credit', peerId, bytes });

  async function write(peerId: string, out: Outbound): Promise<void> {
    if (out.writing) return;
    out.writing = true;
    let sinceYield = 0;
    try {
      while (out.queue.length > 0 && !out.closed.signal.aborted) {
        if (out.stream.writableNeedsDrain) {
          await nextDrain(out.stream, out.closed.signal);
          continue;
        }
        if (out.stream.writeBufferLength >= STREAM_WRITE_BUFFER_BYTES_MAX) {
          await yieldToPage();
          continue;
        }
        const bytes = out.queue.shift()!;
        out.stream.send(new Uint8Array(bytes));
        credit(peerId, bytes.byteLength);
        sinceYield += bytes.byteLength;
        if (sinceYield >= WRITER_YIELD_BYTES) {
          sinceYield = 0;
          await yieldToPage();
        }
      }
    } catch (error) {
      if (!out.closed.signal.aborted) onError(error);
    } finally {
      out.writing = false;
    }
  }

  const onMessage = (event: MessageEvent) => {
    const message = event.data as WorkerToPage;
    if (message.type === 'disconnect') return onDisconnect(message.peerId, message.reason);
    if (message.type === 'consumed') {
      const left = (unread.get(message.peerId) ?? 0) - message.bytes;
      if (left > 0) unread.set(message.peerId, left);
      else unread.delete(message.peerId);
      return;
    }
    const out = outbound.get(message.peerId);
    if (out === undefined) {
      credit(message.peerId, message.bytes.byteLength);
      return;
    }
    out.queue.push(message.bytes);
    void write(message.peerId, out);
  };
  port.addEventListener('message', onMessage);
  port.start();

  const detach = (peerId: string) => {
    unread.delete(peerId); // what the worker still reads of it is no longer held against a new session
    const out = outbound.get(peerId);
    if (out === undefined) return;
    outbound.delete(peerId);
    out.closed.abort();
    const dropped = out.queue.splice(0).reduce((sum, b) => sum + b.byteLength, 0);
    if (dropped > 0) credit(peerId, dropped);
  };

  return {
    report: (message) => post(message, message.type === 'joined' && message.channel !== undefined ? [message.channel as unknown as Transferable] : []),
    attach(peerId, stream) {
      detach(peerId);
      outbound.set(peerId, { stream, queue: [], writing: false, closed: new AbortController() });
    },
    detach,
    deliver(peerId, chunk) {
      const view = chunk instanceof Uint8Array ? chunk : chunk.subarray();
      const backlog = (unread.get(peerId) ?? 0) + view.byteLength;
      if (backlog > RECEIVE_BACKLOG_BYTES_MAX) return onDisconnect(peerId, 'sent past the flow-control window');
      unread.set(peerId, backlog);
      // A copy the page owns, since the view may share its buffer with the transport; a large
      // one is transferred (a memcpy, far cheaper than a structured clone of it).
      const bytes = view.slice().buffer;
      post({ type: 'data', peerId, bytes }, bytes.byteLength < BRIDGE_COPY_BYTES_MAX ? [] : [bytes]);
    },
    close() {
      for (const peerId of [...outbound.keys()]) detach(peerId);
      port.removeEventListener('message', onMessage);
      port.close();
    },
  };
}
