import type { Cancel, Clock } from '../clock';
import type { FlushPart, FlushSource, GroupCommitter } from '../log';
import { createRaft, step, type Effect, type GroupMessage, type HardState, type Input, type Message, type NodeId, type RaftConfig, type RaftLog, type RaftState } from '../raft';

export type { GroupMessage };
import type { StorageWrite } from '../storage';

// The one runtime of a node's pure cores: any number of raft groups (the metadata group,
// one per replicated partition) and pure state machines (the group coordinators). Inputs
// are queued and fed one at a time, in order; each step's effects are carried out as
// src/raft/index.ts lists them: a `persist` goes into the log's group commit (every
// group's writes in one transaction per flush) and its `thenSend` waits until it is
// durable; sends wait in a per-peer outbox that goes out as one frame per peer per flush;
// `apply` and the answers go to the group's handler. Ticks for every group come from one
// timer of the injected clock. node/ runs it on the real clock, IndexedDB and peer RPC;
// the simulator and the raft harness run it on simulated ones.
//
// When a flush fails (StorageFullError: out of quota), every raft group in it stops
// (fail-stop): its in-memory state may be ahead of the disk, and nothing it promised
// (a vote, an acknowledgement, an entry a client was told of) was sent, since sends that
// depend on a write wait for it. After a backoff it restarts from what is durable — as
// after a crash, which raft tolerates — and stops again if the disk is still full.
// A machine's failed write is an input it handles (the coordinator refuses the commit).

type PersistEffect = Extract<Effect, { type: 'persist' }>;
/** Effects the executor hands to a raft group's application. */
export type ApplicationEffect = Exclude<Effect, { type: 'persist' | 'send' | 'loadEntries' }>;


/**
 * A raft group's durable log as the executor uses it: the core reads it (`RaftLog`), the
 * executor stages each `persist` effect into storage writes and reports when they are durable.
 */
export interface RaftStore extends RaftLog {
  /** The term and vote that survived; read at each (re)start. */
  hardState(): HardState;
  /** The storage writes that make `effect` durable; the store may update its in-memory view now. */
  stage(effect: PersistEffect): StorageWrite[];
  /** `effect` (and every earlier one) is durable. */
  durable(effect: PersistEffect): void;
  /** Drops what was staged and not durable, reading the durable state again: before a restart after a failed write. */
  recover(): Promise<void>;
  /**
   * Brings durable entries into memory, so that the next `entries` call for them answers (the
   * `loadEntries` effect), then calls `done` (with the error, if the read failed). A callback, not
   * a promise, so that a simulated store answers in its own simulated time.
   */
  load(fromIndex: number, toIndex: number, maxBytes: number, done: (error?: unknown) => void): void;
}

/** What the application learns from a raft group. */
export interface RaftGroupHandler {
  /** `apply`, `restore`, `proposed`, `proposalRejected`, `readReady`, `readRejected`, in order, with the input that caused them. */
  effect?(effect: ApplicationEffect, input: Input): void;
  /**
   * A proposal about to be stepped while this member leads, in the step that numbers its
   * entries (so against every entry proposed before it): the payloads to propose, or undefined
   * when the handler answered it itself and nothing is to be proposed. A partition's leader
   * decides idempotent producers' batches here (duplicate, out of order, fenced).
   */
  screen?(input: Extract<Input, { type: 'propose' }>): readonly Uint8Array[] | undefined;
  /** The group stopped (a failed write, a failed core assertion); it restarts by itself after a backoff. */
  stopped?(error: unknown): void;
  /** The group runs again after a stop. */
  restarted?(): void;
}

/** A pure state machine hosted by the executor (a group coordinator): it keeps its state and steps it. */
export interface Machine<In> {
  /** Feeds one input; carries out the step's effects, persisting through `io`. */
  step(input: In, io: MachineIo<In>): void;
  /** The input a clock tick feeds, every `tickMs` (none when absent). */
  tick?(nowMs: number): In;
  readonly tickMs?: number;
}

export interface MachineIo<In> {
  /**
   * Puts `writes` into the next group commit; once they are durable, or failed (nothing
   * applied), the executor feeds back the input `then` makes.
   */
  persist(writes: StorageWrite[], then: { durable(): In; failed(error: unknown): In }): void;
}

