import type { Clock } from '../clock';
import { GroupError, InconsistentClusterIdError, InvalidArgumentError, LetterboxError, NotCoordinatorError, PeerNotConnectedError } from '../errors';
import { coordinatorPartition, type GroupDescription, type GroupErrorCode, type GroupStateName, type JoinReply, type OffsetCommit, type SyncReply } from '../group';
import type { PartitionLog } from '../log';
import type { PeerRpc } from '../network/worker';
import type { GroupAnswer, GroupCall, GroupMessage } from '../protocol';
import type { JoinGroupRequest, MemberRequest, NodeApi } from './api';
import type { Executor } from './executor';
import { GroupRuntime } from './groups';
import { OFFSETS_TOPIC, OffsetsTopicStore, readOffsets } from './offsets-topic';
import type { Route } from './routing';

// Consumer groups of a cluster: one group across tabs. A group's coordinator is the leader of
// the group's partition of `__consumer_offsets` (coordinatorPartition, Kafka's rule), and its
// committed offsets are records of that partition. A broker serves a client's group call
// itself when it leads that partition, else forwards it worker to worker (`group`, FORMATS.md);
// a broker answers a forwarded call only for groups it coordinates (never forwarding again),
// else NotCoordinatorError, and the forwarder finds the coordinator again from its image and
// retries within the call's timeout. The offsets topic is created through the controller on
// the first group call, as Kafka creates it lazily. A broker holds a coordinator (a GroupRuntime)
// per offsets partition it leads, loaded from the partition's records at the leader epoch it
// leads at before serving any call of it, and drops it when it no longer leads there
// (coordinatorAction; the simulation in test/sim/coordinators runs the same rule).

/** A group call's bound when the caller gives none (KafkaJS's requestTimeout is 30 s); a join waits for its rebalance on top. */
const GROUP_CALL_TIMEOUT_MS = 30_000;
/** Pause before a call looks for the group's coordinator again (it moved, or its broker is not reachable yet). */
const RETRY_BACKOFF_MS = 100;

/** What group routing needs of the broker. */
export interface GroupHost {
  readonly clusterId: string;
  readonly rpc: PeerRpc;
  readonly clock: Clock;
  /** The offsets topic's partition count in the image; undefined while it does not exist. */
  offsetsPartitions(): number | undefined;
  /** Where a partition of the offsets topic is led: here, or by another broker (-1: none now). */
  offsetsRoute(partition: number): Route;
  /** The leader epoch of a partition of the offsets topic in this broker's metadata (-1: none). */
  offsetsLeaderEpoch(partition: number): number;
  /** The offsets topic's partition held here, or undefined. */
  offsetsLog(partition: number): PartitionLog | undefined;
  /** Appends a batch to a partition of the offsets topic led here, resolving once it is committed (acks -1). */
  appendOffsets(partition: number, bytes: Uint8Array): Promise<unknown>;
  /** The partition count of every topic now: what a new coordinator keeps loaded offsets by. */
  topicPartitions(): Record<string, number>;
  /** The peer id of a live broker, or undefined. */
  addressOf(brokerId: number): string | undefined;
  /** The live brokers of the cluster other than this one. */
  otherBrokers(): number[];
  /** Has the controller create the offsets topic (if it does not exist); resolves once this broker holds what is placed on it. */
  createOffsetsTopic(): Promise<void>;
}

type GroupMethods = Pick<NodeApi, 'joinGroup' | 'syncGroup' | 'heartbeat' | 'leaveGroup' | 'commitOffsets' | 'fetchOffsets' | 'listGroups' | 'describeGroups' | 'deleteGroups'>;

const emptyGroup = (groupId: string): GroupDescription => ({ groupId, state: 'Empty', generationId: 0, assignor: null, members: [] });

/** What a broker does with its coordinator of an offsets partition, given its metadata now. */
export type CoordinatorAction = 'keep' | 'load' | 'forget';

/**
 * A broker holds a coordinator of an offsets partition exactly while its metadata makes it the
 * partition's leader, loaded at the epoch it leads at. Keyed by the epoch, not by "already
 * loaded": a broker that led, lost and leads again reloads, even when its metadata skipped the
 * epochs between, since another coordinator's commits went to the records meanwhile.
 * @example coordinatorAction(3, true, 5) // → 'load'
 */
export function coordinatorAction(heldEpoch: number | undefined, leadsHere: boolean, epoch: number): CoordinatorAction {
  if (!leadsHere) return heldEpoch === undefined ? 'keep' : 'forget';
  return heldEpoch === epoch ? 'keep' : 'load';
}

