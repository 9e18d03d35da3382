import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'vite';

export interface PagesServer {
  /** Base URL ending in `/`, e.g. `http://127.0.0.1:5173/`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Starts Vite's dev server on 127.0.0.1 at a free port, serving the repository's test
 * and bench pages (vite.config.ts).
 * @example const server = await startPagesServer(); await page.goto(server.url + 'test/e2e/pages/harness.html');
 */
export async function startPagesServer(): Promise<PagesServer> {
  const server = await createServer({
    configFile: 'vite.config.ts',
    // Optimized dependencies per checkout: worktrees share node_modules (a symlink), and two
    // servers re-optimizing one node_modules/.vite at once failed a page's dynamic import of
    // src/network ("Failed to fetch dynamically imported module").
    cacheDir: join(tmpdir(), `letterbox-vite-${createHash('sha256').update(process.cwd()).digest('hex').slice(0, 12)}`),
    logLevel: 'warn',
    clearScreen: false,
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (address === null || address === undefined || typeof address === 'string') {
    await server.close();
    throw new Error('The Vite dev server did not report a TCP address.');
  }
  return {
    url: `http://127.0.0.1:${address.port}/`,
    close: () => server.close(),
  };
}
