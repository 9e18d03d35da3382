import { defineConfig } from '@playwright/test';
import { chromiumArgs, findChromium } from './test/support/chromium';

// End-to-end tests: real Chromium against pages served by Vite on 127.0.0.1
// (started in global-setup) and against the real relay process.
export default defineConfig({
  testDir: 'test/e2e',
  testMatch: '**/*.spec.ts',
  globalSetup: './test/e2e/global-setup.ts',
  forbidOnly: Boolean(process.env['CI']),
  retries: 0,
  workers: 2,
  timeout: 60_000,
  reporter: 'list',
  use: {
    headless: true,
    launchOptions: { executablePath: findChromium(), args: chromiumArgs },
  },
});
