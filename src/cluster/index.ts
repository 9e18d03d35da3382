// The metadata controller (KRaft's): pure, with no I/O, clock or randomness of its own.
// One raft group per cluster, the metadata group, holds the metadata log — versioned
// records (FORMATS.md § Metadata record) saying which brokers exist (id, storage
// incarnation, device, endpoints, fenced or not), which topics and partitions exist and
// where their replicas are, and topic configs. Every broker is a member (voter or
// learner) and builds the image from it, so metadata reads are local in every tab; the
// raft leader is the active controller.
//
// The node runs each broker's controller beside its metadata group member on the executor
// and carries out its effects, in order:
//
//   1. `propose` / `changeMembership`: feed the metadata group that input; when its step
//      answers (`proposed` or `proposalRejected`, in the handler with that input), feed
//      the answer back with the effect's `proposalId`;
//   2. `reply`: answer request `requestId` of the broker at `to` (peer RPC, or locally);
//   3. `compact`: feed the metadata group `{ type: 'compact', index, data }`;
//   4. `brokerFenced` / `brokerUnfenced` / `recordRefused`: report (events, logs).
//
// Feed it: at (re)start, `restore` with the snapshot the group's store holds, if any (the
// raft core restarts `applied` there), then `raft`; `raft` after every metadata group step
// that changed role, term, leader or membership (with lastIndexOf(state)); the group's
// `apply` entries and `restore` snapshots; brokers' `request`s (forwarded to the active
// controller: any other answers NOT_CONTROLLER with a hint); `tick` about every heartbeat
// interval with the clock's time. When the metadata group stops (a failed write: the
// executor drops its inputs), feed `raft` with role 'follower', so pending requests are
// answered NOT_CONTROLLER and retried, and feed the restarted member as at start. A tab
// that sees another tab's slot lock released sends the `brokerGone` request (gone at once,
// no session timeout). Every broker (the active controller's own too) registers, then
// heartbeats at well under `sessionTimeoutMs`.
//
// The simulator hosts it as a machine on the executor (`addMachine`, ticking it), beside
// the metadata group: test/sim/cluster/simulator.ts `startMember` is the wiring to copy.
//
// Identity: a raft member is a broker id with its storage incarnation (`memberId`); see
// identity.ts. Formation and the cluster-id mismatch rule: formation.ts. Check inbound
// metadata-group messages with `checkPeerMessage`, and controller answers (but
// NOT_CONTROLLER errors, which only hint) with `checkControllerEpoch`, before applying them.
// A broker sends its requests where the last answer or hint pointed before its raft
// leader: a fenced broker dropped from the group hears no leader.

export { createController, isActive, PRODUCER_ID_BLOCK_SIZE, stepController } from './controller';
export type {
  ConfigEntryInput,
  ControllerEffect,
  ControllerInput,
  ControllerOptions,
  ControllerReply,
  ControllerRequest,
  ControllerRequestBody,
  ControllerState,
  NewTopic,
  ReplicaAssignment,
  TopicResult,
} from './controller';
export { MetadataImage, collisionKey, type BrokerInfo, type PartitionInfo, type TopicInfo } from './image';
export { replicationHealth, type ReplicationHealth } from './health';
export { checkControllerEpoch, checkPeerMessage, memberId, parseMemberId } from './identity';
export { clustersMet, compareClusters, decideFormation, type ClusterSummary, type FormationDecision, type FormationPeer } from './formation';
export { nextMembership, targetVoters } from './membership';
export {
  addressOf,
  createSession,
  helloOf,
  stepSession,
  summaryOf,
  type BrokerIdentity,
  type ClusterHello,
  type MemberView,
  type SessionEffect,
  type SessionInput,
  type SessionOptions,
  type SessionState,
} from './session';
export { deviceAlternated, placeReplicas } from './placement';
export { isInternalTopic, OFFSETS_TOPIC, validateTopicName } from './names';
export { decodeRecord, encodeRecord, PARTITION_RECORD_VERSION, RECORD_VERSION, SNAPSHOT_VERSION, type MetadataRecord, type Reassignment } from './records';
export { initialVoters, nextReplicaMembership, reassignmentDone, reassignments, targetReplicas } from './reassignment';
