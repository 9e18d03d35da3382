// Kafka's API keys (the protocol's request types), under the names KafkaJS gives them in its
// REQUEST events (`apiName`, `apiKey`): the requests Letterbox's clients and brokers make
// under those names report them, so dashboards built on KafkaJS's events read the same.

export const KAFKA_API_KEYS = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  CreateTopics: 19,
  DeleteTopics: 20,
  DeleteRecords: 21,
  InitProducerId: 22,
  AlterConfigs: 33,
  CreatePartitions: 37,
  DeleteGroups: 42,
  DescribeCluster: 60,
} as const;

export type KafkaApiName = keyof typeof KAFKA_API_KEYS;
