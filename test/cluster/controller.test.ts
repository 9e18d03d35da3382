import { describe, expect, it } from 'vitest';
import {
  checkControllerEpoch,
  checkPeerMessage,
  clustersMet,
  createController,
  decideFormation,
  isActive,
  memberId,
  MetadataImage,
  nextMembership,
  nextReplicaMembership,
  parseMemberId,
  placeReplicas,
  PRODUCER_ID_BLOCK_SIZE,
  stepController,
  type ControllerEffect,
  type ControllerInput,
  type ControllerReply,
  type ControllerRequest,
  type ControllerRequestBody,
  type ControllerState,
  type NewTopic,
} from '../../src/cluster';
import { BrokerIdentityError, ClusterIdMismatchError, FencedLeaderEpochError, InvalidArgumentError, InvalidConfigError, LetterboxError, NotLeaderOrFollowerError, UnknownTopicOrPartitionError } from '../../src/errors';
import type { CommittedEntry, Membership } from '../../src/raft';

const SESSION_MS = 1_000;
const REASSIGN_AFTER_MS = 5_000;
const CLUSTER = 'c-1';
const self = memberId(1, 'inc-1');

/**
 * One controller on a one-voter metadata group played by the test: a proposal is appended
 * at once and committed when `commit()` is called, so tests see what is answered before
 * and after a commit.
 */
class Solo {
  state: ControllerState;
  term = 1;
  index = 0;
  membership: Membership = { voters: [self], learners: [] };
  /** Appended, not yet committed. */
  log: CommittedEntry[] = [];
  replies: Array<{ requestId: number; to: string; reply: ControllerReply }> = [];
  events: ControllerEffect[] = [];
  nowMs = 0;
  nextRequestId = 1;

  constructor(options: { maxReplicationFactor?: number } = {}) {
    this.state = createController({
      self,
      sessionTimeoutMs: SESSION_MS,
      reassignAfterMs: REASSIGN_AFTER_MS,
      maxReplicationFactor: options.maxReplicationFactor ?? 3,
      maxPartitions: 100,
      snapshotEveryRecords: 1_000,
      validateConfigs: (configs) => {
        const ms = configs.get('retention.ms');
        return ms !== undefined && !/^\d+$/.test(ms) ? new InvalidConfigError(`retention.ms must be a whole number, got "${ms}"`) : undefined;
      },
      bootstrap: { clusterId: CLUSTER, clusterName: 'origin', deviceId: 'dev-1', endpoints: ['e1'] },
    });
    this.lead();
    this.commit(); // the no-op: active now, it proposes the cluster's first records
    this.commit();
  }

  feed(input: ControllerInput): void {
    const { state, effects } = stepController(this.state, input);
    this.state = state;
    for (const effect of effects) {
      switch (effect.type) {
        case 'propose':
          this.append(effect.payloads.map((data) => ({ data })), effect.proposalId);
          break;
        case 'changeMembership':
          this.append([{ data: new Uint8Array(0), membership: effect.membership }], effect.proposalId);
          this.membership = effect.membership;
          this.raft();
          break;
        case 'reply':
          this.replies.push(effect);
          break;
        default:
          this.events.push(effect);
      }
    }
  }

  append(entries: Array<{ data: Uint8Array; membership?: Membership }>, proposalId: number): void {
    for (const e of entries) this.log.push({ index: ++this.index, term: this.term, ...e });
    this.feed({ type: 'proposed', proposalId, lastIndex: this.index, term: this.term });
  }

  raft(role: 'leader' | 'follower' = 'leader', leader: string | undefined = self): void {
    this.feed({ type: 'raft', role, term: this.term, leader, membership: this.membership, lastIndex: this.index });
  }

  /** A new term: the leader appends its no-op. */
  lead(): void {
    this.term++;
    this.log.push({ index: ++this.index, term: this.term, data: new Uint8Array(0) });
    this.raft();
  }

  commit(): void {
    const entries = this.log;
    this.log = [];
    if (entries.length > 0) this.feed({ type: 'apply', entries });
  }

  /** A request (of this cluster unless it says otherwise), answered after a commit. */
  request(body: ControllerRequestBody | ControllerRequest, from = 'peer'): ControllerReply {
    const requestId = this.nextRequestId++;
    this.feed({ type: 'request', requestId, from, request: { clusterId: CLUSTER, ...body } });
    this.commit();
    const answer = this.replies.find((r) => r.requestId === requestId);
    if (answer === undefined) throw new Error(`request ${requestId} unanswered`);
    return answer.reply;
  }

  register(incarnation: string, deviceId = `dev-${incarnation}`, brokerId?: number): ControllerReply {
    return this.request({ type: 'register', clusterId: CLUSTER, brokerId, incarnation, deviceId, endpoints: [] }, incarnation);
  }

  tick(ms: number): void {
    this.nowMs += ms;
    this.feed({ type: 'tick', nowMs: this.nowMs });
    this.commit();
  }

  get image(): MetadataImage {
    return this.state.image;
  }
}

const errorOf = (reply: ControllerReply): LetterboxError => {
  if (reply.type !== 'error') throw new Error(`expected an error, got ${JSON.stringify(reply)}`);
  return reply.error;
};
const topicErrors = (reply: ControllerReply) => {
  if (reply.type !== 'topics') throw new Error(`expected topic results, got ${reply.type}`);
  return reply.results.map((r) => r.error?.code ?? 'ok');
};

