import { nextReplicaMembership, parseMemberId } from '../cluster';
import { InvalidRecordError, LetterboxError, NotEnoughReplicasError, NotLeaderOrFollowerError, StorageError } from '../errors';
import { producerRefusal, type PartitionLog, type ProducerBatch } from '../log';
import { readBatchHeader, type BatchHeader } from '../protocol';
import { inSyncVoters, type Input, type Membership, type NodeId, type RaftConfig } from '../raft';
import type { ApplicationEffect, Executor } from './executor';
import { encodePartitionImage, type PartitionRaftStore } from './partition-store';
import { leaderEpochRefusal } from './routing';

// One replica of a replicated partition on this broker: its raft group on the node's
// executor, whose log is the partition log. The leader takes produce requests: the batches
// are proposed as raft entries (offsets numbered in the proposing step) and the request is
// answered as its `acks` asks — 0 once proposed, 1 once durable on the leader, -1 (all)
// once committed, i.e. durable on a majority of the voters. The high watermark is the commit.

/** Kafka's acks: 0 (no answer awaited), 1 (the leader's write), -1 (committed by the replicas). */
export type Acks = -1 | 0 | 1;

interface PendingProduce {
  readonly input: Input;
  readonly acks: Acks;
  readonly resolve: (result: { baseOffset: number; duplicate?: true }) => void;
  readonly reject: (error: unknown) => void;
  /** Set by `proposed`: where the batches went and in which term. */
  placed?: { firstIndex: number; lastIndex: number; term: number; baseOffset: number; endOffset: number };
  /** The batches repeat ones written before (idempotence): answered with their offsets, nothing proposed. */
  duplicate?: true;
}

/**
 * A replica of a replicated partition, hosted on `executor` as raft group `group`.
 * @example const replica = new PartitionReplica({ executor, group: 'orders-0', log, store, config }); await replica.produce([bytes], -1);
 */
export class PartitionReplica {
  readonly #executor: Executor;
  readonly group: string;
  readonly log: PartitionLog;
  readonly #pending = new Set<PendingProduce>();
  #closed = false;
  /** A replica in sync was heard from within this many ticks: an election timeout. */
  readonly #lagTicks: number;

