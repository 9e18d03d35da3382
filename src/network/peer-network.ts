import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { every, realClock, sleep, timeoutSignal, type Cancel, type Clock } from '../clock';
import { createDiscoveryDecoder, DISCOVERY_PROTOCOL, DiscoveryError, encodeDiscoveryMessage, parseDiscoveryEvent, type DiscoveryEvent } from '../discovery';
import type { BridgePort, PeerInfo } from './bridge-messages';
import {
  DIAL_ATTEMPTS_MAX,
  DIAL_TIMES_KEPT,
  DIAL_RETRY_STEP_MS,
  DIAL_TIMEOUT_MS,
  PASSIVE_DIAL_WAIT_MS,
  PEER_PROTOCOL,
  PING_TIMEOUT_MS,
  PINGS_LOST_MAX,
  QUALITY_INTERVAL_MS,
  RECONCILE_INTERVAL_MS,
  RELAY_BACKOFF_INITIAL_MS,
  RELAY_BACKOFF_MAX_MS,
  RELAY_DIAL_TIMEOUT_MS,
  RESERVATION_POLL_MS,
  RESERVATION_WAIT_MS,
  STREAM_READ_BUFFER_BYTES_MAX,
} from './constants';
import { createPageLibp2p, type PageLibp2p } from './libp2p-node';
import { pingConnection, watchLiveness } from './liveness';
import { openDirectChannel } from './direct-channel';
import { createPageBridge } from './page-bridge';
import { isPrivateHost, relayHost, resolveRelay } from './relay-address';

export interface PeerNetworkInit {
  /** The cluster to join: 1 to 64 of A-Z a-z 0-9 . _ - */
  cluster: string;
  /** The relay: its HTTP URL (its multiaddrs are fetched from it) or a multiaddr ending in `/p2p/<id>`. */
  relay: string;
  /** This node's libp2p identity (the slot's). */
  privateKey: PrivateKey;
  /** The worker's end of the frame bridge is on the other side of this port. */
  port: BridgePort;
  /** STUN/TURN servers. Default: none for a relay on a loopback/private address, else libp2p's. */
  iceServers?: RTCIceServer[];
  /** Connectivity changes, for the page (the worker gets them over the bridge). */
  onEvent?(event: NetworkEvent): void;
  /** Aborting it stops the network, as `stop()` does. */
  signal?: AbortSignal;
  /** Times dials, pings and retries. Default: the real clock. */
  clock?: Clock;
}

export type NetworkEvent =
  | { type: 'peer_joined'; peer: PeerInfo }
  | { type: 'peer_left'; peerId: string; reason: string }
  | { type: 'peer_quality'; peerId: string; rttMs: number }
  /** Registered in the cluster on the relay (`connected`), or lost it (reconnecting with backoff). */
  | { type: 'relay'; connected: boolean; error?: string };

/** Dial counters since start, for benchmarks and the demo. */
export interface DialStats {
  attempts: number;
  /** Attempts after a first one to the same peer failed. */
  retries: number;
  /** Dials that used up DIAL_ATTEMPTS_MAX attempts (the next reconcile round tries again). */
  failures: number;
  /** Milliseconds from the first attempt to a direct connection, per successful dial (the last DIAL_TIMES_KEPT). */
  connectMs: number[];
}

export interface PeerNetwork {
  readonly peerId: string;
  /** Peers with a direct WebRTC connection. */
  peers(): PeerInfo[];
  /** Members of the cluster known from the relay (connected or not). */
  members(): string[];
  /** Whether this node is registered in its cluster on the relay now. */
  relayConnected(): boolean;
  dialStats(): DialStats;
  /** The libp2p node, for diagnostics and benchmarks. */
  readonly libp2p: PageLibp2p;
  stop(): Promise<void>;
}

interface Peer {
  info: PeerInfo;
  connection: Connection;
  /** Ends the watch on the connection's liveness. */
  unwatch: AbortController;
}

