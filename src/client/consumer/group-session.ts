import type { JoinReply } from '../../node';
import type { ClientContext, RemoteNode } from '../context';
import type { Instrumentation } from '../events';
import type { Logger } from '../logger';
import { isRejoin, type Generation } from './generation';
import type { OffsetManager } from './offsets';
import type { Subscriptions } from './subscriptions';
import type { ConsumerEvents, ConsumerSettings } from './types';

type SessionSettings = Pick<ConsumerSettings, 'partitionAssigners' | 'sessionTimeout' | 'rebalanceTimeout' | 'heartbeatInterval'>;

/**
 * A member's session with its group coordinator, as KafkaJS's consumer group: join and sync
 * (which yield a generation and its partitions), heartbeats, and leaving. The member id
 * outlives a generation, so a rejoin keeps it unless the coordinator forgot it.
 */
export class GroupSession {
  readonly #groupId: string;
  readonly #context: ClientContext;
  readonly #config: SessionSettings;
  readonly #subscriptions: Subscriptions;
  readonly #offsets: OffsetManager;
  readonly #logger: Logger;
  readonly #instrumentation: Instrumentation<ConsumerEvents>;
  #memberId: string | null = null;
  #generation: Generation | undefined;

  constructor(parts: {
    groupId: string;
    context: ClientContext;
    config: SessionSettings;
    subscriptions: Subscriptions;
    offsets: OffsetManager;
    logger: Logger;
    instrumentation: Instrumentation<ConsumerEvents>;
  }) {
    this.#groupId = parts.groupId;
    this.#context = parts.context;
    this.#config = parts.config;
    this.#subscriptions = parts.subscriptions;
    this.#offsets = parts.offsets;
    this.#logger = parts.logger;
    this.#instrumentation = parts.instrumentation;
  }

  /** The generation joined last, until the member leaves. */
  get generation(): Generation | undefined {
    return this.#generation;
  }

  /** Joins and syncs the group: the new generation, its partitions at their committed (or reset, or sought) offsets. */
  async join(node: RemoteNode): Promise<Generation> {
    const started = Date.now();
    const topics = await this.#subscriptions.topics(node);
    const joined: JoinReply = await node.joinGroup({
      groupId: this.#groupId,
      memberId: this.#memberId,
      clientId: this.#context.clientId,
      sessionTimeoutMs: this.#config.sessionTimeout,
      rebalanceTimeoutMs: this.#config.rebalanceTimeout,
      topics,
      assignors: this.#config.partitionAssigners,
    });
    this.#memberId = joined.memberId;
    const { assignment } = await node.syncGroup({ groupId: this.#groupId, memberId: joined.memberId, generationId: joined.generationId });
    const owned = await this.#offsets.assign(node, assignment);
    const generation: Generation = { memberId: joined.memberId, generationId: joined.generationId, owned, stale: false };
    this.#generation = generation;
    this.#offsets.applySeeks(generation);
    this.#logger.info('joined group', { groupId: this.#groupId, memberId: joined.memberId, generationId: joined.generationId, assignment });
    this.#instrumentation.emit('consumer.group_join', () => ({
      duration: Date.now() - started,
      groupId: this.#groupId,
      isLeader: joined.leaderId === joined.memberId,
      leaderId: joined.leaderId,
      groupProtocol: joined.assignor,
      memberId: joined.memberId,
      memberAssignment: assignment,
    }));
    return generation;
  }

  /**
   * Heartbeats for `generation` every heartbeatInterval until the returned function is called;
   * when the coordinator says to rejoin, marks it stale and calls `onStale`.
   */
  heartbeats(node: RemoteNode, generation: Generation, onStale: () => Promise<void>): () => void {
    const heartbeat = async () => {
      if (generation.stale) return;
      try {
        await node.heartbeat({ groupId: this.#groupId, memberId: generation.memberId, generationId: generation.generationId });
        this.#instrumentation.emit('consumer.heartbeat', () => ({ groupId: this.#groupId, memberId: generation.memberId, groupGenerationId: generation.generationId }));
      } catch (error) {
        if (this.rejoins(error)) {
          generation.stale = true;
          await onStale();
        }
      }
    };
    const timer = setInterval(() => void heartbeat(), this.#config.heartbeatInterval);
    return () => clearInterval(timer);
  }

  /** Whether `error` means this member must join again; forgets its member id when the coordinator did. */
  rejoins(error: unknown): boolean {
    if (!isRejoin(error)) return false;
    if (error.code === 'UNKNOWN_MEMBER_ID') this.#memberId = null;
    return true;
  }

  /** Leaves the group, committing what was resolved first unless autoCommit is off (KafkaJS gates every commit of its own on it). */
  async leave(node: RemoteNode, autoCommit: boolean): Promise<void> {
    const generation = this.#generation;
    this.#generation = undefined;
    if (this.#memberId === null) return;
    const memberId = this.#memberId;
    this.#memberId = null;
    if (autoCommit && generation !== undefined && !generation.stale) await this.#offsets.commitResolved(generation).catch(() => undefined);
    await node.leaveGroup({ groupId: this.#groupId, memberId }).catch(() => undefined);
  }
}
