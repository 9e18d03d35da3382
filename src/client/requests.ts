// KafkaJS's request events (REQUEST, REQUEST_TIMEOUT, REQUEST_QUEUE_SIZE) for Letterbox's
// clients. A client's requests are its calls into its tab's broker (in the worker), and, for
// produce, fetch and listOffsets, the requests that broker makes to the partitions' leaders
// over peer RPC: the worker reports those for calls the client traced. Nothing is measured,
// traced or posted while nobody listens.

import { proxy } from 'comlink';
import { NotConnectedError, TimeoutError } from '../errors';
import type { NodeApi, NodeInfo, PeerRequestReport, RequestReport } from '../node';
import { peerBrokerName } from '../node/request-reports';
import { KAFKA_API_KEYS, type KafkaApiName } from '../protocol';
import type { ClientContext, RemoteNode } from './context';
import type { Instrumentation } from './events';
import { withTimeout } from './node-connection';

/** KafkaJS's REQUEST payload: one request to a broker, answered. */
export interface RequestEventPayload extends RequestReport {
  clientId: string;
}

/** KafkaJS's request events by kind; a client's are named `<client>.network.<kind>`, as KafkaJS names them. */
export interface RequestEvents {
  /** A request to a broker was answered (an error answer too). */
  request: RequestEventPayload;
  /** A request to a broker timed out. */
  request_timeout: Omit<RequestEventPayload, 'size' | 'duration'>;
  /** The requests waiting to be sent to a broker changed: `queueSize` of them now. */
  request_queue_size: { broker: string; clientId: string; queueSize: number };
}

/** A client's request events under its prefix: `producer.network.request`, … */
export type RequestEventsOf<Prefix extends string> = { [K in keyof RequestEvents as `${Prefix}.network.${K}`]: RequestEvents[K] };

/** The event names of a client's request events, as its `events` lists them. */
export const requestEventNames = <Prefix extends string>(prefix: Prefix) =>
  ({
    REQUEST: `${prefix}.network.request`,
    REQUEST_TIMEOUT: `${prefix}.network.request_timeout`,
    REQUEST_QUEUE_SIZE: `${prefix}.network.request_queue_size`,
  }) as const;

/**
 * A client's request events going to its instrumentation.
 * @example this.#context = new ClientRequests(context, requestEmitter(this.#instrumentation, 'producer'));
 */
export function requestEmitter<Prefix extends 'producer' | 'consumer' | 'admin'>(instrumentation: Pick<Instrumentation<RequestEventsOf<Prefix>>, 'listens' | 'emit'>, prefix: Prefix): RequestEmitter {
  const names = requestEventNames(prefix);
  const emit = instrumentation.emit.bind(instrumentation) as <K extends keyof RequestEvents>(type: `${Prefix}.network.${K}`, payload: () => RequestEvents[K]) => void;
  return {
    listening: () => instrumentation.listens([names.REQUEST, names.REQUEST_TIMEOUT, names.REQUEST_QUEUE_SIZE] as Array<keyof RequestEventsOf<Prefix>>),
    emit: (kind, payload) => emit(`${prefix}.network.${kind}`, payload),
  };
}

/** Where a client's request events go. */
export interface RequestEmitter {
  /** Whether anyone listens to any of the three. */
  listening(): boolean;
  /** Emits if anyone listens to `kind`; `payload` is called only then. */
  emit<K extends keyof RequestEvents>(kind: K, payload: () => RequestEvents[K]): void;
}

/** Kafka's request behind each call a client makes to its broker (calls not listed are not requests: cancel, start, …). */
const NODE_CALLS: Partial<Record<keyof NodeApi, KafkaApiName>> = {
  produce: 'Produce',
  fetch: 'Fetch',
  listOffsets: 'ListOffsets',
  listTopics: 'Metadata',
  describeTopics: 'Metadata',
  clusterInfo: 'DescribeCluster',
  initProducerId: 'InitProducerId',
  createTopics: 'CreateTopics',
  deleteTopics: 'DeleteTopics',
  createPartitions: 'CreatePartitions',
  alterConfigs: 'AlterConfigs',
  deleteRecords: 'DeleteRecords',
  joinGroup: 'JoinGroup',
  syncGroup: 'SyncGroup',
  heartbeat: 'Heartbeat',
  leaveGroup: 'LeaveGroup',
  commitOffsets: 'OffsetCommit',
  fetchOffsets: 'OffsetFetch',
  listGroups: 'ListGroups',
  describeGroups: 'DescribeGroups',
  deleteGroups: 'DeleteGroups',
};

/** Calls whose peer requests the broker reports when given a trace (their last argument). */
const TRACED_CALLS: ReadonlySet<string> = new Set<keyof NodeApi>(['produce', 'fetch', 'listOffsets']);

