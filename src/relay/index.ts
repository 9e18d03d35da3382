import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RELAY_INFO_PATH } from '../discovery';
import { loadOrCreateKey } from './key';
import { startRelayNode } from './libp2p-node';
import { serveStatic } from './static-files';

/** Options of {@link startRelay}; every one has a default. */
export interface RelayInit {
  /** Interface to listen on (HTTP and WebSockets). Default `127.0.0.1`. */
  host?: string;
  /** HTTP port; `0` picks a free one. Default `8787`. */
  port?: number;
  /** libp2p WebSockets port; `0` picks a free one. Default: the HTTP port + 1, or 0 when that is 0. */
  wsPort?: number;
  /** File holding the relay's libp2p key (created if missing), so a restarted relay keeps its peer id. Default: a new key per start. */
  keyFile?: string;
  /** Folders served over HTTP, first match wins. Default: the demo (public/) and the built library (dist/lib/). */
  staticRoots?: readonly string[];
}

export interface Relay {
  /** The demo page's URL, e.g. `http://127.0.0.1:8787/`. */
  readonly url: string;
  /** The relay's libp2p multiaddrs, e.g. `/ip4/127.0.0.1/tcp/8788/ws/p2p/12D3Koo…`. */
  readonly multiaddrs: string[];
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

export const defaultRelayPort = 8787;

/**
 * Starts the relay: a libp2p node (circuit relay v2 for WebRTC signalling, cluster
 * discovery) and HTTP for the demo, the built library and {@link RELAY_INFO_PATH}. It
 * stores nothing but its own key. Pages learn its multiaddrs at RELAY_INFO_PATH, so
 * `new Letterbox({ relay: 'http://host:port' })` is enough.
 * @example const relay = await startRelay({ port: 0 }); console.log(relay.url);
 */
export async function startRelay(init: RelayInit = {}): Promise<Relay> {
  const host = init.host ?? '127.0.0.1';
  const port = init.port ?? defaultRelayPort;
  const node = await startRelayNode({
    host,
    wsPort: init.wsPort ?? (port === 0 ? 0 : port + 1),
    privateKey: await loadOrCreateKey(init.keyFile),
  });
  const info = JSON.stringify({ peerId: node.peerId, multiaddrs: node.multiaddrs });
  const handle = serveStatic(init.staticRoots ?? ['public', 'dist/lib']);
  const http = createServer((request, response) => {
    if (new URL(request.url ?? '/', 'http://relay.invalid').pathname === RELAY_INFO_PATH && request.method === 'GET') {
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'access-control-allow-origin': '*' }).end(info);
      return;
    }
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await node.stop();
    throw error;
  }
  const address = http.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/`,
    multiaddrs: node.multiaddrs,
    close: async () => {
      await new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      });
      await node.stop();
    },
  };
}
