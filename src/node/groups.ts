import { GroupError, NotCoordinatorError, NotLeaderOrFollowerError } from '../errors';
import {
  committedOffsets,
  createCoordinator,
  describeGroup,
  listGroups,
  stepCoordinator,
  type CoordinatorState,
  type GroupDescription,
  type GroupEffect,
  type GroupInput,
  type GroupStateName,
  type JoinReply,
  type OffsetCommit,
  type SyncReply,
} from '../group';
import type { Storage, StorageWrite } from '../storage';
import type { Executor, MachineIo } from './executor';

/** How often the coordinator's clock advances: well under the shortest session timeout (1 s). */
export const GROUP_TICK_MS = 100;

const GROUP_IDS_KEY = 'groups';
const offsetsKey = (groupId: string) => `group-offsets:${groupId}`;

/** A coordinator request as a caller makes it: the runtime adds the request id and the time. */
export type GroupRequest = GroupInput extends infer I ? (I extends { requestId: number; now: number } ? Omit<I, 'requestId' | 'now'> : never) : never;
type Reply = Extract<GroupEffect, { type: 'reply' }>;

/** What survives in storage: the committed offsets of each group. */
export type StoredOffsets = ReadonlyMap<string, OffsetCommit[]>;

/**
 * Where a runtime keeps committed offsets instead of node-level values: a broker of a
 * cluster keeps them as records of the offsets topic (./offsets-topic.ts).
 */
export interface OffsetStore {
  /** Makes `offsets` the group's whole committed set (`deleteGroup`: the group is gone); resolves once durable. */
  write(groupId: string, offsets: readonly OffsetCommit[], deleteGroup: boolean): Promise<void>;
}

/** Sees every coordinator step (the group simulator's checkers). */
export type CoordinatorObserver = (input: GroupInput, before: CoordinatorState, after: CoordinatorState, effects: readonly GroupEffect[]) => void;

/**
 * The committed offsets of every group, from node-level values (`Storage.readValue`) the runtime wrote;
 * a deleted group's offsets are stored as null (its id may still be in a list written meanwhile).
 * @example const stored = storedOffsets((key) => values.get(key));
 */
export function storedOffsets(read: (key: string) => unknown): StoredOffsets {
  const stored = new Map<string, OffsetCommit[]>();
  for (const groupId of (read(GROUP_IDS_KEY) ?? []) as string[]) {
    const offsets = read(offsetsKey(groupId)) as OffsetCommit[] | null | undefined;
    if (offsets !== null) stored.set(groupId, offsets ?? []);
  }
  return stored;
}

/** A failed offsets write; refused because this broker no longer leads the offsets partition, the coordinator moved. */
const writeFailed = (requestId: number, error: unknown): GroupInput => ({
  type: 'persistFailed',
  requestId,
  message: error instanceof Error ? error.message : String(error),
  ...((error instanceof NotLeaderOrFollowerError || error instanceof NotCoordinatorError) && { notCoordinator: true }),
});

/** The retriable refusal of a request the stopped coordinator will never answer: the caller finds the coordinator again. */
const closing = (requestId: number): Reply => ({ type: 'reply', requestId, ok: false, error: 'COORDINATOR_NOT_AVAILABLE', message: 'the node is closing' });

/**
 * Runs the pure group coordinator (src/group) for one node on the node's executor: feeds
 * it requests and the executor's ticks, answers callers from its reply effects, and makes
 * its `persist` effects durable through the group commit before feeding back their completion.
 */
export class GroupRuntime {
  #state: CoordinatorState;
  #nextRequestId = 1;
  readonly #waiting = new Map<number, { groupId: string; reply: (effect: Reply) => void }>();
  readonly #knownGroups = new Set<string>();
  readonly #machine: { input(input: GroupInput): void; remove(): void };
  /** Set by stop(): the executor drops a removed machine's inputs, so a request after it is answered here. */
  #stopped = false;
  /** Deleted topics whose offsets may still be in a group's stored set (its rewrite failed), with those groups. */
  readonly #unclean = new Map<string, Set<string>>();
  /** Partition counts from the last `topics` input: what loaded offsets are kept by. */
  #partitions: Record<string, number>;
  /** Writes to the offset store, in the order emitted, with their outcome once settled: fed back in that order. */
  readonly #storeWrites: Array<{ outcome: GroupInput | undefined }> = [];

