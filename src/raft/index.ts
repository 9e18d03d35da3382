// The raft consensus core: pure, with no I/O, timers or randomness of its own. The
// application (node/ for real, test/sim/ for the simulator) feeds it inputs one at a
// time and carries out the effects it returns, in order:
//
//   1. `persist`: make the hard state and entries durable, in writeId order; then send
//      its `thenSend` messages and feed back `{ type: 'persisted', writeId }`;
//   2. `send`: deliver a message to a peer (it may be lost; raft retries);
//   3. `apply`: hand committed entries to the state machine;
//   4. `proposed` / `proposalRejected`: answer the client that proposed.
//
// Pre-vote and check-quorum are always on. Membership changes, learners, leader
// transfer, read-index and snapshots (the next raft issue) extend `RaftConfig.voters`,
// the leader's per-follower progress and the log's start; nothing here assumes a fixed
// membership beyond `voters`.
//
// How a partition maps onto it. One raft entry is one Kafka record batch; the entry's
// term is the batch's `partitionLeaderEpoch`. Raft index i is the i-th batch of the
// partition; its offsets are assigned by the leader when it proposes the batch
// (baseOffset = the previous batch's lastOffset + 1), so they are a function of the log
// prefix and equal on every replica that has entry i. The log stores batches keyed by
// baseOffset and keeps index ↔ baseOffset (a secondary key); `RaftLog.term(i)` is the
// epoch field of batch i. The high watermark is lastOffset + 1 of the batch at `commit`;
// a leader's no-op entry (empty payload) becomes an empty control batch that occupies
// no offsets. Truncation by raft (`entries.firstIndex`) is Kafka's truncation to a
// leader epoch boundary.

export { createRaft, lastIndexOf, step } from './core';
export type { RaftState, StepResult } from './core';
export type {
  AppendRequest,
  AppendResponse,
  CommittedEntry,
  Effect,
  Entry,
  HardState,
  Heartbeat,
  HeartbeatResponse,
  Input,
  Message,
  NodeId,
  PreVoteRequest,
  RaftConfig,
  RaftLog,
  Role,
  VoteRequest,
  VoteResponse,
} from './types';
