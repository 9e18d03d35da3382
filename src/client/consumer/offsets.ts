import type { Assignment, OffsetCommit } from '../../node';
import type { ClientContext, RemoteNode } from '../context';
import type { Instrumentation } from '../events';
import { isRejoin, keyOf, type Generation, type OwnedPartition } from './generation';
import type { Subscriptions } from './subscriptions';
import type { ConsumerEvents, ConsumerRunConfig, OffsetsByTopicPartition } from './types';

export interface OffsetManagerParts {
  groupId: string;
  context: ClientContext;
  subscriptions: Subscriptions;
  instrumentation: Instrumentation<ConsumerEvents>;
}

/**
 * A member's offsets, as KafkaJS's offset manager: where each partition it is assigned starts
 * (its committed offset, else auto.offset.reset), what was resolved and not yet committed,
 * when autoCommit's interval or threshold is due, and seeks waiting for their partition.
 */
export class OffsetManager {
  readonly #parts: OffsetManagerParts;
  readonly #seeks = new Map<string, number>();
  #uncommitted = 0;
  #lastCommitAt = 0;

  constructor(parts: OffsetManagerParts) {
    this.#parts = parts;
  }

  /** The partitions of `assignment`, each at its committed offset or, without one, reset. */
  async assign(node: RemoteNode, assignment: Assignment): Promise<Map<string, OwnedPartition>> {
    const owned = new Map<string, OwnedPartition>();
    const committed = await node.fetchOffsets(this.#parts.groupId);
    const toReset: OwnedPartition[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const found = committed.find((c) => c.topic === topic && c.partition === partition);
        const p: OwnedPartition = { topic, partition, position: found?.offset ?? -1, resolved: found?.offset ?? -1, committed: found?.offset ?? -1 };
        if (found === undefined || found.offset < 0) toReset.push(p);
        owned.set(keyOf(topic, partition), p);
      }
    }
    await this.reset(node, toReset);
    return owned;
  }

  /** Kafka's auto.offset.reset: earliest when the subscription reads from the beginning, else latest. */
  async reset(node: RemoteNode, partitions: OwnedPartition[]): Promise<void> {
    if (partitions.length === 0) return;
    const offsets = await node.listOffsets(partitions.map((p) => ({ topic: p.topic, partition: p.partition, query: this.#parts.subscriptions.fromBeginning(p.topic) ? 'earliest' : 'latest' })));
    partitions.forEach((p, i) => {
      p.position = offsets[i] ?? 0;
      p.resolved = p.position;
    });
  }

  /** Moves partition `key` to `offset`: now if `generation` owns it, else once a generation that owns it is applied. */
  seek(key: string, offset: number, generation: Generation | undefined): void {
    this.#seeks.set(key, offset);
    this.applySeeks(generation);
  }

  /** Moves the partitions of `generation` that were sought to their offsets (committed with the next commit). */
  applySeeks(generation: Generation | undefined): void {
    const owned = generation?.owned;
    if (owned === undefined) return;
    for (const [key, offset] of this.#seeks) {
      const p = owned.get(key);
      if (p === undefined) continue;
      p.position = offset;
      p.resolved = offset;
      p.committed = -2; // differs from any real offset: the sought offset gets committed
      this.#seeks.delete(key);
    }
  }

  /** Whether a seek waits for its partition. */
  get seeking(): boolean {
    return this.#seeks.size > 0;
  }

  /** Marks `offset` of `owned` processed (a commit commits offset + 1), counting records resolved since `fetchedFrom` towards autoCommitThreshold. */
  resolve(owned: OwnedPartition, offset: string, fetchedFrom: number): void {
    const next = Number(offset) + 1;
    if (next > owned.resolved) {
      this.#uncommitted += next - Math.max(owned.resolved, fetchedFrom);
      owned.resolved = next;
    }
  }

  /** The resolved offsets of `generation` not yet committed. */
  uncommitted(generation: Generation): OffsetsByTopicPartition {
    const dirty = [...generation.owned.values()].filter((p) => p.resolved !== p.committed && p.resolved >= 0);
    return { topics: groupByTopic(dirty.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.resolved }))) };
  }

  /** Commits resolved offsets when the interval or threshold says so, or (`everyBatch`) when neither is set. */
  async commitIfNecessary(generation: Generation, run: Pick<ConsumerRunConfig, 'autoCommitInterval' | 'autoCommitThreshold'>, everyBatch = true): Promise<void> {
    const interval = run.autoCommitInterval ?? null;
    const threshold = run.autoCommitThreshold ?? null;
    const due =
      (everyBatch && interval === null && threshold === null) ||
      (interval !== null && Date.now() - this.#lastCommitAt >= interval) ||
      (threshold !== null && this.#uncommitted >= threshold);
    if (due) await this.commitResolved(generation);
  }

  /** eachBatch's `commitOffsetsIfNecessary`: `offsets` if given, else what autoCommit says is due. */
  async commitOffsetsIfNecessary(generation: Generation, run: Pick<ConsumerRunConfig, 'autoCommit' | 'autoCommitInterval' | 'autoCommitThreshold'>, offsets?: OffsetsByTopicPartition): Promise<void> {
    return offsets === undefined ? this.commitIfNecessary(generation, run, run.autoCommit) : this.#commit(generation, flatten(offsets));
  }

  async commitResolved(generation: Generation): Promise<void> {
    const offsets = flatten(this.uncommitted(generation));
    if (offsets.length > 0) await this.#commit(generation, offsets);
  }

  /** Commits `offsets` now, as resolved: a later commit of resolved offsets goes on from them. */
  async commitOffsets(generation: Generation, offsets: OffsetCommit[]): Promise<void> {
    for (const { topic, partition, offset } of offsets) {
      const owned = generation.owned.get(keyOf(topic, partition));
      if (owned !== undefined) owned.resolved = offset;
    }
    await this.#commit(generation, offsets);
  }

  async #commit(generation: Generation, offsets: OffsetCommit[]): Promise<void> {
    if (offsets.length === 0) return;
    const { groupId, context, instrumentation } = this.#parts;
    const node = await context.node();
    const counted = this.#uncommitted; // records resolved while this commit is in flight stay counted
    try {
      await node.commitOffsets({ groupId, memberId: generation.memberId, generationId: generation.generationId, offsets });
    } catch (error) {
      if (isRejoin(error)) generation.stale = true;
      throw error;
    }
    for (const { topic, partition, offset } of offsets) {
      const owned = generation.owned.get(keyOf(topic, partition));
      if (owned !== undefined) owned.committed = offset;
    }
    this.#uncommitted = Math.max(0, this.#uncommitted - counted);
    this.#lastCommitAt = Date.now();
    instrumentation.emit('consumer.commit_offsets', () => ({
      groupId,
      memberId: generation.memberId,
      groupGenerationId: generation.generationId,
      topics: groupByTopic(offsets),
    }));
  }
}

function flatten(offsets: OffsetsByTopicPartition): OffsetCommit[] {
  return offsets.topics.flatMap(({ topic, partitions }) => partitions.map(({ partition, offset }) => ({ topic, partition, offset: Number(offset), metadata: null })));
}

function groupByTopic(offsets: ReadonlyArray<{ topic: string; partition: number; offset: number }>): OffsetsByTopicPartition['topics'] {
  const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
  for (const { topic, partition, offset } of offsets) {
    const list = byTopic.get(topic) ?? [];
    list.push({ partition, offset: String(offset) });
    byTopic.set(topic, list);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}
