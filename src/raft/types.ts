import type { LetterboxError } from '../errors';

/** A member of a raft group: a broker id with its storage incarnation, `<brokerId>.<incarnation>` (see index.ts). */
export type NodeId = string;

/**
 * Who takes part: voters elect and count toward commits; learners only replicate (a
 * new member catching up before its promotion). Nobody is both.
 */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * One log entry. The payload is opaque to the core: for a partition it is one Kafka
 * record batch whose `partitionLeaderEpoch` equals `term` (see index.ts for the
 * index ↔ offset mapping). An empty payload is a new leader's no-op entry. An entry
 * with `membership` is a configuration entry (a control batch; empty payload): it
 * takes effect on every member as soon as it is in that member's log (Raft thesis §4.1).
 */
export interface Entry {
  readonly term: number;
  readonly data: Uint8Array;
  readonly membership?: Membership;
}

/** The log's start: entries up to `index` are replaced by this state-machine image, taken at `index`. */
export interface Snapshot {
  readonly index: number;
  readonly term: number;
  /** The membership in effect at `index`. */
  readonly membership: Membership;
  /** The state machine's image, opaque to the core. */
  readonly data: Uint8Array;
}

/** A committed entry handed to the state machine. */
export interface CommittedEntry extends Entry {
  readonly index: number;
}

/**
 * The durable log as the core reads it; the application owns and writes it (through
 * `persist` effects). The core reads only indices it knows to be durable and keeps
 * the rest in memory, so the application may apply writes whenever it likes.
 * Reads are synchronous: over IndexedDB, keep the terms (one number per batch) and a
 * bounded cache of the log's tail in memory; a follower behind the cache gets a
 * snapshot once the application compacts the log below it.
 */
export interface RaftLog {
  /** Index of the last entry (the snapshot's index when no entry follows it, 0 for an empty log); read once, at start. */
  lastIndex(): number;
  /** The latest durable snapshot (the log holds only entries after it), or undefined; read once, at start. */
  snapshot(): Snapshot | undefined;
  /** The configuration entries after the snapshot, ascending by index; read once, at start. */
  memberships(): ReadonlyArray<{ readonly index: number; readonly membership: Membership }>;
  /** Term of the entry at `index` (snapshot index < index ≤ lastIndex). */
  term(index: number): number;
  /**
   * Entries `fromIndex..toIndex` inclusive (after the snapshot), cut after `maxBytes` of payload
   * but never empty; or undefined when they are not in memory: the core then asks for them
   * with a `loadEntries` effect and tries again on `entriesLoaded` (raft-rs's GetEntriesContext).
   */
  entries(fromIndex: number, toIndex: number, maxBytes: number): Entry[] | undefined;
}

/** What must survive a crash besides the log: the term and the vote cast in it. */
export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | undefined;
}

/** Fields every message carries. `term` is the sender's term (for a pre-vote: the term it would campaign in). */
interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export interface PreVoteRequest extends Envelope {
  readonly type: 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
}
export interface VoteRequest extends Envelope {
  readonly type: 'vote';
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** A leader handed over (or a forced reconfiguration): voters grant it even while they hear from a leader. */
  readonly force?: boolean;
}
export interface VoteResponse extends Envelope {
  readonly type: 'preVoteResponse' | 'voteResponse';
  readonly reject: boolean;
}
export interface AppendRequest extends Envelope {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  /** The leader's commit index. */
  readonly commit: number;
}
export interface AppendResponse extends Envelope {
  readonly type: 'appendResponse';
  readonly reject: boolean;
  /** On success the last index now matching the leader's log; on reject the rejected `prevIndex`. */
  readonly index: number;
  /** On reject: the follower's last index whose term is ≤ the rejected `prevTerm`, and that term (fast back-off). */
  readonly hintIndex: number;
  readonly hintTerm: number;
}
export interface Heartbeat extends Envelope {
  readonly type: 'heartbeat';
  /** min(leader's commit, the follower's known match), so a follower never commits what it may lack. */
  readonly commit: number;
  /** The leader's latest read-index round; echoed back, it proves the leader still led when it was sent. */
  readonly readRound: number;
}
export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeatResponse';
  /** The echoed `readRound` (0 when answering a stale leader). */
  readonly readRound: number;
}
/** The log prefix up to `snapshot.index`, for a follower that lacks entries the leader has compacted away. */
export interface SnapshotRequest extends Envelope {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}
/** Leader transfer: the leader has brought the target up to date; campaign now. */
export interface TimeoutNow extends Envelope {
  readonly type: 'timeoutNow';
}

export type Message =
  | PreVoteRequest
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotRequest
  | TimeoutNow;

/** A raft message between nodes, with the raft group it belongs to (one frame carries many groups'). */
export interface GroupMessage {
  readonly group: string;
  readonly message: Message;
}