/** A connection fit for broker traffic: direct WebRTC, without a relay's limits. */
export const isDirectConnection = (connection: Connection): boolean =>
  connection.status === 'open' && connection.limits === undefined && connection.remoteAddr.getComponents().some((c) => c.name === 'webrtc');

const jitter = (ms: number) => ms * (0.75 + Math.random() * 0.5);

/**
 * Joins `cluster` through the relay and keeps this page directly connected (WebRTC) to
 * every other member: registers with the relay's discovery protocol (reconnecting with
 * backoff when the relay goes away), dials members with a timeout, retries and one dial at a
 * time per peer, and bridges each peer's `/letterbox/peer/1.0.0` stream to the worker.
 * Broker streams are refused on relayed connections.
 * @example const network = await startPeerNetwork({ cluster: 'demo', relay: 'http://127.0.0.1:8787', privateKey, port });
 */
export async function startPeerNetwork(init: PeerNetworkInit): Promise<PeerNetwork> {
  const clock = init.clock ?? realClock;
  const host = relayHost(init.relay);
  const local = host !== undefined && isPrivateHost(host);
  // Only followRelay dials the relay, with its backoff. libp2p's relay discovery would also
  // redial a relay that went away, fail while it is down, and then refuse to reserve on it
  // after it came back (its reservation store remembers relays whose dial failed).
  let relayId: string | undefined;
  let dialingRelay = false;
  const libp2p = await createPageLibp2p({
    privateKey: init.privateKey,
    allowPrivateAddresses: local,
    denyDialPeer: (peerId) => peerId === relayId && !dialingRelay,
    ...(init.iceServers !== undefined ? { iceServers: init.iceServers } : local ? { iceServers: [] } : {}),
  });
  const self = libp2p.peerId.toString();
  const stopping = new AbortController();
  const bridge = createPageBridge(
    init.port,
    (error) => console.warn('letterbox network: write failed', error),
    // A peer that sends past its window (FORMATS.md § Flow control) is broken or hostile; one
    // whose direct channel closed is unreachable from the worker: cut off (a member is redialled).
    (peerId, reason) => {
      for (const connection of libp2p.getConnections().filter((c) => c.remotePeer.toString() === peerId)) {
        console.warn(`letterbox network: disconnecting peer ${peerId}: ${reason}`);
        connection.abort(new Error(reason));
      }
    },
  );
  const emit = (event: NetworkEvent) => init.onEvent?.(event);
  const peers = new Map<string, Peer>();
  const known = new Set<string>();
  const dialing = new Map<string, Promise<void>>();
  const adopting = new Set<string>();
  const passiveTimers = new Map<string, Cancel>();
  const stats: DialStats = { attempts: 0, retries: 0, failures: 0, connectMs: [] };
  let relayAddress: Multiaddr | undefined;
  let registered = false;

  bridge.report({ type: 'self', peerId: self });

  const directConnection = (peerId: string) => libp2p.getConnections().find((c) => c.remotePeer.toString() === peerId && isDirectConnection(c));

  /**
   * Pings `connection` every QUALITY_INTERVAL_MS and closes it once PINGS_LOST_MAX pings in a
   * row went unanswered: the only liveness check on this page's connections, in place of
   * libp2p's connection monitor (libp2p-node.ts says why). Ends with `signal`.
   */
  function watch(connection: Connection, signal: AbortSignal, onRtt?: (rttMs: number) => void): void {
    void watchLiveness({
      clock,
      ping: (attempt) => pingConnection(clock, connection, attempt),
      timeoutMs: PING_TIMEOUT_MS,
      intervalMs: QUALITY_INTERVAL_MS,
      lostMax: PINGS_LOST_MAX,
      ...(onRtt === undefined ? {} : { onRtt }),
      onDead: (reason) => {
        console.warn(`letterbox network: closing the connection to ${connection.remotePeer.toString()}: ${reason}`);
        connection.abort(new Error(reason));
      },
      signal: AbortSignal.any([signal, stopping.signal]),
    });
  }

  async function adopt(connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString();
    // Only members of our cluster (as the relay told us) become peers; reconcile() adopts a
    // connection that opened before the relay's news of its member arrived.
    if (peers.has(peerId) || adopting.has(peerId) || !known.has(peerId) || !isDirectConnection(connection)) return;
    // One adoption at a time per peer: the dial, the connection event and reconcile() all try.
    adopting.add(peerId);
    try {
      await openPeerStream(peerId, connection);
    } finally {
      adopting.delete(peerId);
    }
  }

  async function openPeerStream(peerId: string, connection: Connection): Promise<void> {
    let stream: Stream;
    try {
      stream = await connection.newStream(PEER_PROTOCOL, { signal: AbortSignal.any([stopping.signal, timeoutSignal(clock, DIAL_TIMEOUT_MS)]) });
    } catch (error) {
      // Seen here when the dialer gave up on a dial that this side had completed: the
      // connection looks open but carries no streams. Close it, so that neither side
      // mistakes it for a peer and the dialer's retry starts afresh.
      if (!stopping.signal.aborted && connection.status === 'open') connection.abort(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (peers.has(peerId) || connection.status !== 'open') {
      stream.abort(new Error('superseded'));
      return;
    }
    stream.addEventListener('message', (event) => bridge.deliver(peerId, event.data));
    const info: PeerInfo = {
      peerId,
      remoteAddr: connection.remoteAddr.toString().replace(/^.*\/p2p-circuit/, ''),
      limited: connection.limits !== undefined,
      since: clock.now(),
    };
    const unwatch = new AbortController();
    peers.set(peerId, { info, connection, unwatch });
    watch(connection, unwatch.signal, (rttMs) => {
      info.rttMs = rttMs;
      bridge.report({ type: 'quality', peerId, rttMs });
      emit({ type: 'peer_quality', peerId, rttMs });
    });
    bridge.attach(peerId, stream);
    // Created and handed over in this task: a data channel can only be transferred before the task that made it ends.
    const channel = openDirectChannel(connection);
    try {
      bridge.report(channel === undefined ? { type: 'joined', peer: info } : { type: 'joined', peer: info, channel });
    } catch (error) {
      // Not transferable after all: the bytes go through this page (the peer falls back when it hears nothing).
      console.warn('letterbox network: could not hand the direct channel to the worker', error);
      channel?.close();
      bridge.report({ type: 'joined', peer: info });
    }
    emit({ type: 'peer_joined', peer: info });
  }

  function release(connection: Connection, reason: string): void {
    const peerId = connection.remotePeer.toString();
    const peer = peers.get(peerId);
    if (peer?.connection !== connection) return;
    peer.unwatch.abort();
    peers.delete(peerId);
    bridge.detach(peerId);
    const other = directConnection(peerId);
    if (other !== undefined) {
      void adopt(other);
      return;
    }
    bridge.report({ type: 'left', peerId, reason });
    emit({ type: 'peer_left', peerId, reason });
    reconcile();
  }

  async function dial(peerId: string): Promise<void> {
    const started = clock.monotonic();
    for (let attempt = 1; attempt <= DIAL_ATTEMPTS_MAX; attempt++) {
      if (stopping.signal.aborted || !known.has(peerId) || directConnection(peerId) !== undefined) return;
      if (relayAddress === undefined) return;
      stats.attempts++;
      if (attempt > 1) stats.retries++;
      try {
        const target = multiaddr(`${relayAddress.toString()}/p2p-circuit/webrtc/p2p/${peerId}`);
        const connection = await libp2p.dial(target, { force: true, signal: AbortSignal.any([stopping.signal, timeoutSignal(clock, DIAL_TIMEOUT_MS)]) });
        if (isDirectConnection(connection)) {
          stats.connectMs.push(clock.monotonic() - started);
          if (stats.connectMs.length > DIAL_TIMES_KEPT) stats.connectMs.shift();
          await adopt(connection);
          return;
        }
      } catch {
        // Timed out or refused: the next attempt starts a fresh signalling exchange.
      }
      await sleep(clock, attempt * DIAL_RETRY_STEP_MS, stopping.signal);
    }
    if (!stopping.signal.aborted) stats.failures++;
  }

  function startDial(peerId: string): void {
    if (dialing.has(peerId)) return;
    dialing.set(peerId, dial(peerId).finally(() => dialing.delete(peerId)));
  }

  /** Dials every known member without a direct connection: at once if our id is the smaller, else after PASSIVE_DIAL_WAIT_MS. */
  function reconcile(): void {
    if (stopping.signal.aborted || !registered) return;
    for (const peerId of known) {
      if (peerId === self || peers.has(peerId)) continue;
      const open = directConnection(peerId);
      if (open !== undefined) {
        void adopt(open);
      } else if (self < peerId) {
        startDial(peerId);
      } else if (!passiveTimers.has(peerId)) {
        passiveTimers.set(
          peerId,
          clock.after(PASSIVE_DIAL_WAIT_MS, () => {
            passiveTimers.delete(peerId);
            if (!peers.has(peerId) && known.has(peerId)) startDial(peerId);
          }),
        );
      }
    }
  }

  function onDiscovery(event: DiscoveryEvent): void {
    switch (event.type) {
      case 'members':
        event.peers.forEach((p) => known.add(p));
        break;
      case 'joined':
        known.add(event.peer);
        break;
      case 'left':
        // The relay saw it go (its tab closed or lost the relay): close our side now rather
        // than wait for WebRTC to notice. A member that is still alive registers again.
        known.delete(event.peer);
        for (const connection of libp2p.getConnections()) {
          if (connection.remotePeer.toString() === event.peer) connection.abort(new Error('the peer left the cluster'));
        }
        break;
      case 'error':
        throw new DiscoveryError(event.code, event.message);
    }
    bridge.report({ type: 'members', peerIds: [...known] });
    reconcile();
  }

  const hasReservation = (relayId: string) => libp2p.getMultiaddrs().some((a) => a.toString().includes(`/p2p/${relayId}/p2p-circuit`));

  /**
   * Resolves once our `/p2p-circuit` address through the relay is listed. Polled: after a
   * relay restart the address returned without a `self:peer:update` event here.
   */
  async function waitForReservation(relayId: string, signal: AbortSignal): Promise<void> {
    while (!hasReservation(relayId)) {
      if (signal.aborted) throw new Error(`no reservation on the relay within ${RESERVATION_WAIT_MS} ms`);
      await sleep(clock, RESERVATION_POLL_MS, signal);
    }
  }

  /** One stay with the relay: dial, then follow the cluster through it while its connection answers pings. */
  async function relaySession(onRegistered: () => void): Promise<void> {
    const attempt = AbortSignal.any([stopping.signal, timeoutSignal(clock, RELAY_DIAL_TIMEOUT_MS)]);
    const addresses = await resolveRelay(init.relay, { signal: attempt });
    dialingRelay = true;
    let connection: Connection;
    try {
      connection = await libp2p.dial(addresses, { signal: attempt });
    } finally {
      dialingRelay = false;
    }
    const unwatch = new AbortController();
    watch(connection, unwatch.signal);
    try {
      await followCluster(connection, attempt, onRegistered);
    } finally {
      unwatch.abort();
      // However the session ended, its connection goes too. After the relay dropped a page
      // frozen past its ping bound, the page's connection stayed listed as open with its muxer
      // closed, and every later dial reused it and failed (ConnectionClosedError).
      if (connection.status === 'open') connection.abort(new Error('the relay session ended'));
    }
  }

  /** Waits for the reservation on the relay at the other end of `connection`, registers, and follows the cluster until the stream ends. */
  async function followCluster(connection: Connection, attempt: AbortSignal, onRegistered: () => void): Promise<void> {
    relayId = connection.remotePeer.toString();
    relayAddress = connection.remoteAddr.toString().includes(`/p2p/${relayId}`) ? connection.remoteAddr : connection.remoteAddr.encapsulate(`/p2p/${relayId}`);
    await waitForReservation(relayId, AbortSignal.any([stopping.signal, timeoutSignal(clock, RESERVATION_WAIT_MS)]));
    const stream = await connection.newStream(DISCOVERY_PROTOCOL, { signal: attempt });
    await new Promise<void>((resolve, reject) => {
      const decoder = createDiscoveryDecoder();
      stream.addEventListener('message', (event) => {
        try {
          for (const value of decoder.push(event.data instanceof Uint8Array ? event.data : event.data.subarray())) {
            const discovered = parseDiscoveryEvent(value);
            if (discovered.type === 'members' && !registered) {
              registered = true;
              onRegistered();
            }
            onDiscovery(discovered);
          }
        } catch (error) {
          stream.abort(error instanceof Error ? error : new Error(String(error)));
          reject(error);
        }
      });
      stream.addEventListener('close', () => resolve());
      stopping.signal.addEventListener('abort', () => stream.abort(new Error('stopped')), { once: true });
      stream.send(encodeDiscoveryMessage({ type: 'register', cluster: init.cluster }));
    });
  }

  async function followRelay(): Promise<void> {
    let backoffMs = RELAY_BACKOFF_INITIAL_MS;
    while (!stopping.signal.aborted) {
      let error: unknown;
      try {
        await relaySession(() => {
          backoffMs = RELAY_BACKOFF_INITIAL_MS;
          emit({ type: 'relay', connected: true });
          reconcile();
        });
      } catch (caught) {
        error = caught;
      }
      const wasRegistered = registered;
      registered = false;
      if (stopping.signal.aborted) return;
      if (wasRegistered || error !== undefined) emit({ type: 'relay', connected: false, ...(error === undefined ? {} : { error: String(error) }) });
      // The worker waits for a member list before a new broker may bootstrap; a relay out of
      // reach lists nobody, so it hears the members known so far (none, the first time).
      if (!wasRegistered) bridge.report({ type: 'members', peerIds: [...known] });
      await sleep(clock, jitter(backoffMs), stopping.signal);
      backoffMs = Math.min(backoffMs * 2, RELAY_BACKOFF_MAX_MS);
    }
  }

  await libp2p.handle(
    PEER_PROTOCOL,
    (stream, connection) => {
      const peerId = connection.remotePeer.toString();
      stream.maxReadBufferLength = STREAM_READ_BUFFER_BYTES_MAX;
      stream.addEventListener('message', (event) => bridge.deliver(peerId, event.data));
    },
    { maxInboundStreams: 2, maxOutboundStreams: 2 },
  );
  libp2p.addEventListener('connection:open', (event) => void adopt(event.detail));
  libp2p.addEventListener('connection:close', (event) => release(event.detail, 'connection closed'));
  const stopReconciling = every(clock, RECONCILE_INTERVAL_MS, reconcile);
  const following = followRelay();

  const network: PeerNetwork = {
    peerId: self,
    libp2p,
    peers: () => [...peers.values()].map((p) => ({ ...p.info })),
    members: () => [...known],
    relayConnected: () => registered,
    dialStats: () => ({ ...stats, connectMs: [...stats.connectMs] }),
    async stop() {
      if (stopping.signal.aborted) return;
      stopping.abort();
      stopReconciling();
      passiveTimers.forEach((cancel) => cancel());
      bridge.close();
      await following;
      await libp2p.stop();
    },
  };
  init.signal?.addEventListener('abort', () => void network.stop(), { once: true });
  if (init.signal?.aborted === true) await network.stop();
  return network;
}
