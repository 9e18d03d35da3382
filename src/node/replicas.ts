import { every, type Cancel, type Clock } from '../clock';
import { initialVoters, memberId, targetReplicas, type MetadataImage, type PartitionInfo } from '../cluster';
import type { LogConfig, LogManager } from '../log';
import type { NodeId, RaftConfig } from '../raft';
import type { Storage } from '../storage';
import type { Executor } from './executor';
import { PartitionRaftStore } from './partition-store';
import { PartitionReplica } from './replica';

// The replicated partitions of one broker of a cluster: a replica (a raft group on the
// node's executor, src/node/replica.ts) for every partition the metadata places here, with
// the partition's replicas as voters. The raft group decides who leads; the metadata holds a
// leader hint that the leader keeps up to date (alterPartition, KIP-497), so that other
// brokers route requests to it.

/**
 * A replica's raft group: by cluster and topic id, so a topic deleted and created again under
 * its name, or a slot that joined another cluster, starts afresh.
 */
export const partitionGroup = (clusterId: string, topicId: number, partition: number): string => `partition/${clusterId}/${topicId}/${partition}`;

/** A leader returns its partition to the preferred replica after this many election timeouts of that replica in sync. */
export const PREFERRED_LEADER_DELAY_ELECTIONS = 3;

/** Whether a partition with these replicas is a raft group (else Cluster I's single replica, appended directly). */
export const isReplicated = (replicationFactor: number): boolean => replicationFactor > 1;

export interface ReplicaManagerInit {
  clusterId: string;
  executor: Executor;
  logs: LogManager;
  storage: Storage;
  clock: Clock;
  /** This broker in the cluster. */
  self: { brokerId: number; incarnation: string };
  /** Raft bounds of every replica (as the metadata group's: election and heartbeat ticks). */
  raft: Omit<RaftConfig, 'id' | 'voters' | 'seed'>;
  seed: number;
  /** The topic's log settings. */
  configOf(topic: string): Partial<LogConfig>;
  /**
   * Tells the active controller that this broker leads a partition at `leaderEpoch` (alterPartition);
   * resolves once recorded. Rejections are retried on the next check.
   */
  reportLeadership(report: { topic: string; partition: number; leaderEpoch: number; isr: number[] }): Promise<void>;
  /** How often leaders compare the metadata's hint with what raft says. */
  checkEveryMs: number;
  /**
   * A leader hands its partition to the preferred replica (the first of the placement's) once
   * that has been in sync this long (Kafka's auto.leader.rebalance.enable), so leaders spread
   * over the brokers again after failovers; long enough that a replica back from a restart
   * has proven itself, and that a broker handing over before it closes is gone before.
   */
  preferredLeaderDelayMs: number;
  /** How often each replica compacts its raft log up to where retention would delete (Kafka's log.retention.check.interval.ms). */
  compactEveryMs: number;
}

const partitionKey = (topic: string, partition: number): string => `${partition}/${topic}`;

/** The member ids of registered brokers `ids` (their storage incarnations as the image has them). */
const membersOf = (image: MetadataImage, ids: readonly number[]): NodeId[] =>
  ids.flatMap((id) => {
    const broker = image.broker(id);
    return broker === undefined ? [] : [memberId(id, broker.incarnation)];
  });

/**
 * The voters a partition's group moves to: its target replicas (src/cluster/reassignment.ts).
 * Without a reassignment these are the voters it has, so nothing changes.
 */
const desiredMembers = (image: MetadataImage, p: PartitionInfo): NodeId[] => membersOf(image, targetReplicas(p));

/**
 * The replicas held by one broker, following the metadata image.
 * @example const replicas = new ReplicaManager(init); await replicas.follow(image); await replicas.get('orders', 0)?.produce([bytes], -1);
 */
export class ReplicaManager {
  readonly #init: ReplicaManagerInit;
  readonly #replicas = new Map<string, { replica: PartitionReplica; topic: string; partition: number }>();
  /** The same replicas by topic name and partition, for the request paths. */
  readonly #byPartition = new Map<string, PartitionReplica>();
  /** The leader epoch and ISR reported (or being reported) per group, so each is sent once while it stands. */
  readonly #reported = new Map<string, string>();
  #image: MetadataImage | undefined;
  /** Per group this broker leads: since when its preferred replica (another broker) has been in sync. */
  readonly #preferredInSyncSince = new Map<string, number>();
  readonly #stopChecks: Cancel;
  /** The broker leaves (ReplicaManager.leave): its replicas no longer campaign. */
  #leaving = false;