  /**
   * A runtime over offsets already read from storage (see {@link storedOffsets}; `start` reads them).
   * @example const groups = new GroupRuntime(executor, 'a1b2c3d4', new Map(), { orders: 3 });
   */
  constructor(
    readonly executor: Executor,
    instanceId: string,
    stored: StoredOffsets,
    partitions: Record<string, number>,
    readonly observer?: CoordinatorObserver,
    /** Where committed offsets go; default node-level values (see {@link storedOffsets}). */
    readonly store?: OffsetStore,
  ) {
    // Generations restart after a restart; the instance id keeps new member ids from matching old ones.
    this.#state = createCoordinator({ instanceId });
    this.#machine = executor.addMachine<GroupInput>({
      step: (input, io) => this.#step(input, io),
      tick: (now) => ({ type: 'tick', now }),
      tickMs: GROUP_TICK_MS,
    });
    this.#partitions = partitions;
    for (const [groupId, offsets] of stored) {
      this.#knownGroups.add(groupId);
      this.load(groupId, offsets);
    }
    this.#machine.input({ type: 'topics', now: this.#now(), partitions });
  }

  /**
   * Gives the coordinator a group's stored offsets, before any request of the group: at start,
   * or when this broker becomes the group's coordinator (the runtime over an {@link OffsetStore}).
   * @example groups.load('orders-app', [{ topic: 'orders', partition: 0, offset: 42, metadata: null }]);
   */
  load(groupId: string, offsets: readonly OffsetCommit[]): void {
    // Offsets of a topic deleted while its groups' sets could not be written again are dropped here.
    const kept = offsets.filter((o) => Object.hasOwn(this.#partitions, o.topic));
    for (const o of offsets) if (!Object.hasOwn(this.#partitions, o.topic)) this.#markUnclean(o.topic, groupId);
    this.#machine.input({ type: 'load', groupId, offsets: kept });
  }

  /** Loads committed offsets from storage and starts on `executor`. */
  static async start(executor: Executor, storage: Storage, instanceId: string, partitions: Record<string, number>): Promise<GroupRuntime> {
    const values = new Map<string, unknown>([[GROUP_IDS_KEY, await storage.readValue(GROUP_IDS_KEY)]]);
    for (const groupId of (values.get(GROUP_IDS_KEY) ?? []) as string[]) values.set(offsetsKey(groupId), await storage.readValue(offsetsKey(groupId)));
    return new GroupRuntime(executor, instanceId, storedOffsets((key) => values.get(key)), partitions);
  }

  /**
   * Sends a request to the coordinator; `reply` gets its answer (maybe later: a join
   * waits for the rebalance). Returns the request id.
   * @example groups.submit({ type: 'heartbeat', groupId, memberId, generationId }, (r) => ...);
   */
  submit(request: GroupRequest, reply: (effect: Reply) => void): number {
    const requestId = this.#nextRequestId++;
    if (this.#stopped) {
      reply(closing(requestId));
      return requestId;
    }
    this.#waiting.set(requestId, { groupId: request.groupId, reply });
    this.#machine.input({ ...request, requestId, now: this.#now() } as GroupInput);
    return requestId;
  }

  /** Sends a request to the coordinator; resolves with its reply, or rejects with GroupError. */
  request<T extends JoinReply | SyncReply | undefined>(request: GroupRequest): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(request, (effect) => {
        if (effect.ok) resolve(effect.value as T);
        else reject(effect.error === 'NOT_COORDINATOR' ? new NotCoordinatorError(request.groupId, effect.message) : new GroupError(request.groupId, effect.error, effect.message));
      });
    });
  }

  /** Tells the coordinator the partition counts of all topics (at start and on every change). */
  topicsChanged(partitions: Record<string, number>): void {
    this.#partitions = partitions;
    this.#machine.input({ type: 'topics', now: this.#now(), partitions });
  }

  /**
   * Drops a deleted topic's committed offsets from every group, as Kafka does; resolves once
   * each group's set is written without them, or noted for a rewrite where that failed (a full disk).
   * @example await groups.topicDeleted('orders');
   */
  async topicDeleted(topic: string): Promise<void> {
    await Promise.all(
      this.list().map(({ groupId }) =>
        this.request({ type: 'dropTopic', groupId, topic, rewrite: false }).catch(() => this.#markUnclean(topic, groupId)),
      ),
    );
  }

  /**
   * Before a topic is created: writes again the stored sets that may still hold offsets of an
   * earlier topic of that name, so they cannot come back. Rejects if one cannot be written.
   * @example await groups.beforeTopicCreated('orders');
   */
  async beforeTopicCreated(topic: string): Promise<void> {
    for (const groupId of this.#unclean.get(topic) ?? []) {
      await this.request({ type: 'dropTopic', groupId, topic, rewrite: true });
      this.#unclean.get(topic)?.delete(groupId);
    }
    if (this.#unclean.get(topic)?.size === 0) this.#unclean.delete(topic);
  }

  #markUnclean(topic: string, groupId: string): void {
    const groups = this.#unclean.get(topic) ?? new Set();
    this.#unclean.set(topic, groups.add(groupId));
  }

  describe(groupId: string): GroupDescription | undefined {
    return describeGroup(this.#state, groupId);
  }

  list(): Array<{ groupId: string; state: GroupStateName }> {
    return listGroups(this.#state);
  }

  committed(groupId: string): OffsetCommit[] {
    return committedOffsets(this.#state, groupId);
  }

  /** Stops feeding the coordinator; waiting callers are refused (retriably). */
  stop(): void {
    this.#stopped = true;
    this.#machine.remove();
    for (const [requestId, waiter] of this.#waiting) {
      this.#waiting.delete(requestId);
      waiter.reply(closing(requestId));
    }
  }

  #now(): number {
    return this.executor.clock.now();
  }

  #step(input: GroupInput, io: MachineIo<GroupInput>): void {
    const before = this.#state;
    const { state, effects } = stepCoordinator(before, input);
    this.#state = state;
    this.observer?.(input, before, state, effects);
    for (const effect of effects) {
      if (effect.type === 'persist') this.#persist(effect, io);
      else this.#answer(effect);
    }
  }

  #answer(effect: Reply): void {
    const waiter = this.#waiting.get(effect.requestId);
    if (waiter === undefined) return;
    this.#waiting.delete(effect.requestId);
    waiter.reply(effect);
  }

  #persist({ requestId, groupId, offsets, deleteGroup }: Extract<GroupEffect, { type: 'persist' }>, io: MachineIo<GroupInput>): void {
    if (this.store !== undefined) return this.#persistToStore(this.store, requestId, groupId, offsets, deleteGroup === true);
    if (deleteGroup === true) return this.#persistDelete(requestId, groupId, io);
    const writes: StorageWrite[] = [{ kind: 'putValue', key: offsetsKey(groupId), value: offsets }];
    const isNew = !this.#knownGroups.has(groupId);
    // Added before the write: writes become durable in order, so a later write's list holds every id.
    if (isNew) {
      this.#knownGroups.add(groupId);
      writes.push({ kind: 'putValue', key: GROUP_IDS_KEY, value: [...this.#knownGroups] });
    }
    io.persist(writes, {
      durable: () => ({ type: 'persisted', requestId }),
      failed: (error) => {
        if (isNew) this.#knownGroups.delete(groupId);
        return writeFailed(requestId, error);
      },
    });
  }

  /**
   * Writes through the offset store; completions are fed back in the order the writes were
   * emitted (the coordinator requires it), whatever order the store settles them in.
   */
  #persistToStore(store: OffsetStore, requestId: number, groupId: string, offsets: readonly OffsetCommit[], deleteGroup: boolean): void {
    const write: { outcome: GroupInput | undefined } = { outcome: undefined };
    this.#storeWrites.push(write);
    const settle = (outcome: GroupInput) => {
      write.outcome = outcome;
      while (this.#storeWrites[0]?.outcome !== undefined) this.#machine.input(this.#storeWrites.shift()!.outcome!);
    };
    store.write(groupId, offsets, deleteGroup).then(
      () => settle({ type: 'persisted', requestId }),
      (error: unknown) => settle(writeFailed(requestId, error)),
    );
  }

  /**
   * A deleted group's offsets become a tombstone (null) and its id leaves the stored list. The
   * id stays known until this is durable, so a list written meanwhile may still name it: the
   * tombstone keeps it from loading. A failed write changes nothing.
   */
  #persistDelete(requestId: number, groupId: string, io: MachineIo<GroupInput>): void {
    const ids = [...this.#knownGroups].filter((id) => id !== groupId);
    io.persist([{ kind: 'putValue', key: offsetsKey(groupId), value: null }, { kind: 'putValue', key: GROUP_IDS_KEY, value: ids }], {
      durable: () => {
        this.#knownGroups.delete(groupId);
        return { type: 'persisted', requestId };
      },
      failed: (error) => writeFailed(requestId, error),
    });
  }
}
