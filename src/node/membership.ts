import type { Clock } from '../clock';
import { parseMemberId, replicationHealth, type BrokerIdentity, type ControllerReply, type ControllerRequestBody, type MetadataImage, type ReplicationHealth } from '../cluster';
import { AbortedError, BrokerIdentityError, InvalidArgumentError, TimeoutError, type ClusterIdMismatchError, type LetterboxError } from '../errors';
import type { GroupCommitter } from '../log';
import { parseConfigEntries } from './topics';
import type { PeerLink, PeerRpc } from '../network/worker';
import type { Storage, StorageWrite } from '../storage';
import type { ClusterEvent, ClusterInfo } from './api';
import { ClusterRuntime, METADATA_GROUP, type ClusterTiming } from './cluster';
import { handOverLeadership } from './hand-over';
import { StoredRaftLog } from './raft-store';

// The broker node's membership in its cluster: the ClusterRuntime on the node's peer RPC,
// with its identity and metadata log in the slot's storage. Requests between brokers are
// peer RPC requests (`controller`, answered when the controller replies; `clusterHello`,
// answered with this broker's hello); raft frames are one-way (`raft`, dropped when the
// peer's queue is full: raft retries).

/**
 * Timing in the browser: an election within about a second; hellos and heartbeats every
 * half second; a broker silent for 6 s fenced (a tab of this browser that closes is known
 * gone at once, from its slot lock). A broker without a cluster listens 3 s (six rounds)
 * before it decides, and up to 20 s for members the relay lists but it has not heard from:
 * their WebRTC links took 6–11 s on a loaded 2-core machine (the e2e cluster spec).
 */
export const BROWSER_TIMING: ClusterTiming = {
  tickMs: 50,
  electionTicks: 20,
  heartbeatTicks: 2,
  sessionTickMs: 500,
  controllerTickMs: 250,
  sessionTimeoutMs: 6_000,
  reassignAfterMs: 30_000,
  requestTimeoutMs: 2_000,
  formationRounds: 6,
  formationRoundsMax: 40,
  peerFreshRounds: 4,
};

/**
 * Timing of a cluster on the local transport alone (the origin's default cluster): its tabs
 * meet over BroadcastChannels in milliseconds, so a lone tab decides after 0.6 s (six rounds
 * of 100 ms) instead of 3 s; a hello counts as fresh for 2 s, as over the relay, so a busy
 * tab's slow answer does not make it look gone.
 */
export const LOCAL_TIMING: ClusterTiming = {
  ...BROWSER_TIMING,
  sessionTickMs: 100,
  formationRoundsMax: 6,
  peerFreshRounds: 20,
};

/** Node-level storage key of the identity the slot holds in cluster `name`. */
const identityKey = (name: string) => `cluster:${name}`;
/** The local link's reason for a peer whose slot lock was released (local-link.ts). */
const TAB_CLOSED = 'its tab closed';

export interface MembershipInit {
  readonly clusterName: string;
  readonly storage: Storage;
  readonly clock: Clock;
  readonly committer: GroupCommitter;
  readonly incarnation: string;
  readonly deviceId: string;
  /** The broker whose tab runs this one, when it runs on an adopted slot. */
  readonly hostedBy?: number;
  /** This node's libp2p peer id: its address and endpoint. */
  readonly peerId: string;
  readonly link: PeerLink;
  readonly rpc: PeerRpc;
  randomId(): string;
  /** After every change of the local image (applied records, a restored snapshot). */
  imageChanged(image: MetadataImage): void;
  /** Problems worth a log line: refused peer messages, a stopped member. */
  onError(error: unknown): void;
  /** Joined, a mismatch: for the page. */
  onEvent(event: ClusterEvent): void;
  /** Default {@link BROWSER_TIMING}. */
  readonly timing?: ClusterTiming;
}

