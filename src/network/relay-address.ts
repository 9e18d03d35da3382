import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { RELAY_INFO_PATH } from '../discovery';
import { LetterboxError } from '../errors';

/**
 * The relay could not be reached or answered nonsense; the network keeps retrying with backoff.
 * @example letterbox.on('letterbox.relay', (e) => e.payload.connected || showOffline());
 */
export class RelayUnreachableError extends LetterboxError {
  static override readonly errorName = 'RelayUnreachableError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('RELAY_UNREACHABLE', message, { retriable: true, ...options });
  }
}

/** The host a relay option names: the URL's hostname, or the multiaddr's first ip/dns component. */
export function relayHost(relay: string): string | undefined {
  if (relay.startsWith('/')) return multiaddr(relay).getComponents()[0]?.value;
  try {
    return new URL(relay).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

/**
 * Whether `host` is loopback or a private (RFC 1918, unique-local) address: a development
 * relay, for which the page's connection gater must allow `ws://` and private addresses
 * that browsers' libp2p refuses by default.
 * @example isPrivateHost('127.0.0.1') // true
 */
export function isPrivateHost(host: string): boolean {
  return (
    host === 'localhost' ||
    host === '::1' ||
    /^127\./.test(host) ||
    /^10\./.test(host) ||
    /^192\.168\./.test(host) ||
    /^172\.(1[6-9]|2\d|3[01])\./.test(host) ||
    /^f[cd][0-9a-f]{2}:/i.test(host)
  );
}

/**
 * The relay's dialable multiaddrs (each ending in `/p2p/<relay id>`): the option itself if
 * it is a multiaddr, else fetched from the relay's RELAY_INFO_PATH. Rejects with
 * RelayUnreachableError.
 * @example const [relay] = await resolveRelay('http://127.0.0.1:8787', { signal });
 */
export async function resolveRelay(relay: string, options: { signal?: AbortSignal } = {}): Promise<Multiaddr[]> {
  if (relay.startsWith('/')) return [multiaddr(relay)];
  let info: unknown;
  try {
    const response = await fetch(new URL(RELAY_INFO_PATH, relay), { signal: options.signal ?? null, cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    info = await response.json();
  } catch (error) {
    throw new RelayUnreachableError(`could not fetch the relay's address from ${relay}: ${String(error)}`, { cause: error });
  }
  const addresses = (info as { multiaddrs?: unknown } | null)?.multiaddrs;
  if (!Array.isArray(addresses) || !addresses.every((a): a is string => typeof a === 'string' && a.includes('/p2p/'))) {
    throw new RelayUnreachableError(`the relay at ${relay} answered ${RELAY_INFO_PATH} without multiaddrs`);
  }
  // Only WebSockets are dialable from a page; a page served over https needs wss.
  const usable = addresses.map((a) => multiaddr(a)).filter((a) => /\/wss?\//.test(`${a.toString()}/`) && (!/\/ws\//.test(`${a.toString()}/`) || globalThis.location?.protocol !== 'https:'));
  if (usable.length === 0) throw new RelayUnreachableError(`the relay at ${relay} offers no WebSocket address this page can dial`);
  return usable;
}