  constructor(init: ReplicaManagerInit) {
    this.#init = init;
    const stopLeadership = every(init.clock, init.checkEveryMs, () => this.#checkLeadership());
    const stopCompactions = every(init.clock, init.compactEveryMs, () => void this.#compact(init.clock.now()));
    this.#stopChecks = () => {
      stopLeadership();
      stopCompactions();
    };
  }

  /**
   * Opens a replica for each partition of `image` placed on this broker and closes the
   * others (their logs stay: a deleted topic's are removed by its delete).
   * @example await replicas.follow(membership.image);
   */
  async follow(image: MetadataImage): Promise<void> {
    this.#image = image;
    const { brokerId } = this.#init.self;
    const wanted = new Map<string, { topic: string; partition: number; voters: string[]; preferred: boolean }>();
    for (const topic of image.topics()) {
      for (const p of topic.partitions) {
        // One replica is served as Cluster I's (appended directly): raft for replicated partitions.
        if (!p.replicas.includes(brokerId) || !isReplicated(p.replicas.length)) continue;
        // Before a reassignment's replicas join: a log with no membership of its own starts from
        // the old set (a joining replica is no voter until the group's log says so).
        const voters = membersOf(image, initialVoters(p));
        // The leader the metadata names campaigns as soon as its replica starts (a new partition, a
        // reopened tab), not after an election timeout; a pre-vote keeps it from disrupting another leader.
        const preferred = p.leader === brokerId;
        wanted.set(partitionGroup(this.#init.clusterId, topic.topicId, p.partition), { topic: topic.name, partition: p.partition, voters, preferred });
      }
    }
    for (const [group, held] of this.#replicas) if (!wanted.has(group)) this.#drop(group, held);
    for (const [group, { topic, partition, voters, preferred }] of wanted) {
      if (this.#replicas.has(group)) continue;
      const log = await this.#init.logs.open({ topic, partition }, this.#init.configOf(topic));
      log.replicate();
      const store = await PartitionRaftStore.open(log, this.#init.storage, group);
      if (this.#replicas.has(group)) continue; // opened meanwhile by a later follow
      const self = memberId(brokerId, this.#init.self.incarnation);
      const config: RaftConfig = { ...this.#init.raft, id: self, voters, seed: this.#init.seed + this.#replicas.size };
      const replicas = () => {
        const p = this.#image?.topicByName(topic)?.partitions[partition];
        return p === undefined || this.#image === undefined ? [] : membersOf(this.#image, p.replicas);
      };
      const replica = new PartitionReplica({ executor: this.#init.executor, group, log, store, config, replicas });
      this.#replicas.set(group, { replica, topic, partition });
      this.#byPartition.set(partitionKey(topic, partition), replica);
      if (preferred && !this.#leaving) replica.campaign();
    }
  }

  /**
   * The broker leaves its cluster: its replicas no longer campaign where the metadata names it
   * leader (its leaderships are being handed over).
   * @example replicas.leave(); await membership.leave();
   */
  leave(): void {
    this.#leaving = true;
  }

  /** Closes the replicas of these topics now (before their delete removes the logs under them). */
  closeTopics(topics: readonly string[]): void {
    for (const [group, held] of this.#replicas) if (topics.includes(held.topic)) this.#drop(group, held);
  }

  /** The replica of a partition held here, if any. */
  get(topic: string, partition: number): PartitionReplica | undefined {
    return this.#byPartition.get(partitionKey(topic, partition));
  }

  /** Closes every replica (the broker leaves its cluster or stops). */
  close(): void {
    this.#stopChecks();
    for (const { replica } of this.#replicas.values()) replica.close();
    this.#replicas.clear();
    this.#byPartition.clear();
  }

  #drop(group: string, held: { replica: PartitionReplica; topic: string; partition: number }): void {
    held.replica.close();
    this.#replicas.delete(group);
    this.#reported.delete(group);
    this.#preferredInSyncSince.delete(group);
    if (this.#byPartition.get(partitionKey(held.topic, held.partition)) === held.replica) this.#byPartition.delete(partitionKey(held.topic, held.partition));
  }

  /** Each replica's raft log compacted where retention would delete; the log's next maintenance round then deletes. */
  async #compact(nowMs: number): Promise<void> {
    for (const { replica } of [...this.#replicas.values()]) await replica.compactForRetention(nowMs).catch(() => undefined);
  }

  /** Leading `group` here: hands it to its preferred replica once that has been in sync (and live) for the delay. */
  #returnToPreferred(group: string, replica: PartitionReplica, preferred: number | undefined, isr: readonly number[], image: MetadataImage): void {
    const now = this.#init.clock.monotonic();
    const waiting = preferred !== undefined && preferred !== this.#init.self.brokerId && isr.includes(preferred) && image.broker(preferred)?.fenced === false;
    if (!waiting) return void this.#preferredInSyncSince.delete(group);
    const since = this.#preferredInSyncSince.get(group) ?? now;
    this.#preferredInSyncSince.set(group, since);
    if (now - since < this.#init.preferredLeaderDelayMs) return;
    this.#preferredInSyncSince.delete(group);
    replica.handTo(preferred);
  }

  /** A leader whose term or in-sync replicas the metadata does not show yet reports them, once per change. */
  #checkLeadership(): void {
    const image = this.#image;
    if (image === undefined) return;
    for (const [group, { replica, topic, partition }] of this.#replicas) {
      const epoch = replica.leaderEpoch;
      const hint = image.topicByName(topic)?.partitions[partition];
      if (hint === undefined) continue;
      // The leader the metadata names campaigns again while no leader is known (its first
      // pre-votes may have reached replicas not started yet), so leaders follow the placement
      // instead of whichever replica times out first; a pre-vote never disrupts a leader.
      if (!replica.isLeader && replica.leader === undefined && hint.leader === this.#init.self.brokerId && !this.#leaving) replica.campaign();
      if (!replica.isLeader) {
        this.#preferredInSyncSince.delete(group);
        continue;
      }
      replica.moveTo(desiredMembers(image, hint));
      const isr = replica.inSyncBrokers().sort((a, b) => a - b);
      this.#returnToPreferred(group, replica, hint.replicas[0], isr, image);
      const shown = hint.leader === this.#init.self.brokerId && hint.leaderEpoch === epoch && isr.join() === [...hint.isr].sort((a, b) => a - b).join();
      const report = `${epoch}:${isr.join()}`;
      if (shown || this.#reported.get(group) === report) continue;
      this.#reported.set(group, report);
      this.#init.reportLeadership({ topic, partition, leaderEpoch: epoch, isr }).catch(() => {
        if (this.#reported.get(group) === report) this.#reported.delete(group);
      });
    }
  }
}
