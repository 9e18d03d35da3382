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
  /** The log's start: entries up to `startIndex` are compacted into a snapshot; `startTerm` is the term at it. */
  startIndex: number;
  startTerm: number;
  /** Entries startIndex+1..stableIndex are durable and equal to the in-memory log. */
  stableIndex: number;
  /** Entries stableIndex+1.. ; replaced, never mutated in place, so states can share it. */
  unstable: readonly Entry[];
}

/** Index of the last entry, durable or not. @example lastIndex(view) */
export const lastIndex = (view: LogView): number => view.stableIndex + view.unstable.length;

/** Term at `index`, 0 at index 0, undefined past the end or below the start. @example termAt(view, prevIndex) === prevTerm */
export function termAt(view: LogView, index: number): number | undefined {
  if (index <= view.startIndex) return index === view.startIndex ? view.startTerm : undefined;
  if (index > view.stableIndex) return view.unstable[index - view.stableIndex - 1]?.term;
  return view.log.term(index);
}

/**
 * Entries `fromIndex..toIndex`, cut once `maxBytes` of payload would be exceeded, never empty;
 * undefined when the durable ones among them are not in memory (the log must load them).
 * @example readEntries(view, next, lastIndex(view), maxBytesPerAppend)
 */
export function readEntries(view: LogView, fromIndex: number, toIndex: number, maxBytes: number): Entry[] | undefined {
  assert(fromIndex > view.startIndex && fromIndex <= toIndex && toIndex <= lastIndex(view), 'readEntries out of range');
  let out: Entry[] = [];
  let bytes = 0;
  if (fromIndex <= view.stableIndex) {
    const stableTo = Math.min(toIndex, view.stableIndex);
    const stable = view.log.entries(fromIndex, stableTo, maxBytes);
    if (stable === undefined) return undefined;
    out = stable;
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
 * `index` may agree again, so a rejected append skips a whole term at a time. Below
 * the log's start the terms are unknown: it answers an index below the start, and a
 * leader then sends its snapshot.
 * @example lastIndexWithTermAtMost(view, rejectedIndex, rejectedTerm)
 */
export function lastIndexWithTermAtMost(view: LogView, index: number, term: number): number {
  let i = Math.min(index, lastIndex(view));
  while (i > view.startIndex && termAt(view, i)! > term) i--;
  return i === view.startIndex && view.startTerm > term ? i - 1 : i;
}

/** Replaces the log from `firstIndex` on with `entries` (in memory; the caller persists it). @example replaceFrom(view, lastIndex(view) + 1, [entry]) */
export function replaceFrom(view: LogView, firstIndex: number, entries: readonly Entry[]): void {
  assert(firstIndex > view.startIndex && firstIndex <= lastIndex(view) + 1, 'append leaves a gap');
  if (firstIndex <= view.stableIndex) {
    view.stableIndex = firstIndex - 1;
    view.unstable = entries.slice();
  } else {
    view.unstable = view.unstable.slice(0, firstIndex - view.stableIndex - 1).concat(entries);
  }
}

/**
 * Marks entries up to `index` durable, moving the in-memory entries up to it out of
 * memory. A write that finishes after a snapshot replaced the log says nothing new.
 * @example stableTo(view, 42)
 */
export function stableTo(view: LogView, index: number): void {
  const stable = Math.max(index, view.startIndex);
  assert(stable >= view.stableIndex && stable <= lastIndex(view), 'stable index moves backwards');
  view.unstable = view.unstable.slice(stable - view.stableIndex);
  view.stableIndex = stable;
}

/**
 * Moves the log's start to `index` (durable, ≤ stableIndex) of term `term`; a snapshot
 * from the leader (`dropTail`) also drops every entry after it.
 * @example startAt(view, snapshot.index, snapshot.term, true)
 */
export function startAt(view: LogView, index: number, term: number, dropTail: boolean): void {
  assert(dropTail || index <= view.stableIndex, 'compacting entries that are not durable');
  if (dropTail) {
    view.stableIndex = index;
    view.unstable = [];
  }
  view.startIndex = index;
  view.startTerm = term;
}
