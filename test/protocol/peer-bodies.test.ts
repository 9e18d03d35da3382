import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ControllerReply, ControllerRequest, NewTopic } from '../../src/cluster';
import {
  BrokerIdentityError,
  FrameError,
  GroupError,
  InconsistentClusterIdError,
  InvalidConfigError,
  LetterboxError,
  MetadataRecordError,
  NotControllerError,
  NotCoordinatorError,
  NotLeaderOrFollowerError,
  TopicExistsError,
  UnknownTopicOrPartitionError,
} from '../../src/errors';
import type { ClusterHello } from '../../src/cluster';
import type { Assignment } from '../../src/group';
import { createPeerFrameCodec, PEER_MESSAGE_TYPES, type ControllerMessage, type FetchMessage, type GroupMessage, type ListOffsetsMessage, type ProduceMessage, type MessageType, type RaftFrame } from '../../src/protocol';
import type { Entry, Membership, Message } from '../../src/raft';

// --- Arbitraries: every variant, every optional field both absent and present.

/** Any code points but lone surrogates, which UTF-8 cannot carry. */
const text = fc.string({ unit: 'binary', maxLength: 10 });
const counter = fc.oneof(fc.nat({ max: 300 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const int32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
const brokerId = fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 0x7fff_ffff }));
const bytes = fc.uint8Array({ maxLength: 40 });

const membership: fc.Arbitrary<Membership> = fc.record({ voters: fc.array(text, { maxLength: 3 }), learners: fc.array(text, { maxLength: 3 }) });
const entry: fc.Arbitrary<Entry> = fc.record({ term: counter, data: bytes, membership }, { requiredKeys: ['term', 'data'] });
const envelope = { from: text, to: text, term: counter };

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant('preVote' as const), ...envelope, lastIndex: counter, lastTerm: counter }),
  fc.record({ type: fc.constant('vote' as const), ...envelope, lastIndex: counter, lastTerm: counter, force: fc.boolean() }, {
    requiredKeys: ['type', 'from', 'to', 'term', 'lastIndex', 'lastTerm'],
  }),
  fc.record({ type: fc.constantFrom('preVoteResponse' as const, 'voteResponse' as const), ...envelope, reject: fc.boolean() }),
  fc.record({ type: fc.constant('append' as const), ...envelope, prevIndex: counter, prevTerm: counter, entries: fc.array(entry, { maxLength: 4 }), commit: counter }),
  fc.record({ type: fc.constant('appendResponse' as const), ...envelope, reject: fc.boolean(), index: counter, hintIndex: counter, hintTerm: counter }),
  fc.record({ type: fc.constant('heartbeat' as const), ...envelope, commit: counter, readRound: counter }),
  fc.record({ type: fc.constant('heartbeatResponse' as const), ...envelope, readRound: counter }),
  fc.record({ type: fc.constant('snapshot' as const), ...envelope, snapshot: fc.record({ index: counter, term: counter, membership, data: bytes }) }),
  fc.record({ type: fc.constant('timeoutNow' as const), ...envelope }),
);
const raftFrame: fc.Arbitrary<RaftFrame> = fc.record({ clusterId: text, messages: fc.array(fc.record({ group: text, message }), { maxLength: 4 }) });

const configEntries = fc.array(fc.record({ name: text, value: fc.option(text, { nil: null }) }), { maxLength: 3 });
const assignments = fc.array(fc.record({ partition: int32, replicas: fc.array(int32, { maxLength: 3 }) }), { maxLength: 3 });
const newTopic: fc.Arbitrary<NewTopic> = fc.record({ name: text, numPartitions: int32, replicationFactor: int32, configs: configEntries, assignments }, { requiredKeys: ['name'] });
const request: fc.Arbitrary<ControllerRequest> = fc.oneof(
  fc.record(
    {
      clusterId: text,
      type: fc.constant('register' as const),
      brokerId: fc.option(brokerId, { nil: undefined }),
      incarnation: text,
      deviceId: text,
      endpoints: fc.array(text, { maxLength: 3 }),
      hostedBy: brokerId,
    },
    { requiredKeys: ['clusterId', 'type', 'brokerId', 'incarnation', 'deviceId', 'endpoints'] },
  ),
  fc.record({ clusterId: text, type: fc.constantFrom('heartbeat' as const, 'brokerGone' as const), brokerId, incarnation: text }),
  fc.record({ clusterId: text, type: fc.constant('createTopics' as const), topics: fc.array(newTopic, { maxLength: 3 }) }),
  fc.record({ clusterId: text, type: fc.constant('deleteTopics' as const), topics: fc.array(text, { maxLength: 3 }) }),
  fc.record({ clusterId: text, type: fc.constant('createPartitions' as const), topics: fc.array(fc.record({ topic: text, count: int32 }), { maxLength: 3 }) }),
  fc.record({ clusterId: text, type: fc.constant('alterConfigs' as const), topics: fc.array(fc.record({ topic: text, entries: configEntries }), { maxLength: 3 }) }),
  fc.record({ clusterId: text, type: fc.constant('alterPartition' as const), brokerId, incarnation: text, topic: text, partition: int32, leaderEpoch: counter, isr: fc.array(brokerId, { maxLength: 3 }) }),
);