/** The coordinator of an offsets partition led here: its groups, loaded at `epoch`. */
interface HeldCoordinator {
  readonly epoch: number;
  readonly runtime: GroupRuntime;
  readonly loaded: Promise<void>;
}

/** Whether a failed attempt may succeed at the coordinator the image names next. */
const reroutes = (error: unknown) => error instanceof NotCoordinatorError || error instanceof PeerNotConnectedError;

/**
 * The consumer groups of a broker of a cluster: the coordinators of the groups whose offsets
 * partitions it leads (a GroupRuntime over each such partition), and the routing of every
 * group call to its group's coordinator.
 * @example const groups = new ClusterGroups(host, executor, 'a1b2c3d4'); const reply = await groups.joinGroup(request);
 */
export class ClusterGroups implements GroupMethods {
  readonly #host: GroupHost;
  readonly #executor: Executor;
  readonly #instanceId: string;
  /** By offsets partition: the coordinators held (loaded or loading). */
  readonly #held = new Map<number, HeldCoordinator>();
  /** Numbers the coordinators made, so member ids of one never match another's (generations restart in each). */
  #coordinatorsMade = 0;
  #stopped = false;
  #creating: Promise<void> | undefined;

  constructor(host: GroupHost, executor: Executor, instanceId: string) {
    this.#host = host;
    this.#executor = executor;
    this.#instanceId = instanceId;
  }

  /**
   * The coordinators held now, for the broker's topic changes (topicsChanged, topicDeleted, ...).
   * @example for (const runtime of clusterGroups.runtimes()) runtime.topicsChanged(partitions);
   */
  runtimes(): GroupRuntime[] {
    return this.#current().map((held) => held.runtime);
  }

