import { describe, expectTypeOf, it } from 'vitest';
import type { DialStats, Letterbox, LetterboxConfig, LetterboxEvents, PeerInfo } from '../../src/client';

// Type-level tests of the cluster part of the public API (checked by `npm run typecheck`).

describe('cluster API types', () => {
  it('joins the origin’s cluster by default, a named cluster through a relay given by URL or multiaddr, or none', () => {
    expectTypeOf<LetterboxConfig['cluster']>().toEqualTypeOf<string | false | undefined>();
    expectTypeOf<LetterboxConfig['relay']>().toEqualTypeOf<string | undefined>();
  });

  it('lists peers and reports who joined, left, and how fast they answer', () => {
    expectTypeOf<ReturnType<Letterbox['peerId']>>().toEqualTypeOf<Promise<string>>();
    expectTypeOf<ReturnType<Letterbox['peers']>>().toEqualTypeOf<Promise<PeerInfo[]>>();
    expectTypeOf<ReturnType<Letterbox['networkStats']>>().toEqualTypeOf<Promise<DialStats>>();
    expectTypeOf<LetterboxEvents['letterbox.peer_joined']>().toEqualTypeOf<PeerInfo>();
    expectTypeOf<LetterboxEvents['letterbox.peer_left']>().toEqualTypeOf<{ peerId: string; reason: string }>();
    expectTypeOf<LetterboxEvents['letterbox.peer_quality']['rttMs']>().toEqualTypeOf<number>();
    expectTypeOf<PeerInfo['limited']>().toEqualTypeOf<boolean>();
    const listen = (letterbox: Letterbox) =>
      letterbox.on('letterbox.peer_left', (event) => {
        expectTypeOf(event.payload.peerId).toEqualTypeOf<string>();
      });
    expectTypeOf(listen).returns.toBeFunction();
  });
});