/**
 * The node's cluster membership, from the slot's storage.
 * @example const membership = await Membership.start(init); const reply = await membership.admin({ type: 'deleteTopics', topics: ['t'] }, 30_000);
 */
export class Membership {
  #mismatch: ClusterIdMismatchError | undefined;
  #refused = 0;
  #nextServed = 1;
  readonly #stops: Array<() => void> = [];
  /** Set once it leaves (Membership.leave): its hand-over's first outcome. */
  #leaving: Promise<{ handedOver: number; kept: number }> | undefined;

  private constructor(
    readonly init: MembershipInit,
    readonly runtime: ClusterRuntime,
    /** Peers' controller requests being handled, by `peer/requestId`: each resolves its RPC answer. */
    private readonly serving: Map<string, (reply: { reply: ControllerReply; member: string }) => void>,
  ) {}

  /**
   * Storage writes that make the slot forget cluster `clusterName`: its identity there and its
   * copy of the metadata log, so that it joins the next cluster it meets as a new broker.
   * @example await storage.write(Membership.forget('origin'));
   */
  static forget(clusterName: string): StorageWrite[] {
    return [{ kind: 'putValue', key: identityKey(clusterName), value: undefined }, ...StoredRaftLog.erase(`${METADATA_GROUP}.${clusterName}`)];
  }

  static async start(init: MembershipInit): Promise<Membership> {
    const { storage, clusterName, rpc, link, clock, timing = BROWSER_TIMING } = init;
    const stored = (await storage.readValue(identityKey(clusterName))) as BrokerIdentity | undefined;
    const store = await StoredRaftLog.open(storage, `${METADATA_GROUP}.${clusterName}`);
    let membership: Membership | undefined;
    let lastImage: MetadataImage | undefined;
    let lastRecords = -1;
    /** Told at the first image, then at each change. */
    let lastHealth: ReplicationHealth | undefined;
    const serving = new Map<string, (reply: { reply: ControllerReply; member: string }) => void>();
    const runtime = new ClusterRuntime({
      clock,
      committer: init.committer,
      store,
      transport: {
        hello: (hello) => {
          for (const { peerId } of link.peers()) {
            rpc.request(peerId, 'clusterHello', hello, { timeoutMs: timing.requestTimeoutMs }).then(
              (answer) => membership?.runtime.hello(peerId, answer),
              () => undefined, // a peer gone or slow: the next round greets it again
            );
          }
        },
        request: (to, requestId, request) => {
          rpc.request(to, 'controller', { kind: 'request', request }, { timeoutMs: timing.requestTimeoutMs }).then(
            (answer) => {
              if (answer.kind === 'reply') membership?.runtime.answer(requestId, answer.reply, answer.member);
            },
            () => undefined, // unanswered: the session asks again, maybe elsewhere
          );
        },
        reply: (to, requestId, reply, member) => {
          const key = `${to}/${requestId}`;
          serving.get(key)?.({ reply, member });
          serving.delete(key);
        },
        raft: (to, clusterId, messages) => rpc.trySend(to, 'raft', { clusterId, messages }),
        members: () => link.members(),
      },
      session: {
        clusterName,
        incarnation: init.incarnation,
        deviceId: init.deviceId,
        ...(init.hostedBy === undefined ? {} : { hostedBy: init.hostedBy }),
        self: init.peerId,
        endpoints: [init.peerId],
        ...(stored && { identity: stored }),
        newClusterId: init.randomId(),
      },
      timing,
      controller: {
        // Replicated partitions (raft) up to three replicas; one unless the creator asks for more,
        // as Kafka's default.replication.factor, until failover is fast (Cluster II, finished).
        maxReplicationFactor: 3,
        defaultReplicationFactor: 1,
        maxPartitions: 1_000,
        snapshotEveryRecords: 1_000,
        validateConfigs: (entries) => {
          try {
            parseConfigEntries([...entries].map(([name, value]) => ({ name, value })));
            return undefined;
          } catch (error) {
            return error as LetterboxError;
          }
        },
      },
      seed: hashOf(init.incarnation),
      persist: (identity) => {
        storage.write([{ kind: 'putValue', key: identityKey(clusterName), value: identity }]).catch(init.onError);
      },
      events: {
        // The controller steps on every tick too: the image changed when records were applied or a snapshot restored.
        controllerStepped: ({ image }) => {
          if (image === lastImage && image.recordsApplied === lastRecords) return;
          lastImage = image;
          lastRecords = image.recordsApplied;
          init.imageChanged(image);
          const health = replicationHealth(image);
          if (health.underReplicated !== lastHealth?.underReplicated || health.offline !== lastHealth.offline) init.onEvent({ type: 'replication_health', ...health });
          lastHealth = health;
        },
        memberStarted: ({ clusterId, brokerId, bootstrap }) => init.onEvent({ type: 'cluster_joined', clusterId, brokerId, bootstrap: bootstrap === true }),
        mismatch: (error) => {
          if (membership !== undefined) membership.#mismatch = error;
          const { clusterName, clusterId, otherClusterId, message } = error;
          init.onEvent({ type: 'cluster_mismatch', clusterName, clusterId, otherClusterId, message });
        },
        problem: init.onError,
      },
    });
    membership = new Membership(init, runtime, serving);
    membership.#listen();
    runtime.start();
    return membership;
  }

