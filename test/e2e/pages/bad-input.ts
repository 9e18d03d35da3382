// Bad input for every public method, generated from a description of its parameters: for each
// argument and each field of an object argument (and of the first element of an array one), every
// value of a type the parameter does not accept — missing, null, wrongly typed, hostile (a
// function, a symbol, a cyclic object, a throwing signal-like) — with the other arguments valid.
// The description is typed against the classes, so a public method without one fails typecheck.
import type * as client from '../../../src/client';

type Lb = typeof client;

/** What a parameter accepts. */
export type Shape =
  | { t: 'string' | 'number' | 'integer' | 'boolean' | 'function' | 'signal' | 'bytes' | 'regexp' | 'decimal'; optional?: boolean; nullable?: boolean }
  | { t: 'object'; fields: Record<string, Shape>; optional?: boolean }
  | { t: 'array'; of: Shape; optional?: boolean }
  | { t: 'union'; of: Shape[]; optional?: boolean; nullable?: boolean }
  | { t: 'literal'; values: unknown[]; optional?: boolean };

const str = (optional = false): Shape => ({ t: 'string', optional });
const int = (optional = false): Shape => ({ t: 'integer', optional });
const decimal = (optional = false): Shape => ({ t: 'decimal', optional });
const obj = (fields: Record<string, Shape>, optional = false): Shape => ({ t: 'object', fields, optional });
const arr = (of: Shape, optional = false): Shape => ({ t: 'array', of, optional });
const call = obj({ signal: { t: 'signal', optional: true } }, true);
const topicName = str();
const message = obj({
  key: { t: 'union', of: [str(), { t: 'bytes' }], optional: true, nullable: true },
  value: { t: 'union', of: [str(), { t: 'bytes' }], nullable: true },
  headers: { t: 'object', fields: { h: { t: 'union', of: [str(), { t: 'bytes' }, arr({ t: 'union', of: [str(), { t: 'bytes' }] })], optional: true } }, optional: true },
  partition: int(true),
  timestamp: { t: 'union', of: [decimal(), int()], optional: true },
});
const acks: Shape = { t: 'literal', values: [-1, 0, 1], optional: true };
const compression: Shape = { t: 'literal', values: [0, 1], optional: true };
const partitionOffsets = arr(obj({ partition: int(), offset: decimal() }));
const topicPartitions = arr(obj({ topic: topicName, partitions: arr(int(), true) }));
const listener: Shape = { t: 'function' };