  async joinGroup(request: JoinGroupRequest): Promise<JoinReply> {
    const { groupId, memberId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics, assignors } = request;
    const timeoutMs = (Number.isSafeInteger(rebalanceTimeoutMs) && rebalanceTimeoutMs > 0 ? rebalanceTimeoutMs : 0) + GROUP_CALL_TIMEOUT_MS;
    return answered(await this.#call({ type: 'join', groupId, memberId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics, assignors }, timeoutMs), 'joined').reply;
  }

  async syncGroup({ groupId, memberId, generationId }: MemberRequest): Promise<SyncReply> {
    return { assignment: answered(await this.#call({ type: 'sync', groupId, memberId, generationId }), 'assignment').assignment };
  }

  async heartbeat({ groupId, memberId, generationId }: MemberRequest): Promise<void> {
    answered(await this.#call({ type: 'heartbeat', groupId, memberId, generationId }), 'done');
  }

  async leaveGroup({ groupId, memberId }: { groupId: string; memberId: string }): Promise<void> {
    answered(await this.#call({ type: 'leave', groupId, memberId }), 'done');
  }

  async commitOffsets({ groupId, memberId, generationId, offsets }: { groupId: string; memberId: string | null; generationId: number; offsets: OffsetCommit[] }): Promise<void> {
    answered(await this.#call({ type: 'commit', groupId, memberId, generationId, offsets }), 'done');
  }

  async fetchOffsets(groupId: string): Promise<OffsetCommit[]> {
    return [...answered(await this.#call({ type: 'fetchOffsets', groupId }), 'offsets').offsets];
  }

  /**
   * The groups of every broker's coordinator, as KafkaJS's admin.listGroups asks every broker.
   * @example const groups = await clusterGroups.listGroups();
   */
  async listGroups(): Promise<Array<{ groupId: string; state: GroupStateName }>> {
    const { rpc, clusterId } = this.#host;
    const asked = this.#host.otherBrokers().map(async (brokerId) => {
      const peer = this.#host.addressOf(brokerId);
      if (peer === undefined) throw new PeerNotConnectedError(String(brokerId), `broker ${brokerId} cannot be reached to list its groups`);
      const answer = await rpc.request(peer, 'group', { kind: 'request', clusterId, call: { type: 'list' } });
      return answered(answerOf(answer, brokerId), 'groups').groups;
    });
    const all = [this.#listHere(), ...(await Promise.all(asked))].flat();
    return [...new Map(all.map((g) => [g.groupId, { ...g }])).values()].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  async describeGroups(groupIds: string[]): Promise<GroupDescription[]> {
    if (!Array.isArray(groupIds)) throw new InvalidArgumentError('describeGroups takes an array of group ids');
    return Promise.all(groupIds.map(async (groupId) => answered(await this.#call({ type: 'describe', groupId }), 'description').description));
  }

  async deleteGroups(groupIds: string[]): ReturnType<NodeApi['deleteGroups']> {
    if (!Array.isArray(groupIds)) throw new InvalidArgumentError('deleteGroups takes an array of group ids');
    return Promise.all(
      groupIds.map(async (groupId) => {
        try {
          answered(await this.#call({ type: 'deleteGroup', groupId }), 'done');
          return { groupId, error: null };
        } catch (error) {
          if (error instanceof GroupError) return { groupId, error: { code: error.code as GroupErrorCode, message: error.message } };
          throw error;
        }
      }),
    );
  }

  /**
   * Answers other brokers' forwarded group calls for the groups coordinated here (and their
   * `list` calls); returns a function that stops serving.
   * @example membership.onClose(clusterGroups.serve());
   */
  serve(): () => void {
    return this.#host.rpc.handle('group', async (body): Promise<GroupMessage> => {
      if (body.kind !== 'request') throw new InvalidArgumentError('a group response sent as a request');
      if (body.clusterId !== this.#host.clusterId) throw new InconsistentClusterIdError(`a group call for cluster ${body.clusterId}; this is cluster ${this.#host.clusterId}`);
      try {
        return { kind: 'response', answer: await this.#serveHere(body.call) };
      } catch (error) {
        if (error instanceof LetterboxError) return { kind: 'response', answer: { type: 'error', error } };
        throw error;
      }
    });
  }

  /** Stops coordinating: waiting calls are refused (retriably). */
  stop(): void {
    this.#stopped = true;
    for (const partition of [...this.#held.keys()]) this.#forget(partition);
  }

  /** Runs a call at the group's coordinator, finding it again while it moved or cannot be reached, within `timeoutMs`. */
  async #call(call: Exclude<GroupCall, { type: 'list' }>, timeoutMs = GROUP_CALL_TIMEOUT_MS): Promise<GroupAnswer> {
    const { clock } = this.#host;
    const deadline = clock.monotonic() + timeoutMs;
    for (;;) {
      try {
        return await this.#attempt(call, deadline);
      } catch (error) {
        const left = deadline - clock.monotonic();
        if (!reroutes(error) || left <= 0) throw error;
        await new Promise<void>((resolve) => clock.after(Math.min(RETRY_BACKOFF_MS, left), resolve));
      }
    }
  }

  async #attempt(call: Exclude<GroupCall, { type: 'list' }>, deadline: number): Promise<GroupAnswer> {
    const host = this.#host;
    if (host.offsetsPartitions() === undefined) {
      this.#creating ??= host.createOffsetsTopic().finally(() => (this.#creating = undefined));
      await this.#creating;
    }
    const partitions = host.offsetsPartitions();
    if (partitions === undefined) throw new NotCoordinatorError(call.groupId, `${OFFSETS_TOPIC} does not exist yet`);
    const partition = coordinatorPartition(call.groupId, partitions);
    const route = host.offsetsRoute(partition);
    if (route.here) return this.#serveHere(call);
    const peer = route.leader < 0 ? undefined : host.addressOf(route.leader);
    if (peer === undefined) throw new NotCoordinatorError(call.groupId, `the coordinator of group ${call.groupId} (the leader of ${OFFSETS_TOPIC} partition ${partition}) cannot be reached now`);
    const timeoutMs = Math.max(1, deadline - host.clock.monotonic());
    const answer = answerOf(await host.rpc.request(peer, 'group', { kind: 'request', clusterId: host.clusterId, call }, { timeoutMs }), route.leader);
    if (answer.type === 'error') throw answer.error;
    return answer;
  }

  /** Serves a call as the group's coordinator: throws NotCoordinatorError unless this broker leads the group's offsets partition. */
  async #serveHere(call: GroupCall): Promise<GroupAnswer> {
    if (call.type === 'list') return { type: 'groups', groups: this.#listHere() };
    const { groupId } = call;
    const partitions = this.#host.offsetsPartitions();
    const partition = partitions === undefined ? undefined : coordinatorPartition(groupId, partitions);
    const held = partition === undefined ? undefined : this.#coordinatorOf(partition);
    if (held === undefined) throw new NotCoordinatorError(groupId);
    await held.loaded;
    const { runtime } = held;
    switch (call.type) {
      case 'join': {
        const { memberId, clientId, sessionTimeoutMs, rebalanceTimeoutMs } = call;
        const reply = await runtime.request<JoinReply>({ type: 'join', groupId, memberId, clientId, sessionTimeoutMs, rebalanceTimeoutMs, topics: [...call.topics], assignors: [...call.assignors] });
        return { type: 'joined', reply };
      }
      case 'sync':
        return { type: 'assignment', assignment: (await runtime.request<SyncReply>({ type: 'sync', groupId, memberId: call.memberId, generationId: call.generationId })).assignment };
      case 'heartbeat':
        await runtime.request({ type: 'heartbeat', groupId, memberId: call.memberId, generationId: call.generationId });
        return { type: 'done' };
      case 'leave':
        await runtime.request({ type: 'leave', groupId, memberId: call.memberId });
        return { type: 'done' };
      case 'commit':
        await runtime.request({ type: 'commit', groupId, memberId: call.memberId, generationId: call.generationId, offsets: call.offsets.map((o) => ({ ...o })) });
        return { type: 'done' };
      case 'deleteGroup':
        await runtime.request({ type: 'deleteGroup', groupId });
        return { type: 'done' };
      case 'fetchOffsets':
        return { type: 'offsets', offsets: runtime.committed(groupId) };
      case 'describe':
        return { type: 'description', description: runtime.describe(groupId) ?? emptyGroup(groupId) };
    }
  }

  /** Whether this broker leads an offsets partition now (and holds its log), at which epoch. */
  #leadership(partition: number): { leadsHere: boolean; epoch: number; log: PartitionLog | undefined } {
    const host = this.#host;
    const log = !this.#stopped && host.offsetsRoute(partition).here ? host.offsetsLog(partition) : undefined;
    return { leadsHere: log !== undefined, epoch: host.offsetsLeaderEpoch(partition), log };
  }

  /** The coordinator of an offsets partition led here, loaded (or loading) at the epoch it is led at; undefined where it is not led here. */
  #coordinatorOf(partition: number): HeldCoordinator | undefined {
    const { leadsHere, epoch, log } = this.#leadership(partition);
    const held = this.#held.get(partition);
    const action = coordinatorAction(held?.epoch, leadsHere, epoch);
    if (action === 'keep') return held;
    this.#forget(partition);
    return action === 'load' && log !== undefined ? this.#load(partition, log, epoch) : undefined;
  }

  /** A coordinator of the partition's groups, loaded from its records; it writes there only while still led here at `epoch`. */
  #load(partition: number, log: PartitionLog, epoch: number): HeldCoordinator {
    const current = () => {
      const now = this.#leadership(partition);
      return this.#held.get(partition) === held && now.log === log && now.epoch === epoch ? log : undefined;
    };
    const store = new OffsetsTopicStore(() => (current() === undefined ? undefined : { append: (bytes) => this.#host.appendOffsets(partition, bytes) }), this.#host.clock);
    const runtime = new GroupRuntime(this.#executor, `${this.#instanceId}-${++this.#coordinatorsMade}`, new Map(), this.#host.topicPartitions(), undefined, store);
    const loaded = readOffsets(log).then((groups) => {
      for (const [groupId, offsets] of groups) {
        store.loaded(groupId, offsets);
        runtime.load(groupId, [...offsets.values()]);
      }
    });
    const held: HeldCoordinator = { epoch, runtime, loaded };
    this.#held.set(partition, held);
    loaded.catch(() => this.#held.get(partition) === held && this.#forget(partition));
    return held;
  }

  /** Drops the partition's coordinator: its waiting calls are refused (retriably) and its groups forgotten. */
  #forget(partition: number): void {
    this.#held.get(partition)?.runtime.stop();
    this.#held.delete(partition);
  }

  /** The coordinators of the partitions led here now, at the epoch they are led at; those of partitions no longer led here are dropped. */
  #current(): HeldCoordinator[] {
    return [...this.#held.keys()].flatMap((partition) => this.#coordinatorOf(partition) ?? []);
  }

  /** The groups coordinated here now. */
  #listHere(): Array<{ groupId: string; state: GroupStateName }> {
    return this.#current().flatMap((held) => held.runtime.list());
  }
}

/** A peer's `group` answer, or a typed error for a body that is not one. */
function answerOf(message: GroupMessage, brokerId: number): GroupAnswer {
  if (message.kind !== 'response') throw new InvalidArgumentError(`broker ${brokerId} answered a group call with a ${message.kind}`);
  return message.answer;
}

/** The answer of the expected type: throws its error, or a typed error for an answer of another type. */
function answered<T extends GroupAnswer['type']>(answer: GroupAnswer, type: T): Extract<GroupAnswer, { type: T }> {
  if (answer.type === 'error') throw answer.error;
  if (answer.type !== type) throw new InvalidArgumentError(`the coordinator answered with ${answer.type}, not ${type}`);
  return answer as Extract<GroupAnswer, { type: T }>;
}
