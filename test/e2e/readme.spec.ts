/// <reference path="./pages/client.ts" />
import { readFile } from 'node:fs/promises';
import { expect, openClientPage, test } from './fixtures';

test('the README quick start runs as written in a page', async ({ page }) => {
  const readme = await readFile('README.md', 'utf8');
  const block = /<!-- quick-start[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block, 'README has a quick-start block').toBeDefined();
  const importLine = "import { Letterbox } from 'letterbox';";
  expect(block).toContain(importLine);
  // The page has the same module the package exports; only the import line is bound to it.
  const body = block!.replace(importLine, 'const { Letterbox } = window.lb;');

  const logged: string[] = [];
  page.on('console', (message) => logged.push(message.text()));
  await openClientPage(page);
  await page.evaluate(async (code) => {
    const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (body: string) => () => Promise<void>;
    await new AsyncFunction(code)();
  }, body);
  await expect.poll(() => logged).toContain('greetings[0] @0: hello, letterbox');
});