  /**
   * `replicas`: the member ids the metadata names as the partition's replicas now (old and new
   * ones while a reassignment runs): with the group's own membership, whom it takes frames from.
   */
  constructor(init: { executor: Executor; group: string; log: PartitionLog; store: PartitionRaftStore; config: RaftConfig; replicas?: () => readonly NodeId[] }) {
    this.#executor = init.executor;
    this.group = init.group;
    this.log = init.log;
    this.#lagTicks = init.config.electionTicks;
    init.store.onDurable(() => this.#settleDurable());
    init.executor.addRaftGroup(init.group, {
      config: init.config,
      store: init.store,
      // Frames come from the partition's replicas (as the metadata or the group's membership says; a
      // joining replica first hears from members its empty log does not know): any other is forged.
      accepts: (from) => {
        const membership = this.#executor.raftState(this.group)?.membership ?? { voters: init.config.voters, learners: [] };
        return membership.voters.includes(from) || membership.learners.includes(from) || (init.replicas?.().includes(from) ?? false);
      },
      handler: {
        effect: (effect, input) => this.#effect(effect, input),
        screen: (input) => this.#screen(input),
        stopped: (error) => this.#failAll(new StorageError(`the replica of ${this.group} stopped: ${String(error)}`, { retriable: true, cause: error })),
      },
    });
  }

  /** The leader as this replica knows it (a member id), if any. */
  get leader(): NodeId | undefined {
    return this.#executor.raftState(this.group)?.leader;
  }
  /** The partition's leader epoch: the raft term this replica is in. */
  get leaderEpoch(): number {
    return this.#executor.raftState(this.group)?.term ?? -1;
  }
  /**
   * While leading: the brokers of the replicas in sync — heard from within an election timeout
   * (Kafka's replica.lag.time.max.ms) and taking appends as they come; empty otherwise.
   * @example if (replica.isLeader) report(replica.inSyncBrokers());
   */
  inSyncBrokers(): number[] {
    const state = this.#executor.raftState(this.group);
    return state === undefined ? [] : inSyncVoters(state, this.#lagTicks).flatMap((id) => parseMemberId(id)?.brokerId ?? []);
  }

  /** The group's voters and learners as this replica knows them (its log's latest membership). */
  get membership(): Membership {
    return this.#executor.raftState(this.group)?.membership ?? { voters: [], learners: [] };
  }

  /** The leader's broker id as this replica knows it, -1 for none. */
  get leaderBroker(): number {
    return this.#leaderBroker();
  }
  get isLeader(): boolean {
    return this.#executor.raftState(this.group)?.role === 'leader';
  }

  /**
   * Appends `batches` through raft, answered as `acks` asks, with the offset of the first.
   * Refused with NotLeaderOrFollowerError here unless leading, with FencedLeaderEpochError or
   * UnknownLeaderEpochError when `leaderEpoch` (≥ 0) is not this leader's; a write whose entry
   * a new leader replaced is refused (retriable) when that is known. An idempotent producer's
   * batches are decided in the raft step that would number them: a retry of batches written
   * before is answered with their offsets (`duplicate: true`, nothing appended), a sequence gap
   * with OutOfOrderSequenceNumberError, a fenced epoch with InvalidProducerEpochError.
   * @example const { baseOffset } = await replica.produce([batch], -1, leaderEpoch);
   */
  async produce(batches: readonly Uint8Array[], acks: Acks, leaderEpoch = -1): Promise<{ baseOffset: number; duplicate?: true }> {
    const { topic, partition } = this.log.id;
    const state = this.#executor.raftState(this.group);
    if (this.#closed || state?.role !== 'leader') throw new NotLeaderOrFollowerError(topic, partition, this.#leaderBroker());
    const refusal = leaderEpochRefusal(topic, partition, leaderEpoch, state.term);
    if (refusal !== undefined) throw refusal;
    // Every batch is checked before any is proposed, so a refused request writes nothing.
    for (const bytes of batches) this.log.check(bytes);
    const inSync = inSyncVoters(state, this.#lagTicks).length;
    if (acks === -1 && inSync < this.log.config.minInsyncReplicas) throw new NotEnoughReplicasError(topic, partition, inSync, this.log.config.minInsyncReplicas);
    return new Promise((resolve, reject) => {
      const input: Input = { type: 'propose', payloads: batches };
      this.#pending.add({ input, acks, resolve, reject });
      this.#executor.input(this.group, input);
    });
  }

  /**
   * Compacts the raft log up to where the log's retention would delete (at most what is
   * applied), so that retention can then remove those batches: until then it removes nothing
   * raft may still need. A follower that lacks them later gets the snapshot (the offset after
   * them) and fetches from there, as a Kafka follower out of range does.
   * @example await replica.compactForRetention(clock.now()); await log.enforceRetention(clock.now());
   */
  async compactForRetention(nowMs: number): Promise<void> {
    const index = await this.log.retentionPoint(nowMs);
    const state = this.#executor.raftState(this.group);
    if (index === undefined || state === undefined) return;
    const through = Math.min(index, state.applied);
    const place = this.log.places.at(through);
    // The core ignores a point at or below its snapshot, or not yet applied and durable.
    if (place !== undefined) this.#executor.input(this.group, { type: 'compact', index: through, data: encodePartitionImage({ nextOffset: place.lastOffset + 1, producers: this.log.producers.imageAt(through) }) });
  }

  /**
   * Campaigns now instead of after an election timeout: the preferred replica of a new partition.
   * @example if (hint.leader === self && replica.leaderEpoch === 0) replica.campaign();
   */
  campaign(): void {
    this.#executor.input(this.group, { type: 'campaign' });
  }

  /**
   * While leading: hands leadership to the replica on broker `brokerId` (leader transfer; raft
   * catches it up first). Ignored otherwise, or when that broker holds no replica.
   * @example if (replica.isLeader) replica.handTo(preferredBrokerId);
   */
  handTo(brokerId: number): void {
    const to = this.#executor.raftState(this.group)?.membership.voters.find((id) => parseMemberId(id)?.brokerId === brokerId);
    if (to !== undefined) this.#executor.input(this.group, { type: 'transferLeadership', to });
  }

  /**
   * While leading: the next single-server change of the group's membership toward `desired`
   * (the target replicas' member ids; src/cluster/reassignment.ts). The core refuses it while
   * the previous change is not committed or a learner to promote lags: the next check asks again.
   * @example if (replica.isLeader) replica.moveTo(['1.a', '2.b', '4.d']);
   */
  moveTo(desired: readonly NodeId[]): void {
    const state = this.#executor.raftState(this.group);
    if (this.#closed || state?.role !== 'leader') return;
    const next = nextReplicaMembership(state.membership, desired);
    if (next !== undefined) this.#executor.input(this.group, { type: 'changeMembership', membership: next });
  }

  /** Leaves the group here: pending produces are refused (retriable), the log stays. */
  close(): void {
    this.#closed = true;
    this.#executor.removeRaftGroup(this.group);
    this.#failAll(new NotLeaderOrFollowerError(this.log.id.topic, this.log.id.partition, -1));
  }

  /**
   * Decides the idempotent batches of a proposal in the raft step that numbers them (against
   * every batch proposed before): a gap or a fenced epoch refuses the request, nothing written; a
   * retry of batches written before is answered with their offsets once they are as durable as
   * `acks` asks (nothing proposed).
   */
  #screen(input: { readonly payloads: readonly Uint8Array[] }): readonly Uint8Array[] | undefined {
    const pending = [...this.#pending].find((p) => p.input === input);
    if (pending === undefined) return input.payloads;
    const { topic, partition } = this.log.id;
    const headers: BatchHeader[] = input.payloads.map((bytes) => readBatchHeader(bytes));
    const duplicates: ProducerBatch[] = [];
    for (const [i, header] of headers.entries()) {
      const decision = this.log.producers.decide(header, headers.slice(0, i));
      const refusal = producerRefusal(decision, topic, partition, header);
      if (refusal !== undefined) {
        this.#settle(pending, refusal);
        return undefined;
      }
      if (decision.kind === 'duplicate') duplicates.push(decision.batch);
    }
    if (duplicates.length === 0) return input.payloads;
    if (duplicates.length < headers.length) {
      this.#settle(pending, new InvalidRecordError(`a produce to ${topic}-${partition} mixes retried batches with new ones`));
      return undefined;
    }
    const first = duplicates[0]!;
    const last = duplicates.at(-1)!;
    const state = this.#executor.raftState(this.group);
    // An entry no longer in the index lies below raft's compaction point: committed long ago.
    const term = this.log.places.epochAt(last.index) ?? -1;
    pending.placed = { firstIndex: first.index, lastIndex: last.index, term, baseOffset: first.baseOffset, endOffset: last.lastOffset + 1 };
    pending.duplicate = true;
    const committed = state !== undefined && last.index <= state.commit;
    if (pending.acks === 0 || committed) this.#settle(pending);
    else if (pending.acks === 1) this.#settleDurable();
    return undefined;
  }

  #leaderBroker(): number {
    const leader = this.leader;
    return leader === undefined ? -1 : (parseMemberId(leader)?.brokerId ?? -1);
  }

  #effect(effect: ApplicationEffect, input: Input): void {
    switch (effect.type) {
      case 'proposed':
      case 'proposalRejected': {
        const pending = [...this.#pending].find((p) => p.input === input);
        if (pending === undefined) return;
        if (effect.type === 'proposalRejected') {
          // Not leading (any more, or handing over): the client's typed error, naming where to go.
          const hint = effect.leaderHint === undefined ? -1 : (parseMemberId(effect.leaderHint)?.brokerId ?? -1);
          return this.#settle(pending, effect.error.code === 'NOT_LEADER_OR_FOLLOWER' ? new NotLeaderOrFollowerError(this.log.id.topic, this.log.id.partition, hint) : effect.error);
        }
        const first = this.log.places.at(effect.firstIndex)!;
        const last = this.log.places.at(effect.lastIndex)!;
        pending.placed = { firstIndex: effect.firstIndex, lastIndex: effect.lastIndex, term: effect.term, baseOffset: first.baseOffset, endOffset: last.lastOffset + 1 };
        if (pending.acks === 0) this.#settle(pending);
        return;
      }
      case 'apply': {
        const last = effect.entries.at(-1);
        if (last === undefined) return;
        this.log.advanceHighWatermark(this.log.places.at(last.index)!.lastOffset + 1);
        const state = this.#executor.raftState(this.group);
        for (const pending of this.#pending) {
          const placed = pending.placed;
          if (pending.acks !== -1 || placed === undefined) continue;
          // Answered only while this replica leads in the term it proposed the write in: once it
          // stopped leading (check-quorum, a newer term), another may have been elected, and an
          // answer now would acknowledge a write after that election, at the old epoch, even one
          // the next leader kept and committed. Refused instead, as Kafka's leader turned follower
          // answers its pending produces NOT_LEADER_OR_FOLLOWER: the client retries at the new
          // leader (a write it kept is then there twice, until the idempotent producer).
          if (state?.role !== 'leader' || state.term !== placed.term) {
            this.#settle(pending, new NotLeaderOrFollowerError(this.log.id.topic, this.log.id.partition, this.#leaderBroker()));
            continue;
          }
          if (placed.lastIndex > last.index) continue;
          // Committed at its index with its term: ours. Another term there: a new leader replaced it.
          const entry = effect.entries.find((e) => e.index === placed.lastIndex);
          const term = entry?.term ?? this.log.places.epochAt(placed.lastIndex);
          this.#settle(pending, term === placed.term ? undefined : new NotLeaderOrFollowerError(this.log.id.topic, this.log.id.partition, this.#leaderBroker()));
        }
        return;
      }
      case 'restore':
        this.log.advanceHighWatermark(this.log.logStartOffset);
        return;
      default:
    }
  }

  /** acks 1: answered once the leader's write of the batches is durable (and still there). */
  #settleDurable(): void {
    for (const pending of this.#pending) {
      const placed = pending.placed;
      if (pending.acks !== 1 || placed === undefined || this.log.logEndOffset < placed.endOffset) continue;
      const place = this.log.places.at(placed.lastIndex);
      this.#settle(pending, place?.epoch === placed.term ? undefined : new NotLeaderOrFollowerError(this.log.id.topic, this.log.id.partition, this.#leaderBroker()));
    }
  }

  #settle(pending: PendingProduce, error?: LetterboxError): void {
    this.#pending.delete(pending);
    if (error !== undefined) pending.reject(error);
    else pending.resolve(pending.duplicate === true ? { baseOffset: pending.placed!.baseOffset, duplicate: true } : { baseOffset: pending.placed!.baseOffset });
  }

  #failAll(error: unknown): void {
    for (const pending of this.#pending) pending.reject(error);
    this.#pending.clear();
  }
}
