import { LetterboxError } from '../errors';

/**
 * Assertions stay on in production (TigerBeetle's rule): a broken coordinator invariant
 * or an executor that breaks its contract must stop the node, not hand out a partition twice.
 * @example assert(write !== undefined, 'persisted for an unknown write');
 */
export function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new LetterboxError('GROUP_INVARIANT', `group coordinator invariant broken: ${what}`);
}
