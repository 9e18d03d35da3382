import { every, type Cancel, type Clock } from '../clock';
import {
  addressOf,
  checkPeerMessage,
  createController,
  createSession,
  helloOf,
  memberId,
  stepController,
  stepSession,
  type BrokerIdentity,
  type ClusterHello,
  type ControllerEffect,
  type ControllerInput,
  type ControllerOptions,
  type ControllerReply,
  type ControllerRequest,
  type ControllerRequestBody,
  type ControllerState,
  type SessionEffect,
  type SessionOptions,
  type SessionState,
} from '../cluster';
import { NotControllerError, type ClusterIdMismatchError, type LetterboxError } from '../errors';
import type { GroupCommitter } from '../log';
import { lastIndexOf, type Input, type NodeId, type RaftState, type Snapshot } from '../raft';
import { Executor, type ExecutorObserver, type GroupMessage, type RaftStore } from './executor';

// Hosts a broker's part of the cluster: the session (src/cluster/session.ts: discovery,
// formation, registration, heartbeats, admin requests) and, once the broker has an
// identity, its metadata group member with the controller beside it, on an executor of
// its own (its member id is known only after registration). The transport and the slot's
// storage are the host's: peer RPC in the broker node, a simulated network in test/sim.

/** The metadata log's raft group (KRaft's `__cluster_metadata`). */
export const METADATA_GROUP = '__cluster_metadata';

/** How the runtime reaches other brokers; every call is one-way and never waits. */
export interface ClusterTransport {
  /** Sends `hello` to every peer it reaches; their answers come back through {@link ClusterRuntime.hello}. */
  hello(hello: ClusterHello): void;
  /** The addresses listed as members of the cluster's name (a relay's discovery), reachable or not yet; `'unlisted'` until the relay's first list. */
  members(): readonly string[] | 'unlisted';
  /** A controller request to the broker at `to` (never this one); its answer comes back through {@link ClusterRuntime.answer}. */
  request(to: string, requestId: number, request: ControllerRequest): void;
  /** Answers request `requestId` of the broker at `to` (never this one). */
  reply(to: string, requestId: number, reply: ControllerReply, member: NodeId): void;
  /** A frame of metadata group messages to the broker at `to`; false when dropped. */
  raft(to: string, clusterId: string, messages: readonly GroupMessage[]): boolean;
}

/** Timing, in ms unless named in ticks. */
export interface ClusterTiming {
  /** Raft tick. */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Hello rounds, heartbeats and retries. */
  readonly sessionTickMs: number;
  /** The controller's clock (fencing). */
  readonly controllerTickMs: number;
  readonly sessionTimeoutMs: number;
  /** A broker fenced this long has its replicas moved to live brokers (the controller's re-replication). */
  readonly reassignAfterMs: number;
  readonly requestTimeoutMs: number;
  readonly formationRounds: number;
  readonly formationRoundsMax: number;
  readonly peerFreshRounds: number;
}

export interface ClusterRuntimeInit {
  readonly clock: Clock;
  readonly committer: GroupCommitter;
  /** The metadata group's log in the slot's storage. */
  readonly store: RaftStore & { snapshot(): Snapshot | undefined };
  readonly transport: ClusterTransport;
  readonly session: Pick<SessionOptions, 'clusterName' | 'incarnation' | 'deviceId' | 'hostedBy' | 'self' | 'endpoints' | 'identity' | 'newClusterId'>;
  readonly timing: ClusterTiming;
  readonly controller: Pick<ControllerOptions, 'maxReplicationFactor' | 'defaultReplicationFactor' | 'maxPartitions' | 'snapshotEveryRecords' | 'validateConfigs'>;
  /** Seeds the raft core's election jitter. */
  readonly seed: number;
  /** Keeps the identity in the slot's storage (the broker id survives a reopen). */
  persist(identity: BrokerIdentity): void;
  readonly events?: ClusterEvents;
}

/** What the runtime reports: to the node's events and logs, and to the simulator's checkers. */
export interface ClusterEvents {
  readonly executor?: ExecutorObserver;
  /** After every controller step. */
  controllerStepped?(state: ControllerState): void;
  /** After every session step, with its effects. */
  sessionStepped?(state: SessionState, effects: readonly SessionEffect[]): void;
  memberStarted?(identity: BrokerIdentity): void;
  mismatch?(error: ClusterIdMismatchError): void;
  brokerFenced?(brokerId: number, fenced: boolean): void;
  /** A committed record its image refused, a refused peer message, a stopped member. */
  problem?(error: unknown): void;
}

