import { LetterboxError } from '../errors';
import { assert } from './assert';
import {
  lastIndex,
  lastIndexWithTermAtMost,
  readEntries,
  replaceFrom,
  stableTo,
  startAt,
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
  Membership,
  Message,
  NodeId,
  PreVoteRequest,
  RaftConfig,
  RaftLog,
  Role,
  Snapshot,
  SnapshotRequest,
  VoteRequest,
  VoteResponse,
} from './types';

/** What a leader knows of one follower's log. */
interface Progress {
  /** Highest index known to match the leader's log (durable on the follower). */
  match: number;
  /** Next index to send. */
  next: number;
  /**
   * probe: one append at a time until a match is found; replicate: pipelined appends;
   * snapshot: what it lacks is compacted away and the snapshot is out — nothing more
   * is sent until it is answered, or deemed lost after electionTicks (then probe again).
   */
  mode: 'probe' | 'replicate' | 'snapshot';
  /** probe mode: an append is out; wait for its answer or the next heartbeat answer. */
  probeSent: boolean;
  /** replicate mode: last index of each unanswered append, ascending; at most maxInflightAppends. */
  inflight: number[];
  /** Heard from since the last check-quorum. */
  recentActive: boolean;
  /** Ticks since the leader last heard from it (for the in-sync replicas). */
  heardTicksAgo: number;
  /** Highest read-index round it has echoed in this term. */
  readRound: number;
  /** snapshot mode: ticks since the snapshot was sent. */
  snapshotElapsedTicks: number;
  /**
   * Catch-up rounds (Raft thesis §4.2.1): each round replicates the log as it was when the
   * round began, up to `roundEnd` (0: none begun); `roundTicks` its ticks so far. `caughtUp`:
   * the last round took at most an election timeout (and the current one has not taken
   * longer), so as a voter it would hold commits back by one round at most — a learner
   * trailing a busy leader by its appends in flight is caught up, though never at the commit.
   */
  roundEnd: number;
  roundTicks: number;
  caughtUp: boolean;
}

/** A read-index request waiting for a quorum to confirm that this leader still leads. */
interface PendingRead {
  readonly id: number;
  /** The heartbeat round sent after the request arrived. */
  readonly round: number;
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
  /** Leader only: every other member's progress (voters and learners). */
  progress: Map<NodeId, Progress>;
  /** The membership at the log's start, then every configuration entry after it, ascending. */
  memberships: ReadonlyArray<{ readonly index: number; readonly membership: Membership }>;
  /** A forced reconfiguration's membership, until this member leads and appends it (not durable). */
  forced: Membership | undefined;
  /** The membership in effect: `forced`, else the last of `memberships`. */
  membership: Membership;
  /** The latest snapshot, kept to send to followers behind the log's start. */
  snapshot: Snapshot | undefined;
  /** Leader only: the voter leadership is being handed to, and ticks since the hand-over began. */
  transferee: NodeId | undefined;
  transferElapsedTicks: number;
  /** Leader only: read-index requests waiting for confirmation, oldest first; at most maxPendingReads. */
  reads: readonly PendingRead[];
  /** Leader only: the latest read-index round sent in heartbeats. */
  readRound: number;
  /** Where `loadEntries` effects are out (their fromIndex): reads from there wait for their `entriesLoaded`. */
  loading: ReadonlySet<number>;
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
  /** Highest index handed out in an `apply` (or `restore`) effect. */
  readonly applied: number;
  /** The membership in effect (the last configuration entry in the log, or a forced one). */
  readonly membership: Membership;
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
  /** A snapshot to store with this step's write. */
  snapshot: Snapshot | undefined;
}

/**
 * Starts a member from what survived: its hard state, its snapshot and its log. Commit
 * and applied restart at the snapshot (the application restores its state machine from
 * it); the leader's messages bring commit back and later entries are applied again.
 * @example const state = createRaft(config, log, { term: 0, votedFor: undefined });
 */
