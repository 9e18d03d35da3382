import type { Clock } from '../clock';
import { InvalidArgumentError, InvalidConfigError, NotConnectedError, StorageLostError, UnknownTopicOrPartitionError } from '../errors';
import { createLogManager, defaultLogConfig, type BackgroundMaintenance, type LogManager, type PartitionLog } from '../log';
import { createPeerLink, createPeerRpc, PeerNotConnectedError, type PeerLink, type PeerRpc } from '../network/worker';
import type { Storage } from '../storage';
import type { FetchedPartition, FetchRequest, JoinReply, NodeApi, NodeInfo, NodeStartInit, ProduceResult, SyncReply, TopicDefinition } from './api';
import { Executor } from './executor';
import { GROUP_TICK_MS, GroupRuntime } from './groups';
import { claimSlot, type SlotClaim, type SlotLocks } from './slots';
import { configEntriesOf, defineTopic, parseConfigEntries, PARTITIONS_MAX } from './topics';

/** What the node needs from its environment: I/O and the clock, passed in so tests can supply their own. */
export interface BrokerNodeComponents {
  openStorage(name: string): Promise<Storage>;
  locks: SlotLocks;
  /** Time and timers for everything the node runs. */
  clock: Clock;
  randomId(): string;
  /** Receives errors from background work (maintenance). */
  onError?(error: unknown): void;
}

/** Written once into a new database; its absence where the page remembers one means the data was lost. */
interface DatabaseMarker {
  incarnation: string;
  createdAt: number;
}

/** Node-level storage key of the slot's libp2p private key (protobuf bytes): the slot's peer id. */
const NETWORK_KEY = 'networkKey';

/** Longest a fetch may wait for data: bounds how long a request holds the node's resources. */
const FETCH_WAIT_MAX_MS = 60_000;

interface Running {
  claim: SlotClaim;
  executor: Executor;
  groups: GroupRuntime;
  storage: Storage;
  logs: LogManager;
  topics: Map<string, TopicDefinition>;
  info: NodeInfo;
  maintenance: BackgroundMaintenance;
  fetches: Map<number, AbortController>;
}

export const databaseNameOf = (slot: number) => `letterbox-slot-${slot}`;

const partitionCounts = (topics: Map<string, TopicDefinition>) => Object.fromEntries([...topics.values()].map((t) => [t.name, t.numPartitions]));

/**
 * A broker node on one slot: topics and their partition logs, produce and fetch. The
 * worker entry exposes it through Comlink; tests drive it directly.
 * @example const node = createBrokerNode(components); await node.start(init);
 */