interface Member {
  readonly identity: BrokerIdentity;
  readonly self: NodeId;
  readonly executor: Executor;
  readonly input: (input: ControllerInput) => void;
  controller: ControllerState;
  raft: RaftState;
}

/**
 * A broker's membership in its cluster, running on the clock until stopped.
 * @example const cluster = new ClusterRuntime(init); cluster.start(); cluster.client({ type: 'createTopics', topics }, (reply) => ...);
 */
export class ClusterRuntime {
  #session: SessionState;
  #member: Member | undefined;
  #stopTicks: Cancel | undefined;
  #stopped = false;
  #nextClientId = 1;
  readonly #clients = new Map<number, (reply: ControllerReply) => void>();

  constructor(readonly init: ClusterRuntimeInit) {
    const { timing } = init;
    const { requestTimeoutMs, formationRounds, formationRoundsMax, peerFreshRounds } = timing;
    this.#session = createSession({ ...init.session, requestTimeoutMs, formationRounds, formationRoundsMax, peerFreshRounds });
  }

  /** The session (identity, peers heard, mismatch). */
  get session(): SessionState {
    return this.#session;
  }

  /** The controller beside this broker's metadata member (its image), once it runs. */
  get controller(): ControllerState | undefined {
    return this.#member?.controller;
  }

  /** The metadata member's raft state, once it runs. */
  get raft(): RaftState | undefined {
    return this.#member?.raft;
  }

  /** The executor of the metadata member, once it runs: the replicated partitions' raft groups run on it too, so their frames reach the other brokers with the metadata group's. */
  get executor(): Executor | undefined {
    return this.#member?.executor;
  }

  /** This broker's member id, once it has an identity. */
  get memberId(): NodeId | undefined {
    return this.#member?.self;
  }

  /** Starts the session's rounds (the first after a random part of one) and the member when the storage names an identity. */
  start(): void {
    const identity = this.#session.identity;
    if (identity !== undefined) this.#startMember(identity);
    const { clock, timing } = this.init;
    const first = clock.after(1 + (this.init.seed % timing.sessionTickMs), () => {
      const tick = () => this.#step({ type: 'tick', nowMs: clock.now(), members: this.init.transport.members() });
      this.#stopTicks = every(clock, timing.sessionTickMs, tick);
      tick();
    });
    this.#stopTicks = first;
  }

  /** Stops the member and the rounds; pending admin requests are never answered. */
  stop(): void {
    this.#stopped = true;
    this.#stopTicks?.();
    this.#member?.executor.stop();
    this.#member = undefined;
    this.#clients.clear();
  }

