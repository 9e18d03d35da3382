import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** The file under one of `roots` that `urlPath` names, or undefined; never a path outside them. */
async function locate(roots: readonly string[], urlPath: string): Promise<string | undefined> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const relative = normalize(decoded).replace(/^([/\\])+/, '');
  for (const root of roots) {
    const base = resolve(root);
    let candidate = resolve(join(base, relative));
    if (candidate !== base && !candidate.startsWith(base + sep)) continue;
    const info = await stat(candidate).catch(() => undefined);
    if (info?.isDirectory() === true) {
      candidate = join(candidate, 'index.html');
      if ((await stat(candidate).catch(() => undefined))?.isFile() !== true) continue;
    } else if (info?.isFile() !== true) {
      continue;
    }
    return candidate;
  }
  return undefined;
}

/**
 * An HTTP handler serving files from `roots` (first match wins), GET and HEAD only.
 * @example http.createServer(serveStatic(['public', 'dist/lib']))
 */
export function serveStatic(roots: readonly string[]) {
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = new URL(request.url ?? '/', 'http://relay.invalid').pathname;
    const file = await locate(roots, path);
    if (file === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    response.writeHead(200, {
      'content-type': contentTypes[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      // The script-tag build may be loaded by pages of other origins.
      'access-control-allow-origin': '*',
    });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    createReadStream(file).pipe(response);
  };
}
