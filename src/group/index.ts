// The consumer-group coordinator core: pure, with no I/O, clock or randomness of its
// own (Kafka's classic group protocol, with the assignment computed by the coordinator
// as KIP-848 does). The node feeds it inputs one at a time and carries out the effects
// it returns, in order:
//
//   1. `persist`: write the group's committed offsets (the whole set, so one put per
//      group); writes of one group must become durable in the order they were emitted
//      (one IndexedDB queue does that); then feed `{ type: 'persisted', requestId }`, or
//      `persistFailed` with a message (the commit is answered KAFKA_STORAGE_ERROR);
//   2. `reply`: answer the request with that requestId. Joins are answered only when
//      their rebalance completes, possibly many steps later, and commits once durable:
//      keep each pending request's resolver by requestId.
//
// Around the requests: create it with a fresh `instanceId` per run; `load` each group's
// stored offsets, then `topics`, before the first request; `topics` again whenever
// partition counts change (createTopics, createPartitions, deleteTopics); and `tick`
// about every 100 ms: sessions and rebalance deadlines are checked only on ticks, so a
// crashed consumer is noticed within sessionTimeoutMs + one tick.
//
// What callers resolve before a commit: offsets are whole numbers ≥ 0 (an admin reset
// to earliest or latest is resolved to the log's start or end offset by the node), of
// partitions `topics` knows. `committedOffsets` is what a consumer resumes from (its
// OffsetFetch); a rebalance completes only after the group's pending writes resolve, so
// a new owner reads every commit its predecessor was told succeeded.
//
// The state is a linear value: `stepCoordinator` may update it in place; keep only the
// state it returns. Read functions return copies.

export { assign } from './assignors';
export { coordinatorPartition } from './coordinator-partition';
export { committedOffsets, createCoordinator, describeGroup, listGroups, stepCoordinator } from './coordinator';
export type { CoordinatorOptions, CoordinatorState } from './coordinator';
export * from './constants';
export type * from './types';