/** The errors the controller answers with, with every field they carry. */
const error: fc.Arbitrary<LetterboxError> = fc.oneof(
  fc.tuple(text, fc.option(text, { nil: undefined })).map(([m, hint]) => new NotControllerError(m, hint)),
  fc.tuple(text, text).map(([topic, m]) => new TopicExistsError(topic, m)),
  fc.tuple(text, fc.option(fc.nat(), { nil: undefined })).map(([topic, partition]) => new UnknownTopicOrPartitionError(topic, partition)),
  fc.tuple(text, fc.constantFrom('INVALID_CONFIG' as const, 'INVALID_PARTITIONS' as const, 'INVALID_REPLICATION_FACTOR' as const, 'INVALID_REPLICA_ASSIGNMENT' as const)).map(([m, code]) => new InvalidConfigError(m, code)),
  fc.tuple(fc.constantFrom('DUPLICATE_BROKER_REGISTRATION' as const, 'STALE_BROKER_EPOCH' as const), brokerId, text).map(([code, id, m]) => new BrokerIdentityError(code, id, m)),
  text.map((m) => new InconsistentClusterIdError(m)),
  text.map((m) => new MetadataRecordError('INVALID_RECORD', m)),
  fc.tuple(text, text, fc.boolean()).map(([code, m, retriable]) => new LetterboxError(code, m, { retriable })),
);
const reply: fc.Arbitrary<ControllerReply> = fc.oneof(
  fc.record({ type: fc.constant('register' as const), controllerEpoch: counter, brokerId }),
  fc.record({ type: fc.constant('heartbeat' as const), controllerEpoch: counter, fenced: fc.boolean() }),
  fc.record({ type: fc.constantFrom('brokerGone' as const, 'alterPartition' as const), controllerEpoch: counter }),
  fc.record({ type: fc.constant('topics' as const), controllerEpoch: counter, results: fc.array(fc.record({ topic: text, error }, { requiredKeys: ['topic'] }), { maxLength: 3 }) }),
  fc.record({ type: fc.constant('error' as const), controllerEpoch: counter, error }),
);
const controllerMessage: fc.Arbitrary<ControllerMessage> = fc.oneof(
  fc.record({ kind: fc.constant('request' as const), request }),
  fc.record({ kind: fc.constant('reply' as const), member: text, reply }),
);

const clusterHello: fc.Arbitrary<ClusterHello> = fc.record(
  { incarnation: text, brokerId, cluster: fc.record({ clusterName: text, clusterId: text, brokers: counter, records: counter }), controller: text },
  { requiredKeys: ['incarnation'] },
);