  #listen(): void {
    const { rpc, link } = this.init;
    this.#stops.push(
      rpc.handle('clusterHello', (hello, { peerId }) => this.runtime.hello(peerId, hello)),
      rpc.handle('controller', (body, { peerId, signal }) => {
        if (body.kind !== 'request') throw new InvalidArgumentError(`a controller ${body.kind} from ${peerId}, not a request`);
        return new Promise((resolve, reject) => {
          const requestId = this.#nextServed++;
          const key = `${peerId}/${requestId}`;
          this.serving.set(key, ({ reply, member }) => resolve({ kind: 'reply', reply, member }));
          signal.addEventListener('abort', () => (this.serving.delete(key), reject(new AbortedError('the peer left'))), { once: true });
          this.runtime.request(peerId, requestId, body.request);
        });
      }),
      rpc.handle('raft', (frame, { peerId }) => {
        // A member's frames come from the address it registered: another peer claiming its id is refused.
        const admitted = frame.messages.filter(({ message }) => {
          const member = parseMemberId(message.from);
          const registered = member && this.runtime.controller?.image.broker(member.brokerId)?.endpoints[0];
          if (registered === undefined || registered === peerId) return true;
          this.#refuse(new BrokerIdentityError('DUPLICATE_BROKER_REGISTRATION', member!.brokerId, `peer ${peerId} sent raft messages as broker ${member!.brokerId}, registered at ${registered}`));
          return false;
        });
        for (const error of this.runtime.receiveRaft(frame.clusterId, admitted)) this.#refuse(error);
        return frame;
      }),
      link.on('left', ({ peerId, reason }) => {
        // A tab of this browser whose slot lock was released is gone for good: fenced at once.
        const hello = this.runtime.session.peers.get(peerId)?.hello;
        if (reason === TAB_CLOSED && hello?.brokerId !== undefined) this.runtime.brokerGone(hello.brokerId, hello.incarnation);
        this.runtime.peerLeft(peerId);
      }),
    );
  }

  #refuse(error: LetterboxError): void {
    this.#refused++;
    this.init.onError(error);
  }

  /**
   * An admin request through the active controller; resolves with its answer, rejects with
   * TimeoutError when none answered within `timeoutMs`, or AbortedError.
   * @example const reply = await membership.admin({ type: 'createTopics', topics: [{ name: 'orders' }] }, 30_000);
   */
  admin(request: ControllerRequestBody, timeoutMs: number, signal?: AbortSignal): Promise<ControllerReply> {
    return new Promise((resolve, reject) => {
      const cancel = this.runtime.client(request, (reply) => {
        cancelTimer();
        resolve(reply);
      });
      const cancelTimer = this.init.clock.after(timeoutMs, () => {
        cancel();
        reject(new TimeoutError(`no controller of cluster ${this.init.clusterName} answered ${request.type} within ${timeoutMs} ms`));
      });
      signal?.addEventListener('abort', () => (cancel(), cancelTimer(), reject(new AbortedError(`${request.type} aborted`))), { once: true });
    });
  }

  /** The local image, once this broker has a member. */
  get image(): MetadataImage | undefined {
    return this.runtime.controller?.image;
  }

  /** What describeCluster shows: this broker, the cluster's brokers and its active controller. */
  info(): ClusterInfo {
    const { session } = this.runtime;
    const image = this.image;
    const leader = this.runtime.raft?.leader;
    const health = image === undefined ? { underReplicated: 0, offline: 0 } : replicationHealth(image);
    return {
      clusterName: this.init.clusterName,
      ...(session.identity && { clusterId: session.identity.clusterId, brokerId: session.identity.brokerId }),
      controller: leader === undefined ? null : (parseMemberId(leader)?.brokerId ?? null),
      voters: (this.runtime.raft?.membership.voters ?? []).flatMap((id) => parseMemberId(id)?.brokerId ?? []),
      underReplicatedPartitions: health.underReplicated,
      offlinePartitions: health.offline,
      brokers: (image?.brokers() ?? []).map(({ brokerId, incarnation, endpoints, deviceId, hostedBy, fenced }) => ({ brokerId, incarnation, endpoints: [...endpoints], deviceId, ...(hostedBy === undefined ? {} : { hostedBy }), fenced })),
      ...(this.#mismatch && { mismatch: { clusterId: this.#mismatch.clusterId, otherClusterId: this.#mismatch.otherClusterId, message: this.#mismatch.message } }),
      refusedMessages: this.#refused,
      rounds: session.round,
      heard: [...session.peers].map(([peer, { hello, round }]) => ({ peer, ...(hello.cluster && { clusterId: hello.cluster.clusterId }), round })),
    };
  }

  /**
   * Leaves the cluster on purpose (the tab closes): hands every raft group this broker leads
   * to an in-sync follower — again while it stays open, should one fail or come back — then
   * has the controller fence it, as a closed tab is, so that none comes back. Resolves once it
   * leads none, or after an election timeout, with how many moved and how many it still leads.
   * @example const { handedOver, kept } = await membership.leave();
   */
  leave(): Promise<{ handedOver: number; kept: number }> {
    const executor = this.runtime.executor;
    if (executor === undefined) return Promise.resolve({ handedOver: 0, kept: 0 });
    if (this.#leaving === undefined) {
      const { timing } = this.runtime.init;
      const handOver = handOverLeadership(executor, { clock: this.init.clock, lagTicks: timing.electionTicks, checkEveryMs: timing.tickMs, boundMs: timing.tickMs * timing.electionTicks });
      this.#stops.push(handOver.stop);
      this.#leaving = handOver.settled.then((outcome) => {
        this.runtime.leave();
        return outcome;
      });
    }
    return this.#leaving;
  }

  /** Whether `storage` holds a broker of cluster `clusterName` (registered there or bootstrapped it). @example await Membership.holdsBroker(storage, 'origin') */
  static async holdsBroker(storage: Storage, clusterName: string): Promise<boolean> {
    return (await storage.readValue(identityKey(clusterName))) !== undefined;
  }

  /** Runs `stop` when the membership closes (handlers of services that run only in a cluster). */
  onClose(stop: () => void): void {
    this.#stops.push(stop);
  }

  close(): void {
    for (const stop of this.#stops.splice(0)) stop();
    this.runtime.stop();
  }
}

/** A 31-bit seed from a string (the raft core's election jitter differs between brokers). */
function hashOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 1;
}
