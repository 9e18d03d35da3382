// The raft consensus core: pure, with no I/O, timers or randomness of its own. The
// application (node/ for real, test/sim/ for the simulator) feeds it inputs one at a
// time and carries out the effects it returns, in order:
//
//   1. `persist`: make the hard state and entries durable, in writeId order; then send
//      its `thenSend` messages and feed back `{ type: 'persisted', writeId }`;
//   2. `send`: deliver a message to a peer (it may be lost; raft retries);
//   3. `apply` / `restore`: hand committed entries, or a leader's snapshot, to the state machine;
//   4. `proposed` / `proposalRejected` / `readReady` / `readRejected`: answer the client;
//   5. `loadEntries`: `RaftLog.entries` answered undefined (the entries are on disk, not in
//      memory); bring them into memory and feed back `{ type: 'entriesLoaded', fromIndex }`, and
//      the core reads again where it waited (raft-rs's GetEntriesContext). One is out per fromIndex.
//
// Pre-vote and check-quorum are always on.
//
// Identity: a member (`NodeId`) is a broker id with its storage incarnation (the slot
// database's identity), written `<brokerId>.<incarnation>` (src/cluster `memberId`). A
// broker back with its storage — a reopened tab on its slot, or another tab adopting the
// slot — is the same member, as a server restarting on its disk: its votes and log are
// still there. A broker whose storage was lost has forgotten its votes, so it must never
// count as that member again: it registers anew, gets a new broker id and joins as a learner.
//
// Membership changes are single-server changes (Raft thesis §4.1), not joint consensus:
// a configuration entry adds or removes one voter (or changes learners), takes effect
// on each member as soon as it is in its log, and a leader appends one only when the
// previous one is committed and it has committed an entry of its own term. Why: the
// group's changes are one at a time by nature — a tab opens (add as learner, catch up,
// promote) or closes (remove) — and one entry type with one rule is far less to get
// wrong than joint consensus' two-phase configurations, which buy only atomic
// multi-server swaps we never need. A leader removed from the voters keeps leading
// until its removal commits, then steps down.
//
// Read-index, not a lease: a read waits for a quorum to echo a heartbeat round sent
// after it arrived, so no clock is trusted (tabs' timers are throttled at will).
//
// Snapshots: the application compacts with `compact` (an opaque image of its state
// machine at an applied index); the leader sends the latest snapshot to a follower
// whose next entry is below the log's start, and the follower answers it with a
// `restore` effect.
//
// Forced reconfiguration (`forceMembership`) exists for the one place where deaths are
// certain: tabs of one browser, whose slot locks (Web Locks) are released exactly when
// a tab is gone. It makes the member it is given to campaign at once, in a given term,
// as a voter of the new membership, bypassing quorums of the old one; leading, it
// appends that membership.
// It is safe only when all of these hold (the core cannot check them; the simulator's
// `forced reconfiguration` checker does):
//   1. Every voter left out is dead and never comes back as that member: its slot's
//      lock was released and its storage is gone, so whatever opens on that slot next
//      is a new member (a new storage incarnation, a new broker id), joining as a new
//      learner. A returning old voter
//      — with its old state, or even wiped, having forgotten its votes — could complete
//      a quorum of a configuration some survivor still holds.
//   2. The new voters are alive and include the member it is given to, and every
//      majority of them shares a member with every majority that the living could
//      still form in any survivor's latest configuration; so no term can get a second
//      leader and an entry the new voters commit is on a voter of any later quorum.
//      E.g. one tab of two dies: {survivor} against {dead, survivor}, which the living
//      cannot form a majority of. Shrinking to the living of the most up-to-date
//      survivor's configuration (with itself) is the usual choice; the survivors then
//      check it against each other's configurations, which may differ while a change
//      is in flight.
//   3. The member it is given to holds every committed entry. The survivors establish
//      it by comparing (last term, last index) and forcing the most up-to-date of them:
//      a log at least as up to date as one holding a committed entry holds it too (the
//      election restriction's argument). That suffices when the dead cannot have formed
//      a quorum without the survivors — the dead are fewer than a quorum of the
//      configuration (and, while the last change is uncommitted, the previous one);
//      e.g. one tab of two, where every commit needed both. Otherwise committed entries
//      may have died with them, and no forcing can bring them back.
//   4. Its term is above every term any survivor has seen (they report theirs). The
//      dead may have led the term after ours; under 3's condition some survivor voted
//      in it, so the survivors know every term a leader was elected in, and no term
//      gets a second leader. (The simulator found this one: forcing at our term + 1
//      made two leaders of a term a closed tab had led.)
//   5. It is forced on one member at a time; it is not durable: after a crash before
//      it leads, force it again.
//
// How a partition maps onto it (src/log, src/node/partition-store.ts). One raft entry is
// one Kafka record batch; the entry's term is the batch's `partitionLeaderEpoch`. Raft
// index i is the i-th batch of the partition; its offsets are numbered when the entry is
// staged (baseOffset = the previous batch's lastOffset + 1), which on the leader is the step
// that proposes it, so they are a function of the log prefix and equal on every replica
// that has entry i. Each stored batch's summary holds its raft index and epoch, and the log
// keeps index ↔ offsets and the epochs' start offsets in memory (BatchIndex);
// `RaftLog.term(i)` reads them, `RaftLog.entries` reads the tail cache or answers
// undefined (then `loadEntries` reads IndexedDB). The high watermark is lastOffset + 1 of
// the batch at `commit`. A leader's no-op entry becomes a control batch (LEADER_CHANGE)
// that takes one offset, a configuration entry one too (KRAFT_VOTERS), both without a
// timestamp so every replica stores the same bytes; consumers skip them (FORMATS.md §
// Control batch). Truncation by raft (`entries.firstIndex`) is Kafka's truncation to a
// leader epoch boundary, written in one transaction with the replacement and the hard
// state, never below the high watermark. The cleaner keeps an emptied batch's header and
// retention deletes only up to raft's compaction point, so indices never renumber. For a
// partition the snapshot's image is small — the next offset and the idempotent producers'
// state (src/log/producer-state.ts) — since the records themselves are the data: a follower behind the
// leader's log start restores it (an empty log starting at that offset) and fetches from
// there, as a Kafka follower out of range does. For the metadata controller it is the
// metadata image.

export { createRaft, inSyncVoters, lastIndexOf, step, transferTarget } from './core';
export type { RaftState, StepResult } from './core';
export type {
  AppendRequest,
  Membership,
  Snapshot,
  SnapshotRequest,
  TimeoutNow,
  AppendResponse,
  CommittedEntry,
  Effect,
  Entry,
  GroupMessage,
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
