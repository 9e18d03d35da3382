import { LetterboxError } from '../errors';
import { assert } from './assert';
import {
  lastIndex,
  lastIndexWithTermAtMost,
  readEntries,
  replaceFrom,
  stableTo,
  termAt,
  type LogView,
} from './log-view';
import type {
  AppendRequest,
  AppendResponse,
  Effect,
  Entry,
  HardState,
  Heartbeat,
  Input,
  Message,
  NodeId,
  PreVoteRequest,
  RaftConfig,
  RaftLog,
  Role,
  VoteRequest,
  VoteResponse,
} from './types';

/** What a leader knows of one follower's log. */
interface Progress {
  /** Highest index known to match the leader's log (durable on the follower). */
  match: number;
  /** Next index to send. */
  next: number;
  /** probe: one append at a time until a match is found; replicate: pipelined appends. */
  mode: 'probe' | 'replicate';
  /** probe mode: an append is out; wait for its answer or the next heartbeat answer. */
  probeSent: boolean;
  /** replicate mode: last index of each unanswered append, ascending; at most maxInflightAppends. */
  inflight: number[];
  /** Heard from since the last check-quorum. */
  recentActive: boolean;
}

/** A `persist` effect not yet reported durable. */
interface PendingWrite {
  readonly id: number;
  /** First log index it rewrites; Infinity when it writes no entries. */
  readonly firstIndex: number;
  /** Last index of the log once it is applied. */
  readonly lastIndexAfter: number;
  readonly hardState: HardState | undefined;
}

/** The whole state of one member. Fields are mutated only on a fresh copy inside `step`. */
interface State {
  readonly config: RaftConfig;
  role: Role;
  term: number;
  votedFor: NodeId | undefined;
  leader: NodeId | undefined;
  commit: number;
  applied: number;
  view: LogView;
  pendingWrites: readonly PendingWrite[];
  nextWriteId: number;
  /** The hard state last handed out in a `persist` effect. */
  writtenHardState: HardState;
  /** The hard state known durable. */
  durableHardState: HardState;
  electionElapsedTicks: number;
  heartbeatElapsedTicks: number;
  /** This round's election timeout, in [electionTicks, 2·electionTicks). */
  electionTimeoutTicks: number;
  rng: number;
  /** Votes of this (pre-)campaign: true granted, false rejected. */
  votes: Map<NodeId, boolean>;
  /** Leader only: every other voter's progress. */
  progress: Map<NodeId, Progress>;
}

/**
 * A raft member's state: an immutable value; `step` returns a new one. The fields
 * below are for reading (status pages, executors, tests); the rest is private.
 */
export interface RaftState {
  readonly config: RaftConfig;
  readonly role: Role;
  readonly term: number;
  readonly votedFor: NodeId | undefined;
  /** The leader of `term` as far as this member knows. */
  readonly leader: NodeId | undefined;
  /** Highest index known committed (for a partition: the high watermark's entry). */
  readonly commit: number;
  /** Highest index handed out in an `apply` effect. */
  readonly applied: number;
}

export interface StepResult {
  readonly state: RaftState;
  readonly effects: readonly Effect[];
}

const EMPTY = new Uint8Array(0);

/** Effects being gathered during one step. */
interface Out {
  effects: Effect[];
  sends: Message[];
  /** Messages that promise something durable (votes, acknowledgements): sent after every earlier write. */
  afterWrite: Message[];
  /** Smallest log index rewritten in this step. */
  dirtyFrom: number;
}

/**
 * Starts a member from what survived: its hard state and its log. Commit and applied
 * restart at 0; the leader's messages bring commit back and entries are applied again.
 * @example const state = createRaft(config, log, { term: 0, votedFor: undefined });
 */
