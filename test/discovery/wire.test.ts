import { describe, expect, it } from 'vitest';
import {
  createDiscoveryDecoder,
  DISCOVERY_MESSAGE_BYTES_MAX,
  DiscoveryError,
  encodeDiscoveryMessage,
  parseDiscoveryEvent,
  parseDiscoveryRequest,
  type DiscoveryEvent,
  type DiscoveryRequest,
} from '../../src/discovery';

const PEER = '12D3KooWQFFcWrX3kdFtayJ4UqsX8dEWGWirNCivJ5UDYA6eAyzF';
const lengthPrefixed = (body: Uint8Array) => {
  const bytes = new Uint8Array(4 + body.length);
  new DataView(bytes.buffer).setUint32(0, body.length);
  bytes.set(body, 4);
  return bytes;
};
const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(DiscoveryError);
    return (error as DiscoveryError).code;
  }
  return undefined;
};

describe('discovery wire format', () => {
  it('round-trips messages split at every byte', () => {
    const messages: Array<DiscoveryRequest | DiscoveryEvent> = [{ type: 'register', cluster: 'demo' }, { type: 'members', cluster: 'demo', peers: [PEER] }, { type: 'left', peer: PEER }];
    const bytes = new Uint8Array(messages.flatMap((m) => [...encodeDiscoveryMessage(m)]));
    for (let split = 0; split <= bytes.length; split++) {
      const decoder = createDiscoveryDecoder();
      expect([...decoder.push(bytes.subarray(0, split)), ...decoder.push(bytes.subarray(split))]).toEqual(messages);
    }
  });

  it('refuses an oversized length as soon as the prefix is in, and bytes that are not UTF-8 JSON', () => {
    expect(codeOf(() => createDiscoveryDecoder().push(new Uint8Array([0xff, 0xff, 0xff, 0xff])))).toBe('MESSAGE_TOO_LARGE');
    expect(codeOf(() => createDiscoveryDecoder().push(lengthPrefixed(new Uint8Array([0xc3, 0x28]))))).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => createDiscoveryDecoder().push(lengthPrefixed(new TextEncoder().encode('{"type":'))))).toBe('CORRUPT_MESSAGE');
    expect(codeOf(() => encodeDiscoveryMessage({ type: 'error', code: 'TIMEOUT', message: 'x'.repeat(DISCOVERY_MESSAGE_BYTES_MAX) }))).toBe('MESSAGE_TOO_LARGE');
  });

  it('accepts only well-formed requests and events', () => {
    expect(parseDiscoveryRequest({ type: 'register', cluster: 'a.b_c-1' })).toEqual({ type: 'register', cluster: 'a.b_c-1' });
    for (const bad of [null, [], 'register', { type: 'register' }, { type: 'register', cluster: '' }, { type: 'register', cluster: '../x' }, { type: 'register', cluster: 'x'.repeat(65) }, { type: 'list', cluster: 'demo' }]) {
      expect(codeOf(() => parseDiscoveryRequest(bad))).toBe('INVALID_REQUEST');
    }
    expect(parseDiscoveryEvent({ type: 'joined', peer: PEER })).toEqual({ type: 'joined', peer: PEER });
    expect(parseDiscoveryEvent({ type: 'error', code: 'CLUSTER_FULL', message: 'full' })).toEqual({ type: 'error', code: 'CLUSTER_FULL', message: 'full' });
    for (const bad of [{ type: 'joined', peer: 'not a peer id!' }, { type: 'members', cluster: 'demo', peers: [1] }, { type: 'error', code: 'NOPE', message: '' }, { type: 'joined' }, 7]) {
      expect(codeOf(() => parseDiscoveryEvent(bad))).toBe('CORRUPT_MESSAGE');
    }
  });
});
