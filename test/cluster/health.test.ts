import { describe, expect, it } from 'vitest';
import { MetadataImage, replicationHealth, type MetadataRecord } from '../../src/cluster';

const imageOf = (records: readonly MetadataRecord[]) => {
  const image = new MetadataImage();
  for (const record of records) expect(image.apply(record)).toBeUndefined();
  return image;
};

const brokers: MetadataRecord[] = [
  { type: 'clusterId', clusterId: 'c-1', clusterName: 'origin' },
  ...[1, 2, 3].map((brokerId): MetadataRecord => ({ type: 'registerBroker', brokerId, incarnation: `inc-${brokerId}`, deviceId: 'dev', endpoints: [] })),
];
const topic: MetadataRecord[] = [
  { type: 'topic', topicId: 1, name: 'orders' },
  { type: 'partition', topicId: 1, partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 0 },
  { type: 'partition', topicId: 1, partition: 1, replicas: [2, 3, 1], isr: [2, 3, 1], leader: 2, leaderEpoch: 0 },
  { type: 'partition', topicId: 1, partition: 2, replicas: [3], isr: [3], leader: 3, leaderEpoch: 0 },
];

describe('replicationHealth', () => {
  it('counts nothing while every replica is in sync and every leader live', () => {
    expect(replicationHealth(imageOf([...brokers, ...topic]))).toEqual({ underReplicated: 0, offline: 0 });
  });

  it('a fenced follower makes its partitions under-replicated at once; a fenced leader makes them offline', () => {
    const image = imageOf([...brokers, ...topic, { type: 'fenceBroker', brokerId: 3, incarnation: 'inc-3' }]);
    // Partitions 0 and 1 have broker 3 in their ISR still (their leaders report later): under-replicated; partition 2 is led by 3: offline.
    expect(replicationHealth(image)).toEqual({ underReplicated: 2, offline: 1 });
  });

  it('a shrunk ISR reported by the leader counts; a partition with no leader named is offline; back in sync, none', () => {
    const shrunk: MetadataRecord = { type: 'partition', topicId: 1, partition: 0, replicas: [1, 2, 3], isr: [1], leader: 1, leaderEpoch: 1 };
    const leaderless: MetadataRecord = { type: 'partition', topicId: 1, partition: 1, replicas: [2, 3, 1], isr: [2, 3, 1], leader: -1, leaderEpoch: 1 };
    expect(replicationHealth(imageOf([...brokers, ...topic, shrunk, leaderless]))).toEqual({ underReplicated: 1, offline: 1 });
    const whole: MetadataRecord = { type: 'partition', topicId: 1, partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], leader: 1, leaderEpoch: 1 };
    expect(replicationHealth(imageOf([...brokers, ...topic, shrunk, whole]))).toEqual({ underReplicated: 0, offline: 0 });
  });
});