export function createRaft(config: RaftConfig, log: RaftLog, hardState: HardState): RaftState {
  assert(config.heartbeatTicks >= 1 && config.heartbeatTicks < config.electionTicks, 'heartbeatTicks < electionTicks');
  assert(config.maxInflightAppends >= 1 && config.maxEntriesPerAppend >= 1 && config.maxPendingReads >= 1, 'bounds must be ≥ 1');
  const snapshot = log.snapshot();
  const start = snapshot ?? { index: 0, term: 0, membership: { voters: config.voters, learners: [] } };
  const memberships = [{ index: start.index, membership: start.membership }, ...log.memberships()];
  assert(memberships.every((m, i) => i === 0 || m.index > memberships[i - 1]!.index), 'memberships out of order');
  const state: State = {
    config,
    role: 'follower',
    term: hardState.term,
    votedFor: hardState.votedFor,
    leader: undefined,
    commit: start.index,
    applied: start.index,
    view: { log, startIndex: start.index, startTerm: start.term, stableIndex: log.lastIndex(), unstable: [] },
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
    memberships,
    forced: undefined,
    membership: memberships.at(-1)!.membership,
    snapshot,
    transferee: undefined,
    transferElapsedTicks: 0,
    reads: [],
    readRound: 0,
    loading: new Set(),
  };
  resetTimers(state);
  return state;
}

/**
 * A leader's in-sync voters: itself and each voter it heard from within `maxLagTicks` that
 * takes appends as they come (replicating, not being probed or sent a snapshot) — Kafka's ISR,
 * with replica.lag.time.max.ms in ticks. Empty unless `state` leads.
 * @example const isr = inSyncVoters(state, config.electionTicks);
 */
export function inSyncVoters(state: RaftState, maxLagTicks: number): NodeId[] {
  const s = state as State;
  if (s.role !== 'leader') return [];
  return s.membership.voters.filter((id) => {
    if (id === s.config.id) return true;
    const pr = s.progress.get(id);
    return pr !== undefined && pr.mode === 'replicate' && pr.heardTicksAgo <= maxLagTicks;
  });
}

/**
 * A leader's successor for a hand-over: the in-sync voter other than itself whose log matches
 * furthest (the first in the membership's order on a tie); undefined when none is in sync.
 * @example const to = transferTarget(state, config.electionTicks); if (to) step(state, { type: 'transferLeadership', to });
 */
export function transferTarget(state: RaftState, maxLagTicks: number): NodeId | undefined {
  const s = state as State;
  let best: { id: NodeId; match: number } | undefined;
  for (const id of inSyncVoters(state, maxLagTicks)) {
    if (id === s.config.id) continue;
    const { match } = s.progress.get(id)!;
    if (best === undefined || match > best.match) best = { id, match };
  }
  return best?.id;
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
  const out: Out = { effects: [], sends: [], afterWrite: [], dirtyFrom: Infinity, snapshot: undefined };
  switch (input.type) {
    case 'tick':
      tick(s, out);
      break;
    case 'campaign':
      if (s.role !== 'leader') campaign(s, out, 'preVote');
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
    case 'entriesLoaded':
      // Where a read waited: appends to the followers (apply tries again in finish).
      s.loading = new Set([...s.loading].filter((from) => from !== input.fromIndex));
      if (s.role === 'leader') for (const to of s.progress.keys()) sendAppends(s, out, to);
      break;
    case 'changeMembership':
      changeMembership(s, out, input.membership);
      break;
    case 'transferLeadership':
      transferLeadership(s, out, input.to);
      break;
    case 'memberGone':
      memberGone(s, out, input.member);
      break;
    case 'readIndex':
      readIndex(s, out, input.id);
      break;
    case 'compact':
      compact(s, out, input.index, input.data);
      break;
    case 'forceMembership':
      forceMembership(s, out, input.membership, input.term);
      break;
  }
  finish(s, out);
  return { state: s, effects: out.effects };
}

function copy(s: State): State {
  // Arrays (memberships, reads) are replaced, never mutated, so they are shared.
  const progress = new Map<NodeId, Progress>();
  for (const [id, pr] of s.progress) progress.set(id, { ...pr, inflight: pr.inflight.slice() });
  return { ...s, view: { ...s.view }, votes: new Map(s.votes), progress };
}

const quorum = (s: State) => Math.floor(s.membership.voters.length / 2) + 1;
const isVoter = (s: State, id: NodeId) => s.membership.voters.includes(id);