// The data path's bodies: batches and offsets as opaque bytes and safe integers.
const partitionId = { topic: text, partition: fc.nat({ max: 0x7fff_ffff }) };
/** A request's partition: its id and the leader epoch it is meant for (-1: unchecked). */
const requestPartition = { ...partitionId, leaderEpoch: fc.integer({ min: -1, max: 0x7fff_ffff }) };
const offsetOrNone = fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const nonNegative32 = fc.nat({ max: 0x7fff_ffff });
const produceMessage: fc.Arbitrary<ProduceMessage> = fc.oneof(
  fc.record({
    kind: fc.constant('request' as const),
    clusterId: text,
    acks: fc.constantFrom(-1 as const, 0 as const, 1 as const),
    timeoutMs: nonNegative32,
    batches: fc.array(fc.record({ ...requestPartition, bytes }), { maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('response' as const),
    results: fc.array(fc.record({ ...partitionId, baseOffset: offsetOrNone, logStartOffset: offsetOrNone, error }, { requiredKeys: ['topic', 'partition', 'baseOffset', 'logStartOffset'] }), { maxLength: 3 }),
  }),
);
const fetchMessage: fc.Arbitrary<FetchMessage> = fc.oneof(
  fc.record({
    kind: fc.constant('request' as const),
    clusterId: text,
    maxWaitMs: nonNegative32,
    minBytes: nonNegative32,
    maxBytes: nonNegative32,
    partitions: fc.array(fc.record({ ...requestPartition, fetchOffset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), maxBytes: nonNegative32 }), { maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('response' as const),
    partitions: fc.array(
      fc.record(
        {
          ...partitionId,
          highWatermark: offsetOrNone,
          logStartOffset: offsetOrNone,
          batches: fc.array(bytes, { maxLength: 3 }),
          errorCode: fc.constantFrom('OFFSET_OUT_OF_RANGE' as const, 'UNKNOWN_TOPIC_OR_PARTITION' as const, 'NOT_LEADER_OR_FOLLOWER' as const, 'FENCED_LEADER_EPOCH' as const, 'UNKNOWN_LEADER_EPOCH' as const),
        },
        { requiredKeys: ['topic', 'partition', 'highWatermark', 'logStartOffset', 'batches'] },
      ),
      { maxLength: 3 },
    ),
  }),
);
const listOffsetsMessage: fc.Arbitrary<ListOffsetsMessage> = fc.oneof(
  fc.record({
    kind: fc.constant('request' as const),
    clusterId: text,
    queries: fc.array(fc.record({ ...requestPartition, query: fc.oneof(fc.constantFrom('earliest' as const, 'latest' as const), fc.record({ timestamp: fc.maxSafeInteger() })) }), { maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('response' as const),
    results: fc.array(fc.oneof(fc.record({ offset: fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }) }), fc.record({ error })), { maxLength: 3 }),
  }),
);

// Group calls forwarded to a group's coordinator, and its answers (with the errors a coordinator answers with).
const assignors = fc.array(fc.constantFrom('range' as const, 'roundrobin' as const), { maxLength: 3 });
const generation = fc.nat({ max: 0x7fff_ffff });
const offsets = fc.array(fc.record({ ...partitionId, offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), metadata: fc.option(text, { nil: null }) }), { maxLength: 3 });
const assignment: fc.Arbitrary<Assignment> = fc
  .uniqueArray(fc.tuple(text, fc.array(nonNegative32, { maxLength: 3 })), { selector: ([topic]) => topic, maxLength: 3 })
  .map((entries) => Object.assign(Object.create(null) as Assignment, Object.fromEntries(entries)));
const groupState = fc.constantFrom('Empty' as const, 'PreparingRebalance' as const, 'Stable' as const);
const groupError: fc.Arbitrary<LetterboxError> = fc.oneof(
  error,
  fc.tuple(text, fc.constantFrom('ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS'), text).map(([groupId, code, m]) => new GroupError(groupId, code, m)),
  fc.tuple(text, text).map(([groupId, m]) => new NotCoordinatorError(groupId, m)),
);
const groupMessage: fc.Arbitrary<GroupMessage> = fc.oneof(
  fc.record({
    kind: fc.constant('request' as const),
    clusterId: text,
    call: fc.oneof(
      fc.record({
        type: fc.constant('join' as const),
        groupId: text,
        memberId: fc.option(text, { nil: null }),
        clientId: text,
        sessionTimeoutMs: nonNegative32,
        rebalanceTimeoutMs: nonNegative32,
        topics: fc.array(text, { maxLength: 3 }),
        assignors,
      }),
      fc.record({ type: fc.constantFrom('sync' as const, 'heartbeat' as const), groupId: text, memberId: text, generationId: generation }),
      fc.record({ type: fc.constant('leave' as const), groupId: text, memberId: text }),
      fc.record({ type: fc.constant('commit' as const), groupId: text, memberId: fc.option(text, { nil: null }), generationId: fc.integer({ min: -1, max: 0x7fff_ffff }), offsets }),
      fc.record({ type: fc.constantFrom('fetchOffsets' as const, 'describe' as const, 'deleteGroup' as const), groupId: text }),
      fc.constant({ type: 'list' as const }),
    ),
  }),
  fc.record({
    kind: fc.constant('response' as const),
    answer: fc.oneof(
      fc.constant({ type: 'done' as const }),
      fc.record({
        type: fc.constant('joined' as const),
        reply: fc.record({ memberId: text, generationId: generation, leaderId: text, assignor: fc.constantFrom('range' as const, 'roundrobin' as const), members: fc.array(text, { maxLength: 3 }) }),
      }),
      fc.record({ type: fc.constant('assignment' as const), assignment }),
      fc.record({ type: fc.constant('offsets' as const), offsets }),
      fc.record({
        type: fc.constant('description' as const),
        description: fc.record({
          groupId: text,
          state: groupState,
          generationId: generation,
          assignor: fc.option(fc.constantFrom('range' as const, 'roundrobin' as const), { nil: null }),
          members: fc.array(fc.record({ memberId: text, clientId: text, topics: fc.array(text, { maxLength: 3 }), assignment }), { maxLength: 3 }),
        }),
      }),
      fc.record({ type: fc.constant('groups' as const), groups: fc.array(fc.record({ groupId: text, state: groupState }), { maxLength: 3 }) }),
      fc.record({ type: fc.constant('error' as const), error: groupError }),
    ),
  }),
);

/** One body codec under test; `MessageType<unknown>` lets them all be tested alike. */
interface Case {
  readonly name: 'raft' | 'controller' | 'clusterHello' | 'produce' | 'fetch' | 'listOffsets' | 'group';
  readonly type: MessageType<unknown>;
  readonly arbitrary: fc.Arbitrary<unknown>;
}
/** Pairs a codec with an arbitrary of its own body. */
const testCase = <Body>(name: Case['name'], type: MessageType<Body>, arbitrary: fc.Arbitrary<Body>): Case => ({ name, type, arbitrary });
const cases = [
  testCase('raft', PEER_MESSAGE_TYPES.raft, raftFrame),
  testCase('controller', PEER_MESSAGE_TYPES.controller, controllerMessage),
  testCase('clusterHello', PEER_MESSAGE_TYPES.clusterHello, clusterHello),
  testCase('produce', PEER_MESSAGE_TYPES.produce, produceMessage),
  testCase('fetch', PEER_MESSAGE_TYPES.fetch, fetchMessage),
  testCase('listOffsets', PEER_MESSAGE_TYPES.listOffsets, listOffsetsMessage),
  testCase('group', PEER_MESSAGE_TYPES.group, groupMessage),
];

/** Errors compared by class and every own enumerable field (in any order), which toStrictEqual alone does not look at. */
const comparable = (value: unknown): unknown => {
  if (value instanceof LetterboxError) {
    return { prototype: Object.getPrototypeOf(value), name: value.name, message: value.message, fields: Object.fromEntries(Object.entries(value)) };
  }
  if (Array.isArray(value)) return value.map(comparable);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, comparable(field)]));
  }
  return value;
};