describe('bootstrap and registration', () => {
  it('the bootstrapping leader writes the cluster id and registers itself as broker 1 once it has applied its no-op', () => {
    const solo = new Solo();
    expect(isActive(solo.state)).toBe(true);
    expect(solo.image.clusterId).toBe(CLUSTER);
    expect(solo.image.brokers().map((b) => memberId(b.brokerId, b.incarnation))).toEqual([self]);
  });

  it('assigns broker ids at first registration, answers only once committed, and a retry gets the same id', () => {
    const solo = new Solo();
    solo.feed({ type: 'request', requestId: 99, from: 'b', request: { type: 'register', clusterId: CLUSTER, brokerId: undefined, incarnation: 'inc-b', deviceId: 'd', endpoints: [] } });
    expect(solo.replies).toEqual([]);
    solo.commit();
    expect(solo.replies[0]!.reply).toMatchObject({ type: 'register', brokerId: 2, controllerEpoch: solo.term });
    expect(solo.register('inc-b')).toMatchObject({ type: 'register', brokerId: 2 });
    expect(solo.register('inc-c')).toMatchObject({ type: 'register', brokerId: 3 });
    // Back with its storage (same id and incarnation): the same broker, at new endpoints.
    expect(solo.register('inc-b', 'd', 2)).toMatchObject({ type: 'register', brokerId: 2 });
    expect(solo.image.brokers().map((b) => b.brokerId)).toEqual([1, 2, 3]);
  });

  it('a broker run by another tab (its slot adopted) registers that tab\'s broker as its host, and without it once back in its own tab', () => {
    const solo = new Solo();
    solo.register('inc-b');
    const hosted = (hostedBy?: number) => solo.request({ type: 'register', clusterId: CLUSTER, brokerId: 2, incarnation: 'inc-b', deviceId: 'dev-inc-b', endpoints: [], ...(hostedBy === undefined ? {} : { hostedBy }) });
    expect(hosted(1)).toMatchObject({ type: 'register', brokerId: 2 });
    expect(solo.image.broker(2)?.hostedBy).toBe(1);
    // Again from the same host: nothing to write.
    const proposals = solo.state.nextProposalId;
    hosted(1);
    expect(solo.state.nextProposalId).toBe(proposals);
    hosted();
    expect(solo.image.broker(2)?.hostedBy).toBeUndefined();
  });

  it('concurrent first registrations get distinct ids (checked against the records not yet committed)', () => {
    const solo = new Solo();
    for (const inc of ['x', 'y']) solo.feed({ type: 'request', requestId: inc.charCodeAt(0), from: inc, request: { type: 'register', clusterId: CLUSTER, brokerId: undefined, incarnation: inc, deviceId: 'd', endpoints: [] } });
    solo.commit();
    expect(solo.replies.map((r) => (r.reply.type === 'register' ? r.reply.brokerId : -1))).toEqual([2, 3]);
  });

  it('bad input — another cluster, another broker\'s id, an old incarnation, an unknown id: typed errors, nothing applied', () => {
    const solo = new Solo();
    solo.register('inc-b');
    const before = solo.image.fingerprint();
    const proposalsBefore = solo.state.nextProposalId;
    const cases: Array<[ControllerRequest, string]> = [
      [{ type: 'register', clusterId: 'other', brokerId: undefined, incarnation: 'z', deviceId: 'd', endpoints: [] }, 'INCONSISTENT_CLUSTER_ID'],
      [{ type: 'register', clusterId: CLUSTER, brokerId: 2, incarnation: 'impostor', deviceId: 'd', endpoints: [] }, 'DUPLICATE_BROKER_REGISTRATION'],
      [{ type: 'register', clusterId: CLUSTER, brokerId: 7, incarnation: 'z', deviceId: 'd', endpoints: [] }, 'STALE_BROKER_EPOCH'],
      [{ type: 'heartbeat', clusterId: CLUSTER, brokerId: 2, incarnation: 'inc-old' }, 'STALE_BROKER_EPOCH'],
      [{ type: 'heartbeat', clusterId: 'other', brokerId: 2, incarnation: 'inc-b' }, 'INCONSISTENT_CLUSTER_ID'],
      // A broker run by its own tab names no host: one naming itself is malformed.
      [{ type: 'register', clusterId: CLUSTER, brokerId: 2, incarnation: 'inc-b', deviceId: 'dev-inc-b', endpoints: [], hostedBy: 2 }, 'INVALID_ARGUMENT'],
      [{ type: 'register', clusterId: CLUSTER, brokerId: undefined, incarnation: 'new', deviceId: 'd', endpoints: [], hostedBy: solo.image.nextBrokerId }, 'INVALID_ARGUMENT'],
    ];
    for (const [request, code] of cases) expect(errorOf(solo.request(request)).code, JSON.stringify(request)).toBe(code);
    expect(solo.state.nextProposalId).toBe(proposalsBefore);
    expect(solo.image.fingerprint()).toBe(before);
  });

  it('an admin request meant for another cluster under the same name is refused, nothing applied', () => {
    const solo = new Solo();
    const before = solo.image.fingerprint();
    expect(errorOf(solo.request({ clusterId: 'other', type: 'createTopics', topics: [{ name: 't' }] })).code).toBe('INCONSISTENT_CLUSTER_ID');
    expect(solo.image.fingerprint()).toBe(before);
  });

  it('an answer that rests on records not yet committed waits for them (a retried registration)', () => {
    const solo = new Solo();
    const register = { clusterId: CLUSTER, type: 'register', brokerId: undefined, incarnation: 'b', deviceId: 'd', endpoints: [] } as const;
    solo.feed({ type: 'request', requestId: 1, from: 'b', request: register });
    solo.feed({ type: 'request', requestId: 2, from: 'b', request: register });
    expect(solo.replies).toEqual([]);
    solo.commit();
    expect(solo.replies.map((r) => [r.requestId, r.reply.type === 'register' && r.reply.brokerId])).toEqual([[1, 2], [2, 2]]);
    // And if the leader loses the records instead, the retry is not told an id either.
    solo.feed({ type: 'request', requestId: 3, from: 'c', request: { ...register, incarnation: 'c' } });
    solo.feed({ type: 'request', requestId: 4, from: 'c', request: { ...register, incarnation: 'c' } });
    solo.term++;
    solo.raft('follower', undefined);
    expect(solo.replies.slice(2).map((r) => [r.requestId, errorOf(r.reply).code])).toEqual([[3, 'NOT_CONTROLLER'], [4, 'NOT_CONTROLLER']]);
  });

  it('a follower refuses another cluster\'s request outright rather than hint at its own leader', () => {
    const solo = new Solo();
    solo.raft('follower', memberId(2, 'x'));
    expect(errorOf(solo.request({ clusterId: 'other', type: 'heartbeat', brokerId: 2, incarnation: 'x' })).code).toBe('INCONSISTENT_CLUSTER_ID');
  });

  it('a follower, or a leader that has not applied its no-op, answers NOT_CONTROLLER with a hint', () => {
    const solo = new Solo();
    solo.raft('follower', memberId(2, 'x'));
    const error = errorOf(solo.request({ type: 'deleteTopics', topics: ['a'] }));
    expect(error.code).toBe('NOT_CONTROLLER');
    expect(error.retriable).toBe(true);
    expect((error as LetterboxError & { leaderHint?: string }).leaderHint).toBe(memberId(2, 'x'));
    solo.lead();
    solo.feed({ type: 'request', requestId: 500, from: 'p', request: { clusterId: CLUSTER, type: 'deleteTopics', topics: ['a'] } });
    expect(errorOf(solo.replies.find((r) => r.requestId === 500)!.reply).code).toBe('NOT_CONTROLLER');
  });

  it('leadership lost with proposals pending: they are answered NOT_CONTROLLER (the requester retries)', () => {
    const solo = new Solo();
    solo.feed({ type: 'request', requestId: 7, from: 'p', request: { clusterId: CLUSTER, type: 'createTopics', topics: [{ name: 't' }] } });
    solo.term++;
    solo.raft('follower', undefined);
    expect(errorOf(solo.replies.find((r) => r.requestId === 7)!.reply).code).toBe('NOT_CONTROLLER');
  });
});