/** Counts the voters for which `holds` is true (this member by `self`). */
function countVoters(s: State, self: boolean, holds: (pr: Progress) => boolean): number {
  let count = 0;
  for (const id of s.membership.voters) {
    const pr = s.progress.get(id);
    if (id === s.config.id ? self : pr !== undefined && holds(pr)) count++;
  }
  return count;
}

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
  // it counts itself only once durable; its snapshots hold committed entries only, and
  // a transfer's target holds its log durably. Pre-votes and heartbeat answers promise nothing.
  const free = message.type === 'append' || message.type === 'heartbeat' || message.type === 'heartbeatResponse' ||
    message.type === 'preVote' || message.type === 'preVoteResponse' || message.type === 'snapshot' || message.type === 'timeoutNow';
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
  s.transferee = undefined;
  // Someone leads: a forced reconfiguration of ours is moot; the application may force again.
  if (leader !== undefined) setForced(s, undefined);
  resetTimers(s);
}

function tick(s: State, out: Out): void {
  s.electionElapsedTicks++;
  if (s.role !== 'leader') {
    if (s.electionElapsedTicks >= s.electionTimeoutTicks) campaign(s, out, 'preVote');
    return;
  }
  // A hand-over that has not happened within an election timeout is abandoned (the
  // target may be down), so the leader takes proposals again.
  if (s.transferee !== undefined && ++s.transferElapsedTicks >= s.config.electionTicks) s.transferee = undefined;
  for (const pr of s.progress.values()) {
    pr.heardTicksAgo++;
    if (pr.roundEnd > 0 && ++pr.roundTicks > s.config.electionTicks) pr.caughtUp = false;
    if (pr.mode === 'snapshot' && ++pr.snapshotElapsedTicks >= s.config.electionTicks) {
      pr.mode = 'probe';
      pr.probeSent = false;
    }
  }
  if (s.electionElapsedTicks >= s.config.electionTicks) {
    s.electionElapsedTicks = 0;
    // Check-quorum: a leader that has not heard from a quorum in an election timeout
    // steps down, so a partitioned leader stops accepting proposals it cannot commit.
    const active = countVoters(s, true, (pr) => pr.recentActive);
    for (const pr of s.progress.values()) pr.recentActive = false;
    if (active < quorum(s)) {
      becomeFollower(s, s.term, undefined);
      return;
    }
  }
  if (++s.heartbeatElapsedTicks >= s.config.heartbeatTicks) broadcastHeartbeats(s, out);
}

function broadcastHeartbeats(s: State, out: Out): void {
  s.heartbeatElapsedTicks = 0;
  for (const [to, pr] of s.progress) {
    const commit = Math.min(pr.match, s.commit);
    send(s, out, { type: 'heartbeat', from: s.config.id, to, term: s.term, commit, readRound: s.readRound });
  }
}

/** `force`: skip the pre-vote and ask voters to ignore their leader (leader transfer, forced reconfiguration). */
function campaign(s: State, out: Out, kind: 'preVote' | 'vote', force = false): void {
  if (!mayCampaign(s)) return;
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
  for (const to of s.membership.voters) {
    if (to === s.config.id) continue;
    const request = { from: s.config.id, to, term, lastIndex: last, lastTerm: termAt(s.view, last)! };
    send(s, out, kind === 'preVote' ? { type: 'preVote', ...request } : { type: 'vote', ...request, ...(force && { force }) });
  }
}

/**
 * Voters campaign; so does a member that its latest configuration, not yet committed,
 * took out of the voters. Else a leader that demoted itself and lost its quorum (check-
 * quorum) before that change committed can leave a deadlock: the remaining voters lack
 * the change and need this member's vote, which its longer log refuses them. It counts
 * votes under the latest configuration, so safety is the same as anyone's campaign.
 */
function mayCampaign(s: State): boolean {
  if (isVoter(s, s.config.id)) return true;
  const [previous, latest] = s.memberships.slice(-2);
  return latest !== undefined && latest.index > s.commit && previous!.membership.voters.includes(s.config.id);
}