const expectCorrupt = (decode: () => unknown): void => {
  let thrown: unknown;
  try {
    decode();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(FrameError);
  expect((thrown as FrameError).code).toBe('CORRUPT_MESSAGE');
};

/** Decodes, accepting a value or a CORRUPT_MESSAGE FrameError and nothing else. */
const decodeOrCorrupt = (type: MessageType<unknown>, bytes: Uint8Array, version: number): void => {
  try {
    type.decode(bytes, version);
  } catch (error) {
    expect(error).toBeInstanceOf(FrameError);
    expect((error as FrameError).code).toBe('CORRUPT_MESSAGE');
  }
};

describe.each(cases)('$name body', ({ name, type, arbitrary }) => {
  /** The newest version: what this node sends. */
  const version = Math.max(...type.versions);
  it('decodes to what was encoded, optional fields absent stay absent', () => {
    fc.assert(
      fc.property(arbitrary, (body) => {
        expect(comparable(type.decode(type.encode(body, version), version))).toStrictEqual(comparable(body));
      }),
      { numRuns: 500 },
    );
  });

  it('travels in a whole peer frame, as a request and as a response', () => {
    const codec = createPeerFrameCodec();
    fc.assert(
      fc.property(arbitrary, fc.boolean(), fc.integer({ min: 0, max: 0xffff_ffff }), (body, isResponse, requestId) => {
        const frame = { type: name, version, requestId, isResponse, body } as Parameters<typeof codec.encode>[0];
        const result = codec.decode(codec.encode(frame));
        expect(result.ok).toBe(true);
        if (result.ok) expect(comparable(result.frame)).toStrictEqual(comparable(frame));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses every truncation', () => {
    for (const body of fc.sample(arbitrary, { numRuns: 30, seed: 7 })) {
      const bytes = type.encode(body, version);
      for (let length = 0; length < bytes.length; length++) expectCorrupt(() => type.decode(bytes.subarray(0, length), version));
    }
  });

  it('refuses trailing bytes', () => {
    fc.assert(
      fc.property(arbitrary, fc.uint8Array({ minLength: 1, maxLength: 4 }), (body, extra) => {
        const bytes = type.encode(body, version);
        expectCorrupt(() => type.decode(Uint8Array.of(...bytes, ...extra), version));
      }),
      { numRuns: 200 },
    );
  });

  it('decodes random bytes to a value or a FrameError, never another exception', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => decodeOrCorrupt(type, bytes, version)), { numRuns: 2000 });
  });

  it('decodes damaged encodings to a value or a FrameError, never another exception', () => {
    fc.assert(
      fc.property(arbitrary, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (body, damage) => {
        const bytes = type.encode(body, version).slice();
        for (const [at, value] of damage) if (bytes.length > 0) bytes[at % bytes.length] = value;
        decodeOrCorrupt(type, bytes, version);
      }),
      { numRuns: 1000 },
    );
  });
});

// --- Hand-made bodies for the checks random bytes rarely reach.

/** Zigzag varint bytes of a small int32, as the layouts write counts, lengths and ids. */
const v = (n: number): number[] => {
  const out: number[] = [];
  let z = ((n << 1) ^ (n >> 31)) >>> 0;
  while (z >= 0x80) {
    out.push((z & 0x7f) | 0x80);
    z >>>= 7;
  }
  out.push(z);
  return out;
};
const str = (s: string): number[] => {
  const utf8 = [...new TextEncoder().encode(s)];
  return [...v(utf8.length), ...utf8];
};
const raft: MessageType<unknown> = PEER_MESSAGE_TYPES.raft;
const controller: MessageType<unknown> = PEER_MESSAGE_TYPES.controller;
const hello: MessageType<unknown> = PEER_MESSAGE_TYPES.clusterHello;

/** A raft frame of one message of group 'g' from 'a' to 'b': tag, then term and the rest. */
const raftBytes = (tag: number, ...rest: number[]) => Uint8Array.of(...str('c'), ...v(1), ...str('g'), tag, ...str('a'), ...str('b'), ...rest);
/** A controller reply of member 'm' of type `tag`, epoch 3. */
const replyBytes = (tag: number, ...rest: number[]) => Uint8Array.of(1, ...str('m'), tag, ...v(3), ...rest);
/** An error: class, code, message, retriable, then its fields. */
const errorBytes = (className: string, fields: number[][]) => [...str(className), ...str('NOT_CONTROLLER'), ...str('not me'), 1, ...v(fields.length), ...fields.flat()];
/** Expects the encoder to refuse the body with INVALID_REQUEST. */
const invalid = (run: () => unknown) => expect(run).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));

