import type { PeerLinkEvents } from './peer-link';

/** The listeners of a PeerLink's events: what each link implementation emits through. */
export interface LinkEvents {
  emit<E extends keyof PeerLinkEvents>(type: E, event: PeerLinkEvents[E]): void;
  /** A PeerLink's `on`: adds a listener, returns a function that removes it. */
  on<E extends keyof PeerLinkEvents>(type: E, listener: (event: PeerLinkEvents[E]) => void): () => void;
}

/**
 * An empty set of listeners.
 * @example const events = linkEvents(); events.on('joined', (peer) => console.log(peer.peerId)); events.emit('joined', info);
 */
export function linkEvents(): LinkEvents {
  const listeners = new Map<keyof PeerLinkEvents, Set<(event: never) => void>>();
  return {
    emit(type, event) {
      for (const listener of listeners.get(type) ?? []) (listener as (event: PeerLinkEvents[typeof type]) => void)(event);
    },
    on(type, listener) {
      const set = listeners.get(type) ?? new Set();
      set.add(listener as (event: never) => void);
      listeners.set(type, set);
      return () => set.delete(listener as (event: never) => void);
    },
  };
}