/** What the application feeds the core, one at a time. */
export type Input =
  /** One logical clock tick; all timeouts are counted in ticks. */
  | { readonly type: 'tick' }
  /**
   * Campaign now (with a pre-vote), as when the election timeout elapses; ignored by a leader.
   * Always safe; the application uses it where waiting out a timeout buys nothing (a new
   * partition's preferred replica).
   */
  | { readonly type: 'campaign' }
  | { readonly type: 'message'; readonly message: Message }
  /** Client payloads to append as one entry each (only a leader accepts). */
  | { readonly type: 'propose'; readonly payloads: readonly Uint8Array[] }
  /** The `persist` effect with this `writeId` (and every earlier one) is durable. */
  | { readonly type: 'persisted'; readonly writeId: number }
  /** The `loadEntries` from `fromIndex` is done: the core reads its log again where it waited. */
  | { readonly type: 'entriesLoaded'; readonly fromIndex: number }
  /**
   * Leader only: append a configuration entry for `membership`. It may differ from the
   * current one by one voter at most (added, removed, promoted from or demoted to
   * learner); learners may change freely. Answered like `propose`.
   */
  | { readonly type: 'changeMembership'; readonly membership: Membership }
  /**
   * Leader only: hand leadership to the voter `to` (a tab closing). Proposals are refused
   * meanwhile; the attempt ends after electionTicks. Otherwise ignored: the outcome shows in `leader`.
   */
  | { readonly type: 'transferLeadership'; readonly to: NodeId }
  /**
   * `member` stopped for certain (a tab of this browser whose slot lock was released). If it
   * is the leader this member follows, the first other voter of the membership campaigns at
   * once, without a pre-vote, asking the voters to ignore their lease of it; the others wait
   * (should that campaign fail, their election timeout elects one). Otherwise ignored.
   */
  | { readonly type: 'memberGone'; readonly member: NodeId }
  /** A linearizable read: answered by `readReady` once reading the state machine at the returned index is safe, or `readRejected`. */
  | { readonly type: 'readIndex'; readonly id: number }
  /**
   * The application has an image `data` of its state machine at `index` (≤ applied):
   * drop the log up to it. Ignored unless the entries up to `index` are durable.
   */
  | { readonly type: 'compact'; readonly index: number; readonly data: Uint8Array }
  /**
   * Forced reconfiguration, only when the deaths are certain (see index.ts for the
   * preconditions): this member campaigns at once, in `term` — above every survivor's
   * term — as a voter of `membership`, and leading, appends it as the membership.
   */
  | { readonly type: 'forceMembership'; readonly membership: Membership; readonly term: number };

/** What the core asks of the application, in order. */
export type Effect =
  /**
   * Make this durable, then send `thenSend`, then feed `{ type: 'persisted', writeId }`.
   * Writes must become durable in `writeId` order. `entries` replaces the log from
   * `firstIndex` on (dropping any longer tail). `snapshot` comes first: store it and drop
   * every entry up to its index (a snapshot from the leader comes with an empty `entries`
   * after it, which drops the rest). A write may carry only messages: it is then a
   * barrier that holds them until every earlier write is durable.
   */
  | {
      readonly type: 'persist';
      readonly writeId: number;
      readonly hardState?: HardState;
      readonly snapshot?: Snapshot;
      readonly entries?: { readonly firstIndex: number; readonly entries: readonly Entry[] };
      readonly thenSend: readonly Message[];
    }
  /**
   * Bring entries `fromIndex..toIndex` (about `maxBytes` of them) into memory, then feed
   * `entriesLoaded` with `fromIndex`: `RaftLog.entries` answered undefined for them. One is out
   * per `fromIndex` (say, an apply and each lagging follower's append); every one must be answered.
   */
  | { readonly type: 'loadEntries'; readonly fromIndex: number; readonly toIndex: number; readonly maxBytes: number }
  /** Send now: nothing it says depends on an unfinished write. */
  | { readonly type: 'send'; readonly message: Message }
  /** Apply these committed entries to the state machine, in order. */
  | { readonly type: 'apply'; readonly entries: readonly CommittedEntry[] }
  /** Replace the state machine by this snapshot's image (a leader's snapshot installed here); later applies follow it. */
  | { readonly type: 'restore'; readonly snapshot: Snapshot }
  /** The read `id` may be served once the state machine has applied `index`. */
  | { readonly type: 'readReady'; readonly id: number; readonly index: number }
  /** The read `id` cannot be served here (`NOT_LEADER_OR_FOLLOWER` or `RAFT_BACKLOG_FULL`, both retriable). */
  | { readonly type: 'readRejected'; readonly id: number; readonly error: LetterboxError; readonly leaderHint: NodeId | undefined }
  /** The leader appended the proposal at `firstIndex..lastIndex` in `term`; it is committed once applied there with that term. */
  | { readonly type: 'proposed'; readonly firstIndex: number; readonly lastIndex: number; readonly term: number }
  /** The proposal was not appended (`NOT_LEADER_OR_FOLLOWER` or `RAFT_BACKLOG_FULL`, both retriable). */
  | { readonly type: 'proposalRejected'; readonly error: LetterboxError; readonly leaderHint: NodeId | undefined };

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Options of one raft member; every bound is named with its unit. */
export interface RaftConfig {
  readonly id: NodeId;
  /** The group's first voters: the membership while the log holds no snapshot and no configuration entry. */
  readonly voters: readonly NodeId[];
  /** Ticks without hearing a leader before a follower campaigns; randomized per round in [electionTicks, 2·electionTicks). */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats; well below electionTicks. */
  readonly heartbeatTicks: number;
  /** Append messages in flight to one follower in replicate mode (pipelining depth). */
  readonly maxInflightAppends: number;
  /** Entries in one append message. */
  readonly maxEntriesPerAppend: number;
  /** Payload bytes in one append message (at least one entry is always sent). */
  readonly maxBytesPerAppend: number;
  /** Appended but uncommitted entries a leader holds before it rejects proposals. */
  readonly maxUncommittedEntries: number;
  /** Payload bytes of committed entries handed out by one step (at least one entry). */
  readonly maxApplyBytesPerStep: number;
  /** Read-index requests a leader holds unanswered before it rejects more. */
  readonly maxPendingReads: number;
  /** Seed of the core's own PRNG, which only jitters election timeouts. */
  readonly seed: number;
}
