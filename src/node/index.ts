export { createBrokerNode, databaseNameOf, type BrokerNodeComponents } from './broker';
export { validateTopicName, configEntriesOf } from './topics';
export { SLOTS_MAX, slotLockName } from './slots';
export type * from './api';
export { exposeBrokerNode } from './expose';
export {
  Executor,
  type ApplicationEffect,
  type ExecutorInit,
  type ExecutorObserver,
  type ExecutorStats,
  type GroupMessage,
  type Machine,
  type MachineIo,
  type RaftGroupHandler,
  type RaftStore,
} from './executor';
export { GroupRuntime, GROUP_TICK_MS, storedOffsets, type CoordinatorObserver, type GroupRequest, type StoredOffsets } from './groups';
export { coordinatorAction, type CoordinatorAction } from './group-routing';
export { StoredRaftLog, encodeRaftEntry, decodeRaftEntry } from './raft-store';
export { PartitionRaftStore, encodePartitionImage } from './partition-store';
export { PartitionReplica, type Acks } from './replica';
export { ReplicaManager, partitionGroup, type ReplicaManagerInit } from './replicas';
export { ClusterRuntime, METADATA_GROUP, type ClusterEvents, type ClusterRuntimeInit, type ClusterTiming, type ClusterTransport } from './cluster';
