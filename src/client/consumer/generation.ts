// One membership of the group, as the group session, the fetch runner and the offset manager
// share it: who this member is in which generation, and where it stands in each partition it owns.

import { GroupError } from '../../errors';

export interface OwnedPartition {
  topic: string;
  partition: number;
  /** Next offset to fetch. */
  position: number;
  /** Next offset to commit (one past the last resolved). */
  resolved: number;
  /** Last committed offset. */
  committed: number;
}

/** One join: its member, generation and the partitions it owns. */
export interface Generation {
  memberId: string;
  generationId: number;
  owned: Map<string, OwnedPartition>;
  /** Set once the coordinator said to rejoin (or the member was fenced). */
  stale: boolean;
}

/** A partition's key in `Generation.owned` and in the paused and sought sets. */
export const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** The topic and partition of a key made by {@link keyOf}. */
export function partitionOf(key: string): { topic: string; partition: number } {
  const [topic, partition] = key.split('\u0000') as [string, string];
  return { topic, partition: Number(partition) };
}

const groupRejoinCodes = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);

/** Whether the coordinator answered that this member must join again (a rebalance, or it was fenced). */
export const isRejoin = (error: unknown): error is GroupError => error instanceof GroupError && groupRejoinCodes.has(error.code);