describe('topics', () => {
  const cluster = (brokers: number, devices = brokers) => {
    const solo = new Solo();
    for (let i = 2; i <= brokers; i++) solo.register(`inc-${i}`, `dev-${((i - 1) % devices) + 1}`);
    return solo;
  };

  it('default replication factor is min(3, live brokers); leaders spread over the brokers', () => {
    const one = cluster(1);
    expect(topicErrors(one.request({ type: 'createTopics', topics: [{ name: 'quick', numPartitions: 2 }] }))).toEqual(['ok']);
    expect(one.image.topicByName('quick')!.partitions.map((p) => p.replicas)).toEqual([[1], [1]]);
    const four = cluster(4);
    expect(topicErrors(four.request({ type: 'createTopics', topics: [{ name: 'wide', numPartitions: 8 }] }))).toEqual(['ok']);
    const partitions = four.image.topicByName('wide')!.partitions;
    expect(partitions.every((p) => p.replicas.length === 3 && new Set(p.replicas).size === 3 && p.leader === p.replicas[0])).toBe(true);
    const leaders = new Map<number, number>();
    for (const p of partitions) leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
    expect([...leaders.values()]).toEqual([2, 2, 2, 2]);
  });

  it('placement puts replicas on distinct devices first', () => {
    // Brokers 1..4 on two devices: every pair of replicas spans both.
    const solo = cluster(4, 2);
    solo.request({ type: 'createTopics', topics: [{ name: 'spread', numPartitions: 4, replicationFactor: 2 }] });
    const device = (id: number) => solo.image.broker(id)!.deviceId;
    for (const p of solo.image.topicByName('spread')!.partitions) expect(device(p.replicas[0]!)).not.toBe(device(p.replicas[1]!));
  });

  it('validation: collisions (a.b vs a_b, also within one request), names, partition counts, replication factors, configs', () => {
    const solo = cluster(2);
    solo.request({ type: 'createTopics', topics: [{ name: 'a.b' }] });
    const before = solo.image.fingerprint();
    const reply = solo.request({
      type: 'createTopics',
      topics: [
        { name: 'a.b' },
        { name: 'a_b' },
        { name: 'x.y' },
        { name: 'x_y' },
        { name: '__internal' },
        { name: 'bad name' },
        { name: 'zero', numPartitions: 0 },
        { name: 'many', numPartitions: 101 },
        { name: 'rf', replicationFactor: 3 },
        { name: 'rf0', replicationFactor: 0 },
        { name: 'cfg', configs: [{ name: 'retention.ms', value: 'soon' }] },
      ],
    });
    expect(topicErrors(reply)).toEqual([
      'TOPIC_ALREADY_EXISTS', 'INVALID_TOPIC_EXCEPTION', 'ok', 'INVALID_TOPIC_EXCEPTION', 'INVALID_TOPIC_EXCEPTION', 'INVALID_TOPIC_EXCEPTION',
      'INVALID_PARTITIONS', 'INVALID_PARTITIONS', 'INVALID_REPLICATION_FACTOR', 'INVALID_REPLICATION_FACTOR', 'INVALID_CONFIG',
    ]);
    expect(solo.image.topics().map((t) => t.name)).toEqual(['a.b', 'x.y']);
    expect(solo.image.fingerprint()).not.toBe(before);
  });

  it('the internal offsets topic is created by name (brokers ask for it on a group’s first call); other reserved names are refused', () => {
    const solo = cluster(2);
    const reply = solo.request({ type: 'createTopics', topics: [{ name: '__consumer_offsets', numPartitions: 8, configs: [{ name: 'cleanup.policy', value: 'compact' }] }, { name: '__consumer_offset' }] });
    expect(topicErrors(reply)).toEqual(['ok', 'INVALID_TOPIC_EXCEPTION']);
    expect(solo.image.topicByName('__consumer_offsets')!.partitions).toHaveLength(8);
  });

  it('a replication factor above what is supported is a typed error naming the bound', () => {
    const solo = new Solo({ maxReplicationFactor: 1 });
    solo.register('b');
    const reply = solo.request({ type: 'createTopics', topics: [{ name: 't', replicationFactor: 2 }, { name: 'u' }] });
    expect(topicErrors(reply)).toEqual(['INVALID_REPLICATION_FACTOR', 'ok']);
    expect(solo.image.topicByName('u')!.partitions[0]!.replicas).toHaveLength(1);
  });

  it('a replication factor above the live brokers is a typed error: fenced brokers do not count, nothing is proposed', () => {
    // Brokers 1..3, all live: a topic of replication factor 3; then broker 3 is fenced (its tab closed).
    const solo = new Solo();
    for (const inc of ['inc-2', 'inc-3']) solo.register(inc);
    expect(topicErrors(solo.request({ type: 'createTopics', topics: [{ name: 'three', replicationFactor: 3 }] }))).toEqual(['ok']);
    solo.request({ type: 'brokerGone', brokerId: 3, incarnation: 'inc-3' });
    expect(solo.image.broker(3)!.fenced).toBe(true);
    const before = solo.image.fingerprint();
    const proposalsBefore = solo.state.nextProposalId;
    const reply = solo.request({ type: 'createTopics', topics: [{ name: 'wide', replicationFactor: 3 }] });
    expect(topicErrors(reply)).toEqual(['INVALID_REPLICATION_FACTOR']);
    const error = reply.type === 'topics' ? reply.results[0]!.error : undefined;
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(error!.message).toContain('2 live brokers');
    // Growing the topic of three: its new partitions would need three live brokers too.
    expect(topicErrors(solo.request({ type: 'createPartitions', topics: [{ topic: 'three', count: 2 }] }))).toEqual(['INVALID_REPLICATION_FACTOR']);
    expect(solo.state.nextProposalId).toBe(proposalsBefore);
    expect(solo.image.fingerprint()).toBe(before);
    expect(solo.image.topicByName('wide')).toBeUndefined();
    expect(solo.image.topicByName('three')!.partitions).toHaveLength(1);
  });

  it('explicit assignments: exactly the given replicas, each partition led by its first, whatever the placement would be', () => {
    const solo = cluster(3);
    const reply = solo.request({
      type: 'createTopics',
      topics: [
        { name: 'placed', assignments: [{ partition: 1, replicas: [3, 1] }, { partition: 0, replicas: [2, 3] }] },
        { name: 'agreeing', numPartitions: 2, replicationFactor: 1, assignments: [{ partition: 0, replicas: [2] }, { partition: 1, replicas: [2] }] },
      ],
    });
    expect(topicErrors(reply)).toEqual(['ok', 'ok']);
    const placements = (name: string) => solo.image.topicByName(name)!.partitions.map(({ replicas, isr, leader }) => ({ replicas, isr, leader }));
    expect(placements('placed')).toEqual([
      { replicas: [2, 3], isr: [2, 3], leader: 2 },
      { replicas: [3, 1], isr: [3, 1], leader: 3 },
    ]);
    expect(placements('agreeing')).toEqual([
      { replicas: [2], isr: [2], leader: 2 },
      { replicas: [2], isr: [2], leader: 2 },
    ]);
    // More partitions later are placed by the controller, with the topic's replication factor.
    expect(topicErrors(solo.request({ type: 'createPartitions', topics: [{ topic: 'placed', count: 3 }] }))).toEqual(['ok']);
    expect(solo.image.topicByName('placed')!.partitions[2]!.replicas).toHaveLength(2);
  });

  it('a bad assignment is refused with Kafka\'s codes, nothing proposed', () => {
    // Brokers 1..4, broker 4 fenced; at most 2 replicas.
    const solo = new Solo({ maxReplicationFactor: 2 });
    for (const inc of ['inc-2', 'inc-3', 'inc-4']) solo.register(inc);
    solo.request({ type: 'brokerGone', brokerId: 4, incarnation: 'inc-4' });
    expect(solo.image.broker(4)!.fenced).toBe(true);
    const before = solo.image.fingerprint();
    const proposalsBefore = solo.state.nextProposalId;
    const of = (...lists: number[][]) => lists.map((replicas, partition) => ({ partition, replicas }));
    const cases: Array<[string, Omit<NewTopic, 'name'>, string]> = [
      ['unknown broker', { assignments: of([1, 9]) }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['fenced broker', { assignments: of([2], [4]) }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['duplicate replica', { assignments: of([1, 1]) }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['no replicas', { assignments: of([]) }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['unequal replica counts', { assignments: of([1, 2], [3]) }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['gap in partition ids', { assignments: [{ partition: 0, replicas: [1] }, { partition: 2, replicas: [2] }] }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['duplicate partition id', { assignments: [{ partition: 0, replicas: [1] }, { partition: 0, replicas: [2] }] }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['negative partition id', { assignments: [{ partition: -1, replicas: [1] }] }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['fractional partition id', { assignments: [{ partition: 0.5, replicas: [1] }] }, 'INVALID_REPLICA_ASSIGNMENT'],
      ['numPartitions disagrees', { numPartitions: 3, assignments: of([1], [2]) }, 'INVALID_PARTITIONS'],
      ['no partitions', { assignments: [] }, 'INVALID_PARTITIONS'],
      ['too many partitions', { assignments: of(...Array.from({ length: 101 }, () => [1])) }, 'INVALID_PARTITIONS'],
      ['replicationFactor disagrees', { replicationFactor: 1, assignments: of([1, 2]) }, 'INVALID_REPLICATION_FACTOR'],
      ['too many replicas', { assignments: of([1, 2, 3]) }, 'INVALID_REPLICATION_FACTOR'],
    ];
    for (const [what, topic, code] of cases) {
      const reply = solo.request({ type: 'createTopics', topics: [{ name: 't', ...topic }] });
      expect(topicErrors(reply), what).toEqual([code]);
      if (reply.type === 'topics') expect(reply.results[0]!.error, what).toBeInstanceOf(InvalidConfigError);
    }
    expect(solo.state.nextProposalId).toBe(proposalsBefore);
    expect(solo.image.fingerprint()).toBe(before);
    expect(solo.image.topicByName('t')).toBeUndefined();
  });

  it('deleteTopics, createPartitions and alterConfigs go through the log, with typed errors', () => {
    const solo = cluster(3);
    solo.request({ type: 'createTopics', topics: [{ name: 't', numPartitions: 2 }] });
    expect(topicErrors(solo.request({ type: 'createPartitions', topics: [{ topic: 't', count: 5 }, { topic: 't2', count: 2 }] }))).toEqual(['ok', 'UNKNOWN_TOPIC_OR_PARTITION']);
    expect(solo.image.topicByName('t')!.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3, 4]);
    expect(topicErrors(solo.request({ type: 'createPartitions', topics: [{ topic: 't', count: 5 }] }))).toEqual(['INVALID_PARTITIONS']);
    expect(topicErrors(solo.request({ type: 'alterConfigs', topics: [{ topic: 't', entries: [{ name: 'retention.ms', value: '5' }] }] }))).toEqual(['ok']);
    expect(solo.image.topicByName('t')!.configs.get('retention.ms')).toBe('5');
    expect(topicErrors(solo.request({ type: 'alterConfigs', topics: [{ topic: 't', entries: [{ name: 'retention.ms', value: 'x' }] }] }))).toEqual(['INVALID_CONFIG']);
    expect(topicErrors(solo.request({ type: 'deleteTopics', topics: ['t', 't', 'nope'] }))).toEqual(['ok', 'UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_OR_PARTITION']);
    expect(solo.image.topics()).toEqual([]);
    // Its name is free again; its id is not reused.
    solo.request({ type: 'createTopics', topics: [{ name: 't' }] });
    expect(solo.image.topicByName('t')!.topicId).toBe(2);
  });
});

describe('alterPartition (KIP-497): the raft leader of a partition updates its leader hint and ISR', () => {
  const three = () => {
    const solo = new Solo();
    for (const inc of ['inc-2', 'inc-3']) solo.register(inc);
    solo.request({ type: 'createTopics', topics: [{ name: 't', numPartitions: 1, replicationFactor: 3 }] });
    return solo;
  };
  const alter = (solo: Solo, brokerId: number, leaderEpoch: number, isr: number[], topic = 't', partition = 0) =>
    solo.request({ type: 'alterPartition', clusterId: CLUSTER, brokerId, incarnation: `inc-${brokerId}`, topic, partition, leaderEpoch, isr });

  it('records the leader, its epoch and the ISR; a repeat writes nothing', () => {
    const solo = three();
    const follower = solo.image.topicByName('t')!.partitions[0]!.replicas.find((id) => id !== solo.image.topicByName('t')!.partitions[0]!.leader)!;
    expect(alter(solo, follower, 3, [follower, 1, 2, 3])).toMatchObject({ type: 'alterPartition' });
    expect(solo.image.topicByName('t')!.partitions[0]).toMatchObject({ leader: follower, leaderEpoch: 3, isr: [1, 2, 3] });
    const proposals = solo.state.nextProposalId;
    expect(alter(solo, follower, 3, [3, 2, 1])).toMatchObject({ type: 'alterPartition' });
    expect(solo.state.nextProposalId).toBe(proposals);
    expect(alter(solo, follower, 3, [follower])).toMatchObject({ type: 'alterPartition' });
    expect(solo.image.topicByName('t')!.partitions[0]!.isr).toEqual([follower]);
  });

  it('refuses a stale epoch, another leader at the same epoch, a non-replica, a bad ISR, an unknown partition or sender: nothing recorded', () => {
    const solo = three();
    alter(solo, 2, 5, [1, 2, 3]);
    const before = solo.image.fingerprint();
    expect(errorOf(alter(solo, 3, 4, [3]))).toBeInstanceOf(FencedLeaderEpochError);
    expect(errorOf(alter(solo, 3, 5, [3]))).toBeInstanceOf(FencedLeaderEpochError);
    expect(errorOf(alter(solo, 2, 6, [1, 3]))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(alter(solo, 2, 6, [2, 9]))).toBeInstanceOf(InvalidArgumentError);
    expect(errorOf(alter(solo, 2, 6, [2], 't', 1))).toBeInstanceOf(UnknownTopicOrPartitionError);
    expect(errorOf(alter(solo, 2, 6, [2], 'nope'))).toBeInstanceOf(UnknownTopicOrPartitionError);
    expect(errorOf(solo.request({ type: 'alterPartition', clusterId: CLUSTER, brokerId: 2, incarnation: 'other', topic: 't', partition: 0, leaderEpoch: 6, isr: [2] }))).toBeInstanceOf(BrokerIdentityError);
    solo.register('inc-4');
    expect(errorOf(alter(solo, 4, 6, [4]))).toBeInstanceOf(NotLeaderOrFollowerError);
    expect(solo.image.topicByName('t')!.partitions[0]).toMatchObject({ leader: 2, leaderEpoch: 5 });
    expect(solo.image.fingerprint()).not.toBe(before); // broker 4 registered, nothing else
  });
});

describe('re-replication: a broker fenced past reassignAfterMs has its replicas moved to live brokers', () => {
  /** Brokers 1 (the controller), 2, 3 and 4; topic t's partition 0 on 1, 2, 3 (led by 1) and partition 1 on 3 alone. */
  const four = () => {
    const solo = new Solo();
    for (const inc of ['inc-2', 'inc-3', 'inc-4']) solo.register(inc, inc === 'inc-4' ? 'dev-other' : 'dev-1');
    solo.request({ type: 'createTopics', topics: [{ name: 't', assignments: [{ partition: 0, replicas: [1, 2, 3] }] }, { name: 'solo', assignments: [{ partition: 0, replicas: [3] }] }] });
    return solo;
  };
  /** Time passes; brokers `alive` heartbeat every half session (the controller is heard anyway). */
  const pass = (solo: Solo, ms: number, alive: number[]) => {
    for (let t = 0; t < ms; t += SESSION_MS / 2) {
      for (const id of alive) solo.request({ type: 'heartbeat', brokerId: id, incarnation: `inc-${id}` });
      solo.tick(SESSION_MS / 2);
    }
  };
  const partition = (solo: Solo, topic = 't') => solo.image.topicByName(topic)!.partitions[0]!;

  it('moves the dead replica to a live broker after the delay (a new device first), adding before removing; the leader reporting it in sync ends the move', () => {
    const solo = four();
    pass(solo, 2 * SESSION_MS, [2, 4]);
    expect(solo.image.broker(3)!.fenced).toBe(true);
    pass(solo, REASSIGN_AFTER_MS - SESSION_MS, [2, 4]);
    expect(partition(solo).reassignment).toBeUndefined();
    pass(solo, 2 * SESSION_MS, [2, 4]);
    expect(partition(solo)).toMatchObject({ replicas: [1, 2, 3, 4], reassignment: { adding: [4], removing: [3] }, leader: 1 });
    // A partition with one replica has no raft group to move it with: it stays (offline) where its data is.
    expect(partition(solo, 'solo')).toMatchObject({ replicas: [3] });
    expect(partition(solo, 'solo').reassignment).toBeUndefined();
    // The leader reports its ISR: without broker 4 nothing ends; with it, the new set alone.
    solo.request({ type: 'alterPartition', brokerId: 1, incarnation: 'inc-1', topic: 't', partition: 0, leaderEpoch: 1, isr: [1, 2] });
    expect(partition(solo)).toMatchObject({ replicas: [1, 2, 3, 4], isr: [1, 2] });
    solo.request({ type: 'alterPartition', brokerId: 1, incarnation: 'inc-1', topic: 't', partition: 0, leaderEpoch: 1, isr: [1, 2, 4] });
    expect(partition(solo)).toMatchObject({ replicas: [1, 2, 4], isr: [1, 2, 4] });
    expect(partition(solo).reassignment).toBeUndefined();
    // It survives a snapshot of the image, and a later move starts from the new set.
    expect((MetadataImage.decode(solo.image.encode()) as MetadataImage).fingerprint()).toBe(solo.image.fingerprint());
  });

  it('a broker heard from again within the delay keeps its replicas; without a live broker to move to, nothing moves', () => {
    const solo = four();
    pass(solo, 2 * SESSION_MS, [2, 4]);
    expect(solo.image.broker(3)!.fenced).toBe(true);
    pass(solo, REASSIGN_AFTER_MS / 2, [2, 3, 4]);
    expect(solo.image.broker(3)!.fenced).toBe(false);
    pass(solo, 2 * SESSION_MS, [2, 4]);
    pass(solo, REASSIGN_AFTER_MS - 2 * SESSION_MS, [2, 4]);
    expect(partition(solo).reassignment).toBeUndefined(); // fenced again, counted afresh
    // Broker 4 gone too: 3's replica has nowhere to go (1 and 2 hold the partition already).
    pass(solo, 2 * REASSIGN_AFTER_MS, [2]);
    expect(partition(solo)).toMatchObject({ replicas: [1, 2, 3] });
    expect(partition(solo).reassignment).toBeUndefined();
  });

  it('a malformed reassignment in a record is refused by the image, nothing applied', () => {
    const solo = four();
    const image = solo.image.clone();
    const record = (reassignment: { adding: number[]; removing: number[] }, replicas = [1, 2, 3, 4]) => ({ type: 'partition' as const, topicId: image.topicByName('t')!.topicId, partition: 0, replicas, isr: [replicas[0]!], leader: replicas[0]!, leaderEpoch: 1, reassignment });
    for (const bad of [record({ adding: [5], removing: [3] }), record({ adding: [4], removing: [4] }), record({ adding: [], removing: [] }), record({ adding: [4], removing: [1, 2, 3, 4].slice(0, 4) }), record({ adding: [2, 3, 4], removing: [] }, [2, 3, 4])]) {
      expect(image.apply(bad)?.message, JSON.stringify(bad.reassignment)).toMatch(/reassignment/);
    }
    expect(image.fingerprint()).toBe(solo.image.fingerprint());
  });

  it('the leader\'s steps: the new replica joins as a learner, is promoted, then the dead voter is removed, one change at a time', () => {
    let membership = { voters: ['1.a', '2.b', '3.c'], learners: [] as string[] };
    const desired = ['1.a', '2.b', '4.d'];
    const steps: string[] = [];
    for (let next = nextReplicaMembership(membership, desired); next !== undefined; next = nextReplicaMembership(membership, desired)) {
      steps.push(`${next.voters.join(',')}|${next.learners.join(',')}`);
      membership = { voters: [...next.voters], learners: [...next.learners] };
    }
    expect(steps).toEqual(['1.a,2.b,3.c|4.d', '1.a,2.b,3.c,4.d|', '1.a,2.b,4.d|']);
    expect(nextReplicaMembership({ voters: ['1.a', '2.b'], learners: ['9.z'] }, ['1.a', '2.b'])).toEqual({ voters: ['1.a', '2.b'], learners: [] });
  });
});

describe('liveness', () => {
  it('fences a broker silent past its session timeout, unfences it on its next heartbeat', () => {
    const solo = new Solo();
    solo.register('b');
    solo.tick(SESSION_MS / 2);
    solo.request({ type: 'heartbeat', clusterId: CLUSTER, brokerId: 2, incarnation: 'b' });
    solo.tick(SESSION_MS / 2 + 10);
    expect(solo.image.broker(2)!.fenced).toBe(false);
    solo.tick(SESSION_MS);
    expect(solo.image.broker(2)!.fenced).toBe(true);
    expect(solo.image.broker(1)!.fenced).toBe(false);
    expect(solo.events).toContainEqual({ type: 'brokerFenced', brokerId: 2 });
    expect(solo.request({ type: 'heartbeat', clusterId: CLUSTER, brokerId: 2, incarnation: 'b' })).toMatchObject({ type: 'heartbeat', fenced: false });
    expect(solo.image.broker(2)!.fenced).toBe(false);
  });

  it('a broker whose slot lock was released is fenced at once; an old incarnation\'s release changes nothing', () => {
    const solo = new Solo();
    solo.register('b');
    expect(solo.request({ type: 'brokerGone', brokerId: 2, incarnation: 'old' })).toMatchObject({ type: 'brokerGone' });
    expect(solo.image.broker(2)!.fenced).toBe(false);
    expect(solo.request({ type: 'brokerGone', brokerId: 2, incarnation: 'b' })).toMatchObject({ type: 'brokerGone' });
    expect(solo.image.broker(2)!.fenced).toBe(true);
    expect(solo.events).toContainEqual({ type: 'brokerFenced', brokerId: 2 });
  });

  it('a new leader grants every broker a full session before fencing', () => {
    const solo = new Solo();
    solo.register('b');
    solo.tick(SESSION_MS * 3);
    expect(solo.image.broker(2)!.fenced).toBe(true);
    solo.register('c');
    solo.lead();
    solo.commit();
    solo.tick(SESSION_MS - 10);
    expect(solo.image.broker(3)!.fenced).toBe(false);
  });
});

describe('the controller group\'s membership', () => {
  it('every live broker joins as a learner, then voters up to 3, then 5 once there are 5; one change at a time', () => {
    const solo = new Solo();
    const voterCounts: number[] = [];
    for (let i = 2; i <= 6; i++) {
      solo.register(`inc-${i}`);
      for (let round = 0; round < 4; round++) solo.tick(10);
      voterCounts.push(solo.membership.voters.length);
      expect(solo.membership.learners.length + solo.membership.voters.length).toBe(i);
    }
    expect(voterCounts).toEqual([2, 3, 3, 5, 5]);
  });

  it('a fenced voter is replaced: the learner is promoted first, then the dead voter removed', () => {
    const solo = new Solo();
    for (const inc of ['b', 'c', 'd']) solo.register(inc);
    for (let round = 0; round < 6; round++) solo.tick(10);
    expect(solo.membership.voters).toHaveLength(3);
    const gone = solo.membership.voters.find((id) => id !== self)!;
    const { brokerId, incarnation } = parseMemberId(gone)!;
    const changes: Membership[] = [];
    solo.request({ type: 'brokerGone', brokerId, incarnation });
    for (let round = 0; round < 4; round++) {
      solo.tick(10);
      if (changes.at(-1) !== solo.membership) changes.push(solo.membership);
    }
    expect(changes.map((m) => m.voters.length)).toEqual([4, 3]);
    expect(solo.membership.voters).not.toContain(gone);
    expect(solo.membership.learners).not.toContain(gone);
  });

  it('a fenced voter of three stays while there is no replacement (fenced is not dead: a closed tab returns)', () => {
    const image = new MetadataImage();
    image.apply({ type: 'clusterId', clusterId: 'c', clusterName: 'n' });
    for (let id = 1; id <= 3; id++) image.apply({ type: 'registerBroker', brokerId: id, incarnation: `i${id}`, deviceId: 'd', endpoints: [] });
    image.apply({ type: 'fenceBroker', brokerId: 3, incarnation: 'i3' });
    const three = { voters: ['1.i1', '2.i2', '3.i3'], learners: [] };
    expect(nextMembership(image, three, '1.i1')).toBeUndefined();
    // With a replacement it is promoted first, then the fenced voter removed from four.
    image.apply({ type: 'registerBroker', brokerId: 4, incarnation: 'i4', deviceId: 'd', endpoints: [] });
    const withLearner = nextMembership(image, three, '1.i1')!;
    expect(withLearner).toEqual({ voters: three.voters, learners: ['4.i4'] });
    const four = nextMembership(image, withLearner, '1.i1')!;
    expect(four.voters).toEqual([...three.voters, '4.i4']);
    expect(nextMembership(image, four, '1.i1')).toEqual({ voters: ['1.i1', '2.i2', '4.i4'], learners: [] });
  });

  it('voters on distinct devices where possible', () => {
    const image = new MetadataImage();
    image.apply({ type: 'clusterId', clusterId: 'c', clusterName: 'n' });
    const devices = ['A', 'A', 'A', 'B'];
    devices.forEach((deviceId, i) => image.apply({ type: 'registerBroker', brokerId: i + 1, incarnation: `i${i + 1}`, deviceId, endpoints: [] }));
    let membership: Membership = { voters: ['1.i1', '2.i2', '3.i3'], learners: ['4.i4'] };
    for (let step = 0; step < 4; step++) membership = nextMembership(image, membership, '1.i1') ?? membership;
    expect(membership.voters).toContain('4.i4');
    expect(membership.voters).toHaveLength(3);
    expect(nextMembership(image, membership, '1.i1')).toBeUndefined();
  });

  it('compacts: the image at an applied index, every snapshotEveryRecords records', () => {
    let state = createController({ self, sessionTimeoutMs: 1, reassignAfterMs: 1, maxReplicationFactor: 1, maxPartitions: 1, snapshotEveryRecords: 2, validateConfigs: () => undefined });
    const entries = [
      { index: 1, term: 1, data: new Uint8Array(0) },
      { index: 2, term: 1, data: Uint8Array.from([0, 0, 2, 0x63, 2, 0x6e]) },
    ];
    const { effects } = stepController(state, { type: 'apply', entries });
    state = stepController(state, { type: 'apply', entries: [] }).state;
    const compact = effects.find((e) => e.type === 'compact');
    expect(compact).toMatchObject({ type: 'compact', index: 2 });
    expect((MetadataImage.decode((compact as { data: Uint8Array }).data) as MetadataImage).clusterId).toBe('c');
    expect(state.image.clusterId).toBe('c');
  });
});

describe('identity and formation checks', () => {
  const image = new MetadataImage();
  image.apply({ type: 'clusterId', clusterId: CLUSTER, clusterName: 'n' });
  image.apply({ type: 'registerBroker', brokerId: 1, incarnation: 'inc-1', deviceId: 'd', endpoints: [] });

  it('member ids are broker id + storage incarnation', () => {
    expect(parseMemberId(memberId(12, 'a.b'))).toEqual({ brokerId: 12, incarnation: 'a.b' });
    for (const bad of ['', '1.', '.x', '0.x', '01.x', 'x.y', '-1.x']) expect(parseMemberId(bad), bad).toBeUndefined();
  });

  it('a metadata message from outside the cluster, from a non-member id, or from an old incarnation is refused', () => {
    expect(checkPeerMessage(image, CLUSTER, 'other', '1.inc-1')?.code).toBe('INCONSISTENT_CLUSTER_ID');
    expect(checkPeerMessage(image, CLUSTER, CLUSTER, 'nobody')?.code).toBe('INCONSISTENT_CLUSTER_ID');
    expect(checkPeerMessage(image, CLUSTER, CLUSTER, '1.inc-0')?.code).toBe('STALE_BROKER_EPOCH');
    expect(checkPeerMessage(image, CLUSTER, CLUSTER, '1.inc-1')).toBeUndefined();
    expect(checkPeerMessage(image, CLUSTER, CLUSTER, '2.new')).toBeUndefined();
  });

  it('a forged or stale controller epoch is refused', () => {
    const known = { term: 5, leader: '1.inc-1' };
    expect(checkControllerEpoch(known, 4, '1.inc-1')?.code).toBe('STALE_CONTROLLER_EPOCH');
    expect(checkControllerEpoch(known, 5, '2.inc-2')?.code).toBe('STALE_CONTROLLER_EPOCH');
    expect(checkControllerEpoch(known, Number.NaN, '1.inc-1')?.code).toBe('STALE_CONTROLLER_EPOCH');
    expect(checkControllerEpoch(known, 5, '1.inc-1')).toBeUndefined();
    expect(checkControllerEpoch(known, 6, '2.inc-2')).toBeUndefined();
  });

  it('two clusters under one name: exactly the smaller one reports ClusterIdMismatchError', () => {
    const a = { clusterName: 'n', clusterId: 'a', brokers: 2, records: 10 };
    const b = { clusterName: 'n', clusterId: 'b', brokers: 3, records: 4 };
    expect(clustersMet(a, b)).toBeInstanceOf(ClusterIdMismatchError);
    expect(clustersMet(b, a)).toBeUndefined();
    const c = { ...a, clusterId: 'c' };
    expect([clustersMet(a, c), clustersMet(c, a)].filter(Boolean)).toHaveLength(1);
    expect(clustersMet({ ...a, records: 11 }, c)).toBeUndefined();
    expect(clustersMet(a, { ...b, clusterName: 'other' })).toBeUndefined();
    expect(clustersMet(a, a)).toBeUndefined();
  });

  it('formation: join the largest cluster in reach, else the smallest incarnation bootstraps and the others wait', () => {
    const cluster = (clusterId: string, brokers: number) => ({ clusterName: 'n', clusterId, brokers, records: 1 });
    expect(decideFormation('m', [{ incarnation: 'a' }, { incarnation: 'z', cluster: cluster('c1', 1) }, { incarnation: 'y', cluster: cluster('c2', 2) }])).toEqual({ kind: 'join', clusterId: 'c2' });
    expect(decideFormation('a', [{ incarnation: 'b' }, { incarnation: 'c' }])).toEqual({ kind: 'bootstrap' });
    expect(decideFormation('b', [{ incarnation: 'a' }, { incarnation: 'c' }])).toEqual({ kind: 'wait' });
    expect(decideFormation('b', [])).toEqual({ kind: 'bootstrap' });
  });

  it('placement is deterministic and uses each broker as leader in turn', () => {
    const brokers = [1, 2, 3].map((brokerId) => ({ brokerId, incarnation: '', deviceId: `d${brokerId}`, endpoints: [], fenced: false }));
    expect(placeReplicas(brokers, 3, 2, 0).map((r) => r[0])).toEqual([1, 2, 3]);
    expect(placeReplicas(brokers, 3, 2, 1).map((r) => r[0])).toEqual([2, 3, 1]);
  });
});

describe('allocateProducerIds (KIP-730): blocks of producer ids through the metadata log', () => {
  it('hands each request the next block, recorded in the image and its snapshot; an unknown sender gets none', () => {
    const solo = new Solo();
    solo.register('inc-2');
    const allocate = (brokerId: number, incarnation = `inc-${brokerId}`) => solo.request({ type: 'allocateProducerIds', clusterId: CLUSTER, brokerId, incarnation });
    expect(allocate(1)).toMatchObject({ type: 'producerIds', firstProducerId: 0, count: PRODUCER_ID_BLOCK_SIZE });
    expect(allocate(2)).toMatchObject({ type: 'producerIds', firstProducerId: PRODUCER_ID_BLOCK_SIZE, count: PRODUCER_ID_BLOCK_SIZE });
    expect(solo.image.nextProducerId).toBe(2 * PRODUCER_ID_BLOCK_SIZE);
    const before = solo.image.fingerprint();
    expect(errorOf(allocate(2, 'other'))).toBeInstanceOf(BrokerIdentityError);
    expect(errorOf(allocate(9))).toBeInstanceOf(BrokerIdentityError);
    expect(solo.image.fingerprint()).toBe(before);
    const restored = MetadataImage.decode(solo.image.encode());
    expect(restored).toBeInstanceOf(MetadataImage);
    expect((restored as MetadataImage).nextProducerId).toBe(2 * PRODUCER_ID_BLOCK_SIZE);
  });
});
