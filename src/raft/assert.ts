import { LetterboxError } from '../errors';

/**
 * Assertions stay on in production (TigerBeetle's rule): a broken raft invariant must
 * stop the node, not let it acknowledge data it may lose.
 * @example assert(index > commit, 'truncating a committed entry');
 */
export function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new LetterboxError('RAFT_INVARIANT', `raft invariant broken: ${what}`);
}
