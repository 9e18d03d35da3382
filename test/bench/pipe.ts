import type { BenchPipe } from './types';

/**
 * The next message of `type` from the peer page (others are skipped), within `timeoutMs`.
 * @example const { peerId } = await receiveOfType<PipeMessage, 'ready'>(context.peer!, 'ready', 30_000);
 */
export async function receiveOfType<M extends { type: string }, T extends M['type']>(pipe: BenchPipe, type: T, timeoutMs: number): Promise<Extract<M, { type: T }>> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the peer page sent no ${type} within ${timeoutMs} ms`)), giveUpAt - Date.now()));
    const message = (await Promise.race([pipe.receive(), timeout])) as M;
    if (message.type === type) return message as Extract<M, { type: T }>;
  }
}

/**
 * Playwright reports only an error's name from the page: this keeps its code and message.
 * @example await letterbox.probePeer(peerId, options).catch((error: unknown) => { throw readable(error); });
 */
export function readable(error: unknown): Error {
  const { name, code, message } = error as { name?: string; code?: string; message?: string };
  return new Error(`${name} ${code ?? ''}: ${message}`);
}
