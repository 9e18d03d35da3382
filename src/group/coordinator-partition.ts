// Which partition of the internal offsets topic holds a group (Kafka's rule), so every broker
// finds a group's coordinator — the leader of that partition — from the metadata image alone.

/** Java's String.hashCode: s[0]·31^(n−1) + … + s[n−1] over UTF-16 code units, in int32 arithmetic. */
function javaHashCode(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return hash;
}

/**
 * The partition of the offsets topic (of `partitions` partitions) that holds `groupId`'s
 * offsets: `Utils.abs(groupId.hashCode()) % partitions`, as Kafka's GroupCoordinator
 * (`Utils.abs` maps Integer.MIN_VALUE to 0), so a group lands where Kafka would put it.
 * @example coordinatorPartition('orders', 8) // → 3, as Kafka with 8 offsets partitions
 */
export function coordinatorPartition(groupId: string, partitions: number): number {
  const hash = javaHashCode(groupId);
  return (hash === -0x8000_0000 ? 0 : Math.abs(hash)) % partitions;
}