function tally(s: State): 'won' | 'lost' | 'pending' {
  let granted = 0;
  let rejected = 0;
  for (const id of s.membership.voters) {
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
  s.readRound = 0;
  s.progress = new Map();
  syncProgress(s);
  // A no-op of the new term: entries of earlier terms commit only under one of the
  // current term (Raft §5.4.2), so this lets the leader commit them without waiting for
  // a proposal. A forced membership goes into the log right behind it.
  const entries: Entry[] = [{ term: s.term, data: EMPTY }];
  if (s.forced !== undefined) entries.push({ term: s.term, data: EMPTY, membership: s.forced });
  append(s, out, lastIndex(s.view) + 1, entries);
  for (const to of s.progress.keys()) sendAppends(s, out, to);
}

/** Leader: a progress for every member but itself; new ones are probed from the end of the log. */
function syncProgress(s: State): void {
  const members = new Set([...s.membership.voters, ...s.membership.learners]);
  for (const id of s.progress.keys()) if (!members.has(id)) s.progress.delete(id);
  const next = lastIndex(s.view) + 1;
  for (const id of members) {
    if (id === s.config.id || s.progress.has(id)) continue;
    s.progress.set(id, { match: 0, next, mode: 'probe', probeSent: false, inflight: [], recentActive: false, heardTicksAgo: 0, readRound: 0, snapshotElapsedTicks: 0, roundEnd: 0, roundTicks: 0, caughtUp: false });
  }
  if (s.transferee !== undefined && !isVoter(s, s.transferee)) s.transferee = undefined;
}

function setForced(s: State, forced: Membership | undefined): void {
  s.forced = forced;
  s.membership = forced ?? s.memberships.at(-1)!.membership;
}

function append(s: State, out: Out, firstIndex: number, entries: readonly Entry[]): void {
  assert(firstIndex > s.commit, `rewriting committed index ${firstIndex} (commit ${s.commit})`);
  replaceFrom(s.view, firstIndex, entries);
  out.dirtyFrom = Math.min(out.dirtyFrom, firstIndex);
  // A configuration takes effect once in the log, and is undone if the log loses it.
  if (s.memberships.at(-1)!.index < firstIndex && entries.every((e) => e.membership === undefined)) return;
  const kept = s.memberships.filter((m) => m.index < firstIndex);
  const added = entries.flatMap((e, i) => (e.membership === undefined ? [] : [{ index: firstIndex + i, membership: e.membership }]));
  s.memberships = [...kept, ...added];
  // The forced membership, once in the log, is the log's own.
  setForced(s, added.some((m) => m.membership === s.forced) ? undefined : s.forced);
  if (s.role === 'leader') syncProgress(s);
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
  if (pr.next <= s.view.startIndex) {
    // What it lacks is compacted away: send the snapshot, which may be large, so at
    // most once per electionTicks (see `tick`).
    if (pr.mode === 'snapshot') return;
    pr.mode = 'snapshot';
    pr.inflight = [];
    pr.snapshotElapsedTicks = 0;
    assert(s.snapshot !== undefined && s.snapshot.index === s.view.startIndex, 'log start without its snapshot');
    send(s, out, { type: 'snapshot', from: s.config.id, to, term: s.term, snapshot: s.snapshot });
    return;
  }
  for (let sent = 0; sent <= maxInflightAppends; sent++) {
    if (pr.mode === 'probe' ? pr.probeSent : pr.inflight.length >= maxInflightAppends) return;
    const empty = pr.mode === 'replicate' && pr.next > last;
    if (empty && !(evenIfEmpty && sent === 0)) return;
    const prevIndex = pr.next - 1;
    const entries =
      pr.next <= last ? readLog(s, out, pr.next, Math.min(last, prevIndex + maxEntriesPerAppend), maxBytesPerAppend) : [];
    // Not in memory: nothing goes out (the follower is neither probed nor advanced) until they are loaded.
    if (entries === undefined) return;
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

/**
 * The log's entries `fromIndex..toIndex`, or undefined when the log must load them first:
 * then a `loadEntries` effect goes out, unless one from there already is (its `entriesLoaded` retries).
 */
function readLog(s: State, out: Out, fromIndex: number, toIndex: number, maxBytes: number): Entry[] | undefined {
  const entries = readEntries(s.view, fromIndex, toIndex, maxBytes);
  if (entries === undefined && !s.loading.has(fromIndex)) {
    s.loading = new Set([...s.loading, fromIndex]);
    // Only durable entries are loaded; those after them are in memory and join them when read again.
    out.effects.push({ type: 'loadEntries', fromIndex, toIndex: Math.min(toIndex, s.view.stableIndex), maxBytes });
  }
  return entries;
}

function receive(s: State, out: Out, m: Message): void {
  assert(m.to === s.config.id, 'message for another member');
  if (m.term > s.term) {
    if ((m.type === 'preVote' || (m.type === 'vote' && m.force !== true)) && inLease(s)) return;
    // A pre-vote (or a grant of one) is about a term nobody has entered yet.
    const keepTerm = m.type === 'preVote' || (m.type === 'preVoteResponse' && !m.reject);
    const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
    if (!keepTerm) becomeFollower(s, m.term, fromLeader ? m.from : undefined);
  } else if (m.term < s.term) {
    // Answer a stale leader with our term so it steps down, and a stale pre-candidate
    // so it stops; everything else from the past is ignored.
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      send(s, out, { type: 'heartbeatResponse', from: s.config.id, to: m.from, term: s.term, readRound: 0 });
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
    case 'snapshot':
      return fromLeader(s, out, m);
    case 'appendResponse':
      return appendResponse(s, out, m);
    case 'heartbeatResponse':
      return heartbeatResponse(s, out, m.from, m.readRound);
    case 'timeoutNow':
      // The leader handed over: campaign now, without a pre-vote its followers' lease would refuse.
      if (s.role === 'follower' && s.leader === m.from) campaign(s, out, 'vote', true);
      return;
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

function fromLeader(s: State, out: Out, m: AppendRequest | Heartbeat | SnapshotRequest): void {
  assert(s.role !== 'leader', `two leaders in term ${s.term}: ${s.config.id} and ${m.from}`);
  if (s.role !== 'follower' || s.leader !== m.from) becomeFollower(s, s.term, m.from);
  s.electionElapsedTicks = 0;
  if (m.type === 'heartbeat') {
    assert(m.commit <= lastIndex(s.view), 'heartbeat commits past our log');
    s.commit = Math.max(s.commit, m.commit);
    send(s, out, { type: 'heartbeatResponse', from: s.config.id, to: m.from, term: s.term, readRound: m.readRound });
    return;
  }
  const respond = (fields: Pick<AppendResponse, 'reject' | 'index' | 'hintIndex' | 'hintTerm'>) =>
    send(s, out, { type: 'appendResponse', from: s.config.id, to: m.from, term: s.term, ...fields });
  if (m.type === 'snapshot') return respond(installSnapshot(s, out, m.snapshot));
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
  pr.heardTicksAgo = 0;
  if (m.reject) {
    // Stale answers (to an append already superseded) must not move `next` back; a
    // snapshot is never rejected.
    const stale = pr.mode === 'snapshot' || (pr.mode === 'replicate' ? m.index <= pr.match : m.index !== pr.next - 1);
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
    nextRound(s, pr);
    if (pr.mode !== 'replicate') {
      pr.mode = 'replicate';
      pr.next = pr.match + 1;
    }
    pr.next = Math.max(pr.next, pr.match + 1);
    while (pr.inflight.length > 0 && pr.inflight[0]! <= pr.match) pr.inflight.shift();
    if (s.transferee === m.from && pr.match === lastIndex(s.view)) sendTimeoutNow(s, out);
    maybeCommit(s);
    if (s.role !== 'leader') return;
  }
  pr.probeSent = false;
  sendAppends(s, out, m.from);
}

/** A catch-up round ends once the member has what the log held when it began; the next begins at the log's end now. */
function nextRound(s: State, pr: Progress): void {
  if (pr.roundEnd > 0 && pr.match < pr.roundEnd) return;
  if (pr.roundEnd > 0) pr.caughtUp = pr.roundTicks <= s.config.electionTicks;
  pr.roundEnd = lastIndex(s.view);
  pr.roundTicks = 0;
}

function heartbeatResponse(s: State, out: Out, from: NodeId, readRound: number): void {
  if (s.role !== 'leader') return;
  const pr = s.progress.get(from);
  if (pr === undefined) return;
  pr.recentActive = true;
  pr.heardTicksAgo = 0;
  pr.readRound = Math.max(pr.readRound, readRound);
  pr.probeSent = false;
  // A full window whose appends were lost would never drain: free one slot so an
  // append goes out, and its rejection brings the follower back to probing.
  if (pr.mode === 'replicate' && pr.inflight.length >= s.config.maxInflightAppends) pr.inflight.shift();
  if (pr.match < lastIndex(s.view)) sendAppends(s, out, from, true);
}

function maybeCommit(s: State): void {
  const matches = s.membership.voters.map((id) => (id === s.config.id ? s.view.stableIndex : (s.progress.get(id)?.match ?? 0)));
  matches.sort((a, b) => b - a);
  const index = matches[quorum(s) - 1] ?? 0;
  // Raft §5.4.2: only an entry of the current term commits by counting replicas.
  if (index > s.commit && termAt(s.view, index) === s.term) s.commit = index;
  // A leader that is no longer a voter led until its removal committed (thesis §4.2.2);
  // now the remaining voters elect one of their own.
  if (!isVoter(s, s.config.id) && s.memberships.at(-1)!.index <= s.commit) becomeFollower(s, s.term, undefined);
}

const rejection = (code: string, what: string) => new LetterboxError(code, what, { retriable: true });

/** Why this leader cannot append now, or undefined. */
function refuseAppend(s: State, count: number): { error: LetterboxError; leaderHint: NodeId | undefined } | undefined {
  if (s.role !== 'leader') return { error: rejection('NOT_LEADER_OR_FOLLOWER', `${s.config.id} is not the leader`), leaderHint: s.leader };
  if (s.transferee !== undefined) {
    return { error: rejection('NOT_LEADER_OR_FOLLOWER', `${s.config.id} is handing over to ${s.transferee}`), leaderHint: s.transferee };
  }
  if (lastIndex(s.view) - s.commit + count > s.config.maxUncommittedEntries) {
    return { error: rejection('RAFT_BACKLOG_FULL', `more than ${s.config.maxUncommittedEntries} uncommitted entries`), leaderHint: s.config.id };
  }
  return undefined;
}

function propose(s: State, out: Out, payloads: readonly Uint8Array[]): void {
  assert(payloads.length >= 1, 'empty proposal');
  const refused = refuseAppend(s, payloads.length);
  if (refused !== undefined) return void out.effects.push({ type: 'proposalRejected', ...refused });
  appendAsLeader(s, out, payloads.map((data) => ({ term: s.term, data })));
}

function appendAsLeader(s: State, out: Out, entries: readonly Entry[]): void {
  const firstIndex = lastIndex(s.view) + 1;
  append(s, out, firstIndex, entries);
  out.effects.push({ type: 'proposed', firstIndex, lastIndex: firstIndex + entries.length - 1, term: s.term });
  for (const to of s.progress.keys()) sendAppends(s, out, to);
}

/**
 * Single-server changes (thesis §4.1): one voter more or less, effective once appended.
 * Any two such memberships share a voter in every pair of majorities, so no moment has
 * two leaders; the rules that keep it so are one change in flight at a time, and none
 * before this leader has committed an entry of its own term (Ongaro's 2015 fix: else a
 * change appended by an earlier leader, unknown here, may combine with ours into two
 * memberships without a common voter).
 */
function changeMembership(s: State, out: Out, next: Membership): void {
  const refused = refuseAppend(s, 1) ?? refuseChange(s, next);
  if (refused !== undefined) return void out.effects.push({ type: 'proposalRejected', ...refused });
  appendAsLeader(s, out, [{ term: s.term, data: EMPTY, membership: next }]);
}

function refuseChange(s: State, next: Membership): { error: LetterboxError; leaderHint: NodeId | undefined } | undefined {
  const reject = (code: string, what: string, retriable = true) =>
    ({ error: new LetterboxError(code, what, { retriable }), leaderHint: s.config.id });
  const current = new Set(s.membership.voters);
  const voters = new Set(next.voters);
  const changed = [...voters].filter((id) => !current.has(id)).length + [...current].filter((id) => !voters.has(id)).length;
  if (voters.size === 0 || voters.size !== next.voters.length || changed > 1 || next.learners.some((id) => voters.has(id))) {
    return reject('INVALID_MEMBERSHIP', 'a change adds or removes one voter at most, and nobody is voter and learner', false);
  }
  if (s.memberships.at(-1)!.index > s.commit || termAt(s.view, s.commit) !== s.term) {
    return reject('RAFT_MEMBERSHIP_CHANGE_IN_PROGRESS', 'the last membership change (or the first entry of this term) is not committed yet');
  }
  // A new voter must first have caught up as a learner, or commits would wait for it: it holds
  // the commit, or its last catch-up round took at most an election timeout.
  const added = next.voters.find((id) => !current.has(id));
  const progress = added === undefined ? undefined : s.progress.get(added);
  if (added !== undefined && added !== s.config.id && (progress?.match ?? 0) < s.commit && progress?.caughtUp !== true) {
    return reject('RAFT_LEARNER_BEHIND', `${added} has not caught up with the commit index`);
  }
  return undefined;
}

/**
 * The leader is known dead: one voter, the first other in the membership's order (the same on
 * every member), campaigns now instead of after an election timeout. Only it, so that the
 * survivors do not split their votes; its forced vote is safe (votes always are) and disrupts
 * no one, as the lease it overrides is the dead leader's.
 */
function memberGone(s: State, out: Out, gone: NodeId): void {
  if (s.role !== 'follower' || s.leader !== gone) return;
  if (s.membership.voters.find((id) => id !== gone) === s.config.id) campaign(s, out, 'vote', true);
}

/** Leader transfer (thesis §3.10): catch the target up, then tell it to campaign at once. */
function transferLeadership(s: State, out: Out, to: NodeId): void {
  if (s.role !== 'leader' || s.transferee !== undefined || to === s.config.id || !isVoter(s, to)) return;
  s.transferee = to;
  s.transferElapsedTicks = 0;
  if (s.progress.get(to)!.match === lastIndex(s.view)) sendTimeoutNow(s, out);
  else sendAppends(s, out, to);
}

function sendTimeoutNow(s: State, out: Out): void {
  send(s, out, { type: 'timeoutNow', from: s.config.id, to: s.transferee!, term: s.term });
}

/**
 * Read-index (thesis §6.4): a read may be served at the commit index once this member
 * is known to have still led after the read arrived — a quorum echoed a heartbeat round
 * sent since — and has committed an entry of its term (so its commit index covers every
 * earlier leader's). No clocks are trusted.
 */
function readIndex(s: State, out: Out, id: number): void {
  if (s.role !== 'leader' || s.reads.length >= s.config.maxPendingReads) {
    const error = s.role !== 'leader'
      ? rejection('NOT_LEADER_OR_FOLLOWER', `${s.config.id} is not the leader`)
      : rejection('RAFT_BACKLOG_FULL', `more than ${s.config.maxPendingReads} pending reads`);
    out.effects.push({ type: 'readRejected', id, error, leaderHint: s.role === 'leader' ? s.config.id : s.leader });
    return;
  }
  s.readRound++;
  s.reads = [...s.reads, { id, round: s.readRound }];
  broadcastHeartbeats(s, out);
}

function releaseReads(s: State, out: Out): void {
  if (s.reads.length === 0 || termAt(s.view, s.commit) !== s.term) return;
  let ready = 0;
  while (ready < s.reads.length) {
    const round = s.reads[ready]!.round;
    if (countVoters(s, true, (pr) => pr.readRound >= round) < quorum(s)) break;
    out.effects.push({ type: 'readReady', id: s.reads[ready]!.id, index: s.commit });
    ready++;
  }
  if (ready > 0) s.reads = s.reads.slice(ready);
}

function rejectReads(s: State, out: Out): void {
  for (const read of s.reads) {
    const error = rejection('NOT_LEADER_OR_FOLLOWER', `${s.config.id} is no longer the leader`);
    out.effects.push({ type: 'readRejected', id: read.id, error, leaderHint: s.leader });
  }
  s.reads = [];
}

/** The membership in effect at `index` (≥ the log's start). */
function membershipAt(s: State, index: number): Membership {
  return s.memberships.findLast((m) => m.index <= index)!.membership;
}

/**
 * The application's image of its state machine at `index` replaces the log up to it.
 * Entries up to `index` are committed, so no leader will ever ask to rewrite them.
 */
function compact(s: State, out: Out, index: number, data: Uint8Array): void {
  if (index <= s.view.startIndex || index > s.applied || index > s.view.stableIndex) return;
  const snapshot: Snapshot = { index, term: termAt(s.view, index)!, membership: membershipAt(s, index), data };
  startAt(s.view, index, snapshot.term, false);
  s.memberships = [{ index, membership: snapshot.membership }, ...s.memberships.filter((m) => m.index > index)];
  s.snapshot = snapshot;
  out.snapshot = snapshot;
}

/** A follower gets the leader's snapshot: what to answer. */
function installSnapshot(s: State, out: Out, snapshot: Snapshot): Pick<AppendResponse, 'reject' | 'index' | 'hintIndex' | 'hintTerm'> {
  if (snapshot.index <= s.commit) return { reject: false, index: s.commit, hintIndex: 0, hintTerm: 0 };
  if (termAt(s.view, snapshot.index) === snapshot.term) {
    // Our log holds the snapshot's last entry, hence (log matching) everything before it.
    s.commit = snapshot.index;
    return { reject: false, index: snapshot.index, hintIndex: 0, hintTerm: 0 };
  }
  startAt(s.view, snapshot.index, snapshot.term, true);
  out.dirtyFrom = Math.min(out.dirtyFrom, snapshot.index + 1);
  s.memberships = [{ index: snapshot.index, membership: snapshot.membership }];
  setForced(s, s.forced);
  s.snapshot = snapshot;
  s.commit = snapshot.index;
  s.applied = snapshot.index;
  out.snapshot = snapshot;
  out.effects.push({ type: 'restore', snapshot });
  return { reject: false, index: snapshot.index, hintIndex: 0, hintTerm: 0 };
}

/**
 * Forced reconfiguration: campaign now in `term` as a voter of `membership`, bypassing
 * pre-vote and leases; leading, append `membership` as the log's. `term` is above every
 * survivor's: the dead may have led the term after ours, unknown to us, and a quorum
 * of survivors alone must not lead it again. Safe only under the preconditions in
 * index.ts, which the core cannot see (it cannot tell dead from slow).
 */
function forceMembership(s: State, out: Out, membership: Membership, term: number): void {
  assert(membership.voters.includes(s.config.id), 'a forced membership must include the member it is forced on');
  assert(term > s.term, 'the forced term must exceed every term a survivor has seen');
  becomeFollower(s, term - 1, undefined);
  setForced(s, membership);
  campaign(s, out, 'vote', true);
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
  if (s.role === 'leader') releaseReads(s, out);
  else rejectReads(s, out);
  const hardStateChanged = s.term !== s.writtenHardState.term || s.votedFor !== s.writtenHardState.votedFor;
  const hasEntries = out.dirtyFrom !== Infinity;
  const barrier = out.afterWrite.length > 0 && s.pendingWrites.length > 0;
  if (hardStateChanged || hasEntries || barrier || out.snapshot !== undefined) {
    assert(!hasEntries || out.dirtyFrom > s.view.stableIndex, 'rewritten entries are not in memory');
    const writeId = s.nextWriteId++;
    const effect: Extract<Effect, { type: 'persist' }> = {
      type: 'persist',
      writeId,
      ...(hardStateChanged && { hardState: { term: s.term, votedFor: s.votedFor } }),
      ...(out.snapshot && { snapshot: out.snapshot }),
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
  const entries = s.applied < s.commit ? readLog(s, out, s.applied + 1, s.commit, s.config.maxApplyBytesPerStep) : undefined;
  if (entries !== undefined) {
    const first = s.applied + 1;
    out.effects.push({ type: 'apply', entries: entries.map((e, i) => ({ index: first + i, term: e.term, data: e.data })) });
    s.applied += entries.length;
  }
}
