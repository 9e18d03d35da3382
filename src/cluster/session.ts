import { NotControllerError, type ClusterIdMismatchError, type LetterboxError } from '../errors';
import type { NodeId, Role } from '../raft';
import type { ControllerReply, ControllerRequest, ControllerRequestBody } from './controller';
import { clustersMet, decideFormation, type ClusterSummary } from './formation';
import { checkControllerEpoch, parseMemberId } from './identity';
import type { MetadataImage } from './image';

// A broker's side of its cluster (pure: inputs in, effects out; time comes in the inputs):
// discovery (a hello to every peer it reaches, each tick), formation (a broker without a
// cluster listens a few rounds, then bootstraps or joins by formation.ts's rule),
// registration, heartbeats to the active controller, `brokerGone` for a tab known gone, and
// admin requests routed to the active controller until one answers. The node's runtime
// (src/node/cluster.ts) hosts it beside the metadata group member and the controller.
//
// Addresses are the transport's (a libp2p peer id; a slot's name in the simulator); a
// broker's address is its registered endpoint, so a member id (the raft leader, a
// NOT_CONTROLLER hint) maps to an address through the image, else through the hellos.

/** What brokers tell each other each round: who they are, their cluster and its active controller. */
export interface ClusterHello {
  readonly incarnation: string;
  readonly brokerId?: number;
  readonly cluster?: ClusterSummary;
  /** The member id of the active controller the sender knows. */
  readonly controller?: NodeId;
}

export interface SessionOptions {
  readonly clusterName: string;
  readonly incarnation: string;
  readonly deviceId: string;
  /** The broker whose tab runs this one (an adopted slot): registered, so admin can say. */
  readonly hostedBy?: number;
  /** This broker's own address: requests to it are delivered locally. */
  readonly self: string;
  /** What the broker registers: how peers reach it (its address first). */
  readonly endpoints: readonly string[];
  /** The cluster and broker id the slot's database kept, if it joined one. */
  readonly identity?: BrokerIdentity;
  /** The id it gives a cluster it bootstraps (the host draws it: this machine has no randomness). */
  readonly newClusterId: string;
  /** A request unanswered this long was lost, or its target is gone: ask another. */
  readonly requestTimeoutMs: number;
  /** Hello rounds a broker without a cluster listens before it decides. */
  readonly formationRounds: number;
  /**
   * Most rounds it waits, past `formationRounds`, for members the transport lists (a relay's
   * discovery) but it has not heard from yet: a WebRTC link can take seconds on a busy machine,
   * and a broker that decided without them could bootstrap a cluster of its own beside theirs.
   */
  readonly formationRoundsMax: number;
  /** A peer not heard from in this many rounds is out of reach. */
  readonly peerFreshRounds: number;
}

export interface BrokerIdentity {
  readonly clusterId: string;
  readonly brokerId: number;
  /** It bootstrapped the cluster: on a restart its member is the group's first voter again, whatever its log lost. */
  readonly bootstrap?: true;
}

interface PeerSeen {
  readonly hello: ClusterHello;
  readonly round: number;
}

/** What a request was, to read its answer. */
type Pending =
  | { readonly kind: 'register'; readonly clusterId: string }
  | { readonly kind: 'heartbeat' }
  | { readonly kind: 'gone'; readonly brokerId: number; readonly incarnation: string }
  | { readonly kind: 'client'; readonly clientId: number; readonly request: ControllerRequestBody };
/** Requests sent until a controller answers: admin requests, and a broker known gone (its own controller may be what is gone). */
type Retried = Extract<Pending, { kind: 'client' | 'gone' }>;

/** The session's state: a linear value — `stepSession` updates it in place; keep the one it returns. */
export interface SessionState {
  readonly options: SessionOptions;
  identity: BrokerIdentity | undefined;
  /** Whether the controller answered this run's registration (until then it registers each round). */
  registered: boolean;
  round: number;
  nowMs: number;
  readonly peers: Map<string, PeerSeen>;
  /** Where requests go: who answered last, or the hint it gave. */
  controllerPeer: string | undefined;
  nextRequestId: number;
  readonly requests: Map<number, Pending & { readonly sentMs: number }>;
  /** Requests to send again at the next tick (refused by a broker that is not the controller, or lost). */
  readonly retry: Retried[];
  mismatch: ClusterIdMismatchError | undefined;
  /** The metadata group member's view, once it runs. */
  member: MemberView | undefined;
  /** It leaves the cluster (its tab closes): no heartbeats, and it asked to be fenced. */
  leaving: boolean;
}

export interface MemberView {
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | undefined;
  readonly image: MetadataImage;
}