describe('cluster message layouts', () => {
  it('keeps a string that starts with U+FEFF (a decoder strips a byte order mark unless told not to; fast-check seed 2129465020)', () => {
    const body: RaftFrame = {
      clusterId: '\uFEFFc',
      messages: [{ group: '', message: { type: 'append', from: '', to: '', term: 0, prevIndex: 0, prevTerm: 0, entries: [{ term: 0, data: new Uint8Array(0), membership: { voters: ['\uFEFF'], learners: [] } }], commit: 0 } }],
    };
    expect(comparable(raft.decode(raft.encode(body, 0), 0))).toStrictEqual(comparable(body));
  });

  it('writes the bytes FORMATS.md gives', () => {
    const timeoutNow: RaftFrame = { clusterId: 'c', messages: [{ group: 'g', message: { type: 'timeoutNow', from: 'a', to: 'b', term: 5 } }] };
    expect(raft.encode(timeoutNow, 0)).toEqual(raftBytes(9, ...v(5)));
    const heartbeat: ControllerMessage = { kind: 'request', request: { clusterId: 'c', type: 'heartbeat', brokerId: 2, incarnation: 'i' } };
    expect(controller.encode(heartbeat, 0)).toEqual(Uint8Array.of(0, ...str('c'), 1, ...v(2), ...str('i')));
    expect(hello.encode({ incarnation: 'i' }, 0)).toEqual(Uint8Array.of(...str('i'), ...v(-1), 0, ...v(-1)));
  });

  it('refuses unknown variant tags', () => {
    expectCorrupt(() => raft.decode(raftBytes(10, ...v(5)), 0));
    expectCorrupt(() => controller.decode(Uint8Array.of(2, ...str('c'), 4, 0), 0));
    expectCorrupt(() => controller.decode(Uint8Array.of(0, ...str('c'), 8, 0), 0));
    expectCorrupt(() => controller.decode(replyBytes(6), 0));
    expectCorrupt(() => controller.decode(replyBytes(4, ...errorBytes('X', [[...str('f'), 5]])), 0));
  });

  it('refuses values out of range', () => {
    expectCorrupt(() => raft.decode(raftBytes(9, ...v(-1)), 0)); // a negative term
    expectCorrupt(() => raft.decode(raftBytes(2, ...v(1), 2), 0)); // reject: 2 is no boolean
    expectCorrupt(() => raft.decode(raftBytes(1, ...v(1), ...v(0), ...v(0), 2, 1), 0)); // force presence flag 2
    const heartbeat = (id: number) => Uint8Array.of(0, ...str('c'), 1, ...v(id), ...str('i'));
    expect(controller.decode(heartbeat(1), 0)).toMatchObject({ request: { brokerId: 1 } });
    for (const id of [0, -1, -7]) expectCorrupt(() => controller.decode(heartbeat(id), 0));
    expectCorrupt(() => hello.decode(Uint8Array.of(...str('i'), ...v(0), 0, ...v(-1)), 0)); // broker id 0
    expectCorrupt(() => hello.decode(Uint8Array.of(...str('i'), ...v(-2), 0, ...v(-1)), 0));
    expectCorrupt(() => controller.decode(replyBytes(0, ...v(0)), 0)); // registered as broker 0
  });

  it('refuses lengths and counts beyond the bytes, without allocating for them', () => {
    expectCorrupt(() => raft.decode(Uint8Array.of(...str('c'), ...v(0x7fff_ffff)), 0));
    expectCorrupt(() => raft.decode(Uint8Array.of(...v(1_000_000), 0x61), 0));
    expectCorrupt(() => controller.decode(Uint8Array.of(0, ...str('c'), 4, ...v(-3)), 0)); // a negative count
    expectCorrupt(() => raft.decode(Uint8Array.of(...v(-2)), 0)); // a negative length
    expectCorrupt(() => hello.decode(Uint8Array.of(...v(-1), ...v(-1), 0, ...v(-1)), 0)); // absent incarnation
  });

  it('refuses strings that are not UTF-8', () => {
    expectCorrupt(() => hello.decode(Uint8Array.of(...v(2), 0xc3, 0x28, ...v(-1), 0, ...v(-1)), 0));
  });

  it('refuses error fields that are reserved, inherited or repeated', () => {
    const leaderHint = [...str('leaderHint'), 4, ...str('m')];
    expect(controller.decode(replyBytes(4, ...errorBytes('NotControllerError', [leaderHint])), 0)).toMatchObject({ reply: { error: { leaderHint: 'm' } } });
    for (const fields of [[leaderHint, leaderHint], [[...str('code'), 0]], [[...str('constructor'), 0]], [[...str('__proto__'), 0]], [[...str('toString'), 0]]]) {
      expectCorrupt(() => controller.decode(replyBytes(4, ...errorBytes('NotControllerError', fields)), 0));
    }
  });

  it('refuses to encode what the layout cannot carry', () => {
    invalid(() => controller.encode({ kind: 'request', request: { clusterId: 'c', type: 'heartbeat', brokerId: 0, incarnation: 'i' } }, 0));
    invalid(() => raft.encode({ clusterId: 'c', messages: [{ group: 'g', message: { type: 'timeoutNow', from: 'a', to: 'b', term: 1.5 } }] }, 0));
    invalid(() => controller.encode({ kind: 'request', request: { clusterId: 'c', type: 'createPartitions', topics: [{ topic: 't', count: 2 ** 31 }] } }, 0));
    invalid(() => controller.encode({ kind: 'request', request: { clusterId: 'c', type: 'register', brokerId: 2, incarnation: 'i', deviceId: 'd', endpoints: [], hostedBy: 0 } }, 1));
  });

  it('a register request carries its host from version 1 (an adopted slot); version 0 has none', () => {
    const register: ControllerMessage = { kind: 'request', request: { clusterId: 'c', type: 'register', brokerId: 2, incarnation: 'i', deviceId: 'd', endpoints: ['p'], hostedBy: 1 } };
    expect(controller.decode(controller.encode(register, 1), 1)).toEqual(register);
    const withoutHost: ControllerMessage = { kind: 'request', request: { clusterId: 'c', type: 'register', brokerId: 2, incarnation: 'i', deviceId: 'd', endpoints: ['p'] } };
    // Version 0 cannot say it: the field is left out, and read as absent.
    expect(controller.encode(register, 0)).toEqual(controller.encode(withoutHost, 0));
    expect(controller.decode(controller.encode(register, 0), 0)).toEqual(withoutHost);
    // Version 1 with no host: brokerId? absent, −1 (one byte) more than version 0.
    expect(controller.encode(withoutHost, 1).length).toBe(controller.encode(withoutHost, 0).length + 1);
  });
});

describe('errors in controller replies', () => {
  const roundTrip = (error: LetterboxError): LetterboxError => {
    const body: ControllerMessage = { kind: 'reply', member: 'm', reply: { type: 'error', controllerEpoch: 1, error } };
    const decoded = controller.decode(controller.encode(body, 0), 0) as ControllerMessage;
    if (decoded.kind !== 'reply' || decoded.reply.type !== 'error') throw new Error('not an error reply');
    return decoded.reply.error;
  };

  it('come back as their own class with their fields', () => {
    const notController = roundTrip(new NotControllerError('ask 2.k', '2.k'));
    expect(notController).toBeInstanceOf(NotControllerError);
    expect(notController).toMatchObject({ name: 'NotControllerError', code: 'NOT_CONTROLLER', message: 'ask 2.k', retriable: true, leaderHint: '2.k' });
    const noHint = roundTrip(new NotControllerError('no leader'));
    expect(noHint).toBeInstanceOf(NotControllerError);
    expect(Object.hasOwn(noHint, 'leaderHint') && (noHint as NotControllerError).leaderHint).toBe(undefined);
    const unknown = roundTrip(new UnknownTopicOrPartitionError('t', 3));
    expect(unknown).toBeInstanceOf(UnknownTopicOrPartitionError);
    expect(unknown).toMatchObject({ topic: 't', partition: 3, retriable: true });
  });

  it('of a class this node lacks come back as LetterboxErrors under their own name', () => {
    class AlienError extends LetterboxError {
      static override readonly errorName = 'AlienError';
      readonly depth = 3;
    }
    const alien = roundTrip(new AlienError('ALIEN', 'from afar', { retriable: true }));
    expect(alien.constructor).toBe(LetterboxError);
    expect(alien).toMatchObject({ name: 'AlienError', code: 'ALIEN', message: 'from afar', retriable: true, depth: 3 });
  });
});

