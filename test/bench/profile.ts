import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, CDPSession, Page } from '@playwright/test';

// `npm run bench -- … --profile DIR`: V8 CPU profiles (.cpuprofile, open in Chromium's DevTools
// Performance panel) of every page of the bench's browser and of each page's workers, taken
// over a case's runs after the first (the first sets a case's cluster up). Workers are reached
// through the page's DevTools session (Target.setAutoAttach, messages relayed by the page's
// session) because Playwright opens sessions on pages only.

/** Microseconds between samples: fine enough for a few-millisecond round trip. */
const SAMPLING_INTERVAL_US = 100;

interface Target {
  name: string;
  send(method: string, params?: object): Promise<unknown>;
}

interface Profiler {
  stop(dir: string, prefix: string): Promise<void>;
}

/** A profiler on `page` and its dedicated workers; `stop` writes one file per thread into `dir`. */
async function profilePage(context: BrowserContext, page: Page, name: string): Promise<Profiler> {
  const session: CDPSession = await context.newCDPSession(page);
  const pending = new Map<string, (message: { result?: unknown; error?: { message: string } }) => void>();
  let nextId = 0;
  const workers: Target[] = [];
  session.on('Target.receivedMessageFromTarget', ({ sessionId, message }: { sessionId: string; message: string }) => {
    const parsed = JSON.parse(message) as { id?: number; result?: unknown; error?: { message: string } };
    if (parsed.id !== undefined) pending.get(`${sessionId}/${parsed.id}`)?.(parsed);
  });
  const attached = new Promise<void>((resolve) => {
    session.on('Target.attachedToTarget', ({ sessionId, targetInfo }: { sessionId: string; targetInfo: { type: string; url: string } }) => {
      if (targetInfo.type !== 'worker') return;
      workers.push({
        name: `${name}-worker${workers.length}`,
        send: (method, params = {}) =>
          new Promise((done, fail) => {
            const id = nextId++;
            pending.set(`${sessionId}/${id}`, (m) => (m.error === undefined ? done(m.result) : fail(new Error(`${method}: ${m.error.message}`))));
            void session.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) });
          }),
      });
      resolve();
    });
  });
  await session.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  // A page without workers attaches nothing; a page with one reports it at once.
  await Promise.race([attached, new Promise((resolve) => setTimeout(resolve, 500))]);
  const threads: Target[] = [{ name, send: (method, params) => session.send(method as 'Profiler.start', params) }, ...workers];
  for (const thread of threads) {
    await thread.send('Profiler.enable');
    await thread.send('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
    await thread.send('Profiler.start');
  }
  return {
    async stop(dir, prefix) {
      for (const thread of threads) {
        const { profile } = (await thread.send('Profiler.stop')) as { profile: unknown };
        await writeFile(join(dir, `${prefix}-${thread.name}.cpuprofile`), JSON.stringify(profile));
      }
      await session.detach();
    },
  };
}

/** Profiles every open page of `contexts` (and their workers) until `stop`, which writes them to `dir` as `<prefix>-page<n>[-worker<m>].cpuprofile`. */
export async function profileAll(contexts: BrowserContext[]): Promise<Profiler> {
  const profilers: Profiler[] = [];
  let n = 0;
  for (const context of contexts) {
    for (const page of context.pages()) {
      // A page of the previous case may be closing as the next one starts: nothing to profile there.
      try {
        profilers.push(await profilePage(context, page, `page${n++}`));
      } catch (error) {
        if (!page.isClosed()) throw error;
      }
    }
  }
  return {
    async stop(dir, prefix) {
      for (const profiler of profilers) await profiler.stop(dir, prefix);
    },
  };
}