export type SessionInput =
  /**
   * A hello round: hellos, the formation decision, the registration or heartbeat, retries.
   * `members`: addresses the transport lists as members of the cluster's name, reachable or not
   * yet; `'unlisted'` while a relay is yet to list them (a broker without a cluster then waits
   * for the list, up to `formationRoundsMax`, so it never bootstraps before it could know of others).
   */
  | { readonly type: 'tick'; readonly nowMs: number; readonly members?: readonly string[] | 'unlisted' }
  /** A peer's hello, or its answer to this broker's. */
  | { readonly type: 'hello'; readonly from: string; readonly hello: ClusterHello }
  | { readonly type: 'peerLeft'; readonly peer: string }
  /** The metadata member's view after a step that may have changed it. */
  | ({ readonly type: 'member' } & MemberView)
  /** The answer to request `requestId`, from member `member`. */
  | { readonly type: 'reply'; readonly requestId: number; readonly reply: ControllerReply; readonly member: NodeId }
  /** A broker known gone at once (a tab of this browser whose slot lock was released). */
  | { readonly type: 'brokerGone'; readonly brokerId: number; readonly incarnation: string }
  /**
   * This broker leaves (its tab closes, its leaderships handed over): it stops its heartbeats
   * and asks the controller to fence it as it would a closed tab, so that no leadership comes
   * back to it (a preferred replica's return) in its last moments.
   */
  | { readonly type: 'leave' }
  /** An admin request, sent to `to` if given (else to the active controller), retried until a controller answers or it is cancelled. */
  | { readonly type: 'client'; readonly clientId: number; readonly request: ControllerRequestBody; readonly to?: string }
  | { readonly type: 'cancel'; readonly clientId: number };

export type SessionEffect =
  /** Send this hello to every peer it reaches (each answers with its own). */
  | { readonly type: 'hello'; readonly hello: ClusterHello }
  | { readonly type: 'request'; readonly to: string; readonly requestId: number; readonly request: ControllerRequest }
  /** It bootstrapped a cluster or was registered in one for the first time: keep the identity, start the metadata member. */
  | { readonly type: 'registered'; readonly identity: BrokerIdentity }
  /** Its cluster is the smaller of two under one name (formation.ts). */
  | { readonly type: 'mismatch'; readonly error: ClusterIdMismatchError }
  /** A controller's answer to admin request `clientId` (maybe an error). */
  | { readonly type: 'answered'; readonly clientId: number; readonly reply: ControllerReply }
  /** An answer not acted on: another cluster's broker, or a stale or forged controller epoch. */
  | { readonly type: 'replyRefused'; readonly error: LetterboxError };

/**
 * A broker's session with its cluster, before its first tick.
 * @example let session = createSession({ clusterName: 'origin', incarnation, deviceId, self: peerId, endpoints: [peerId], newClusterId, requestTimeoutMs: 1000, formationRounds: 3, peerFreshRounds: 3 });
 */
export function createSession(options: SessionOptions): SessionState {
  return {
    options,
    identity: options.identity,
    registered: false,
    leaving: false,
    round: 0,
    nowMs: 0,
    peers: new Map(),
    controllerPeer: undefined,
    nextRequestId: 1,
    requests: new Map(),
    retry: [],
    mismatch: undefined,
    member: undefined,
  };
}

/**
 * Steps the session with one input.
 * @example const { state, effects } = stepSession(session, { type: 'tick', nowMs: clock.now() });
 */
export function stepSession(s: SessionState, input: SessionInput): { state: SessionState; effects: SessionEffect[] } {
  const out: SessionEffect[] = [];
  switch (input.type) {
    case 'tick':
      s.nowMs = input.nowMs;
      tick(s, out, input.members ?? []);
      break;
    case 'hello':
      heard(s, input.from, input.hello, out);
      break;
    case 'peerLeft':
      s.peers.delete(input.peer);
      if (s.controllerPeer === input.peer) s.controllerPeer = undefined;
      break;
    case 'member':
      s.member = { role: input.role, term: input.term, leader: input.leader, image: input.image };
      break;
    case 'reply':
      answered(s, input.requestId, input.reply, input.member, out);
      break;
    case 'brokerGone':
      resend(s, out, { kind: 'gone', brokerId: input.brokerId, incarnation: input.incarnation });
      break;
    case 'leave':
      if (s.identity === undefined || s.leaving) break;
      s.leaving = true;
      resend(s, out, { kind: 'gone', brokerId: s.identity.brokerId, incarnation: s.options.incarnation });
      break;
    case 'client':
      resend(s, out, { kind: 'client', clientId: input.clientId, request: input.request }, input.to);
      break;
    case 'cancel': {
      for (const [id, pending] of s.requests) if (pending.kind === 'client' && pending.clientId === input.clientId) s.requests.delete(id);
      const waiting = s.retry.findIndex((p) => p.kind === 'client' && p.clientId === input.clientId);
      if (waiting >= 0) s.retry.splice(waiting, 1);
      break;
    }
  }
  return { state: s, effects: out };
}

