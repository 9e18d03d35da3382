import { test as base } from '@playwright/test';

/** Playwright's `test` with `baseURL` pointing at the pages server from global-setup. */
export const test = base.extend({
  baseURL: async ({}, use) => {
    const url = process.env['LETTERBOX_PAGES_URL'];
    if (url === undefined) throw new Error('LETTERBOX_PAGES_URL is unset: run through playwright.config.ts');
    await use(url);
  },
});

export { expect } from '@playwright/test';
