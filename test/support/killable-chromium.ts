import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chromium, type Browser } from '@playwright/test';
import { chromiumArgs, findChromium } from './chromium';

export interface KillableChromium {
  browser: Browser;
  /** PID of the browser process this helper spawned. */
  pid: number;
  /** SIGKILLs that process and its children (a crash, not a shutdown) and waits for it to exit. */
  kill(): Promise<void>;
  /** SIGSTOPs that process and its children (a frozen machine: nothing runs, nothing is closed). */
  pause(): void;
  /** SIGCONTs them after {@link pause}. */
  resume(): void;
}

/** How long Chromium may take to start and print its DevTools URL (a loaded 2-core machine). */
export const LAUNCH_TIMEOUT_MS = 20_000;

/**
 * Starts Chromium on `userDataDir` as a process of our own and attaches over CDP, so that a
 * test can kill it like a crash and relaunch on the same profile (Playwright's persistent
 * context exposes no PID).
 * @example const first = await launchKillableChromium(dir); ...; await first.kill();
 */
export async function launchKillableChromium(userDataDir: string, timeoutMs = LAUNCH_TIMEOUT_MS): Promise<KillableChromium> {
  const child = spawn(
    findChromium(),
    [...chromiumArgs, '--headless', `--user-data-dir=${userDataDir}`, '--remote-debugging-port=0', 'about:blank'],
    // Its own process group, so that a kill reaches the renderer and storage processes too: killed
    // alone, the browser left them writing to the profile for a moment (a test's cleanup then
    // failed with ENOTEMPTY), and they could outlive it into the relaunch on the same profile.
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let stderr = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Chromium printed no DevTools URL within ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Chromium exited with ${code} before listening:\n${stderr}`));
    });
  });
  const browser = await chromium.connectOverCDP(endpoint);
  const pid = child.pid!;
  return {
    browser,
    pid,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      process.kill(-pid, 'SIGKILL');
      await exited;
    },
    pause() {
      process.kill(-pid, 'SIGSTOP');
    },
    resume() {
      if (child.exitCode === null && child.signalCode === null) process.kill(-pid, 'SIGCONT');
    },
  };
}