describe('data message layouts', () => {
  const produce: MessageType<unknown> = PEER_MESSAGE_TYPES.produce;
  const fetch: MessageType<unknown> = PEER_MESSAGE_TYPES.fetch;
  const listOffsets: MessageType<unknown> = PEER_MESSAGE_TYPES.listOffsets;
  /** A produce request of cluster 'c' with acks and timeout, then the batches' bytes. */
  const produceRequestBytes = (acks: number, timeoutMs: number, ...batches: number[]) => Uint8Array.of(0, ...str('c'), ...v(acks), ...v(timeoutMs), ...batches);
  /** A fetch response of one partition 't'-0 with the given offsets and no batches, then the error code: its presence flag (and tag). */
  const fetchedBytes = (highWatermark: number, logStartOffset: number, ...errorCode: number[]) =>
    Uint8Array.of(1, ...v(1), ...str('t'), ...v(0), ...v(highWatermark), ...v(logStartOffset), ...v(0), ...errorCode);

  it('writes the bytes FORMATS.md gives', () => {
    const request: ProduceMessage = { kind: 'request', clusterId: 'c', acks: -1, timeoutMs: 30, batches: [{ topic: 't', partition: 2, leaderEpoch: -1, bytes: Uint8Array.of(9, 8) }] };
    expect(produce.encode(request, 0)).toEqual(produceRequestBytes(-1, 30, ...v(1), ...str('t'), ...v(2), ...v(2), 9, 8));
    const response: ProduceMessage = { kind: 'response', results: [{ topic: 't', partition: 0, baseOffset: -1, logStartOffset: 5 }] };
    expect(produce.encode(response, 0)).toEqual(Uint8Array.of(1, ...v(1), ...str('t'), ...v(0), ...v(-1), ...v(5), 0));
    const fetchRequest: FetchMessage = { kind: 'request', clusterId: 'c', maxWaitMs: 500, minBytes: 1, maxBytes: 64, partitions: [{ topic: 't', partition: 1, leaderEpoch: -1, fetchOffset: 7, maxBytes: 32 }] };
    expect(fetch.encode(fetchRequest, 0)).toEqual(Uint8Array.of(0, ...str('c'), ...v(500), ...v(1), ...v(64), ...v(1), ...str('t'), ...v(1), ...v(7), ...v(32)));
    const notLeader: FetchMessage = { kind: 'response', partitions: [{ topic: 't', partition: 0, highWatermark: -1, logStartOffset: -1, batches: [], errorCode: 'NOT_LEADER_OR_FOLLOWER' }] };
    expect(fetch.encode(notLeader, 0)).toEqual(fetchedBytes(-1, -1, 1, 2));
    const queries: ListOffsetsMessage = {
      kind: 'request',
      clusterId: 'c',
      queries: [
        { topic: 't', partition: 0, leaderEpoch: -1, query: 'earliest' },
        { topic: 't', partition: 1, leaderEpoch: -1, query: 'latest' },
        { topic: 't', partition: 2, leaderEpoch: -1, query: { timestamp: 7 } },
      ],
    };
    expect(listOffsets.encode(queries, 0)).toEqual(Uint8Array.of(0, ...str('c'), ...v(3), ...str('t'), ...v(0), 0, ...str('t'), ...v(1), 1, ...str('t'), ...v(2), 2, ...v(7)));
    const offsets: ListOffsetsMessage = { kind: 'response', results: [{ offset: 4 }, { offset: undefined }] };
    expect(listOffsets.encode(offsets, 0)).toEqual(Uint8Array.of(1, ...v(2), 0, ...v(4), 1));
    // Version 1: each request partition's leader epoch after its partition; version 0 reads it as -1 (unchecked).
    expect(produce.encode({ ...request, batches: [{ topic: 't', partition: 2, leaderEpoch: 5, bytes: Uint8Array.of(9, 8) }] }, 1)).toEqual(produceRequestBytes(-1, 30, ...v(1), ...str('t'), ...v(2), ...v(5), ...v(2), 9, 8));
    expect(fetch.encode({ ...fetchRequest, partitions: [{ topic: 't', partition: 1, leaderEpoch: 0, fetchOffset: 7, maxBytes: 32 }] }, 1)).toEqual(Uint8Array.of(0, ...str('c'), ...v(500), ...v(1), ...v(64), ...v(1), ...str('t'), ...v(1), ...v(0), ...v(7), ...v(32)));
    expect(listOffsets.encode({ kind: 'request', clusterId: 'c', queries: [{ topic: 't', partition: 0, leaderEpoch: 3, query: 'latest' }] }, 1)).toEqual(Uint8Array.of(0, ...str('c'), ...v(1), ...str('t'), ...v(0), ...v(3), 1));
    expect(produce.decode(produce.encode({ ...request, batches: [{ topic: 't', partition: 2, leaderEpoch: 5, bytes: Uint8Array.of(9, 8) }] }, 0), 0)).toMatchObject({ batches: [{ leaderEpoch: -1 }] });
    const fenced: FetchMessage = { kind: 'response', partitions: [{ topic: 't', partition: 0, highWatermark: -1, logStartOffset: -1, batches: [], errorCode: 'FENCED_LEADER_EPOCH' }] };
    expect(fetch.encode(fenced, 1)).toEqual(fetchedBytes(-1, -1, 1, 3));
  });

  it('refuses unknown tags', () => {
    expectCorrupt(() => produce.decode(Uint8Array.of(2, ...str('c'), ...v(0), ...v(0), ...v(0)), 0)); // kind 2
    for (const acks of [2, -2, 100]) expectCorrupt(() => produce.decode(produceRequestBytes(acks, 0, ...v(0)), 0));
    expect(fetch.decode(fetchedBytes(3, 0, 1, 0), 0)).toMatchObject({ partitions: [{ errorCode: 'OFFSET_OUT_OF_RANGE' }] });
    expectCorrupt(() => fetch.decode(fetchedBytes(3, 0, 1, 5), 0)); // error code 5
    expectCorrupt(() => listOffsets.decode(Uint8Array.of(0, ...str('c'), ...v(1), ...str('t'), ...v(0), 3), 0)); // query 3
    expectCorrupt(() => listOffsets.decode(Uint8Array.of(1, ...v(1), 3), 0)); // result 3
  });

  it('refuses values out of range', () => {
    expect(produce.decode(produceRequestBytes(1, 0, ...v(0)), 0)).toMatchObject({ acks: 1, timeoutMs: 0 });
    expectCorrupt(() => produce.decode(produceRequestBytes(1, -1, ...v(0)), 0)); // a negative timeout
    expectCorrupt(() => produce.decode(produceRequestBytes(1, 0, ...v(1), ...str('t'), ...v(-1), ...v(0)), 0)); // partition -1
    expect(fetch.decode(fetchedBytes(-1, -1, 0), 0)).toMatchObject({ partitions: [{ highWatermark: -1, logStartOffset: -1 }] });
    expectCorrupt(() => fetch.decode(fetchedBytes(-2, 0, 0), 0));
    expectCorrupt(() => fetch.decode(Uint8Array.of(0, ...str('c'), ...v(0), ...v(0), ...v(0), ...v(1), ...str('t'), ...v(0), ...v(-1), ...v(0)), 0)); // fetchOffset -1
    expectCorrupt(() => fetch.decode(Uint8Array.of(0, ...str('c'), ...v(0), ...v(-1), ...v(0), ...v(0)), 0)); // minBytes -1
    expectCorrupt(() => listOffsets.decode(Uint8Array.of(1, ...v(1), 0, ...v(-1)), 0)); // offset -1
    expectCorrupt(() => produce.decode(produceRequestBytes(1, 0, ...v(1), ...str('t'), ...v(0), ...v(-2), ...v(0)), 1)); // leader epoch -2
    expectCorrupt(() => produce.decode(Uint8Array.of(1, ...v(1), ...str('t'), ...v(0), ...v(0), ...v(0), 2), 0)); // error presence flag 2
  });

  it('decodes batches as copies that outlive the frame bytes', () => {
    const frame = produceRequestBytes(1, 0, ...v(1), ...str('t'), ...v(0), ...v(3), 1, 2, 3);
    const decoded = produce.decode(frame, 0) as ProduceMessage;
    frame.fill(0);
    if (decoded.kind !== 'request') throw new Error('not a request');
    expect(decoded.batches[0]!.bytes).toEqual(Uint8Array.of(1, 2, 3));
    expect(decoded.batches[0]!.bytes.buffer).not.toBe(frame.buffer);
  });

  it('carries a produce error as its own class', () => {
    const body: ProduceMessage = { kind: 'response', results: [{ topic: 't', partition: 1, baseOffset: -1, logStartOffset: -1, error: new NotLeaderOrFollowerError('t', 1, 3) }] };
    const decoded = produce.decode(produce.encode(body, 0), 0) as ProduceMessage;
    if (decoded.kind !== 'response') throw new Error('not a response');
    expect(decoded.results[0]!.error).toBeInstanceOf(NotLeaderOrFollowerError);
    expect(decoded.results[0]!.error).toMatchObject({ code: 'NOT_LEADER_OR_FOLLOWER', retriable: true, topic: 't', partition: 1, leader: 3 });
  });

  it('refuses to encode what the layout cannot carry', () => {
    const request = (fields: Partial<Extract<ProduceMessage, { kind: 'request' }>>): ProduceMessage => ({ kind: 'request', clusterId: 'c', acks: 1, timeoutMs: 0, batches: [], ...fields });
    invalid(() => produce.encode(request({ acks: 2 as 1 }), 0));
    invalid(() => produce.encode(request({ timeoutMs: -1 }), 0));
    invalid(() => produce.encode(request({ batches: [{ topic: 't', partition: -1, leaderEpoch: -1, bytes: new Uint8Array(0) }] }), 0));
    invalid(() => produce.encode(request({ batches: [{ topic: 't', partition: 0, leaderEpoch: -2, bytes: new Uint8Array(0) }] }), 1));
    invalid(() => produce.encode({ kind: 'response', results: [{ topic: 't', partition: 0, baseOffset: -2, logStartOffset: 0 }] }, 0));
    invalid(() => produce.encode({ kind: 'response', results: [{ topic: 't', partition: 0, baseOffset: 0, logStartOffset: 1.5 }] }, 0));
    const fetchRequest = (fields: Partial<Extract<FetchMessage, { kind: 'request' }>>): FetchMessage => ({ kind: 'request', clusterId: 'c', maxWaitMs: 0, minBytes: 0, maxBytes: 0, partitions: [], ...fields });
    invalid(() => fetch.encode(fetchRequest({ maxBytes: 2 ** 31 }), 0));
    invalid(() => fetch.encode(fetchRequest({ maxWaitMs: -1 }), 0));
    invalid(() => fetch.encode(fetchRequest({ partitions: [{ topic: 't', partition: 0, leaderEpoch: -1, fetchOffset: -1, maxBytes: 0 }] }), 0));
    invalid(() => fetch.encode({ kind: 'response', partitions: [{ topic: 't', partition: 0, highWatermark: -2, logStartOffset: 0, batches: [] }] }, 0));
    invalid(() => listOffsets.encode({ kind: 'request', clusterId: 'c', queries: [{ topic: 't', partition: 0, leaderEpoch: -1, query: { timestamp: 2 ** 53 } }] }, 0));
    invalid(() => listOffsets.encode({ kind: 'response', results: [{ offset: -1 }] }, 0));
  });
});

