import type { Connection, Stream } from '@libp2p/interface';
import {
  createDiscoveryDecoder,
  createMembership,
  DiscoveryError,
  encodeDiscoveryMessage,
  parseDiscoveryRequest,
  type Delivery,
  type DiscoveryEvent,
} from '../discovery';

/** How long a new discovery stream may take to register before the relay closes it. */
export const REGISTER_TIMEOUT_MS = 10_000;
/** Bytes a slow member may leave unread on its discovery stream before the relay resets it. */
export const DISCOVERY_WRITE_BUFFER_BYTES_MAX = 256 * 1024;

export interface DiscoveryService {
  /** The libp2p stream handler for DISCOVERY_PROTOCOL. */
  handle(stream: Stream, connection: Connection): void;
  /** Peers registered in `cluster`, for logs and tests. */
  members(cluster: string): string[];
}

/**
 * The relay's side of the discovery protocol: one stream per member, open for as long as
 * it is a member. Bad input gets an `error` event and a closed stream, never an exception.
 * @example const discovery = createDiscoveryService(); await libp2p.handle(DISCOVERY_PROTOCOL, discovery.handle);
 */
export function createDiscoveryService(onError: (error: unknown) => void = () => undefined): DiscoveryService {
  const table = createMembership<Stream>();

  const write = (stream: Stream, event: DiscoveryEvent) => {
    if (stream.status !== 'open') return;
    try {
      stream.send(encodeDiscoveryMessage(event));
    } catch (error) {
      stream.abort(error instanceof Error ? error : new Error(String(error)));
    }
  };
  const deliver = (deliveries: Delivery<Stream>[]) => deliveries.forEach(({ to, event }) => write(to, event));

  const refuse = (stream: Stream, error: unknown) => {
    const known = error instanceof DiscoveryError ? error : new DiscoveryError('INVALID_REQUEST', String(error));
    write(stream, { type: 'error', code: known.code, message: known.message });
    deliver(table.leave(stream));
    stream.close().catch((e: unknown) => stream.abort(e instanceof Error ? e : new Error(String(e))));
  };

  return {
    handle(stream, connection) {
      stream.maxWriteBufferLength = DISCOVERY_WRITE_BUFFER_BYTES_MAX;
      const decoder = createDiscoveryDecoder();
      let registered = false;
      const timer = setTimeout(() => refuse(stream, new DiscoveryError('TIMEOUT', `no register within ${REGISTER_TIMEOUT_MS} ms`)), REGISTER_TIMEOUT_MS);
      stream.addEventListener('message', (event) => {
        try {
          const chunk = event.data instanceof Uint8Array ? event.data : event.data.subarray();
          for (const value of decoder.push(chunk)) {
            if (registered) throw new DiscoveryError('INVALID_REQUEST', 'a stream registers once; open a new stream to change cluster');
            const request = parseDiscoveryRequest(value);
            // The peer is the one Noise authenticated: nobody registers for another.
            const { deliveries, replaced } = table.join(request.cluster, connection.remotePeer.toString(), stream);
            registered = true;
            clearTimeout(timer);
            replaced?.close().catch(() => undefined);
            deliver(deliveries);
          }
        } catch (error) {
          clearTimeout(timer);
          refuse(stream, error);
        }
      });
      // Half-closing is leaving too: a member keeps its stream open for as long as it is one.
      stream.addEventListener('remoteCloseWrite', () => {
        clearTimeout(timer);
        deliver(table.leave(stream));
        stream.close().catch(() => undefined);
      });
      stream.addEventListener('close', () => {
        clearTimeout(timer);
        try {
          deliver(table.leave(stream));
        } catch (error) {
          onError(error);
        }
      });
    },
    members: (cluster) => table.members(cluster),
  };
}
