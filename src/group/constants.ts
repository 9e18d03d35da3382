// The coordinator's bounds, each with why. Every collection it holds is bounded by one
// of these, so a misbehaving client cannot grow a node's memory without limit.

/** Kafka's group.min.session.timeout.ms is 6 s; tabs on one machine detect a crash faster, so 1 s. */
export const SESSION_TIMEOUT_MIN_MS = 1_000;
/** A member silent for longer than this is surely gone (Kafka's group.max.session.timeout.ms is 30 min; we keep groups snappier). */
export const SESSION_TIMEOUT_MAX_MS = 300_000;
/** How long a rebalance may wait for a rejoin at most; KafkaJS's default rebalanceTimeout is 60 s. */
export const REBALANCE_TIMEOUT_MAX_MS = 300_000;
/** Kafka's group.max.size: the assignor's cost and the join reply's size grow with it. */
export const MEMBERS_PER_GROUP_MAX = 256;
/** Groups one coordinator holds (with members or committed offsets). */
export const GROUPS_MAX = 10_000;
/** Topics one member may subscribe to. */
export const SUBSCRIBED_TOPICS_MAX = 1_000;
/** Committed offsets one group may hold (the whole set is written on every commit). */
export const OFFSETS_PER_GROUP_MAX = 10_000;
/** Offsets in one commit request. */
export const OFFSETS_PER_COMMIT_MAX = 10_000;
/** Kafka's offset.metadata.max.bytes default (we count UTF-16 code units). */
export const OFFSET_METADATA_LENGTH_MAX = 4_096;
/** Commits waiting for their offset write, across all groups: back-pressure on a slow store. */
export const PENDING_WRITES_MAX = 1_024;
/** Length of group ids, client ids and topic names (Kafka's topic-name limit is 249). */
export const NAME_LENGTH_MAX = 255;
/** Partitions one topic may have as far as the assignors are concerned. */
export const PARTITIONS_PER_TOPIC_MAX = 100_000;