export function createRaft(config: RaftConfig, log: RaftLog, hardState: HardState): RaftState {
  assert(config.heartbeatTicks >= 1 && config.heartbeatTicks < config.electionTicks, 'heartbeatTicks < electionTicks');
  assert(config.maxInflightAppends >= 1 && config.maxEntriesPerAppend >= 1, 'bounds must be ≥ 1');
  const state: State = {
    config,
    role: 'follower',
    term: hardState.term,
    votedFor: hardState.votedFor,
    leader: undefined,
    commit: 0,
    applied: 0,
    view: { log, stableIndex: log.lastIndex(), unstable: [] },
    pendingWrites: [],
    nextWriteId: 1,
    writtenHardState: hardState,
    durableHardState: hardState,
    electionElapsedTicks: 0,
    heartbeatElapsedTicks: 0,
    electionTimeoutTicks: 0,
    rng: config.seed >>> 0 || 1,
    votes: new Map(),
    progress: new Map(),
  };
  resetTimers(state);
  return state;
}

/** Index of the last entry of the member's log (durable or not). @example lastIndexOf(state) */
export const lastIndexOf = (state: RaftState): number => lastIndex((state as State).view);

/**
 * Feeds one input to a member; returns its next state and what to do, in order.
 * The given state is left untouched.
 * @example ({ state, effects } = step(state, { type: 'tick' }));
 */
export function step(previous: RaftState, input: Input): StepResult {
  const s = copy(previous as State);
  const out: Out = { effects: [], sends: [], afterWrite: [], dirtyFrom: Infinity };
  switch (input.type) {
    case 'tick':
      tick(s, out);
      break;
    case 'message':
      receive(s, out, input.message);
      break;
    case 'propose':
      propose(s, out, input.payloads);
      break;
    case 'persisted':
      persisted(s, out, input.writeId);
      break;
  }
  finish(s, out);
  return { state: s, effects: out.effects };
}

function copy(s: State): State {
  const progress = new Map<NodeId, Progress>();
  for (const [id, pr] of s.progress) progress.set(id, { ...pr, inflight: pr.inflight.slice() });
  return { ...s, view: { ...s.view }, votes: new Map(s.votes), progress };
}

const quorum = (s: State) => Math.floor(s.config.voters.length / 2) + 1;

