import type { Entry, RaftLog } from './types';
import { assert } from './assert';

/**
 * The core's view of its log: a durable prefix read through the application's
 * `RaftLog`, and an in-memory tail of entries whose writes may not be durable yet
 * (etcd's "unstable" log). Reads at or below `stableIndex` go to the application,
 * which has applied every write below it; reads above go to memory, so the
 * application may apply writes late.
 */
export interface LogView {
  readonly log: RaftLog;
  /** Entries 1..stableIndex are durable and equal to the in-memory log. */
  stableIndex: number;
  /** Entries stableIndex+1.. ; replaced, never mutated in place, so states can share it. */
  unstable: readonly Entry[];
}

/** Index of the last entry, durable or not. @example lastIndex(view) */
export const lastIndex = (view: LogView): number => view.stableIndex + view.unstable.length;

/** Term at `index`, 0 at index 0, undefined past the end. @example termAt(view, prevIndex) === prevTerm */
export function termAt(view: LogView, index: number): number | undefined {
  if (index === 0) return 0;
  if (index > view.stableIndex) return view.unstable[index - view.stableIndex - 1]?.term;
  return view.log.term(index);
}

/**
 * Entries `fromIndex..toIndex`, cut once `maxBytes` of payload would be exceeded, never empty.
 * @example readEntries(view, next, lastIndex(view), maxBytesPerAppend)
 */
export function readEntries(view: LogView, fromIndex: number, toIndex: number, maxBytes: number): Entry[] {
  assert(fromIndex >= 1 && fromIndex <= toIndex && toIndex <= lastIndex(view), 'readEntries out of range');
  let out: Entry[] = [];
  let bytes = 0;
  if (fromIndex <= view.stableIndex) {
    const stableTo = Math.min(toIndex, view.stableIndex);
    out = view.log.entries(fromIndex, stableTo, maxBytes);
    assert(out.length >= 1 && out.length <= stableTo - fromIndex + 1, 'RaftLog.entries returned a bad count');
    if (out.length < stableTo - fromIndex + 1) return out;
    for (const entry of out) bytes += entry.data.length;
  }
  for (let index = Math.max(fromIndex, view.stableIndex + 1); index <= toIndex; index++) {
    const entry = view.unstable[index - view.stableIndex - 1]!;
    if (out.length > 0 && bytes + entry.data.length > maxBytes) break;
    bytes += entry.data.length;
    out.push(entry);
  }
  return out;
}

/**
 * The last index ≤ `index` whose term is ≤ `term`: where two logs that disagree at
 * `index` may agree again, so a rejected append skips a whole term at a time.
 * @example lastIndexWithTermAtMost(view, rejectedIndex, rejectedTerm)
 */
export function lastIndexWithTermAtMost(view: LogView, index: number, term: number): number {
  let i = Math.min(index, lastIndex(view));
  while (i > 0 && termAt(view, i)! > term) i--;
  return i;
}

/** Replaces the log from `firstIndex` on with `entries` (in memory; the caller persists it). @example replaceFrom(view, lastIndex(view) + 1, [entry]) */
export function replaceFrom(view: LogView, firstIndex: number, entries: readonly Entry[]): void {
  assert(firstIndex >= 1 && firstIndex <= lastIndex(view) + 1, 'append leaves a gap');
  if (firstIndex <= view.stableIndex) {
    view.stableIndex = firstIndex - 1;
    view.unstable = entries.slice();
  } else {
    view.unstable = view.unstable.slice(0, firstIndex - view.stableIndex - 1).concat(entries);
  }
}

/** Marks 1..index durable, moving the in-memory entries up to it out of memory. @example stableTo(view, 42) */
export function stableTo(view: LogView, index: number): void {
  assert(index >= view.stableIndex && index <= lastIndex(view), 'stable index moves backwards');
  view.unstable = view.unstable.slice(index - view.stableIndex);
  view.stableIndex = index;
}
