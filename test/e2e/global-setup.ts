import { startPagesServer } from '../support/pages-server';

// One Vite dev server for the whole run; tests read its URL from the environment,
// which Playwright passes on to its worker processes.
export default async function globalSetup(): Promise<() => Promise<void>> {
  const server = await startPagesServer();
  process.env['LETTERBOX_PAGES_URL'] = server.url;
  return () => server.close();
}