/** Sees every step, for the simulator's checkers and tests. */
export interface ExecutorObserver {
  raftStepped?(group: string, input: Input, before: RaftState, after: RaftState, effects: readonly Effect[]): void;
  frameSent?(peerId: NodeId, messages: readonly GroupMessage[], delivered: boolean): void;
}

export interface ExecutorInit {
  /** This node's id: the member id in each of its raft groups. */
  nodeId: NodeId;
  clock: Clock;
  /** The log's group commit: every group's writes share its transactions. */
  committer: GroupCommitter;
  /** Hands one frame (all of one flush's messages to the peer) to the network; false when it was dropped (a full peer queue). Never waits. */
  sendFrame(peerId: NodeId, messages: readonly GroupMessage[]): boolean;
  /** Length of one raft tick. */
  tickMs: number;
  /**
   * Heartbeats and their answers wait for the heartbeat flush, every this many ticks (or
   * for a frame going to that peer anyway), so an idle node sends at most one frame per
   * peer per heartbeat interval; 0 sends them with everything else. Other messages go at
   * the end of the task that made them.
   */
  heartbeatFlushTicks: number;
  /** First wait before a stopped group restarts; doubles on each failed attempt up to `restartBackoffMaxMs`. */
  restartBackoffMs?: number;
  restartBackoffMaxMs?: number;
  observer?: ExecutorObserver;
}

/** Counters of the executor, for tests, metrics and benchmarks. */
export interface ExecutorStats {
  framesSent: number;
  framesDropped: number;
  messagesSent: number;
  /** Messages from peers for a group this node is not in, not addressed to it, or from a non-member (see `receive`). */
  messagesRefused: number;
  steps: number;
}

const RESTART_BACKOFF_MS = 1_000;
const RESTART_BACKOFF_MAX_MS = 30_000;

/** Heartbeats and their answers carry nothing urgent: they wait for the heartbeat flush. */
const lazy = (message: Message) => message.type === 'heartbeat' || message.type === 'heartbeatResponse';

type Queued =
  | { readonly kind: 'raft'; readonly group: RaftGroup; readonly input: Input }
  | { readonly kind: 'machine'; readonly host: MachineHost<unknown>; readonly input: unknown };

/**
 * Runs raft groups and machines on one clock, one group commit and one outbox per peer.
 * @example const executor = new Executor({ nodeId, clock: realClock, committer: logs.committer, sendFrame, tickMs: 50, heartbeatFlushTicks: 2 }); executor.start();
 */
export class Executor {
  readonly stats: ExecutorStats = { framesSent: 0, framesDropped: 0, messagesSent: 0, messagesRefused: 0, steps: 0 };
  readonly #groups = new Map<string, RaftGroup>();
  readonly #machines = new Set<MachineHost<unknown>>();
  readonly #queue: Queued[] = [];
  #draining = false;
  /** Per peer: messages waiting for the next flush, and whether any of them is urgent. */
  readonly #outbox = new Map<NodeId, { messages: GroupMessage[]; urgent: boolean }>();
  #flushScheduled = false;
  #ticks = 0;
  #stopTimer: Cancel | undefined;
  #stopped = false;

  constructor(readonly init: ExecutorInit) {}

  get clock(): Clock {
    return this.init.clock;
  }