export function createBrokerNode(components: BrokerNodeComponents): NodeApi {
  let running: Running | undefined;
  let starting = false;
  /** The worker's end of the page's network bridge (attachNetwork), while the page runs one. */
  let peerLink: PeerLink | undefined;
  /** Requests and one-way messages to peers over peerLink. */
  let peerRpc: PeerRpc | undefined;
  /** echoPeer calls in progress, by the caller's key, for cancelPeerRequest. */
  const peerRequests = new Map<number, AbortController>();
  /** Why each refused peer was refused admission, for refusedPeers(). */
  const refused = new Map<string, string>();

  const state = (): Running => {
    if (running === undefined) throw new NotConnectedError('the broker node is not started (or was closed)');
    return running;
  };

  const logOf = (topic: string, partition: number): PartitionLog => {
    const { topics, logs } = state();
    const definition = topics.get(topic);
    if (definition === undefined) throw new UnknownTopicOrPartitionError(topic);
    const log = logs.get({ topic, partition });
    if (log === undefined || !Number.isInteger(partition)) throw new UnknownTopicOrPartitionError(topic, partition);
    return log;
  };

  /** Persists the topic definitions and tells the group coordinator their partition counts. */
  const saveTopics = async (r: Running) => {
    await r.storage.write([{ kind: 'putValue', key: 'topics', value: [...r.topics.values()] }]);
    r.groups.topicsChanged(partitionCounts(r.topics));
  };

  async function createTopic(r: Running, definition: TopicDefinition): Promise<void> {
    r.topics.set(definition.name, definition);
    for (let partition = 0; partition < definition.numPartitions; partition++) {
      await r.logs.open({ topic: definition.name, partition }, definition.config);
    }
    await saveTopics(r);
  }

  const node: NodeApi = {
    async start(init: NodeStartInit) {
      if (running !== undefined || starting) throw new InvalidArgumentError('the broker node is already started');
      starting = true;
      try {
        const claim = await claimSlot(components.locks, init.preferredSlot, init.slotWaitMs, components.clock);
        const databaseName = databaseNameOf(claim.slot);
        let storage: Storage;
        try {
          storage = await components.openStorage(databaseName);
        } catch (error) {
          claim.release();
          throw error;
        }
        let marker = (await storage.readValue('marker')) as DatabaseMarker | undefined;
        const remembered = init.knownIncarnations[claim.slot];
        const lost = remembered !== undefined && marker?.incarnation !== remembered;
        if (lost && init.onStorageLost === 'fail') {
          storage.close();
          claim.release();
          throw new StorageLostError(
            claim.slot,
            `the database of slot ${claim.slot} (${databaseName}) was evicted or wiped: its records are gone. ` +
              `Pass onStorageLost: 'continue' to start afresh.`,
          );
        }
        if (marker === undefined) {
          marker = { incarnation: components.randomId(), createdAt: components.clock.now() };
          await storage.write([{ kind: 'putValue', key: 'marker', value: marker }]);
        }
        const { clock } = components;
        const logs = createLogManager(storage, { clock });
        const topics = new Map<string, TopicDefinition>();
        for (const definition of ((await storage.readValue('topics')) ?? []) as TopicDefinition[]) {
          topics.set(definition.name, definition);
          for (let partition = 0; partition < definition.numPartitions; partition++) {
            await logs.open({ topic: definition.name, partition }, definition.config);
          }
        }
        const info: NodeInfo = { slot: claim.slot, incarnation: marker.incarnation, databaseName, storageLost: lost };
        const maintenance = logs.maintainInBackground(components.onError ? { onError: components.onError } : {});
        // The node's pure cores run on one executor; no raft group runs here yet, so nothing goes to peers.
        const executor = new Executor({
          nodeId: marker.incarnation,
          clock,
          committer: logs.committer,
          sendFrame: () => false,
          tickMs: GROUP_TICK_MS,
          heartbeatFlushTicks: 1,
        });
        const groups = await GroupRuntime.start(executor, storage, components.randomId().slice(0, 8), partitionCounts(topics));
        executor.start();
        running = { claim, executor, groups, storage, logs, topics, info, maintenance, fetches: new Map() };
        return info;
      } finally {
        starting = false;
      }
    },

    async createTopics(specs, validateOnly) {
      const r = state();
      if (!Array.isArray(specs)) throw new InvalidArgumentError('createTopics takes an array of topic specs');
      const definitions = specs.map(defineTopic);
      const names = new Set<string>();
      for (const d of definitions) {
        if (names.has(d.name)) throw new InvalidArgumentError(`topic "${d.name}" appears twice in one request`);
        names.add(d.name);
      }
      const created: boolean[] = [];
      for (const definition of definitions) {
        const exists = r.topics.has(definition.name);
        if (!exists && !validateOnly) await createTopic(r, definition);
        created.push(!exists);
      }
      return created;
    },

    async listTopics() {
      return [...state().topics.keys()];
    },

    async describeTopics(names) {
      const r = state();
      const chosen = names ?? [...r.topics.keys()];
      return chosen.map((name) => {
        const definition = r.topics.get(name);
        if (definition === undefined) throw new UnknownTopicOrPartitionError(name);
        const defaults = configEntriesOf(defaultLogConfig);
        return {
          ...definition,
          configEntries: configEntriesOf(definition.config).map((e) => ({ ...e, isDefault: defaults.some((d) => d.name === e.name && d.value === e.value) })),
          partitions: Array.from({ length: definition.numPartitions }, (_, partition) => {
            const log = logOf(name, partition);
            return { partition, leader: r.info.slot, logStartOffset: log.logStartOffset, highWatermark: log.highWatermark };
          }),
        };
      });
    },

    async produce(request) {
      const r = state();
      if (request.acks !== 0 && request.acks !== 1 && request.acks !== -1) throw new InvalidArgumentError(`acks must be -1, 0 or 1, got ${String(request.acks)}`);
      if (!Array.isArray(request.batches)) throw new InvalidArgumentError('produce takes an array of batches');
      for (const { topic } of request.batches) {
        if (!r.topics.has(topic) && request.allowAutoTopicCreation) await createTopic(r, defineTopic({ topic }));
      }
      const targets = request.batches.map(({ topic, partition, bytes }) => {
        if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('a produced batch must be a Uint8Array');
        return { log: logOf(topic, partition), bytes };
      });
      const appends = targets.map(({ log, bytes }) => log.append(bytes));
      if (request.acks === 0) {
        // The caller asked not to hear back: failures are the node's to report.
        for (const append of appends) append.catch((error: unknown) => components.onError?.(error));
        return targets.map(({ log }) => ({ topic: log.id.topic, partition: log.id.partition, baseOffset: -1, logStartOffset: log.logStartOffset }));
      }
      const results = await Promise.all(appends);
      return results.map((result, i): ProduceResult => {
        const { log } = targets[i]!;
        return { topic: log.id.topic, partition: log.id.partition, baseOffset: result.baseOffset, logStartOffset: log.logStartOffset };
      });
    },

    async fetch(request: FetchRequest) {
      const r = state();
      const controller = new AbortController();
      r.fetches.set(request.requestId, controller);
      const cancelTimer = components.clock.after(Math.max(0, Math.min(request.maxWaitMs, FETCH_WAIT_MAX_MS)), () => controller.abort());
      try {
        for (;;) {
          const results = await readPartitions(request);
          const bytes = results.reduce((sum, p) => sum + p.batches.reduce((n, b) => n + b.length, 0), 0);
          if (bytes >= Math.max(1, request.minBytes) || results.some((p) => p.errorCode !== undefined) || controller.signal.aborted) {
            return results;
          }
          // Wait until any partition's high watermark passes its fetch offset (woken by the
          // append), or moves at all when it already does but cuts the batch there.
          await Promise.race([
            ...request.partitions.map(({ topic, partition, fetchOffset }) => {
              const log = logOf(topic, partition);
              return log.waitForData(Math.max(fetchOffset, log.highWatermark), controller.signal);
            }),
            // With no partitions to wait on (all paused), the wait still ends at maxWait or cancel.
            new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true })),
          ]);
        }
      } finally {
        cancelTimer();
        r.fetches.delete(request.requestId);
      }
    },

    async deleteTopics(names) {
      const r = state();
      if (!Array.isArray(names)) throw new InvalidArgumentError('deleteTopics takes an array of topic names');
      for (const name of names) if (!r.topics.has(name)) throw new UnknownTopicOrPartitionError(name);
      for (const name of names) {
        const definition = r.topics.get(name)!;
        r.topics.delete(name);
        await saveTopics(r);
        for (let partition = 0; partition < definition.numPartitions; partition++) await r.logs.delete({ topic: name, partition });
      }
    },

    async createPartitions(topic, count) {
      const r = state();
      const definition = r.topics.get(topic);
      if (definition === undefined) throw new UnknownTopicOrPartitionError(topic);
      if (!Number.isSafeInteger(count) || count <= definition.numPartitions || count > PARTITIONS_MAX) {
        throw new InvalidConfigError(`topic "${topic}" has ${definition.numPartitions} partitions; the new count must be more, at most ${PARTITIONS_MAX}, got ${String(count)}`, 'INVALID_PARTITIONS');
      }
      const grown = { ...definition, numPartitions: count };
      for (let partition = definition.numPartitions; partition < count; partition++) await r.logs.open({ topic, partition }, grown.config);
      r.topics.set(topic, grown);
      await saveTopics(r);
    },

    async alterConfigs(topic, entries) {
      const r = state();
      const definition = r.topics.get(topic);
      if (definition === undefined) throw new UnknownTopicOrPartitionError(topic);
      if (!Array.isArray(entries)) throw new InvalidArgumentError('alterConfigs takes an array of { name, value }');
      const altered = { ...definition, config: parseConfigEntries(entries, definition.config) };
      r.topics.set(topic, altered);
      await saveTopics(r);
      for (let partition = 0; partition < altered.numPartitions; partition++) logOf(topic, partition).setConfig(altered.config);
      r.maintenance.runSoon(); // a shorter retention applies now, not at the next interval
    },

    async deleteRecords(topic, partitions) {
      if (!Array.isArray(partitions)) throw new InvalidArgumentError('deleteRecords takes an array of { partition, offset }');
      const logs = partitions.map(({ partition }) => logOf(topic, partition));
      return Promise.all(partitions.map(({ offset }, i) => logs[i]!.deleteRecordsBefore(offset)));
    },

    async listOffsets(queries) {
      return Promise.all(queries.map(({ topic, partition, query }) => logOf(topic, partition).offsetFor(query)));
    },

    joinGroup: (request) => state().groups.request<JoinReply>({ type: 'join', ...request }),
    syncGroup: (request) => state().groups.request<SyncReply>({ type: 'sync', ...request }),
    heartbeat: async (request) => void (await state().groups.request({ type: 'heartbeat', ...request })),
    leaveGroup: async (request) => void (await state().groups.request({ type: 'leave', ...request })),
    commitOffsets: async (request) => void (await state().groups.request({ type: 'commit', ...request })),
    fetchOffsets: async (groupId) => state().groups.committed(groupId),
    listGroups: async () => state().groups.list(),
    describeGroups: async (groupIds) =>
      groupIds.map((groupId) => state().groups.describe(groupId) ?? { groupId, state: 'Empty', generationId: 0, assignor: null, members: [] }),

    cancel(requestId) {
      running?.fetches.get(requestId)?.abort();
    },

    async networkKey(candidate) {
      const r = state();
      const stored = await r.storage.readValue(NETWORK_KEY);
      if (stored instanceof Uint8Array) return stored;
      await r.storage.write([{ kind: 'putValue', key: NETWORK_KEY, value: candidate }]);
      return candidate;
    },

    attachNetwork(port, options = {}) {
      state();
      peerRpc?.close();
      peerLink?.close();
      refused.clear();
      peerLink = createPeerLink(port);
      peerRpc = createPeerRpc(peerLink, {
        // Always a handshake: a cluster without a secret proves the empty one, so it and a cluster with one refuse each other.
        admission: { secret: options.secret ?? '' },
        onRefused: (peerId, error) => refused.set(peerId, error.message),
      });
      peerRpc.handle('echo', (body) => body);
    },

    peers() {
      return peerLink?.peers() ?? [];
    },

    async echoPeer({ requestKey, peerId, bytes, timeoutMs }) {
      if (peerRpc === undefined) throw new PeerNotConnectedError(peerId, `no network attached: no connection to peer ${peerId}`);
      const controller = new AbortController();
      peerRequests.set(requestKey, controller);
      try {
        return await peerRpc.request(peerId, 'echo', bytes, { signal: controller.signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
      } finally {
        peerRequests.delete(requestKey);
      }
    },

    async probePeer({ peerId, bytes, count, timeoutMs }) {
      if (peerRpc === undefined) throw new PeerNotConnectedError(peerId, `no network attached: no connection to peer ${peerId}`);
      const options = timeoutMs === undefined ? {} : { timeoutMs };
      const started = components.clock.monotonic();
      // Each message is its own copy: the link may transfer (detach) what it sends.
      for (let i = 0; i < count; i++) await peerRpc.notify(peerId, 'echo', bytes.slice(), options);
      await peerRpc.request(peerId, 'echo', new Uint8Array(0), options);
      return { ms: components.clock.monotonic() - started };
    },

    async probePeerRtt({ peerId, bytes, rounds, timeoutMs }) {
      if (peerRpc === undefined) throw new PeerNotConnectedError(peerId, `no network attached: no connection to peer ${peerId}`);
      const options = timeoutMs === undefined ? {} : { timeoutMs };
      const rttMs: number[] = [];
      // The monotonic clock, not the wall clock: round trips are fractions of a ms.
      for (let round = 0; round < rounds; round++) {
        const started = components.clock.monotonic();
        await peerRpc.request(peerId, 'echo', bytes, options);
        rttMs.push(components.clock.monotonic() - started);
      }
      return { rttMs };
    },

    refusedPeers() {
      return [...refused].map(([peerId, reason]) => ({ peerId, reason }));
    },

    cancelPeerRequest(requestKey) {
      peerRequests.get(requestKey)?.abort();
    },

    async close() {
      peerRpc?.close();
      peerRpc = undefined;
      peerLink?.close();
      peerLink = undefined;
      const r = running;
      if (r === undefined) return;
      running = undefined;
      r.maintenance.stop();
      r.groups.stop();
      r.executor.stop();
      for (const controller of r.fetches.values()) controller.abort();
      r.storage.close();
      r.claim.release();
    },
  };

  async function readPartitions(request: FetchRequest): Promise<FetchedPartition[]> {
    let budget = request.maxBytes;
    const results: FetchedPartition[] = [];
    for (const { topic, partition, fetchOffset, maxBytes } of request.partitions) {
      const r = state();
      const log = r.logs.get({ topic, partition });
      if (log === undefined || !r.topics.has(topic)) {
        results.push({ topic, partition, highWatermark: -1, logStartOffset: -1, batches: [], errorCode: 'UNKNOWN_TOPIC_OR_PARTITION' });
        continue;
      }
      const base = { topic, partition, highWatermark: log.highWatermark, logStartOffset: log.logStartOffset };
      if (fetchOffset < log.logStartOffset || fetchOffset > log.logEndOffset || !Number.isSafeInteger(fetchOffset)) {
        results.push({ ...base, batches: [], errorCode: 'OFFSET_OUT_OF_RANGE' });
        continue;
      }
      const batches = budget > 0 ? await log.read(fetchOffset, { maxBytes: Math.min(maxBytes, budget) }) : [];
      budget -= batches.reduce((n, b) => n + b.length, 0);
      results.push({ ...base, batches });
    }
    return results;
  }

  return node;
}