type Methods<T> = { [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: Shape[] };

/** Which public methods take which parameters; `t` is the topic every valid sample names. */
export const producerMethods: Methods<client.Producer> = {
  connect: [],
  logger: [],
  isIdempotent: [],
  disconnect: [],
  on: [{ t: 'literal', values: ['producer.network.request', 'producer.connect', 'producer.disconnect'] }, listener],
  send: [obj({ topic: topicName, messages: arr(message), acks, timeout: int(true), compression }), call],
  sendBatch: [obj({ topicMessages: arr(obj({ topic: topicName, messages: arr(message) })), acks, timeout: int(true), compression }), call],
};

export const consumerMethods: Methods<client.Consumer> = {
  connect: [],
  disconnect: [],
  stop: [],
  paused: [],
  logger: [],
  describeGroup: [call],
  on: [{ t: 'literal', values: ['consumer.crash', 'consumer.stop', 'consumer.fetch'] }, listener],
  subscribe: [obj({ topic: { t: 'union', of: [str(), { t: 'regexp' }], optional: true }, topics: arr({ t: 'union', of: [str(), { t: 'regexp' }] }, true), fromBeginning: { t: 'boolean', optional: true } }), call],
  run: [obj({ eachMessage: { t: 'function' }, autoCommit: { t: 'boolean', optional: true }, autoCommitInterval: { t: 'integer', optional: true, nullable: true }, autoCommitThreshold: { t: 'integer', optional: true, nullable: true }, partitionsConsumedConcurrently: int(true), eachBatchAutoResolve: { t: 'boolean', optional: true } })],
  seek: [obj({ topic: topicName, partition: int(), offset: { t: 'union', of: [decimal(), int()] } })],
  pause: [topicPartitions],
  resume: [topicPartitions],
  commitOffsets: [arr(obj({ topic: topicName, partition: int(), offset: decimal() }))],
};

export const adminMethods: Methods<client.Admin> = {
  connect: [],
  logger: [],
  disconnect: [],
  on: [{ t: 'literal', values: ['admin.connect', 'admin.disconnect'] }, listener],
  createTopics: [obj({ topics: arr(obj({ topic: str(), numPartitions: int(true), replicationFactor: int(true), configEntries: arr(obj({ name: str(), value: str() }), true) })), validateOnly: { t: 'boolean', optional: true } }), call],
  deleteTopics: [obj({ topics: arr(str()) }), call],
  createPartitions: [obj({ topicPartitions: arr(obj({ topic: topicName, count: int() })) }), call],
  listTopics: [call],
  fetchTopicMetadata: [obj({ topics: arr(str(), true) }, true), call],
  fetchTopicOffsets: [topicName, call],
  fetchTopicOffsetsByTimestamp: [topicName, int(true), call],
  fetchOffsets: [obj({ groupId: str(), topics: arr(str(), true) }), call],
  setOffsets: [obj({ groupId: str(), topic: topicName, partitions: partitionOffsets }), call],
  resetOffsets: [obj({ groupId: str(), topic: topicName, earliest: { t: 'boolean', optional: true } }), call],
  listGroups: [call],
  describeCluster: [call],
  describeGroups: [arr(str()), call],
  deleteGroups: [arr(str()), call],
  describeConfigs: [obj({ resources: arr(obj({ type: { t: 'literal', values: [2] }, name: topicName, configNames: arr(str(), true) })) }), call],
  alterConfigs: [obj({ resources: arr(obj({ type: { t: 'literal', values: [2] }, name: topicName, configEntries: arr(obj({ name: { t: 'literal', values: ['retention.ms'] }, value: { t: 'literal', values: ['100000000'] } })) })) }), call],
  deleteTopicRecords: [obj({ topic: topicName, partitions: arr(obj({ partition: int(), offset: { t: 'literal', values: ['0'] } })) }), call],
};

export const letterboxConfig: Shape[] = [
  obj(
    {
      clientId: str(true),
      logLevel: { t: 'literal', values: [0, 1, 2, 4, 5], optional: true },
      logCreator: { t: 'function', optional: true },
      workerStartTimeoutMs: int(true),
      slotWaitMs: int(true),
      onStorageLost: { t: 'literal', values: ['fail', 'continue'], optional: true },
      cluster: str(true),
      relay: str(true),
      secret: str(true),
      localPeers: { t: 'boolean', optional: true },
      adoptSlots: int(true),
      reassignAfterMs: int(true),
    },
    true,
  ),
];

export const letterboxMethods: Omit<Methods<client.Letterbox>, 'node'> = {
  producer: [obj({ allowAutoTopicCreation: { t: 'boolean', optional: true }, maxBatchBytes: int(true) }, true)],
  consumer: [obj({ groupId: str(), sessionTimeout: int(true), rebalanceTimeout: int(true), heartbeatInterval: int(true), maxWaitTimeInMs: int(true), minBytes: int(true), maxBytes: int(true), maxBytesPerPartition: int(true), retry: obj({ retries: int(true), initialRetryTime: int(true) }, true), partitionAssigners: arr({ t: 'literal', values: ['roundrobin', 'range'] }, true) })],
  admin: [],
  storagePersisted: [],
  nodeInfo: [],
  peerId: [],
  peers: [],
  echo: [str(), { t: 'bytes' }, obj({ timeoutMs: int(true), signal: { t: 'signal', optional: true } }, true)],
  probePeer: [str(), obj({ messageBytes: int(), count: int(), timeoutMs: int(true) })],
  probePeerRtt: [str(), obj({ messageBytes: int(), rounds: int(), timeoutMs: int(true) })],
  refusedPeers: [],
  adoptedSlots: [],
  networkStats: [],
  logger: [],
  on: [{ t: 'literal', values: ['letterbox.connect', 'letterbox.storage_lost'] }, listener],
  close: [],
};

/** One valid value of a shape (the samples name topic `t`, partition 0, group `g`). */
function sample(shape: Shape, name = ''): unknown {
  switch (shape.t) {
    case 'string':
      return name === 'groupId' ? 'g' : 't';
    case 'number':
    case 'integer':
      return name === 'count' ? 2 : name === 'messageBytes' || name === 'partition' ? 0 : 1000;
    case 'decimal':
      return '0';
    case 'boolean':
      return false;
    case 'function':
      return async () => undefined;
    case 'signal':
      return new AbortController().signal;
    case 'bytes':
      return new Uint8Array([1]);
    case 'regexp':
      return /^t$/;
    case 'literal':
      return shape.values[0];
    case 'union':
      return sample(shape.of[0]!, name);
    case 'array':
      return [sample(shape.of, name)];
    case 'object':
      return Object.fromEntries(Object.entries(shape.fields).map(([k, s]) => [k, sample(s, k)]));
  }
}

function accepts(shape: Shape, value: unknown): boolean {
  if (value === undefined && shape.optional === true) return true;
  if (value === null && 'nullable' in shape && shape.nullable === true) return true;
  switch (shape.t) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'integer':
      return Number.isSafeInteger(value);
    case 'decimal':
      return typeof value === 'string' && /^-?\d+$/.test(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'function':
      return typeof value === 'function';
    case 'signal':
      return value instanceof AbortSignal;
    case 'bytes':
      return value instanceof Uint8Array;
    case 'regexp':
      return value instanceof RegExp;
    case 'literal':
      return shape.values.includes(value);
    case 'union':
      return shape.of.some((s) => accepts(s, value));
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}

/** Values of every kind, including hostile ones; each is tried where its kind is not accepted. */
function badValues(): Array<{ label: string; value: unknown }> {
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  return [
    { label: 'missing', value: undefined },
    { label: 'null', value: null },
    { label: '42', value: 42 },
    { label: '-1', value: -1 },
    { label: '1.5', value: 1.5 },
    { label: 'NaN', value: Number.NaN },
    { label: 'huge', value: 2 ** 60 },
    { label: '"text"', value: 'yesterday' },
    { label: '""', value: '' },
    { label: 'true', value: true },
    { label: '{}', value: {} },
    { label: '[]', value: [] },
    { label: 'function', value: () => 'hostile' },
    { label: 'symbol', value: Symbol('hostile') },
    { label: 'cyclic', value: cyclic },
    { label: 'signal-like', value: { aborted: false, addEventListener: 'no' } },
    { label: 'bigint', value: 10n },
  ];
}

/** Every call of `methods` with one bad value in one place, the rest valid. */
export function* badCalls<M extends Record<string, Shape[]>>(methods: M): Generator<{ method: keyof M & string; label: string; args: unknown[] }> {
  for (const [method, shapes] of Object.entries(methods)) {
    const valid = shapes.map((s) => sample(s));
    for (const [index, shape] of shapes.entries()) {
      for (const { path, shape: leaf } of places(shape)) {
        for (const { label, value } of badValues()) {
          if (accepts(leaf, value)) continue;
          const args = valid.map((v) => structuredCloneWithFunctions(v));
          if (path.length === 0) args[index] = value;
          else setAt(args[index], path, value);
          yield { method: method as keyof M & string, label: `${method} arg ${index}${path.map((p) => `.${p}`).join('')} = ${label}`, args: trimTrailingUndefined(args, index, path, value) };
        }
      }
    }
  }
}

/** The argument itself, each field of an object (with its own fields), the first element of an array. */
function* places(shape: Shape, path: Array<string | number> = []): Generator<{ path: Array<string | number>; shape: Shape }> {
  yield { path, shape };
  if (path.length >= 4) return;
  if (shape.t === 'object') for (const [k, s] of Object.entries(shape.fields)) yield* places(s, [...path, k]);
  if (shape.t === 'array') yield* places(shape.of, [...path, 0]);
}

function setAt(target: unknown, path: Array<string | number>, value: unknown): void {
  let at = target as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) {
    if (at[key] === undefined) at[key] = typeof path[path.indexOf(key) + 1] === 'number' ? [{}] : {};
    at = at[key] as Record<string | number, unknown>;
  }
  at[path.at(-1)!] = value;
}

/** A missing last argument is left out, not passed as undefined. */
function trimTrailingUndefined(args: unknown[], index: number, path: unknown[], value: unknown): unknown[] {
  return value === undefined && path.length === 0 && index === args.length - 1 ? args.slice(0, index) : args;
}

function structuredCloneWithFunctions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(structuredCloneWithFunctions);
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, structuredCloneWithFunctions(v)]));
  }
  return value;
}

/** The outcome of one call: resolved, a LetterboxError (code), or anything else thrown (its name). */
export async function outcomeOf(lb: Lb, run: () => unknown): Promise<{ outcome: 'resolved' | 'letterbox' | 'other'; detail: string }> {
  try {
    await run();
    return { outcome: 'resolved', detail: '' };
  } catch (error) {
    if (error instanceof lb.LetterboxError) return { outcome: 'letterbox', detail: error.code };
    return { outcome: 'other', detail: `${(error as Error)?.name}: ${(error as Error)?.message}` };
  }
}