/** What this broker says of itself. @example transport.send(peer, helloOf(session)) */
export function helloOf(s: SessionState): ClusterHello {
  // A broker that just bootstrapped says so at once, before its image holds the cluster's
  // first records: a broker deciding meanwhile must join it, not bootstrap a second cluster.
  const identity = s.identity;
  const cluster =
    (s.member && summaryOf(s.member.image)) ??
    (identity && { clusterName: s.options.clusterName, clusterId: identity.clusterId, brokers: 0, records: 0 });
  const controller = s.member?.leader;
  return {
    incarnation: s.options.incarnation,
    ...(s.identity && { brokerId: s.identity.brokerId }),
    ...(cluster && { cluster }),
    ...(controller !== undefined && { controller }),
  };
}

/**
 * The address of member `id` (a broker id with its incarnation): its registered endpoint,
 * else the peer whose hello named it.
 * @example const peer = addressOf(session, message.to);
 */
export function addressOf(s: SessionState, id: NodeId): string | undefined {
  const member = parseMemberId(id);
  if (member === undefined) return undefined;
  const known = s.member?.image.broker(member.brokerId);
  if (known !== undefined && known.incarnation === member.incarnation && known.endpoints[0] !== undefined) return known.endpoints[0];
  for (const [peer, { hello }] of s.peers) if (hello.brokerId === member.brokerId && hello.incarnation === member.incarnation) return peer;
  return undefined;
}

/** A cluster's summary from its image, for formation and the mismatch rule. @example summaryOf(image)?.brokers */
export function summaryOf(image: MetadataImage): ClusterSummary | undefined {
  return image.clusterId === undefined ? undefined : { clusterName: image.clusterName!, clusterId: image.clusterId, brokers: image.brokers().length, records: image.recordsApplied };
}

function tick(s: SessionState, out: SessionEffect[], members: readonly string[] | 'unlisted'): void {
  s.round++;
  expire(s);
  out.push({ type: 'hello', hello: helloOf(s) });
  if (s.identity === undefined) return form(s, out, members);
  const { clusterId, brokerId } = s.identity;
  if (s.leaving) {
    // Fenced on its own request: a heartbeat would unfence it.
  } else if (!s.registered) register(s, out, clusterId, brokerId);
  else send(s, out, { clusterId, type: 'heartbeat', brokerId, incarnation: s.options.incarnation }, { kind: 'heartbeat' });
  for (const pending of s.retry.splice(0)) resend(s, out, pending);
}

/** Requests unanswered within the timeout are forgotten, with the target they went to; admin requests go again. */
function expire(s: SessionState): void {
  for (const [id, pending] of s.requests) {
    if (s.nowMs - pending.sentMs < s.options.requestTimeoutMs) continue;
    s.requests.delete(id);
    s.controllerPeer = undefined;
    if (pending.kind === 'client' || pending.kind === 'gone') s.retry.push(retried(pending));
  }
}

/** The pending request without its send time. */
function retried(pending: Retried & { readonly sentMs: number }): Retried {
  const { sentMs: _, ...rest } = pending;
  return rest;
}

/**
 * A broker without a cluster decides by the formation rule, once it has listened long
 * enough, the transport has listed the members, and it heard every one (or waited its longest).
 */
function form(s: SessionState, out: SessionEffect[], members: readonly string[] | 'unlisted'): void {
  if (s.round < s.options.formationRounds) return;
  const fresh = [...s.peers].filter(([, p]) => p.round >= s.round - s.options.peerFreshRounds);
  const decision = decideFormation(
    s.options.incarnation,
    fresh.map(([, p]) => ({ incarnation: p.hello.incarnation, ...(p.hello.cluster && { cluster: p.hello.cluster }) })),
  );
  const heard = new Set(fresh.map(([peer]) => peer));
  const unheard = members === 'unlisted' || members.some((peer) => peer !== s.options.self && !heard.has(peer));
  if (decision.kind !== 'join' && unheard && s.round < s.options.formationRoundsMax) return;
  if (decision.kind === 'bootstrap') {
    s.identity = { clusterId: s.options.newClusterId, brokerId: 1, bootstrap: true };
    out.push({ type: 'registered', identity: s.identity });
    return;
  }
  if (decision.kind === 'join') {
    // Through a peer that names the controller, else any peer of that cluster (it hints).
    const members = fresh.filter(([, p]) => p.hello.cluster?.clusterId === decision.clusterId);
    const naming = members.find(([, p]) => p.hello.controller !== undefined && addressOf(s, p.hello.controller) !== undefined);
    const [peer] = naming ?? members[s.round % members.length]!;
    s.controllerPeer = naming === undefined ? peer : addressOf(s, naming[1].hello.controller!);
    register(s, out, decision.clusterId, undefined);
  }
}

