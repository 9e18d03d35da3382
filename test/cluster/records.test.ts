import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, MetadataImage, type MetadataRecord } from '../../src/cluster';
import { MetadataRecordError } from '../../src/errors';

const records: MetadataRecord[] = [
  { type: 'clusterId', clusterId: 'c-1', clusterName: 'https://app.example' },
  { type: 'registerBroker', brokerId: 1, incarnation: 'inc-a', deviceId: 'dev-1', endpoints: ['/p2p/12D3a', 'local:slot-0'] },
  { type: 'registerBroker', brokerId: 2, incarnation: 'inc-b', deviceId: 'dev-2', endpoints: [] },
  { type: 'fenceBroker', brokerId: 2, incarnation: 'inc-b' },
  { type: 'unfenceBroker', brokerId: 2, incarnation: 'inc-b' },
  { type: 'topic', topicId: 1, name: 'orders.v1' },
  { type: 'partition', topicId: 1, partition: 0, replicas: [1, 2], isr: [1], leader: 1, leaderEpoch: 0 },
  { type: 'partition', topicId: 1, partition: 1, replicas: [2], isr: [2], leader: -1, leaderEpoch: 4 },
  { type: 'config', topicId: 1, name: 'retention.ms', value: '60000' },
  { type: 'config', topicId: 1, name: 'cleanup.policy', value: null },
  { type: 'topic', topicId: 2, name: 'gone' },
  { type: 'removeTopic', topicId: 2 },
  { type: 'producerIds', brokerId: 1, nextProducerId: 1000 },
  { type: 'producerIds', brokerId: 2, nextProducerId: 2000 },
  // Broker 2 again, run by broker 1's tab (its slot adopted).
  { type: 'registerBroker', brokerId: 2, incarnation: 'inc-b', deviceId: 'dev-1', endpoints: ['local:slot-1'], hostedBy: 1 },
];