/**
 * This tab's broker as admin.describeCluster() names it when it is a private broker (no
 * cluster): the page's host and port.
 * @example pageBrokerAddress() // { host: 'localhost', port: 8787 }
 */
export function pageBrokerAddress(): { host: string; port: number } {
  const host = globalThis.location?.hostname ?? 'localhost';
  const port = Number(globalThis.location?.port || (globalThis.location?.protocol === 'https:' ? 443 : 80));
  return { host, port };
}

/**
 * Routes the peer-request reports of a Letterbox's broker to the clients that traced the
 * calls: each client takes a trace once, and the broker is asked to report (once per node)
 * when the first traced call goes to it.
 * @example const trace = reports.trace((report) => emit(report)); reports.attach(node);
 */
export class PeerRequestReports {
  readonly #sinks = new Map<number, (report: PeerRequestReport) => void>();
  #attachedTo: RemoteNode | undefined;

  /**
   * A trace for the calls of one client; its broker's reports for them go to `sink`.
   * @example const trace = reports.trace((report) => console.log(report.payload.broker));
   */
  trace(sink: (report: PeerRequestReport) => void): number {
    const trace = this.#sinks.size + 1;
    this.#sinks.set(trace, sink);
    return trace;
  }

  /**
   * Asks `node` to report traced calls' peer requests here, unless it was asked already.
   * @example reports.attach(node); await node.produce(request, trace);
   */
  attach(node: RemoteNode): void {
    if (this.#attachedTo === node) return;
    this.#attachedTo = node;
    // Posted before the traced call that follows on the same port, so the broker has it first.
    void node.reportPeerRequests(proxy((report: PeerRequestReport) => this.#sinks.get(report.trace)?.(report))).catch(() => undefined);
  }
}

/** A call to the broker while someone listens: what its events need. */
interface CallRecord {
  apiName: KafkaApiName;
  correlationId: number;
  createdAt: number;
  timedOut: boolean;
}

/**
 * A client's view of its Letterbox (a ClientContext) whose broker calls report KafkaJS's
 * request events: REQUEST for each answered call (apiName the Kafka request it stands for,
 * broker this tab's broker), REQUEST_TIMEOUT for a call given up by {@link withTimeout},
 * REQUEST_QUEUE_SIZE for calls waiting for the broker to start (named by the page: it has no
 * peer id yet); and, for traced calls, the same events for the requests the broker made to
 * other brokers for them.
 * @example const context = new ClientRequests(letterbox, emitter); const node = await context.node();
 */
export class ClientRequests implements ClientContext {
  readonly clientId: string;
  readonly peerReports: PeerRequestReports;
  readonly #context: ClientContext;
  readonly #emitter: RequestEmitter;
  readonly #calls = new WeakMap<Promise<unknown>, CallRecord>();
  #instrumented: { node: RemoteNode; view: RemoteNode } | undefined;
  #nextCorrelationId = 0;
  /** Calls waiting for the broker to start (before its first start only). */
  #waiting = 0;
  #started = false;
  #trace: number | undefined;
  /** This tab's broker's name once it is final (a private broker, or one that joined its cluster). */
  #brokerName: string | undefined;
  /** The events of calls answered, in order, each once its broker's name is known. */
  #answered: Promise<void> = Promise.resolve();

  constructor(context: ClientContext, emitter: RequestEmitter) {
    this.clientId = context.clientId;
    this.peerReports = context.peerReports;
    this.#context = context;
    this.#emitter = emitter;
  }

  /**
   * The broker, its calls instrumented; starts it if needed (counted as waiting calls until it first runs).
   * @example const node = await requests.node(); await node.listTopics();
   */
  async node(): Promise<RemoteNode> {
    const counted = !this.#started;
    if (counted) this.#queue(1);
    let node: RemoteNode;
    try {
      node = await this.#context.node();
      this.#started = true;
    } finally {
      if (counted) this.#queue(-1);
    }
    if (this.#instrumented?.node !== node) this.#instrumented = { node, view: this.#instrument(node) };
    return this.#instrumented.view;
  }

  /**
   * The node's slot and database, as the Letterbox gives them.
   * @example const { slot } = await requests.nodeInfo();
   */
  nodeInfo(): Promise<NodeInfo> {
    return this.#context.nodeInfo();
  }

  /**
   * Rejects with TimeoutError if `call` (a call made through {@link node}) has not settled
   * within `timeoutMs`, reporting REQUEST_TIMEOUT; its REQUEST is then not reported.
   * @example const results = await requests.withTimeout(node.produce(request), 30_000, 'send');
   */
  async withTimeout<T>(call: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    try {
      return await withTimeout(call, timeoutMs, what);
    } catch (error) {
      const record = this.#calls.get(call);
      if (record !== undefined && error instanceof TimeoutError) {
        record.timedOut = true;
        const { apiName, correlationId, createdAt } = record;
        this.#emitNamed((broker) =>
          this.#emitter.emit('request_timeout', () => ({ broker, clientId: this.clientId, correlationId, createdAt, sentAt: createdAt, pendingDuration: 0, apiName, apiKey: KAFKA_API_KEYS[apiName], apiVersion: 0 })),
        );
      }
      throw error;
    }
  }

  #instrument(node: RemoteNode): RemoteNode {
    return new Proxy(node, {
      get: (target, property, receiver) => {
        const member: unknown = Reflect.get(target, property, receiver);
        const apiName = typeof property === 'string' ? NODE_CALLS[property as keyof NodeApi] : undefined;
        if (apiName === undefined || typeof member !== 'function') return member;
        const invoke = member as (...args: unknown[]) => Promise<unknown>;
        return (...args: unknown[]) => (this.#emitter.listening() ? this.#call(node, apiName, property as string, invoke, args) : invoke(...args));
      },
    });
  }

  #call(node: RemoteNode, apiName: KafkaApiName, method: string, invoke: (...args: unknown[]) => Promise<unknown>, args: unknown[]): Promise<unknown> {
    const record: CallRecord = { apiName, correlationId: this.#nextCorrelationId++, createdAt: Date.now(), timedOut: false };
    if (TRACED_CALLS.has(method)) {
      this.#trace ??= this.peerReports.trace((report) => this.#onPeerReport(report));
      this.peerReports.attach(node);
      args = [args[0], this.#trace];
    }
    const sentBytes = method === 'produce' ? batchBytes((args[0] as Parameters<NodeApi['produce']>[0]).batches) : 0;
    const answer = invoke(...args);
    this.#calls.set(answer, record);
    const answered = (result: unknown) => {
      if (record.timedOut) return;
      const duration = Date.now() - record.createdAt;
      const size = method === 'fetch' ? batchBytes((result as Awaited<ReturnType<NodeApi['fetch']>>).flatMap((p) => p.batches.map((bytes) => ({ bytes })))) : sentBytes;
      this.#emitNamed((broker) =>
        this.#emitter.emit('request', () => ({ broker, clientId: this.clientId, correlationId: record.correlationId, size, createdAt: record.createdAt, sentAt: record.createdAt, pendingDuration: 0, duration, apiName, apiKey: KAFKA_API_KEYS[apiName], apiVersion: 0 })),
      );
    };
    // An error from the broker is its answer; a broker gone (NotConnectedError) answered nothing.
    answer.then(answered, (error: unknown) => (error instanceof NotConnectedError ? undefined : answered([])));
    return answer;
  }

  /** Emits with this tab's broker's name, after the events before it. */
  #emitNamed(emit: (broker: string) => void): void {
    this.#answered = this.#answered.then(async () => emit(await this.#broker()));
  }

  #onPeerReport(report: PeerRequestReport): void {
    const clientId = this.clientId;
    if (report.type === 'request') this.#emitter.emit('request', () => ({ ...report.payload, clientId }));
    else if (report.type === 'request_timeout') this.#emitter.emit('request_timeout', () => ({ ...report.payload, clientId }));
    else this.#emitter.emit('request_queue_size', () => ({ ...report.payload, clientId }));
  }

  #queue(delta: 1 | -1): void {
    this.#waiting += delta;
    const queueSize = this.#waiting;
    const { host, port } = pageBrokerAddress();
    this.#emitter.emit('request_queue_size', () => ({ broker: `${host}:${port}`, clientId: this.clientId, queueSize }));
  }

  /** This tab's broker's name, as admin.describeCluster() gives it: its peer id once it joined a cluster, else the page's host and port. */
  async #broker(): Promise<string> {
    if (this.#brokerName !== undefined) return this.#brokerName;
    const { host, port } = pageBrokerAddress();
    const pageName = `${host}:${port}`;
    let cluster: Awaited<ReturnType<NodeApi['clusterInfo']>>;
    try {
      cluster = await (await this.#context.node()).clusterInfo();
    } catch {
      return pageName;
    }
    const self = cluster?.brokers.find((b) => b.brokerId === cluster.brokerId)?.endpoints[0];
    if (self !== undefined) return (this.#brokerName = peerBrokerName(self));
    // A broker still joining its cluster is named by the page until it has joined.
    if (cluster === undefined) this.#brokerName = pageName;
    return pageName;
  }
}

function batchBytes(batches: ReadonlyArray<{ bytes: Uint8Array }>): number {
  return batches.reduce((n, b) => n + b.bytes.length, 0);
}
