import { GroupError } from '../errors';
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

/** How often the coordinator's clock advances: well under the shortest session timeout (1 s). */
export const GROUP_TICK_MS = 100;

const GROUP_IDS_KEY = 'groups';
const offsetsKey = (groupId: string) => `group-offsets:${groupId}`;

type Request = GroupInput extends infer I ? (I extends { requestId: number; now: number } ? Omit<I, 'requestId' | 'now'> : never) : never;

/**
 * Runs the pure group coordinator (src/group) for one node: feeds it requests and clock
 * ticks, answers callers from its reply effects, and makes its `persist` effects durable
 * in storage before feeding back their completion.
 */
export class GroupRuntime {
  #state: CoordinatorState;
  #nextRequestId = 1;
  readonly #waiting = new Map<number, { groupId: string; resolve: (value: JoinReply | SyncReply | undefined) => void; reject: (error: GroupError) => void }>();
  readonly #knownGroups = new Set<string>();
  /** Deleted topics whose offsets may still be in a group's stored set (its rewrite failed), with those groups. */
  readonly #unclean = new Map<string, Set<string>>();
  readonly #timer: ReturnType<typeof setInterval>;

  private constructor(
    readonly storage: Storage,
    readonly now: () => number,
    instanceId: string,
  ) {
    // Generations restart after a restart; the instance id keeps new member ids from matching old ones.
    this.#state = createCoordinator({ instanceId });
    this.#timer = setInterval(() => this.#step({ type: 'tick', now: this.now() }), GROUP_TICK_MS);
  }

  /** Loads committed offsets from storage and starts the clock. */
  static async start(storage: Storage, now: () => number, instanceId: string, partitions: Record<string, number>): Promise<GroupRuntime> {
    const runtime = new GroupRuntime(storage, now, instanceId);
    for (const groupId of ((await storage.readValue(GROUP_IDS_KEY)) ?? []) as string[]) {
      runtime.#knownGroups.add(groupId);
      const offsets = ((await storage.readValue(offsetsKey(groupId))) ?? []) as OffsetCommit[];
      // Offsets of a topic deleted while its groups' sets could not be written again are dropped here.
      const kept = offsets.filter((o) => Object.hasOwn(partitions, o.topic));
      for (const o of offsets) if (!Object.hasOwn(partitions, o.topic)) runtime.#markUnclean(o.topic, groupId);
      runtime.#step({ type: 'load', groupId, offsets: kept });
    }
    runtime.#step({ type: 'topics', now: now(), partitions });
    return runtime;
  }

  /** Sends a request to the coordinator; resolves with its reply, or rejects with GroupError. */
  request<T extends JoinReply | SyncReply | undefined>(input: Request): Promise<T> {
    const requestId = this.#nextRequestId++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(requestId, { groupId: input.groupId, resolve: resolve as (value: JoinReply | SyncReply | undefined) => void, reject });
      this.#step({ ...input, requestId, now: this.now() } as GroupInput);
    });
  }

  /** Tells the coordinator the partition counts of all topics (at start and on every change). */
  topicsChanged(partitions: Record<string, number>): void {
    this.#step({ type: 'topics', now: this.now(), partitions });
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

  stop(): void {
    clearInterval(this.#timer);
    for (const [requestId, waiter] of this.#waiting) {
      waiter.reject(new GroupError(waiter.groupId, 'COORDINATOR_NOT_AVAILABLE', 'the node is closing'));
      this.#waiting.delete(requestId);
    }
  }

  #step(input: GroupInput): void {
    const { state, effects } = stepCoordinator(this.#state, input);
    this.#state = state;
    for (const effect of effects) this.#execute(effect);
  }

  #execute(effect: GroupEffect): void {
    if (effect.type === 'persist') {
      void this.#persist(effect.requestId, effect.groupId, effect.offsets);
      return;
    }
    const waiter = this.#waiting.get(effect.requestId);
    if (waiter === undefined) return;
    this.#waiting.delete(effect.requestId);
    if (effect.ok) waiter.resolve(effect.value);
    else waiter.reject(new GroupError(waiter.groupId, effect.error, effect.message));
  }

  async #persist(requestId: number, groupId: string, offsets: OffsetCommit[]): Promise<void> {
    const writes: StorageWrite[] = [{ kind: 'putValue', key: offsetsKey(groupId), value: offsets }];
    const isNew = !this.#knownGroups.has(groupId);
    // Added before the write: transactions commit in order, so a later write's list holds every id.
    if (isNew) {
      this.#knownGroups.add(groupId);
      writes.push({ kind: 'putValue', key: GROUP_IDS_KEY, value: [...this.#knownGroups] });
    }
    try {
      await this.storage.write(writes);
      this.#step({ type: 'persisted', requestId });
    } catch (error) {
      if (isNew) this.#knownGroups.delete(groupId);
      this.#step({ type: 'persistFailed', requestId, message: error instanceof Error ? error.message : String(error) });
    }
  }
}