describe('metadata records', () => {
  it('round-trip every record type', () => {
    for (const record of records) expect(decodeRecord(encodeRecord(record))).toEqual(record);
  });

  it('pin the layout of version 0 (FORMATS.md § Metadata record)', () => {
    // type 4, version 0, topicId varint 7 (zigzag 14), name "ab" (length zigzag 4).
    expect([...encodeRecord({ type: 'topic', topicId: 7, name: 'ab' })]).toEqual([4, 0, 14, 4, 0x61, 0x62]);
    // type 6 config, value null: varint -1 (zigzag 1).
    expect([...encodeRecord({ type: 'config', topicId: 1, name: 'x', value: null })]).toEqual([6, 0, 2, 2, 0x78, 1]);
  });

  it('partition records are version 1 (the reassignment, empty arrays for none); version 0 is read as no reassignment', () => {
    // type 5, version 1, topicId 1, partition 0, replicas [1], isr [1], leader 1, epoch 0, adding [], removing [].
    const v1 = [5, 1, 2, 0, 2, 2, 2, 2, 2, 0, 0, 0];
    expect([...encodeRecord({ type: 'partition', topicId: 1, partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0 })]).toEqual(v1);
    expect(decodeRecord(Uint8Array.from([5, 0, 2, 0, 2, 2, 2, 2, 2, 0]))).toEqual({ type: 'partition', topicId: 1, partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0 });
    expect((decodeRecord(Uint8Array.from([5, 2, ...v1.slice(2)])) as MetadataRecordError).code).toBe('UNSUPPORTED_VERSION');
    expect((decodeRecord(Uint8Array.from(v1.slice(0, -1))) as MetadataRecordError).code).toBe('CORRUPT_MESSAGE');
    const moving: MetadataRecord = { type: 'partition', topicId: 1, partition: 0, replicas: [1, 2, 3], isr: [1], leader: 1, leaderEpoch: 2, reassignment: { adding: [3], removing: [2] } };
    expect(decodeRecord(encodeRecord(moving))).toEqual(moving);
  });

  it('registerBroker records are version 1 (its host, 0 for none); version 0 is read as no host', () => {
    // type 1, version 1, brokerId 2 (zigzag 4), incarnation "i", deviceId "d", endpoints [], hostedBy 1 (zigzag 2).
    const v1 = [1, 1, 4, 2, 0x69, 2, 0x64, 0, 2];
    expect([...encodeRecord({ type: 'registerBroker', brokerId: 2, incarnation: 'i', deviceId: 'd', endpoints: [], hostedBy: 1 })]).toEqual(v1);
    expect(decodeRecord(Uint8Array.from([1, 1, ...v1.slice(2, -1), 0]))).toEqual({ type: 'registerBroker', brokerId: 2, incarnation: 'i', deviceId: 'd', endpoints: [] });
    expect(decodeRecord(Uint8Array.from([1, 0, ...v1.slice(2, -1)]))).toEqual({ type: 'registerBroker', brokerId: 2, incarnation: 'i', deviceId: 'd', endpoints: [] });
    expect((decodeRecord(Uint8Array.from([1, 2, ...v1.slice(2)])) as MetadataRecordError).code).toBe('UNSUPPORTED_VERSION');
    expect((decodeRecord(Uint8Array.from([...v1.slice(0, -1), 1])) as MetadataRecordError).code).toBe('CORRUPT_MESSAGE'); // hostedBy -1
  });

  const malformed: Array<[string, number[], string]> = [
    ['empty', [], 'CORRUPT_MESSAGE'],
    ['unknown type', [99, 0], 'CORRUPT_MESSAGE'],
    ['future version', [4, 1, 2, 2, 0x61], 'UNSUPPORTED_VERSION'],
    ['truncated string', [4, 0, 2, 10, 0x61], 'CORRUPT_MESSAGE'],
    ['trailing bytes', [7, 0, 2, 0], 'CORRUPT_MESSAGE'],
    ['topic id 0', [7, 0, 0], 'CORRUPT_MESSAGE'],
    ['negative broker id', [2, 0, 1, 2, 0x61], 'CORRUPT_MESSAGE'],
    ['invalid UTF-8', [4, 0, 2, 2, 0xc3, 0x28], 'CORRUPT_MESSAGE'],
    ['null name', [4, 0, 2, 1], 'CORRUPT_MESSAGE'],
    ['huge array count', [5, 0, 2, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f], 'CORRUPT_MESSAGE'],
    ['varint over 5 bytes', [7, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 'CORRUPT_MESSAGE'],
  ];
  it.each(malformed)('decoding a malformed record (%s) yields a typed error, not a throw', (_, bytes, code) => {
    const result = decodeRecord(Uint8Array.from(bytes));
    expect(result).toBeInstanceOf(MetadataRecordError);
    expect((result as MetadataRecordError).code).toBe(code);
  });

  it('every prefix of every record decodes to a value or a typed error', () => {
    for (const record of records) {
      const bytes = encodeRecord(record);
      for (let end = 0; end < bytes.length; end++) expect(decodeRecord(bytes.subarray(0, end))).toBeInstanceOf(MetadataRecordError);
    }
  });
});

describe('metadata image', () => {
  const build = (list: readonly MetadataRecord[]) => {
    const image = new MetadataImage();
    for (const record of list) expect(image.apply(record)).toBeUndefined();
    return image;
  };

  it('is built by applying records', () => {
    const image = build(records);
    expect(image.clusterId).toBe('c-1');
    expect(image.brokers().map((b) => [b.brokerId, b.fenced])).toEqual([[1, false], [2, false]]);
    const topic = image.topicByName('orders.v1')!;
    expect(topic.partitions.map((p) => p.replicas)).toEqual([[1, 2], [2]]);
    expect([...topic.configs]).toEqual([['retention.ms', '60000']]);
    expect(image.topicByName('gone')).toBeUndefined();
    expect(image.nextTopicId).toBe(3);
    expect(image.recordsApplied).toBe(records.length);
  });

  const contradictions: Array<[string, MetadataRecord]> = [
    ['a second cluster id', { type: 'clusterId', clusterId: 'c-2', clusterName: 'x' }],
    ['another incarnation under a registered id', { type: 'registerBroker', brokerId: 1, incarnation: 'impostor', deviceId: 'd', endpoints: [] }],
    ['a new broker skipping ids', { type: 'registerBroker', brokerId: 9, incarnation: 'new', deviceId: 'd', endpoints: [] }],
    ['a broker hosted by itself', { type: 'registerBroker', brokerId: 1, incarnation: 'inc-a', deviceId: 'dev-1', endpoints: [], hostedBy: 1 }],
    ['fencing an old incarnation', { type: 'fenceBroker', brokerId: 2, incarnation: 'inc-old' }],
    ['a colliding topic name (a.b vs a_b)', { type: 'topic', topicId: 5, name: 'orders_v1' }],
    ['a reused topic id', { type: 'topic', topicId: 2, name: 'fresh' }],
    ['a partition of an unknown topic', { type: 'partition', topicId: 9, partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0 }],
    ['a partition gap', { type: 'partition', topicId: 1, partition: 5, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0 }],
    ['an unregistered replica', { type: 'partition', topicId: 1, partition: 2, replicas: [1, 7], isr: [1], leader: 1, leaderEpoch: 0 }],
    ['a leader outside the replicas', { type: 'partition', topicId: 1, partition: 2, replicas: [1], isr: [1], leader: 2, leaderEpoch: 0 }],
    ['config of an unknown topic', { type: 'config', topicId: 2, name: 'a', value: 'b' }],
  ];
  it.each(contradictions)('refuses %s with INVALID_RECORD and changes nothing', (_, record) => {
    const image = build(records);
    const before = image.fingerprint();
    const error = image.apply(record);
    expect(error).toBeInstanceOf(MetadataRecordError);
    expect(error!.code).toBe('INVALID_RECORD');
    expect(image.fingerprint()).toBe(before);
  });

  it('refuses every record before the cluster id', () => {
    expect(new MetadataImage().apply({ type: 'topic', topicId: 1, name: 't' })?.code).toBe('INVALID_RECORD');
  });

  it('snapshots round-trip, keeping counters records do not carry', () => {
    const image = build(records);
    const copy = MetadataImage.decode(image.encode());
    expect(copy).toBeInstanceOf(MetadataImage);
    const restored = copy as MetadataImage;
    expect(restored.fingerprint()).toBe(image.fingerprint());
    expect(restored.recordsApplied).toBe(image.recordsApplied);
    expect(restored.nextTopicId).toBe(3);
    expect(restored.topicByName('orders.v1')).toEqual(image.topicByName('orders.v1'));
    // The restored image goes on exactly as the original does.
    const next: MetadataRecord = { type: 'topic', topicId: 3, name: 'later' };
    expect(restored.apply(next)).toBeUndefined();
    expect(image.apply(next)).toBeUndefined();
    expect(restored.fingerprint()).toBe(image.fingerprint());
  });

  it('a fenced broker stays fenced through a snapshot', () => {
    const image = build([...records.slice(0, 4)]);
    const restored = MetadataImage.decode(image.encode()) as MetadataImage;
    expect(restored.broker(2)?.fenced).toBe(true);
  });

  it('decoding a malformed snapshot yields a typed error', () => {
    const bytes = build(records).encode();
    for (let end = 0; end < bytes.length; end++) expect(MetadataImage.decode(bytes.subarray(0, end))).toBeInstanceOf(MetadataRecordError);
    const future = bytes.slice();
    future[0] = 1;
    expect((MetadataImage.decode(future) as MetadataRecordError).code).toBe('UNSUPPORTED_VERSION');
    // A snapshot whose records contradict each other: a partition before its topic.
    const image = new MetadataImage();
    image.apply(records[0]!);
    const bad = Uint8Array.from([0, 2, 2, 2, ...[encodeRecord(records[0]!), encodeRecord(records[6]!)].flatMap((r) => [r.length * 2, ...r])]);
    expect((MetadataImage.decode(bad) as MetadataRecordError).code).toBe('CORRUPT_MESSAGE');
  });
});
