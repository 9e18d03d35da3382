// One PeerLink over the two transports: the WebRTC bridge (other devices) and the local
// transport (this origin's other tabs). A peer reachable both ways is used over the local one.

import { PeerNotConnectedError } from '../errors';
import { linkEvents } from './link-events';
import type { PeerLink } from './peer-link';

export interface LocalFirstLink extends PeerLink {
  /** Adds the local transport (once this node knows its peer id); its peers take precedence from then on. */
  addLocal(local: PeerLink): void;
}

type Path = 'local' | 'remote';

/**
 * `remote`'s peers, and those of the local link added later, each peer over one of them: the
 * local one when it has the peer. Switching a peer's path is a new session for the layers
 * above (`left`, then `joined`): its byte stream starts again, so no frame is split across paths.
 * Bytes arriving on the path not in use for a peer are dropped.
 * @example const link = localFirst(createBridgeLink(port)); link.addLocal(createLocalLink({ cluster, peerId }));
 */
export function localFirst(remote: PeerLink): LocalFirstLink {
  let local: PeerLink | undefined;
  const paths = new Map<string, Path>();
  const events = linkEvents();
  const offs: Array<() => void> = [];

  const { emit } = events;
  const linkOf = (path: Path) => (path === 'local' ? local : remote);
  const infoOn = (path: Path, peerId: string) => linkOf(path)?.peers().find((peer) => peer.peerId === peerId);

  const follow = (link: PeerLink, path: Path) => {
    offs.push(
      link.on('joined', (info) => {
        const current = paths.get(info.peerId);
        if (current === 'local' && path === 'remote') return; // kept in reserve
        if (current !== undefined) emit('left', { peerId: info.peerId, reason: path === 'local' ? 'moved to the local transport' : 'reconnected' });
        paths.set(info.peerId, path);
        emit('joined', info);
      }),
      link.on('left', (event) => {
        if (paths.get(event.peerId) !== path) return;
        paths.delete(event.peerId);
        emit('left', event);
        const other: Path = path === 'local' ? 'remote' : 'local';
        const info = infoOn(other, event.peerId);
        if (info === undefined) return;
        paths.set(event.peerId, other);
        emit('joined', info);
      }),
      link.on('data', (event) => {
        if (paths.get(event.peerId) === path) emit('data', event);
      }),
      link.on('quality', (event) => {
        if (paths.get(event.peerId) === path) emit('quality', event);
      }),
    );
  };
  follow(remote, 'remote');

  return {
    get peerId() {
      return remote.peerId ?? local?.peerId;
    },
    peers: () => [...paths].flatMap(([peerId, path]) => infoOn(path, peerId) ?? []),
    members: () => remote.members(),
    send(peerId, bytes, options) {
      const path = paths.get(peerId);
      const link = path === undefined ? undefined : linkOf(path);
      if (link === undefined) return Promise.reject(new PeerNotConnectedError(peerId));
      return link.send(peerId, bytes, options);
    },
    on: events.on,
    addLocal(link) {
      if (local !== undefined) return;
      local = link;
      follow(link, 'local');
      for (const info of link.peers()) {
        if (paths.get(info.peerId) === 'remote') emit('left', { peerId: info.peerId, reason: 'moved to the local transport' });
        paths.set(info.peerId, 'local');
        emit('joined', info);
      }
    },
    close() {
      for (const off of offs.splice(0)) off();
      paths.clear();
      local?.close();
      remote.close();
    },
  };
}
