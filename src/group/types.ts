// The contract of the consumer-group coordinator core: pure, effect-returning. Inputs are
// requests (each with a requestId the reply carries back), clock ticks and storage
// completions; effects are replies and writes to make durable. No I/O, no clock, no
// randomness of its own: `now` comes in with every input.

export type AssignorName = 'range' | 'roundrobin';

/**
 * Kafka's group error names. Retriable: `REBALANCE_IN_PROGRESS` (rejoin),
 * `COORDINATOR_NOT_AVAILABLE` (too many offset writes in flight), `NOT_COORDINATOR` (the
 * coordinator moved while it wrote) and `KAFKA_STORAGE_ERROR` (an offset write failed; the
 * commit may be sent again).
 */
export type GroupErrorCode =
  | 'UNKNOWN_MEMBER_ID'
  | 'ILLEGAL_GENERATION'
  | 'REBALANCE_IN_PROGRESS'
  | 'INCONSISTENT_GROUP_PROTOCOL'
  | 'NON_EMPTY_GROUP'
  | 'INVALID_SESSION_TIMEOUT'
  | 'INVALID_GROUP_ID'
  /** A delete of a group the coordinator does not hold. */
  | 'GROUP_ID_NOT_FOUND'
  | 'UNKNOWN_TOPIC_OR_PARTITION'
  /** The group has `MEMBERS_PER_GROUP_MAX` members (Kafka's group.max.size). */
  | 'GROUP_MAX_SIZE_REACHED'
  /** A commit's metadata is longer than `OFFSET_METADATA_LENGTH_MAX` (Kafka's offset.metadata.max.bytes). */
  | 'OFFSET_METADATA_TOO_LARGE'
  /** A request past another bound (groups, topics, offsets per commit) or with a malformed field. */
  | 'INVALID_REQUEST'
  | 'COORDINATOR_NOT_AVAILABLE'
  | 'NOT_COORDINATOR'
  | 'KAFKA_STORAGE_ERROR';

export type Assignment = Record<string, number[]>;

export interface OffsetCommit {
  topic: string;
  partition: number;
  offset: number;
  metadata: string | null;
}

export type GroupInput =
  /** A member (re)joins; a new member passes memberId null and gets one in the reply. Replied when the rebalance completes. */
  | { type: 'join'; requestId: number; now: number; groupId: string; memberId: string | null; clientId: string; sessionTimeoutMs: number; rebalanceTimeoutMs: number; topics: string[]; assignors: AssignorName[] }
  /** The member's assignment for `generationId`. */
  | { type: 'sync'; requestId: number; now: number; groupId: string; memberId: string; generationId: number }
  | { type: 'heartbeat'; requestId: number; now: number; groupId: string; memberId: string; generationId: number }
  | { type: 'leave'; requestId: number; now: number; groupId: string; memberId: string }
  /**
   * Commits offsets. A member commits for its generation; memberId null is an admin
   * setOffsets/resetOffsets, allowed only while the group has no members.
   */
  | { type: 'commit'; requestId: number; now: number; groupId: string; memberId: string | null; generationId: number; offsets: OffsetCommit[] }
  /** The write of a `persist` effect is durable; its commit is replied now. */
  | { type: 'persisted'; requestId: number }
  /**
   * The write of a `persist` effect failed; the commit is refused with this error message:
   * NOT_COORDINATOR when `notCoordinator` (the write was refused because this broker no longer
   * leads the group's offsets partition: the caller finds the coordinator again), else KAFKA_STORAGE_ERROR.
   */
  | { type: 'persistFailed'; requestId: number; message: string; notCoordinator?: boolean }
  /** Time passes: expires sessions, ends rebalances past their timeout. */
  | { type: 'tick'; now: number }
  /** Partition counts of all topics (sent at start and whenever topics change); subscribed groups rebalance on a change. */
  | { type: 'topics'; now: number; partitions: Record<string, number> }
  /** Committed offsets read back from storage at start. */
  | { type: 'load'; groupId: string; offsets: OffsetCommit[] }
  /**
   * A deleted topic's committed offsets leave the group (as Kafka removes them): the group's
   * set is written again without them, answered once durable. `rewrite`: write it even if
   * nothing is dropped now (a stored set may still hold offsets dropped before).
   */
  | { type: 'dropTopic'; requestId: number; now: number; groupId: string; topic: string; rewrite: boolean }
  /**
   * Deletes a group without members (Kafka's DeleteGroups): its set is written empty behind
   * any pending writes, and the group is gone once that is durable; a failed write leaves it
   * as it was. Meanwhile it refuses joins, commits and offset drops (COORDINATOR_NOT_AVAILABLE).
   */
  | { type: 'deleteGroup'; requestId: number; now: number; groupId: string };

export type JoinReply = { memberId: string; generationId: number; leaderId: string; assignor: AssignorName; members: string[] };
export type SyncReply = { assignment: Assignment };

export type GroupEffect =
  | { type: 'reply'; requestId: number; ok: true; value?: JoinReply | SyncReply }
  | { type: 'reply'; requestId: number; ok: false; error: GroupErrorCode; message: string }
  /**
   * Make these committed offsets durable (the group's whole committed set), then feed `persisted`.
   * `deleteGroup`: the group is being deleted (offsets is empty); it is gone once this is durable.
   */
  | { type: 'persist'; requestId: number; groupId: string; offsets: OffsetCommit[]; deleteGroup?: true };

export type GroupStateName = 'Empty' | 'PreparingRebalance' | 'Stable';

export interface MemberDescription {
  memberId: string;
  clientId: string;
  topics: string[];
  assignment: Assignment;
}

export interface GroupDescription {
  groupId: string;
  state: GroupStateName;
  generationId: number;
  assignor: AssignorName | null;
  members: MemberDescription[];
}