function register(s: SessionState, out: SessionEffect[], clusterId: string, brokerId: number | undefined): void {
  const { incarnation, deviceId, endpoints, hostedBy } = s.options;
  send(s, out, { type: 'register', clusterId, brokerId, incarnation, deviceId, endpoints, ...(hostedBy === undefined ? {} : { hostedBy }) }, { kind: 'register', clusterId });
}

/** Sends a request that is sent until a controller answers; kept for the next tick when there is nowhere to send it. */
function resend(s: SessionState, out: SessionEffect[], pending: Retried, to?: string): void {
  const clusterId = s.identity?.clusterId;
  const body: ControllerRequestBody = pending.kind === 'client' ? pending.request : { type: 'brokerGone', brokerId: pending.brokerId, incarnation: pending.incarnation };
  if (clusterId === undefined || !send(s, out, { clusterId, ...body } as ControllerRequest, pending, to)) s.retry.push(pending);
}

/** Sends a request to `to`, else where it believes the active controller is; false when it knows nowhere. */
function send(s: SessionState, out: SessionEffect[], request: ControllerRequest, what: Pending, to?: string): boolean {
  const target = to ?? controllerTarget(s);
  if (target === undefined) return false;
  const requestId = s.nextRequestId++;
  s.requests.set(requestId, { ...what, sentMs: s.nowMs });
  out.push({ type: 'request', to: target, requestId, request });
  return true;
}

/**
 * Itself when it leads; else who answered last (or the hint it gave), else the raft leader
 * it knows, else a peer of its cluster. The hint comes before the raft leader: a broker
 * fenced and dropped from the group hears no leader, and its raft state names one long gone.
 */
function controllerTarget(s: SessionState): string | undefined {
  if (s.member?.role === 'leader') return s.options.self;
  if (s.controllerPeer !== undefined) return s.controllerPeer;
  const leader = s.member?.leader === undefined ? undefined : addressOf(s, s.member.leader);
  if (leader !== undefined) return leader;
  const clusterId = s.identity?.clusterId;
  const peers = [...s.peers].filter(([, p]) => p.hello.cluster?.clusterId === clusterId);
  return peers.length > 0 ? peers[s.nextRequestId % peers.length]![0] : undefined;
}

function heard(s: SessionState, from: string, hello: ClusterHello, out: SessionEffect[]): void {
  s.peers.set(from, { hello, round: s.round });
  const ours = s.member && summaryOf(s.member.image);
  if (hello.cluster === undefined || ours === undefined) return;
  const mismatch = clustersMet(ours, hello.cluster);
  if (mismatch !== undefined && s.mismatch?.otherClusterId !== mismatch.otherClusterId) {
    s.mismatch = mismatch;
    out.push({ type: 'mismatch', error: mismatch });
  }
}

function answered(s: SessionState, requestId: number, reply: ControllerReply, member: NodeId, out: SessionEffect[]): void {
  const what = s.requests.get(requestId);
  if (what === undefined) return;
  s.requests.delete(requestId);
  const retry = () => void ((what.kind === 'client' || what.kind === 'gone') && s.retry.push(retried(what)));
  if (reply.type === 'error' && reply.error instanceof NotControllerError) {
    // Not an answer of a controller (its epoch is only the sender's term): follow the hint.
    const hint = reply.error.leaderHint;
    s.controllerPeer = hint === undefined ? undefined : addressOf(s, hint);
    return retry();
  }
  if (reply.type === 'error' && reply.error.code === 'INCONSISTENT_CLUSTER_ID') {
    // Another cluster's broker: it refused and applied nothing.
    s.controllerPeer = undefined;
    out.push({ type: 'replyRefused', error: reply.error });
    if (what.kind === 'client') out.push({ type: 'answered', clientId: what.clientId, reply });
    return;
  }
  // The answer of an active controller: refused from a stale or forged epoch, and the next
  // request goes to the raft leader this broker knows.
  const stale = checkControllerEpoch(s.member ?? { term: 0, leader: undefined }, reply.controllerEpoch, member);
  if (stale !== undefined) {
    s.controllerPeer = undefined;
    out.push({ type: 'replyRefused', error: stale });
    return retry();
  }
  s.controllerPeer = addressOf(s, member) ?? s.controllerPeer;
  if (what.kind === 'client') return void out.push({ type: 'answered', clientId: what.clientId, reply });
  if (reply.type === 'register' && what.kind === 'register') {
    s.registered = true;
    if (s.identity === undefined) {
      s.identity = { clusterId: what.clusterId, brokerId: reply.brokerId };
      out.push({ type: 'registered', identity: s.identity });
    }
  }
}
