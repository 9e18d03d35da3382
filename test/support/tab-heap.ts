import type { BrowserContext, CDPSession, Page } from '@playwright/test';

/** Live JS memory of a tab, after a forced garbage collection: its page's and its (first) dedicated worker's. */
export interface TabHeap {
  /** JS heap plus ArrayBuffer backing stores (where a broker's bytes live), in bytes. */
  pageBytes: number;
  workerBytes: number;
}

interface HeapUsage {
  usedSize: number;
  backingStorageSize?: number;
}

/**
 * Measures a tab's live memory over the DevTools protocol: Playwright opens CDP sessions on
 * pages only, so the worker is reached through the page's session (attached non-flattened,
 * its commands wrapped in Target.sendMessageToTarget).
 * @example const heap = await tabHeap(context, page); const { workerBytes } = await heap();
 */
export async function tabHeap(context: BrowserContext, page: Page, timeoutMs = 10_000): Promise<() => Promise<TabHeap>> {
  const cdp: CDPSession = await context.newCDPSession(page);
  const workerSession = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dedicated worker attached within ${timeoutMs} ms`)), timeoutMs);
    cdp.on('Target.attachedToTarget', (event) => {
      if (event.targetInfo.type !== 'worker') return;
      clearTimeout(timer);
      resolve(event.sessionId);
    });
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  const sessionId = await workerSession;
  let lastId = 0;
  const answers = new Map<number, (result: unknown) => void>();
  cdp.on('Target.receivedMessageFromTarget', (event) => {
    const message = JSON.parse(event.message) as { id?: number; result?: unknown; error?: unknown };
    if (message.id !== undefined) answers.get(message.id)?.(message.result ?? message.error);
  });
  const inWorker = (method: string) =>
    new Promise<unknown>((resolve, reject) => {
      const id = ++lastId;
      const timer = setTimeout(() => reject(new Error(`worker did not answer ${method} within ${timeoutMs} ms`)), timeoutMs);
      answers.set(id, (result) => {
        clearTimeout(timer);
        answers.delete(id);
        resolve(result);
      });
      void cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method }) });
    });
  const live = (usage: HeapUsage) => usage.usedSize + (usage.backingStorageSize ?? 0);
  return async () => {
    await Promise.all([cdp.send('HeapProfiler.collectGarbage'), inWorker('HeapProfiler.collectGarbage')]);
    const [page, worker] = await Promise.all([cdp.send('Runtime.getHeapUsage'), inWorker('Runtime.getHeapUsage')]);
    return { pageBytes: live(page as HeapUsage), workerBytes: live(worker as HeapUsage) };
  };
}
