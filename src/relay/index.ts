import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveStatic } from './static-files';

/** Options of {@link startRelay}; every one has a default. */
export interface RelayInit {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; `0` picks a free one. Default `8787`. */
  port?: number;
  /** Folders served over HTTP, first match wins. Default: the demo (public/) and the built library (dist/lib/). */
  staticRoots?: readonly string[];
}

export interface Relay {
  /** The demo page's URL, e.g. `http://127.0.0.1:8787/`. */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

export const defaultRelayPort = 8787;

/**
 * Starts the relay process's servers: for now, HTTP for the demo and the built library.
 * @example const relay = await startRelay({ port: 0 }); console.log(relay.url);
 */
export async function startRelay(init: RelayInit = {}): Promise<Relay> {
  const host = init.host ?? '127.0.0.1';
  const roots = init.staticRoots ?? ['public', 'dist/lib'];
  const handle = serveStatic(roots);
  const http = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(init.port ?? defaultRelayPort, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