describe('group message layouts', () => {
  const group: MessageType<unknown> = PEER_MESSAGE_TYPES.group;
  /** A group request of cluster 'c': the call's tag, then its fields. */
  const callBytes = (tag: number, ...rest: number[]) => Uint8Array.of(0, ...str('c'), tag, ...rest);

  it('writes the bytes FORMATS.md gives', () => {
    const commit: GroupMessage = { kind: 'request', clusterId: 'c', call: { type: 'commit', groupId: 'g', memberId: null, generationId: -1, offsets: [{ topic: 't', partition: 1, offset: 42, metadata: null }] } };
    expect(group.encode(commit, 0)).toEqual(callBytes(4, ...str('g'), ...v(-1), ...v(-1), ...v(1), ...str('t'), ...v(1), ...v(42), ...v(-1)));
    const join: GroupMessage = {
      kind: 'request',
      clusterId: 'c',
      call: { type: 'join', groupId: 'g', memberId: 'm', clientId: 'k', sessionTimeoutMs: 10, rebalanceTimeoutMs: 20, topics: ['t'], assignors: ['roundrobin', 'range'] },
    };
    expect(group.encode(join, 0)).toEqual(callBytes(0, ...str('g'), ...str('m'), ...str('k'), ...v(10), ...v(20), ...v(1), ...str('t'), ...v(2), 1, 0));
    expect(group.encode({ kind: 'request', clusterId: 'c', call: { type: 'list' } }, 0)).toEqual(callBytes(8));
    const joined: GroupMessage = { kind: 'response', answer: { type: 'joined', reply: { memberId: 'm', generationId: 3, leaderId: 'm', assignor: 'range', members: ['m'] } } };
    expect(group.encode(joined, 0)).toEqual(Uint8Array.of(1, 1, ...str('m'), ...v(3), ...str('m'), 0, ...v(1), ...str('m')));
    const described: GroupMessage = { kind: 'response', answer: { type: 'description', description: { groupId: 'g', state: 'Empty', generationId: 0, assignor: null, members: [] } } };
    expect(group.encode(described, 0)).toEqual(Uint8Array.of(1, 4, ...str('g'), 0, ...v(0), 0, ...v(0)));
  });

  it('refuses unknown tags', () => {
    expectCorrupt(() => group.decode(callBytes(9), 0)); // call 9
    expectCorrupt(() => group.decode(Uint8Array.of(1, 7), 0)); // answer 7
    expectCorrupt(() => group.decode(callBytes(0, ...str('g'), ...v(-1), ...str('k'), ...v(10), ...v(20), ...v(0), ...v(1), 2), 0)); // assignor 2
    expectCorrupt(() => group.decode(Uint8Array.of(1, 5, ...v(1), ...str('g'), 3), 0)); // group state 3
  });

  it('refuses values out of range, and an assignment naming a topic twice', () => {
    expectCorrupt(() => group.decode(callBytes(1, ...str('g'), ...str('m'), ...v(-1)), 0)); // sync of generation -1
    expectCorrupt(() => group.decode(callBytes(4, ...str('g'), ...v(-1), ...v(-2), ...v(0)), 0)); // commit of generation -2
    expectCorrupt(() => group.decode(callBytes(4, ...str('g'), ...v(-1), ...v(-1), ...v(1), ...str('t'), ...v(-1), ...v(0), ...v(-1)), 0)); // partition -1
    expectCorrupt(() => group.decode(callBytes(4, ...str('g'), ...v(-1), ...v(-1), ...v(1), ...str('t'), ...v(0), ...v(-1), ...v(-1)), 0)); // offset -1
    expectCorrupt(() => group.decode(callBytes(0, ...str('g'), ...v(-1), ...str('k'), ...v(-5), ...v(20), ...v(0), ...v(0)), 0)); // session timeout -5
    expectCorrupt(() => group.decode(Uint8Array.of(1, 2, ...v(2), ...str('t'), ...v(0), ...str('t'), ...v(0)), 0));
  });

  it('carries a coordinator’s errors as their own class', () => {
    const answer = (error: LetterboxError): GroupMessage => ({ kind: 'response', answer: { type: 'error', error } });
    const notCoordinator = group.decode(group.encode(answer(new NotCoordinatorError('g')), 0), 0) as Extract<GroupMessage, { kind: 'response' }>;
    expect(notCoordinator.answer).toMatchObject({ type: 'error', error: { code: 'NOT_COORDINATOR', retriable: true, groupId: 'g' } });
    expect((notCoordinator.answer as { error: unknown }).error).toBeInstanceOf(NotCoordinatorError);
    const stale = group.decode(group.encode(answer(new GroupError('g', 'ILLEGAL_GENERATION', 'rejoin')), 0), 0) as Extract<GroupMessage, { kind: 'response' }>;
    expect((stale.answer as { error: unknown }).error).toBeInstanceOf(GroupError);
    expect(stale.answer).toMatchObject({ error: { code: 'ILLEGAL_GENERATION', retriable: false, groupId: 'g' } });
  });

  it('refuses to encode what the layout cannot carry', () => {
    invalid(() => group.encode({ kind: 'request', clusterId: 'c', call: { type: 'heartbeat', groupId: 'g', memberId: 'm', generationId: -1 } }, 0));
    invalid(() => group.encode({ kind: 'request', clusterId: 'c', call: { type: 'commit', groupId: 'g', memberId: 'm', generationId: 1, offsets: [{ topic: 't', partition: 0, offset: -1, metadata: null }] } }, 0));
    invalid(() => group.encode({ kind: 'request', clusterId: 'c', call: { type: 'join', groupId: 'g', memberId: null, clientId: 'k', sessionTimeoutMs: 1, rebalanceTimeoutMs: 1, topics: [], assignors: ['sticky' as 'range'] } }, 0));
  });
});