function nextRandom(s: State): number {
  // mulberry32: the core's only randomness, seeded by the application.
  s.rng = (s.rng + 0x6d2b79f5) >>> 0;
  let t = s.rng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

function resetTimers(s: State): void {
  s.electionElapsedTicks = 0;
  s.heartbeatElapsedTicks = 0;
  // Randomized so that split votes do not repeat forever.
  s.electionTimeoutTicks = s.config.electionTicks + (nextRandom(s) % s.config.electionTicks);
}

function send(s: State, out: Out, message: Message): void {
  // A leader's appends may go before its own write is durable (the thesis' §10.2.1):
  // it counts itself only once durable. Pre-votes and heartbeat answers promise nothing.
  const free = message.type === 'append' || message.type === 'heartbeat' || message.type === 'heartbeatResponse' ||
    message.type === 'preVote' || message.type === 'preVoteResponse';
  assert(message.from === s.config.id, 'message from another member');
  (free ? out.sends : out.afterWrite).push(message);
}

function becomeFollower(s: State, term: number, leader: NodeId | undefined): void {
  if (term !== s.term) {
    assert(term > s.term, 'term moves backwards');
    s.term = term;
    s.votedFor = undefined;
  }
  s.role = 'follower';
  s.leader = leader;
  s.votes = new Map();
  s.progress = new Map();
  resetTimers(s);
}

function tick(s: State, out: Out): void {
  s.electionElapsedTicks++;
  if (s.role !== 'leader') {
    if (s.electionElapsedTicks >= s.electionTimeoutTicks) campaign(s, out, 'preVote');
    return;
  }
  if (s.electionElapsedTicks >= s.config.electionTicks) {
    s.electionElapsedTicks = 0;
    // Check-quorum: a leader that has not heard from a quorum in an election timeout
    // steps down, so a partitioned leader stops accepting proposals it cannot commit.
    let active = 1;
    for (const pr of s.progress.values()) {
      if (pr.recentActive) active++;
      pr.recentActive = false;
    }
    if (active < quorum(s)) {
      becomeFollower(s, s.term, undefined);
      return;
    }
  }
  if (++s.heartbeatElapsedTicks >= s.config.heartbeatTicks) {
    s.heartbeatElapsedTicks = 0;
    for (const [to, pr] of s.progress) {
      send(s, out, { type: 'heartbeat', from: s.config.id, to, term: s.term, commit: Math.min(pr.match, s.commit) });
    }
  }
}

function campaign(s: State, out: Out, kind: 'preVote' | 'vote'): void {
  if (!s.config.voters.includes(s.config.id)) return;
  // A pre-vote asks "would you vote for me in term+1?" without changing anyone's term,
  // so a member that was partitioned away cannot disrupt a working leader on return.
  if (kind === 'preVote') {
    s.role = 'preCandidate';
  } else {
    s.role = 'candidate';
    s.term++;
    s.votedFor = s.config.id;
  }
  s.leader = undefined;
  s.progress = new Map();
  // A candidate's own vote counts once it is durable (see `persisted`): were it counted
  // earlier, a lone member could lead a term it forgets on a crash, and lead it again.
  s.votes = new Map(kind === 'preVote' ? [[s.config.id, true]] : []);
  resetTimers(s);
  if (tally(s) === 'won') return won(s, out);
  const term = kind === 'preVote' ? s.term + 1 : s.term;
  const last = lastIndex(s.view);
  for (const to of s.config.voters) {
    if (to === s.config.id) continue;
    send(s, out, { type: kind, from: s.config.id, to, term, lastIndex: last, lastTerm: termAt(s.view, last)! });
  }
}

function tally(s: State): 'won' | 'lost' | 'pending' {
  let granted = 0;
  let rejected = 0;
  for (const id of s.config.voters) {
    const vote = s.votes.get(id);
    if (vote === true) granted++;
    if (vote === false) rejected++;
  }
  if (granted >= quorum(s)) return 'won';
  return rejected >= quorum(s) ? 'lost' : 'pending';
}

function won(s: State, out: Out): void {
  if (s.role === 'preCandidate') campaign(s, out, 'vote');
  else becomeLeader(s, out);
}

function becomeLeader(s: State, out: Out): void {
  s.role = 'leader';
  s.leader = s.config.id;
  s.votes = new Map();
  resetTimers(s);
  const next = lastIndex(s.view) + 1;
  s.progress = new Map();
  for (const id of s.config.voters) {
    if (id === s.config.id) continue;
    s.progress.set(id, { match: 0, next, mode: 'probe', probeSent: false, inflight: [], recentActive: false });
  }
  // A no-op of the new term: entries of earlier terms commit only under one of the
  // current term (Raft §5.4.2), so this lets the leader commit them without waiting for a proposal.
  append(s, out, next, [{ term: s.term, data: EMPTY }]);
  for (const to of s.progress.keys()) sendAppends(s, out, to);
}

function append(s: State, out: Out, firstIndex: number, entries: readonly Entry[]): void {
  assert(firstIndex > s.commit, `rewriting committed index ${firstIndex} (commit ${s.commit})`);
  replaceFrom(s.view, firstIndex, entries);
  out.dirtyFrom = Math.min(out.dirtyFrom, firstIndex);
}

/**
 * Sends a follower what it lacks, as far as its mode and the inflight bound allow.
 * `evenIfEmpty`: in replicate mode with nothing new, send an empty append at the end
 * of the log, so a follower that lost the last appends says so and is probed.
 */
function sendAppends(s: State, out: Out, to: NodeId, evenIfEmpty = false): void {
  const pr = s.progress.get(to)!;
  const { maxInflightAppends, maxEntriesPerAppend, maxBytesPerAppend } = s.config;
  const last = lastIndex(s.view);
  assert(pr.next >= 1 && pr.next <= last + 1, 'progress.next beyond the log');
  for (let sent = 0; sent <= maxInflightAppends; sent++) {
    if (pr.mode === 'probe' ? pr.probeSent : pr.inflight.length >= maxInflightAppends) return;
    const empty = pr.mode === 'replicate' && pr.next > last;
    if (empty && !(evenIfEmpty && sent === 0)) return;
    const prevIndex = pr.next - 1;
    const entries =
      pr.next <= last ? readEntries(s.view, pr.next, Math.min(last, prevIndex + maxEntriesPerAppend), maxBytesPerAppend) : [];
    const message: AppendRequest = {
      type: 'append',
      from: s.config.id,
      to,
      term: s.term,
      prevIndex,
      prevTerm: termAt(s.view, prevIndex)!,
      entries,
      commit: s.commit,
    };
    send(s, out, message);
    if (pr.mode === 'probe') {
      pr.probeSent = true;
      return;
    }
    if (empty) return;
    pr.next += entries.length;
    pr.inflight.push(pr.next - 1);
  }
}

function receive(s: State, out: Out, m: Message): void {
  assert(m.to === s.config.id, 'message for another member');
  if (m.term > s.term) {
    if ((m.type === 'preVote' || m.type === 'vote') && inLease(s)) return;
    // A pre-vote (or a grant of one) is about a term nobody has entered yet.
    const keepTerm = m.type === 'preVote' || (m.type === 'preVoteResponse' && !m.reject);
    if (!keepTerm) becomeFollower(s, m.term, m.type === 'append' || m.type === 'heartbeat' ? m.from : undefined);
  } else if (m.term < s.term) {
    // Answer a stale leader with our term so it steps down, and a stale pre-candidate
    // so it stops; everything else from the past is ignored.
    if (m.type === 'append' || m.type === 'heartbeat') {
      send(s, out, { type: 'heartbeatResponse', from: s.config.id, to: m.from, term: s.term });
    } else if (m.type === 'preVote') {
      send(s, out, { type: 'preVoteResponse', from: s.config.id, to: m.from, term: s.term, reject: true });
    }
    return;
  }
  switch (m.type) {
    case 'preVote':
    case 'vote':
      return voteRequest(s, out, m);
    case 'preVoteResponse':
    case 'voteResponse':
      return voteResponse(s, out, m);
    case 'append':
    case 'heartbeat':
      return fromLeader(s, out, m);
    case 'appendResponse':
      return appendResponse(s, out, m);
    case 'heartbeatResponse':
      return heartbeatResponse(s, out, m.from);
  }
}

/** Heard from a live leader within the minimum election timeout: refuse to help depose it. */
const inLease = (s: State) => s.leader !== undefined && s.electionElapsedTicks < s.config.electionTicks;

function voteRequest(s: State, out: Out, m: PreVoteRequest | VoteRequest): void {
  const pre = m.type === 'preVote';
  const free = s.votedFor === m.from || (s.votedFor === undefined && s.leader === undefined) || (pre && m.term > s.term);
  const last = lastIndex(s.view);
  const lastTerm = termAt(s.view, last)!;
  // Raft §5.4.1: vote only for a log at least as up to date as ours.
  const upToDate = m.lastTerm > lastTerm || (m.lastTerm === lastTerm && m.lastIndex >= last);
  const grant = free && upToDate;
  if (grant && !pre) {
    s.votedFor = m.from;
    s.electionElapsedTicks = 0;
  }
  send(s, out, {
    type: pre ? 'preVoteResponse' : 'voteResponse',
    from: s.config.id,
    to: m.from,
    term: grant ? m.term : s.term,
    reject: !grant,
  });
}

function voteResponse(s: State, out: Out, m: VoteResponse): void {
  const counts = m.type === 'preVoteResponse'
    ? s.role === 'preCandidate' && (m.reject || m.term === s.term + 1)
    : s.role === 'candidate';
  if (!counts) return;
  s.votes.set(m.from, !m.reject);
  const result = tally(s);
  if (result === 'won') won(s, out);
  else if (result === 'lost') becomeFollower(s, s.term, undefined);
}

function fromLeader(s: State, out: Out, m: AppendRequest | Heartbeat): void {
  assert(s.role !== 'leader', `two leaders in term ${s.term}: ${s.config.id} and ${m.from}`);
  if (s.role !== 'follower' || s.leader !== m.from) becomeFollower(s, s.term, m.from);
  s.electionElapsedTicks = 0;
  if (m.type === 'heartbeat') {
    assert(m.commit <= lastIndex(s.view), 'heartbeat commits past our log');
    s.commit = Math.max(s.commit, m.commit);
    send(s, out, { type: 'heartbeatResponse', from: s.config.id, to: m.from, term: s.term });
    return;
  }
  const respond = (fields: Pick<AppendResponse, 'reject' | 'index' | 'hintIndex' | 'hintTerm'>) =>
    send(s, out, { type: 'appendResponse', from: s.config.id, to: m.from, term: s.term, ...fields });
  if (m.prevIndex < s.commit) {
    // Everything up to commit matches any leader's log already.
    return respond({ reject: false, index: s.commit, hintIndex: 0, hintTerm: 0 });
  }
  if (termAt(s.view, m.prevIndex) !== m.prevTerm) {
    const hintIndex = lastIndexWithTermAtMost(s.view, m.prevIndex, m.prevTerm);
    return respond({ reject: true, index: m.prevIndex, hintIndex, hintTerm: termAt(s.view, hintIndex)! });
  }
  // Skip what we have; rewrite from the first entry that differs (a duplicate or
  // reordered append must not cut off entries it does not mention).
  const last = lastIndex(s.view);
  let k = 0;
  while (k < m.entries.length && m.prevIndex + 1 + k <= last && termAt(s.view, m.prevIndex + 1 + k) === m.entries[k]!.term) k++;
  if (k < m.entries.length) append(s, out, m.prevIndex + 1 + k, m.entries.slice(k));
  const lastNew = m.prevIndex + m.entries.length;
  s.commit = Math.max(s.commit, Math.min(m.commit, lastNew));
  respond({ reject: false, index: lastNew, hintIndex: 0, hintTerm: 0 });
}

function appendResponse(s: State, out: Out, m: AppendResponse): void {
  if (s.role !== 'leader') return;
  const pr = s.progress.get(m.from);
  if (pr === undefined) return;
  pr.recentActive = true;
  if (m.reject) {
    // Stale answers (to an append already superseded) must not move `next` back.
    const stale = pr.mode === 'replicate' ? m.index <= pr.match : m.index !== pr.next - 1;
    if (stale) return;
    const agreeTo = lastIndexWithTermAtMost(s.view, m.hintIndex, m.hintTerm);
    pr.next = Math.max(Math.min(m.index, agreeTo + 1), pr.match + 1);
    pr.mode = 'probe';
    pr.probeSent = false;
    pr.inflight = [];
    return sendAppends(s, out, m.from);
  }
  if (m.index > pr.match) {
    pr.match = m.index;
    if (pr.mode === 'probe') {
      pr.mode = 'replicate';
      pr.next = pr.match + 1;
    }
    pr.next = Math.max(pr.next, pr.match + 1);
    while (pr.inflight.length > 0 && pr.inflight[0]! <= pr.match) pr.inflight.shift();
    maybeCommit(s);
  }
  pr.probeSent = false;
  sendAppends(s, out, m.from);
}

function heartbeatResponse(s: State, out: Out, from: NodeId): void {
  if (s.role !== 'leader') return;
  const pr = s.progress.get(from);
  if (pr === undefined) return;
  pr.recentActive = true;
  pr.probeSent = false;
  // A full window whose appends were lost would never drain: free one slot so an
  // append goes out, and its rejection brings the follower back to probing.
  if (pr.mode === 'replicate' && pr.inflight.length >= s.config.maxInflightAppends) pr.inflight.shift();
  if (pr.match < lastIndex(s.view)) sendAppends(s, out, from, true);
}

function maybeCommit(s: State): void {
  const matches = s.config.voters.map((id) => (id === s.config.id ? s.view.stableIndex : (s.progress.get(id)?.match ?? 0)));
  matches.sort((a, b) => b - a);
  const index = matches[quorum(s) - 1]!;
  // Raft §5.4.2: only an entry of the current term commits by counting replicas.
  if (index > s.commit && termAt(s.view, index) === s.term) s.commit = index;
}

function propose(s: State, out: Out, payloads: readonly Uint8Array[]): void {
  assert(payloads.length >= 1, 'empty proposal');
  if (s.role !== 'leader') {
    const error = new LetterboxError('NOT_LEADER_OR_FOLLOWER', `${s.config.id} is not the leader`, { retriable: true });
    out.effects.push({ type: 'proposalRejected', error, leaderHint: s.leader });
    return;
  }
  const firstIndex = lastIndex(s.view) + 1;
  if (firstIndex - 1 - s.commit + payloads.length > s.config.maxUncommittedEntries) {
    const error = new LetterboxError('RAFT_BACKLOG_FULL', `more than ${s.config.maxUncommittedEntries} uncommitted entries`, {
      retriable: true,
    });
    out.effects.push({ type: 'proposalRejected', error, leaderHint: s.config.id });
    return;
  }
  append(s, out, firstIndex, payloads.map((data) => ({ term: s.term, data })));
  out.effects.push({ type: 'proposed', firstIndex, lastIndex: firstIndex + payloads.length - 1, term: s.term });
  for (const to of s.progress.keys()) sendAppends(s, out, to);
}

function persisted(s: State, out: Out, writeId: number): void {
  const at = s.pendingWrites.findIndex((w) => w.id === writeId);
  assert(at >= 0, `completion of unknown write ${writeId}`);
  const done = s.pendingWrites[at]!;
  const rest = s.pendingWrites.slice(at + 1);
  // Durable now is the log as of `done`; it equals ours up to where a later write rewrites it.
  let stable = done.lastIndexAfter;
  for (const w of rest) stable = Math.min(stable, w.firstIndex - 1);
  stableTo(s.view, stable);
  for (const w of s.pendingWrites.slice(0, at + 1)) if (w.hardState !== undefined) s.durableHardState = w.hardState;
  s.pendingWrites = rest;
  // A leader counts its own log, and a candidate its own vote, only once durable.
  if (s.role === 'leader') maybeCommit(s);
  if (s.role === 'candidate' && s.durableHardState.term === s.term && s.durableHardState.votedFor === s.config.id) {
    s.votes.set(s.config.id, true);
    if (tally(s) === 'won') becomeLeader(s, out);
  }
}

function finish(s: State, out: Out): void {
  const hardStateChanged = s.term !== s.writtenHardState.term || s.votedFor !== s.writtenHardState.votedFor;
  const hasEntries = out.dirtyFrom !== Infinity;
  const barrier = out.afterWrite.length > 0 && s.pendingWrites.length > 0;
  if (hardStateChanged || hasEntries || barrier) {
    assert(!hasEntries || out.dirtyFrom > s.view.stableIndex, 'rewritten entries are not in memory');
    const writeId = s.nextWriteId++;
    const effect: Extract<Effect, { type: 'persist' }> = {
      type: 'persist',
      writeId,
      ...(hardStateChanged && { hardState: { term: s.term, votedFor: s.votedFor } }),
      ...(hasEntries && {
        entries: { firstIndex: out.dirtyFrom, entries: s.view.unstable.slice(out.dirtyFrom - s.view.stableIndex - 1) },
      }),
      thenSend: out.afterWrite,
    };
    if (hardStateChanged) s.writtenHardState = { term: s.term, votedFor: s.votedFor };
    s.pendingWrites = [
      ...s.pendingWrites,
      { id: writeId, firstIndex: out.dirtyFrom, lastIndexAfter: lastIndex(s.view), hardState: effect.hardState },
    ];
    out.effects.push(effect);
  } else {
    out.sends.push(...out.afterWrite);
  }
  for (const message of out.sends) out.effects.push({ type: 'send', message });
  if (s.applied < s.commit) {
    const entries = readEntries(s.view, s.applied + 1, s.commit, s.config.maxApplyBytesPerStep);
    const first = s.applied + 1;
    out.effects.push({ type: 'apply', entries: entries.map((e, i) => ({ index: first + i, term: e.term, data: e.data })) });
    s.applied += entries.length;
  }
}
