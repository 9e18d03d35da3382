import type { JoinReply } from '../../node';
import type { ClientContext, RemoteNode } from '../context';
import type { Instrumentation } from '../events';
import type { Logger } from '../logger';
import { isRejoin, type Generation } from './generation';
import type { OffsetManager } from './offsets';
import type { Subscriptions } from './subscriptions';
import type { ConsumerEvents, ConsumerSettings } from './types';

/**
 * A member's session with its group coordinator, as KafkaJS's consumer group: join and sync
 * (which yield a generation and its partitions), heartbeats, and leaving. The member id
 * outlives a generation, so a rejoin keeps it unless the coordinator forgot it.
 */
export interface GroupSessionParts {
  groupId: string;
  context: ClientContext;
  config: Pick<ConsumerSettings, 'partitionAssigners' | 'sessionTimeout' | 'rebalanceTimeout' | 'heartbeatInterval'>;
  subscriptions: Subscriptions;
  offsets: OffsetManager;
  logger: Logger;
  instrumentation: Instrumentation<ConsumerEvents>;
}

/**
 * A member's session with its group coordinator, as KafkaJS's consumer group: join and sync
 * (which yield a generation and its partitions), heartbeats, and leaving. The member id
 * outlives a generation, so a rejoin keeps it unless the coordinator forgot it.
 */
export class GroupSession {
  readonly #parts: GroupSessionParts;
  #memberId: string | null = null;
  #generation: Generation | undefined;

  constructor(parts: GroupSessionParts) {
    this.#parts = parts;
  }

  /** The generation joined last, until the member leaves. */
  get generation(): Generation | undefined {
    return this.#generation;
  }

  /** Joins and syncs the group: the new generation, its partitions at their committed (or reset, or sought) offsets. */
  async join(node: RemoteNode): Promise<Generation> {
    const { groupId, context, config, subscriptions, offsets, logger, instrumentation } = this.#parts;
    const started = Date.now();
    const topics = await subscriptions.topics(node);
    const joined: JoinReply = await node.joinGroup({
      groupId,
      memberId: this.#memberId,
      clientId: context.clientId,
      sessionTimeoutMs: config.sessionTimeout,
      rebalanceTimeoutMs: config.rebalanceTimeout,
      topics,
      assignors: config.partitionAssigners,
    });
    this.#memberId = joined.memberId;
    const { assignment } = await node.syncGroup({ groupId, memberId: joined.memberId, generationId: joined.generationId });
    const owned = await offsets.assign(node, assignment);
    const generation: Generation = { memberId: joined.memberId, generationId: joined.generationId, owned, stale: false };
    this.#generation = generation;
    offsets.applySeeks(generation);
    logger.info('joined group', { groupId, memberId: joined.memberId, generationId: joined.generationId, assignment });
    instrumentation.emit('consumer.group_join', () => ({
      duration: Date.now() - started,
      groupId,
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
    const { groupId, config, instrumentation } = this.#parts;
    const heartbeat = async () => {
      if (generation.stale) return;
      try {
        await node.heartbeat({ groupId, memberId: generation.memberId, generationId: generation.generationId });
        instrumentation.emit('consumer.heartbeat', () => ({ groupId, memberId: generation.memberId, groupGenerationId: generation.generationId }));
      } catch (error) {
        if (this.rejoins(error)) {
          generation.stale = true;
          await onStale();
        }
      }
    };
    const timer = setInterval(() => void heartbeat(), config.heartbeatInterval);
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
    const { groupId, offsets } = this.#parts;
    const generation = this.#generation;
    this.#generation = undefined;
    if (this.#memberId === null) return;
    const memberId = this.#memberId;
    this.#memberId = null;
    if (autoCommit && generation !== undefined && !generation.stale) await offsets.commitResolved(generation).catch(() => undefined);
    await node.leaveGroup({ groupId, memberId }).catch(() => undefined);
  }
}
