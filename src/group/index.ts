// The consumer-group coordinator core: pure, with no I/O, clock or randomness of its
// own (Kafka's classic group protocol, with the assignment computed by the coordinator
// as KIP-848 does). The node feeds it inputs one at a time and carries out the effects
// it returns, in order:
//
//   1. `persist`: write the group's committed offsets (the whole set); writes of one
//      group must become durable in the order they were emitted; then feed
//      `{ type: 'persisted', requestId }` (or `persistFailed` with a message);
//   2. `reply`: answer the request with that requestId (joins are answered only when
//      their rebalance completes, possibly many steps later; commits once durable).
//
// And around requests: `load` each group's stored offsets and `topics` once at start,
// `topics` again whenever partition counts change, and `tick` every ~100 ms (sessions
// and rebalance deadlines are checked only on ticks).

export { assign } from './assignors';
export { committedOffsets, createCoordinator, describeGroup, listGroups, stepCoordinator } from './coordinator';
export type { CoordinatorState } from './coordinator';
export * from './constants';
export type * from './types';