  /** Starts the tick timer (the first tick after `tickMs`). */
  start(): void {
    if (this.#stopTimer !== undefined || this.#stopped) return;
    const tick = () => {
      this.#stopTimer = this.init.clock.after(this.init.tickMs, tick);
      this.#tick();
    };
    this.#stopTimer = this.init.clock.after(this.init.tickMs, tick);
  }

  /**
   * Stops the timer and every group; queued inputs, unsent messages and completions of
   * writes still in flight are dropped. (A machine that throws stops nothing: the error
   * reaches whoever fed the input, and the queue goes on with the next one.)
   */
  stop(): void {
    this.#stopped = true;
    this.#stopTimer?.();
    for (const group of this.#groups.values()) group.close();
    this.#groups.clear();
    this.#machines.clear();
    this.#queue.length = 0;
    this.#outbox.clear();
  }

  /**
   * Adds a raft group this node is a member of, started from `store`.
   * @example executor.addRaftGroup('orders-0', { config, store, handler: { effect: (e) => ... } });
   */
  addRaftGroup(
    id: string,
    options: {
      config: RaftConfig;
      store: RaftStore;
      handler?: RaftGroupHandler;
      /**
       * Whom the group takes messages from (a replicated partition's replicas, as the metadata and
       * the group's own membership name them): messages from anyone else are refused as forged.
       * Absent for a group anyone may join (the metadata group), whose newcomers must hear from
       * members their empty log does not know yet.
       */
      accepts?: (from: NodeId) => boolean;
    },
  ): void {
    if (this.#groups.has(id)) throw new Error(`raft group ${id} already runs here`);
    if (options.config.id !== this.init.nodeId) throw new Error(`raft group ${id}: member id ${options.config.id} is not this node (${this.init.nodeId})`);
    this.#groups.set(id, new RaftGroup(this, id, options.config, options.store, options.handler ?? {}, options.accepts));
  }

  /** Removes a raft group; its queued inputs and pending writes are dropped. */
  removeRaftGroup(id: string): void {
    this.#groups.get(id)?.close();
    this.#groups.delete(id);
  }

  /** The state of a raft group (undefined when it is not here or stopped). @example executor.raftState('g')?.role */
  raftState(id: string): RaftState | undefined {
    return this.#groups.get(id)?.state;
  }

  /** Group ids running here. */
  raftGroups(): string[] {
    return [...this.#groups.keys()];
  }

  /**
   * Feeds an input to a raft group (a proposal, a read, a membership change…); queued
   * behind any input being fed now. Ignored when the group is not here or stopped.
   * @example executor.input('g', { type: 'propose', payloads: [bytes] });
   */
  input(group: string, input: Input): void {
    const target = this.#groups.get(group);
    if (target === undefined) return;
    this.#enqueue({ kind: 'raft', group: target, input });
  }

  /**
   * Takes one frame from `peerId`: each message goes to its group, in order. Messages for
   * a group this node is not in, not addressed to this node, not from `peerId`, or from a
   * non-member of a group with fixed voters are dropped (counted in `messagesRefused`).
   * @example executor.receive('n2', frame);
   */
  receive(peerId: NodeId, messages: readonly GroupMessage[]): void {
    for (const { group, message } of messages) {
      const target = this.#groups.get(group);
      if (target === undefined || message.to !== this.init.nodeId || message.from !== peerId || (target.accepts !== undefined && !target.accepts(message.from))) {
        this.stats.messagesRefused++;
        continue;
      }
      this.#queue.push({ kind: 'raft', group: target, input: { type: 'message', message } });
    }
    this.#drain();
  }

  /**
   * Hosts a pure state machine: `input` queues an input for it, `remove` stops ticking and feeding it.
   * @example const coordinator = executor.addMachine(machine); coordinator.input({ type: 'join', ... });
   */
  addMachine<In>(machine: Machine<In>): { input(input: In): void; remove(): void } {
    const host = new MachineHost(this, machine) as MachineHost<unknown>;
    this.#machines.add(host);
    return {
      input: (input) => {
        if (this.#machines.has(host)) this.#enqueue({ kind: 'machine', host, input });
      },
      remove: () => void this.#machines.delete(host),
    };
  }

  // --- internals, used by the groups and hosts below -------------------------------------

  /** @internal Queues an input and feeds the queue unless it is being fed already. */
  enqueue(item: Queued): void {
    this.#enqueue(item);
  }

  /** @internal Puts messages into the outbox; the end of the current task flushes the urgent ones. */
  post(group: string, messages: readonly Message[]): void {
    for (const message of messages) {
      let box = this.#outbox.get(message.to);
      if (box === undefined) {
        box = { messages: [], urgent: false };
        this.#outbox.set(message.to, box);
      }
      box.messages.push({ group, message });
      if (this.init.heartbeatFlushTicks === 0 || !lazy(message)) box.urgent = true;
    }
    if (messages.length > 0) this.#scheduleFlush();
  }

  #enqueue(item: Queued): void {
    if (this.#stopped) return; // a write completing after stop, say
    this.#queue.push(item);
    this.#drain();
  }

  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let item = this.#queue.shift(); item !== undefined; item = this.#queue.shift()) {
        this.stats.steps++;
        if (item.kind === 'raft') item.group.feed(item.input);
        else if (this.#machines.has(item.host)) item.host.feedNow(item.input);
      }
    } finally {
      this.#draining = false;
    }
  }

  #tick(): void {
    this.#ticks++;
    const nowMs = this.init.clock.now();
    for (const group of this.#groups.values()) if (group.state !== undefined) this.#queue.push({ kind: 'raft', group, input: { type: 'tick' } });
    for (const host of this.#machines) {
      const input = host.tickInput(nowMs, this.init.tickMs);
      if (input !== undefined) this.#queue.push({ kind: 'machine', host, input });
    }
    this.#drain();
    if (this.init.heartbeatFlushTicks > 0 && this.#ticks % this.init.heartbeatFlushTicks === 0) this.#flush(true);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.init.clock.defer(() => {
      this.#flushScheduled = false;
      this.#flush(false);
    });
  }

  /** Sends one frame to each peer with urgent messages (or with any, on the heartbeat flush). */
  #flush(all: boolean): void {
    for (const [peerId, box] of this.#outbox) {
      if (!box.urgent && !all) continue;
      this.#outbox.delete(peerId);
      const delivered = this.init.sendFrame(peerId, box.messages);
      if (delivered) {
        this.stats.framesSent++;
        this.stats.messagesSent += box.messages.length;
      } else {
        this.stats.framesDropped++; // raft retries what matters
      }
      this.init.observer?.frameSent?.(peerId, box.messages, delivered);
    }
  }
}

/** One raft group on an executor: its core, its store, and the writes waiting for the group commit. */
class RaftGroup implements FlushSource {
  state: RaftState | undefined;
  /** Persist effects staged and not yet taken by a flush, with their writes. */
  #pending: Array<{ effect: PersistEffect; writes: StorageWrite[]; sizeBytes: number }> = [];
  #inFlight = 0;
  #closed = false;
  #backoffMs: number;
  #cancelRestart: Cancel | undefined;
  /** Counts stops, so an answer for a core that has since stopped (a load) is dropped. */
  #generation = 0;

