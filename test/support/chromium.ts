import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium } from '@playwright/test';

/**
 * Flags measured to work on the project's machines (shared/design/NOTES-browser.md):
 * no sandbox as root, no GPU, and no background networking on a closed network.
 * The WebRTC ones make host candidates plain addresses and allow loopback.
 */
export const chromiumArgs: string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
];

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The Chromium to test with: `CHROMIUM_PATH`, else Playwright's own browser if it is
 * installed, else a system Chromium. Throws with install instructions when none exists.
 * @example const executablePath = findChromium();
 */
export function findChromium(): string {
  const fromEnv = process.env['CHROMIUM_PATH'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (existsSync(fromEnv)) return fromEnv;
    throw new Error(`CHROMIUM_PATH is set to ${fromEnv}, but no file is there.`);
  }
  const playwrights = chromium.executablePath();
  if (playwrights !== '' && existsSync(playwrights)) return playwrights;
  for (const candidate of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (existsSync(candidate)) return candidate;
  }
  const found = onPath('chromium') ?? onPath('chromium-browser') ?? onPath('google-chrome');
  if (found !== undefined) return found;
  throw new Error(
    'No Chromium found for the browser tests. Install one (Debian: `apt-get install chromium`; ' +
      'elsewhere: `npx playwright install chromium`) or set CHROMIUM_PATH to its executable.',
  );
}
