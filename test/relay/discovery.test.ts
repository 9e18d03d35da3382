import '../../src/relay/polyfill';
import { createRequire } from 'node:module';
import { noise } from '@chainsafe/libp2p-noise';
import type { Stream } from '@libp2p/interface';
import { webSockets } from '@libp2p/websockets';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDiscoveryDecoder, DISCOVERY_PROTOCOL, encodeDiscoveryMessage, parseDiscoveryEvent, type DiscoveryEvent } from '../../src/discovery';
import { startRelay, type Relay } from '../../src/relay';

// Node 20 has no global WebSocket (22 has), which libp2p's WebSockets transport dials with;
// `ws` is that transport's own dependency (for listening).
globalThis.WebSocket ??= (createRequire(import.meta.url)('ws') as { WebSocket: typeof WebSocket }).WebSocket;

/** Bound on each wait below. */
const WAIT_MS = 5_000;

let relay: Relay;
const clients: Libp2p[] = [];

beforeAll(async () => {
  relay = await startRelay({ port: 0, staticRoots: [] });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await relay.close();
});

/** A Node libp2p node that dials the relay and opens a discovery stream; collects the events it receives. */
async function openDiscovery(): Promise<{ peerId: string; stream: Stream; events: DiscoveryEvent[]; closed: Promise<void> }> {
  const client = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
  });
  clients.push(client);
  const stream = await client.dialProtocol(multiaddr(relay.multiaddrs[0]!), DISCOVERY_PROTOCOL);
  const events: DiscoveryEvent[] = [];
  const decoder = createDiscoveryDecoder();
  stream.addEventListener('message', (event) => {
    for (const value of decoder.push(event.data instanceof Uint8Array ? event.data : event.data.subarray())) events.push(parseDiscoveryEvent(value));
  });
  const closed = new Promise<void>((resolve) => {
    stream.addEventListener('remoteCloseWrite', () => resolve());
    stream.addEventListener('close', () => resolve());
  });
  return { peerId: client.peerId.toString(), stream, events, closed };
}

const within = <T>(promise: Promise<T>, what: string) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${WAIT_MS} ms`)), WAIT_MS))]);

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const raw = (length: number, body: number[] = []) => {
  const bytes = new Uint8Array(4 + body.length);
  new DataView(bytes.buffer).setUint32(0, length);
  bytes.set(body, 4);
  return bytes;
};
const json = (text: string) => {
  const body = [...new TextEncoder().encode(text)];
  return raw(body.length, body);
};

describe('relay discovery protocol', () => {
  it('lists the members of a cluster, announces joins and notices departures', async () => {
    const a = await openDiscovery();
    a.stream.send(encodeDiscoveryMessage({ type: 'register', cluster: 'members' }));
    await until(() => a.events.length === 1, 'members for a');
    expect(a.events[0]).toEqual({ type: 'members', cluster: 'members', peers: [] });
    const b = await openDiscovery();
    b.stream.send(encodeDiscoveryMessage({ type: 'register', cluster: 'members' }));
    await until(() => b.events.length === 1 && a.events.length === 2, 'members for b, joined for a');
    expect(b.events[0]).toEqual({ type: 'members', cluster: 'members', peers: [a.peerId] });
    expect(a.events[1]).toEqual({ type: 'joined', peer: b.peerId });
    await b.stream.close();
    await until(() => a.events.length === 3, 'left for a');
    expect(a.events[2]).toEqual({ type: 'left', peer: b.peerId });
  });

  const hostile: Array<[string, Uint8Array[], string]> = [
    ['a length over the limit', [raw(0xffffffff)], 'MESSAGE_TOO_LARGE'],
    ['bytes that are not UTF-8', [raw(2, [0xc3, 0x28])], 'CORRUPT_MESSAGE'],
    ['JSON cut short', [json('{"type":"reg')], 'CORRUPT_MESSAGE'],
    ['an unknown message type', [json('{"type":"list","cluster":"x"}')], 'INVALID_REQUEST'],
    ['a bad cluster name', [json('{"type":"register","cluster":"../etc"}')], 'INVALID_REQUEST'],
    ['a second register', [encodeDiscoveryMessage({ type: 'register', cluster: 'twice' }), encodeDiscoveryMessage({ type: 'register', cluster: 'twice' })], 'INVALID_REQUEST'],
  ];
  for (const [what, chunks, code] of hostile) {
    it(`answers ${what} with a ${code} error and closes the stream`, async () => {
      const client = await openDiscovery();
      for (const chunk of chunks) client.stream.send(chunk);
      await within(client.closed, 'the relay closing the stream');
      expect(client.events.at(-1)).toMatchObject({ type: 'error', code });
    });
  }

  it('still serves well-behaved members after all that, and forgets a member whose registration was refused', async () => {
    const good = await openDiscovery();
    good.stream.send(encodeDiscoveryMessage({ type: 'register', cluster: 'twice' }));
    await until(() => good.events.length === 1, 'members');
    expect(good.events[0]).toEqual({ type: 'members', cluster: 'twice', peers: [] });
  });
});