  constructor(
    readonly executor: Executor,
    readonly id: string,
    readonly config: RaftConfig,
    readonly store: RaftStore,
    readonly handler: RaftGroupHandler,
    readonly accepts: ((from: NodeId) => boolean) | undefined,
  ) {
    this.#backoffMs = executor.init.restartBackoffMs ?? RESTART_BACKOFF_MS;
    this.state = createRaft(config, store, store.hardState());
  }

  feed(input: Input): void {
    const before = this.state;
    if (before === undefined || this.#closed) return;
    let stepped = input;
    if (input.type === 'propose' && before.role === 'leader' && this.handler.screen !== undefined) {
      const payloads = this.handler.screen(input);
      if (payloads === undefined) return;
      if (payloads !== input.payloads) stepped = { ...input, payloads };
    }
    let result: ReturnType<typeof step>;
    try {
      result = step(before, stepped);
    } catch (error) {
      // A failed assertion: the state cannot be trusted; restart from the disk.
      this.#stop(error);
      return;
    }
    this.state = result.state;
    // Writes are staged first, so the application sees the store as the step left it (a
    // partition's `proposed` entries already numbered with their offsets).
    let persisted = false;
    try {
      for (const effect of result.effects) {
        if (effect.type !== 'persist') continue;
        const writes = this.store.stage(effect);
        this.#pending.push({ effect, writes, sizeBytes: writes.reduce((n, w) => n + (w.kind === 'putBatch' ? w.bytes.length : 0), 0) });
        persisted = true;
      }
    } catch (error) {
      // The store refused what the core took in (a peer's entries that are not record batches,
      // or that would replace what the log holds committed): the core is ahead of what can be
      // written, so nothing of this step is carried out; restart from the disk, as after a failed write.
      this.#stop(error);
      return;
    }
    for (const effect of result.effects) {
      switch (effect.type) {
        case 'persist':
          break;
        case 'loadEntries':
          this.#load(effect);
          break;
        case 'send':
          this.executor.post(this.id, [effect.message]);
          break;
        default:
          this.handler.effect?.(effect, input);
      }
    }
    if (persisted) this.executor.init.committer.schedule(this);
    this.executor.init.observer?.raftStepped?.(this.id, input, before, result.state, result.effects);
  }

  hasPending(): boolean {
    return this.#pending.length > 0 && !this.#closed;
  }

  takeFlushPart(budgetBytes: number): FlushPart | undefined {
    if (this.#closed || this.#pending.length === 0) return undefined;
    let count = 0;
    let sizeBytes = 0;
    while (count < this.#pending.length && (count === 0 || sizeBytes + this.#pending[count]!.sizeBytes <= budgetBytes)) sizeBytes += this.#pending[count++]!.sizeBytes;
    const taken = this.#pending.splice(0, count);
    this.#inFlight++;
    return {
      writes: taken.flatMap((t) => t.writes),
      sizeBytes,
      committed: () => {
        this.#inFlight--;
        if (this.#closed) return;
        this.#backoffMs = this.executor.init.restartBackoffMs ?? RESTART_BACKOFF_MS;
        for (const { effect } of taken) {
          this.store.durable(effect);
          this.executor.post(this.id, effect.thenSend);
        }
        this.executor.enqueue({ kind: 'raft', group: this, input: { type: 'persisted', writeId: taken.at(-1)!.effect.writeId } });
      },
      failed: (error) => {
        this.#inFlight--;
        if (!this.#closed) this.#stop(error);
      },
    };
  }

  /**
   * Loads the entries the core asked for, then tells it; a failed read stops the group (as a
   * failed write does) and it restarts from the disk. A load that ends after a restart is
   * ignored: the restarted core asks again for what it lacks.
   */
  #load(effect: Extract<Effect, { type: 'loadEntries' }>): void {
    const generation = this.#generation;
    const current = () => this.state !== undefined && !this.#closed && this.#generation === generation;
    this.store.load(effect.fromIndex, effect.toIndex, effect.maxBytes, (error) => {
      if (!current()) return;
      if (error === undefined) this.executor.enqueue({ kind: 'raft', group: this, input: { type: 'entriesLoaded', fromIndex: effect.fromIndex } });
      else this.#stop(error);
    });
  }

  close(): void {
    this.#closed = true;
    this.#cancelRestart?.();
    this.state = undefined;
    this.#pending = [];
  }

  /** Fail-stop: drop the state and what waits for the disk; restart from the disk after the backoff. */
  #stop(error: unknown): void {
    this.#generation++;
    this.state = undefined;
    this.#pending = [];
    this.handler.stopped?.(error);
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    const { clock, restartBackoffMaxMs } = this.executor.init;
    const delayMs = this.#backoffMs;
    this.#backoffMs = Math.min(delayMs * 2, restartBackoffMaxMs ?? RESTART_BACKOFF_MAX_MS);
    this.#cancelRestart = clock.after(delayMs, () => {
      // A write still in flight would land under the recovered state: wait for it.
      if (this.#closed) return;
      if (this.#inFlight > 0) return this.#scheduleRestart();
      this.store.recover().then(
        () => {
          if (this.#closed) return;
          this.state = createRaft(this.config, this.store, this.store.hardState());
          this.handler.restarted?.();
        },
        () => {
          if (!this.#closed) this.#scheduleRestart();
        },
      );
    });
  }
}

/** A machine on an executor: feeds it and carries its writes through the group commit. */
class MachineHost<In> implements FlushSource {
  #pending: Array<{ writes: StorageWrite[]; then: { durable(): In; failed(error: unknown): In } }> = [];
  #sinceTickMs = 0;
  readonly #io: MachineIo<In> = {
    persist: (writes, then) => {
      this.#pending.push({ writes, then });
      this.executor.init.committer.schedule(this);
    },
  };

  constructor(
    readonly executor: Executor,
    readonly machine: Machine<In>,
  ) {}

  feedNow(input: In): void {
    this.machine.step(input, this.#io);
  }

  /** The machine's tick input when its interval has passed (counted in executor ticks). */
  tickInput(nowMs: number, executorTickMs: number): In | undefined {
    if (this.machine.tick === undefined) return undefined;
    this.#sinceTickMs += executorTickMs;
    if (this.#sinceTickMs < (this.machine.tickMs ?? executorTickMs)) return undefined;
    this.#sinceTickMs = 0;
    return this.machine.tick(nowMs);
  }

  hasPending(): boolean {
    return this.#pending.length > 0;
  }

  takeFlushPart(): FlushPart | undefined {
    const taken = this.#pending.splice(0);
    if (taken.length === 0) return undefined;
    const host = this as MachineHost<unknown>;
    return {
      writes: taken.flatMap((t) => t.writes),
      sizeBytes: 0,
      committed: () => {
        for (const { then } of taken) this.executor.enqueue({ kind: 'machine', host, input: then.durable() });
      },
      failed: (error) => {
        for (const { then } of taken) this.executor.enqueue({ kind: 'machine', host, input: then.failed(error) });
      },
    };
  }
}
