import { releaseProxy, transfer, wrap, type Remote } from 'comlink';
import { AbortedError, NotConnectedError, registerErrorTransfer, TimeoutError, WorkerStartError } from '../errors';
import type { NodeApi, NodeInfo, NodeStartInit } from '../node';
import { startNodeWorker } from './start-worker';

export interface NodeConnection {
  /** The node in the worker; once closed, every call (and every call still waiting) rejects with NotConnectedError. */
  readonly node: Remote<NodeApi>;
  readonly info: NodeInfo;
  close(): Promise<void>;
}

/**
 * `remote` with every call raced against `closed`: a terminated worker never answers, so
 * the calls it leaves waiting are settled here, at once, instead of hanging.
 */
function settledOnClose(remote: Remote<NodeApi>, closed: Promise<never>): Remote<NodeApi> {
  return new Proxy(remote, {
    get(target, property, receiver) {
      const member: unknown = Reflect.get(target, property, receiver);
      if (typeof member !== 'function' || typeof property === 'symbol') return member;
      return (...args: unknown[]) => Promise.race([(member as (...a: unknown[]) => Promise<unknown>)(...args), closed]);
    },
  });
}

/**
 * Starts the node's worker and the node in it, within `timeoutMs`. A worker that fails to
 * load (a CSP without `worker-src blob:`, a bad URL) fails with WorkerStartError.
 */
export async function connectNode(init: NodeStartInit, timeoutMs: number): Promise<NodeConnection> {
  registerErrorTransfer();
  let worker: Worker;
  try {
    worker = startNodeWorker();
  } catch (error) {
    throw new WorkerStartError(`could not create the Letterbox worker: ${String(error)}`, { cause: error });
  }
  const node = wrap<NodeApi>(worker);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onError: ((event: Event) => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    const explain = 'If the page has a Content-Security-Policy, allow `worker-src blob:` (script-tag build) or the script’s origin (ES build).';
    onError = (event: Event) => {
      const detail = event instanceof ErrorEvent && event.message !== '' ? `: ${event.message}` : '';
      reject(new WorkerStartError(`the Letterbox worker failed to load${detail}. ${explain}`));
    };
    worker.addEventListener('error', onError);
    timer = setTimeout(() => reject(new WorkerStartError(`the Letterbox worker did not start within ${timeoutMs} ms. ${explain}`, { retriable: true })), timeoutMs);
  });
  try {
    const info = await Promise.race([node.start(init), failed]);
    let close: (error: NotConnectedError) => void = () => undefined;
    const closed = new Promise<never>((_, reject) => (close = reject));
    closed.catch(() => undefined); // observed by the calls that race it
    return {
      node: settledOnClose(node, closed),
      info,
      async close() {
        close(new NotConnectedError('this Letterbox instance was closed'));
        await node.close().catch(() => undefined);
        node[releaseProxy]();
        worker.terminate();
      },
    };
  } catch (error) {
    worker.terminate();
    throw error;
  } finally {
    clearTimeout(timer);
    if (onError !== undefined) worker.removeEventListener('error', onError);
  }
}

/** Rejects with AbortedError when `signal` aborts; otherwise as `promise` settles. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort?: () => void): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    onAbort?.();
    return Promise.reject(new AbortedError(undefined, { cause: signal.reason }));
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort?.();
      reject(new AbortedError(undefined, { cause: signal.reason }));
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** Rejects with TimeoutError if `promise` has not settled within `timeoutMs`. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not complete within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export { transfer };
