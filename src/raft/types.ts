import type { LetterboxError } from '../errors';

/** A member of a raft group: a broker's id. */
export type NodeId = string;

/**
 * One log entry. The payload is opaque to the core: for a partition it is one Kafka
 * record batch whose `partitionLeaderEpoch` equals `term` (see index.ts for the
 * index ↔ offset mapping). An empty payload is a new leader's no-op entry.
 */
export interface Entry {
  readonly term: number;
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
 * bounded cache of the log's tail in memory; a follower far behind the cache is the
 * snapshot/catch-up case of the next raft issue.
 */
export interface RaftLog {
  /** Index of the last entry, 0 for an empty log; read once, when the core starts. */
  lastIndex(): number;
  /** Term of the entry at `index` (1 ≤ index ≤ lastIndex). */
  term(index: number): number;
  /** Entries `fromIndex..toIndex` inclusive, cut after `maxBytes` of payload but never empty. */
  entries(fromIndex: number, toIndex: number, maxBytes: number): Entry[];
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
}
export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeatResponse';
}

export type Message =
  | PreVoteRequest
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse;

/** What the application feeds the core, one at a time. */
export type Input =
  /** One logical clock tick; all timeouts are counted in ticks. */
  | { readonly type: 'tick' }
  | { readonly type: 'message'; readonly message: Message }
  /** Client payloads to append as one entry each (only a leader accepts). */
  | { readonly type: 'propose'; readonly payloads: readonly Uint8Array[] }
  /** The `persist` effect with this `writeId` (and every earlier one) is durable. */
  | { readonly type: 'persisted'; readonly writeId: number };

/** What the core asks of the application, in order. */
export type Effect =
  /**
   * Make this durable, then send `thenSend`, then feed `{ type: 'persisted', writeId }`.
   * Writes must become durable in `writeId` order. `entries` replaces the log from
   * `firstIndex` on (dropping any longer tail). A write may carry only messages: it is
   * then a barrier that holds them until every earlier write is durable.
   */
  | {
      readonly type: 'persist';
      readonly writeId: number;
      readonly hardState?: HardState;
      readonly entries?: { readonly firstIndex: number; readonly entries: readonly Entry[] };
      readonly thenSend: readonly Message[];
    }
  /** Send now: nothing it says depends on an unfinished write. */
  | { readonly type: 'send'; readonly message: Message }
  /** Apply these committed entries to the state machine, in order. */
  | { readonly type: 'apply'; readonly entries: readonly CommittedEntry[] }
  /** The leader appended the proposal at `firstIndex..lastIndex` in `term`; it is committed once applied there with that term. */
  | { readonly type: 'proposed'; readonly firstIndex: number; readonly lastIndex: number; readonly term: number }
  /** The proposal was not appended (`NOT_LEADER_OR_FOLLOWER` or `RAFT_BACKLOG_FULL`, both retriable). */
  | { readonly type: 'proposalRejected'; readonly error: LetterboxError; readonly leaderHint: NodeId | undefined };

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Options of one raft member; every bound is named with its unit. */
export interface RaftConfig {
  readonly id: NodeId;
  /** Voting members, this node included. */
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
  /** Seed of the core's own PRNG, which only jitters election timeouts. */
  readonly seed: number;
}