  /**
   * A peer's hello (or its answer to ours); returns this broker's, to answer with.
   * @example rpc.handle('clusterHello', (hello, { peerId }) => cluster.hello(peerId, hello));
   */
  hello(from: string, hello: ClusterHello): ClusterHello {
    this.#step({ type: 'hello', from, hello });
    return helloOf(this.#session);
  }

  /** A peer is gone from the transport. @example link.on('left', ({ peerId }) => cluster.peerLeft(peerId)); */
  peerLeft(peer: string): void {
    this.#step({ type: 'peerLeft', peer });
  }

  /**
   * A broker's controller request; the answer goes out through the transport (or, when
   * this broker runs no member yet, at once: not the controller, no hint).
   * @example cluster.request(peerId, requestId, request);
   */
  request(from: string, requestId: number, request: ControllerRequest): void {
    if (this.#member === undefined) {
      const error = new NotControllerError(`${this.init.session.self} runs no broker of a cluster yet`);
      return this.#reply(from, requestId, { type: 'error', controllerEpoch: 0, error }, '');
    }
    this.#member.input({ type: 'request', requestId, from, request });
  }

  /** The answer to this broker's request `requestId`, from member `member`. @example cluster.answer(requestId, reply, member); */
  answer(requestId: number, reply: ControllerReply, member: NodeId): void {
    this.#step({ type: 'reply', requestId, reply, member });
  }

  /**
   * Metadata group messages from the broker of cluster `clusterId`; those refused by
   * `checkPeerMessage` (another cluster's, an impostor's) are dropped and returned.
   * @example const refused = cluster.receiveRaft(frame.clusterId, frame.messages);
   */
  receiveRaft(clusterId: string, messages: readonly GroupMessage[]): LetterboxError[] {
    const member = this.#member;
    if (member === undefined) return [];
    const refused: LetterboxError[] = [];
    const admitted = messages.filter(({ message }) => {
      const error = checkPeerMessage(member.controller.image, member.identity.clusterId, clusterId, message.from);
      if (error !== undefined) refused.push(error);
      return error === undefined;
    });
    if (admitted.length > 0) member.executor.receive(admitted[0]!.message.from, admitted);
    return refused;
  }

  /**
   * A tab of this browser is gone (its slot lock released): fenced at once, and every raft
   * group it led here (the metadata group's, the partitions') elects another leader at once.
   * @example cluster.brokerGone(3, incarnation);
   */
  brokerGone(brokerId: number, incarnation: string): void {
    this.#step({ type: 'brokerGone', brokerId, incarnation });
    const executor = this.#member?.executor;
    const member = memberId(brokerId, incarnation);
    for (const group of executor?.raftGroups() ?? []) executor!.input(group, { type: 'memberGone', member });
  }

  /**
   * This broker leaves its cluster (its leaderships handed over): no more heartbeats, and the
   * controller is asked to fence it, so that no leadership comes back to it before it closes.
   * @example cluster.leave();
   */
  leave(): void {
    this.#step({ type: 'leave' });
  }

  /**
   * An admin request to the active controller, retried (following hints, past lost
   * messages) until a controller answers; `answer` gets that answer. Returns its cancel.
   * @example const cancel = cluster.client({ type: 'deleteTopics', topics: ['t'] }, (reply) => done(reply));
   */
  client(request: ControllerRequestBody, answer: (reply: ControllerReply) => void, to?: string): () => void {
    const clientId = this.#nextClientId++;
    this.#clients.set(clientId, answer);
    this.#step({ type: 'client', clientId, request, ...(to !== undefined && { to }) });
    return () => {
      this.#clients.delete(clientId);
      this.#step({ type: 'cancel', clientId });
    };
  }

  #step(input: Parameters<typeof stepSession>[1]): void {
    if (this.#stopped) return;
    const { state, effects } = stepSession(this.#session, input);
    this.#session = state;
    this.init.events?.sessionStepped?.(state, effects);
    for (const effect of effects) {
      switch (effect.type) {
        case 'hello':
          this.init.transport.hello(effect.hello);
          break;
        case 'request':
          if (effect.to === this.init.session.self) this.init.clock.defer(() => this.request(effect.to, effect.requestId, effect.request));
          else this.init.transport.request(effect.to, effect.requestId, effect.request);
          break;
        case 'registered':
          this.init.persist(effect.identity);
          this.#startMember(effect.identity);
          break;
        case 'mismatch':
          this.init.events?.mismatch?.(effect.error);
          break;
        case 'answered': {
          const answer = this.#clients.get(effect.clientId);
          this.#clients.delete(effect.clientId);
          answer?.(effect.reply);
          break;
        }
        case 'replyRefused':
          break;
      }
    }
  }

  #reply(to: string, requestId: number, reply: ControllerReply, member: NodeId): void {
    if (to === this.init.session.self) this.init.clock.defer(() => this.answer(requestId, reply, member));
    else this.init.transport.reply(to, requestId, reply, member);
  }

  /** Runs the metadata group member and the controller beside it on an executor of their own. */
  #startMember(identity: BrokerIdentity): void {
    const { clock, timing, store, session } = this.init;
    const bootstrap = identity.bootstrap === true;
    const self = memberId(identity.brokerId, session.incarnation);
    const proposals = new Map<Input, number>();
    const observer = this.init.events?.executor;
    const executor = new Executor({
      nodeId: self,
      clock,
      committer: this.init.committer,
      sendFrame: (to, messages) => {
        const address = addressOf(this.#session, to);
        return address !== undefined && this.init.transport.raft(address, identity.clusterId, messages);
      },
      tickMs: timing.tickMs,
      heartbeatFlushTicks: timing.heartbeatTicks,
      observer: {
        ...observer,
        // Raft steps of the metadata group that change what the controller acts on are fed to it
        // (the replicated partitions' groups run on this executor too).
        raftStepped: (group, input, before, after, effects) => {
          observer?.raftStepped?.(group, input, before, after, effects);
          if (group !== METADATA_GROUP) return;
          member.raft = after;
          if (before.role !== after.role || before.term !== after.term || before.leader !== after.leader || before.membership !== after.membership || input.type === 'changeMembership') {
            host.input(raftInput(after));
          }
        },
      },
    });
    let controller = createController({
      self,
      sessionTimeoutMs: timing.sessionTimeoutMs,
      reassignAfterMs: timing.reassignAfterMs,
      ...this.init.controller,
      ...(bootstrap && { bootstrap: { clusterId: identity.clusterId, clusterName: session.clusterName, deviceId: session.deviceId, endpoints: session.endpoints } }),
    });
    const carry = (effects: readonly ControllerEffect[]) => {
      for (const effect of effects) {
        switch (effect.type) {
          case 'propose':
          case 'changeMembership': {
            const input: Input = effect.type === 'propose' ? { type: 'propose', payloads: effect.payloads } : { type: 'changeMembership', membership: effect.membership };
            proposals.set(input, effect.proposalId);
            executor.input(METADATA_GROUP, input);
            break;
          }
          case 'compact':
            executor.input(METADATA_GROUP, { type: 'compact', index: effect.index, data: effect.data });
            break;
          case 'reply':
            this.#reply(effect.to, effect.requestId, effect.reply, self);
            break;
          case 'brokerFenced':
          case 'brokerUnfenced':
            this.init.events?.brokerFenced?.(effect.brokerId, effect.type === 'brokerFenced');
            break;
          case 'recordRefused':
            this.init.events?.problem?.(effect.error);
            break;
        }
      }
    };
    const host = executor.addMachine<ControllerInput>({
      step: (input) => {
        const result = stepController(controller, input);
        controller = result.state;
        member.controller = controller;
        this.init.events?.controllerStepped?.(controller);
        carry(result.effects);
        this.#step({ type: 'member', role: member.raft.role, term: member.raft.term, leader: member.raft.leader, image: controller.image });
      },
      tick: (nowMs) => ({ type: 'tick', nowMs }),
      tickMs: timing.controllerTickMs,
    });
    const member: Member = { identity, self, executor, input: (input) => host.input(input), controller, raft: undefined as unknown as RaftState };
    this.#member = member;
    const restore = () => {
      const snapshot = store.snapshot();
      if (snapshot !== undefined) host.input({ type: 'restore', index: snapshot.index, data: snapshot.data });
    };
    executor.addRaftGroup(METADATA_GROUP, {
      config: {
        id: self,
        voters: bootstrap ? [self] : [],
        electionTicks: timing.electionTicks,
        heartbeatTicks: timing.heartbeatTicks,
        maxInflightAppends: 4,
        maxEntriesPerAppend: 64,
        maxBytesPerAppend: 256 << 10,
        maxUncommittedEntries: 256,
        maxApplyBytesPerStep: 1 << 16,
        maxPendingReads: 4,
        seed: this.init.seed,
      },
      store,
      handler: {
        effect: (effect, input) => {
          switch (effect.type) {
            case 'apply':
              host.input({ type: 'apply', entries: effect.entries });
              return;
            case 'restore':
              host.input({ type: 'restore', index: effect.snapshot.index, data: effect.snapshot.data });
              return;
            case 'proposed':
            case 'proposalRejected': {
              const proposalId = proposals.get(input);
              proposals.delete(input);
              if (proposalId === undefined) return;
              host.input(effect.type === 'proposed' ? { type: 'proposed', proposalId, lastIndex: effect.lastIndex, term: effect.term } : { type: 'proposalRejected', proposalId, error: effect.error });
              return;
            }
            default:
              return;
          }
        },
        // A failed write stops the group (the executor restarts it): pending requests are
        // answered NOT_CONTROLLER, and the restarted member is fed as at start.
        stopped: (error) => {
          this.init.events?.problem?.(error);
          host.input({ ...raftInput(member.raft), role: 'follower', leader: undefined });
        },
        restarted: () => {
          member.raft = executor.raftState(METADATA_GROUP)!;
          restore();
          host.input(raftInput(member.raft));
        },
      },
    });
    member.raft = executor.raftState(METADATA_GROUP)!;
    this.init.events?.memberStarted?.(identity);
    // A restart: the state machine starts from the snapshot in storage.
    restore();
    host.input(raftInput(member.raft));
    executor.start();
  }
}

/** The raft state the controller acts on. */
const raftInput = (state: RaftState): Extract<ControllerInput, { type: 'raft' }> => ({
  type: 'raft',
  role: state.role,
  term: state.term,
  leader: state.leader,
  membership: state.membership,
  lastIndex: lastIndexOf(state),
});

