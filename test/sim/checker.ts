// The invariants the simulator checks after every step, fed as a history of events so
// each checker can also be fed a hand-made bad history (checker.test.ts).

/** One observation of the cluster. Chain hashes identify log prefixes (see prng.ts `chain`). */
export type HistoryEvent =
  /** A node's log now holds entry `index` of `term` with prefix hash `chain`. */
  | { kind: 'entry'; node: string; index: number; term: number; chain: number }
  /** A node became leader of `term`; `chains` is its whole log at that moment. */
  | { kind: 'leader'; node: string; term: number; chains: readonly number[] }
  /** A node's commit index rose to `index` (prefix hash `chain`); `leaderTerm` set when a leader decided it. */
  | { kind: 'commit'; node: string; index: number; chain: number; leaderTerm?: number }
  /** A node applied `index`; `payload` is the payload's hash. */
  | { kind: 'apply'; node: string; index: number; term: number; payload: number }
  /** A node crashed: its state machine restarts from index 1. */
  | { kind: 'crash'; node: string }
  /** A node's state machine was replaced by a snapshot's image of 1..index (prefix hash `chain`). */
  | { kind: 'restore'; node: string; index: number; chain: number }
  /** A client was told its proposal committed at `index` in `term`. */
  | { kind: 'ack'; index: number; term: number; payload: number }
  /** A read-index read was answered at `index`; `atLeast` is the highest commit index any node knew when it was asked. */
  | { kind: 'read'; node: string; index: number; atLeast: number }
  /**
   * A forced reconfiguration on `node`, whose log is `chains`, to `voters`, leaving out
   * `leftOut`; `configs` are the survivors' latest voters; `alive` the nodes not certainly
   * dead (up, or coming back with their state).
   */
  | {
      kind: 'force';
      node: string;
      chains: readonly number[];
      voters: readonly string[];
      configs: ReadonlyArray<readonly string[]>;
      leftOut: readonly string[];
      alive: readonly string[];
    }
  /** A node started (or restarted) as member `node`. */
  | { kind: 'start'; node: string };

export interface Violation {
  checker: string;
  message: string;
}

const entryKey = (index: number, term: number) => index * 0x1_0000_0000 + term;

/**
 * Election safety, log matching, leader completeness, state-machine safety, no
 * acknowledged proposal lost, linearizable reads, and the preconditions of forced
 * reconfiguration. `observe` returns the first violation an event causes.
 * @example const violation = checker.observe({ kind: 'crash', node: 'n1' });
 */
export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, string>();
  /** Every (index, term) ever seen in any log → its prefix hash: equal entries, equal prefixes. */
  private readonly prefixOfEntry = new Map<number, number>();
  private readonly leaders: Array<{ term: number; node: string; chains: readonly number[] }> = [];
  /** Commits decided by leaders, highest index per leader term. */
  private readonly decided = new Map<number, { index: number; chain: number }>();
  private readonly committedChain = new Map<number, number>();
  /** What was applied at each index, by whichever node first did. */
  private readonly appliedAt = new Map<number, { term: number; payload: number; node: string }>();
  private readonly nextApply = new Map<string, number>();
  private readonly acks: Array<{ index: number; term: number; payload: number }> = [];
  private maxCommitted = 0;
  /** Voters a forced reconfiguration left out: they must never start again with their old state. */
  private readonly forcedOut = new Set<string>();

  observe(event: HistoryEvent): Violation | undefined {
    switch (event.kind) {
      case 'leader':
        return this.leader(event.node, event.term, event.chains);
      case 'entry': {
        const key = entryKey(event.index, event.term);
        const known = this.prefixOfEntry.get(key);
        if (known === undefined) this.prefixOfEntry.set(key, event.chain);
        else if (known !== event.chain) {
          return violation('log matching', `${event.node} holds entry ${event.index}@${event.term} with a different prefix than another log had`);
        }
        return undefined;
      }
      case 'commit':
        return this.commit(event.node, event.index, event.chain, event.leaderTerm);
      case 'apply':
        return this.apply(event.node, event.index, event.term, event.payload);
      case 'crash':
        this.nextApply.set(event.node, 1);
        return undefined;
      case 'restore': {
        const known = this.committedChain.get(event.index);
        if (known !== undefined && known !== event.chain) {
          return violation('state machine safety', `${event.node} restored a snapshot at ${event.index} unlike what was committed there`);
        }
        this.nextApply.set(event.node, event.index + 1);
        return undefined;
      }
      case 'read':
        if (event.index < event.atLeast) {
          return violation('linearizable read', `${event.node} answered a read at ${event.index}, below ${event.atLeast} committed before it was asked`);
        }
        return undefined;
      case 'force':
        return this.force(event);
      case 'start':
        if (this.forcedOut.has(event.node)) return violation('forced reconfiguration', `${event.node} was forced out but came back as itself`);
        return undefined;
      case 'ack': {
        this.acks.push(event);
        const applied = this.appliedAt.get(event.index);
        if (applied === undefined || applied.term !== event.term || applied.payload !== event.payload) {
          return violation('acknowledged proposal', `ack of ${event.index}@${event.term} does not match what was applied there`);
        }
        return undefined;
      }
    }
  }

  /** Highest commit index any node has reached. @example reads.set(id, checker.maxCommitIndex()) */
  maxCommitIndex(): number {
    return this.maxCommitted;
  }

  /** Whether a log (its prefix hashes) holds every entry known committed. @example checker.holdsEveryCommitted(disk.chains()) */
  holdsEveryCommitted(chains: readonly number[]): boolean {
    return this.maxCommitted === 0 || chains[this.maxCommitted - 1] === this.committedChain.get(this.maxCommitted);
  }

  /** Highest term a leader was elected in so far (0 for none). */
  maxLeaderTerm(): number {
    return this.leaders.reduce((max, leader) => Math.max(max, leader.term), 0);
  }

  /** Highest index of an acknowledged proposal so far (0 for none). */
  maxAckedIndex(): number {
    return this.acks.reduce((max, ack) => Math.max(max, ack.index), 0);
  }

  /** At the end, once every node has applied `upTo`: every acknowledged proposal is in every state machine. */
  end(nodes: ReadonlyArray<{ node: string; applied: number }>): Violation | undefined {
    for (const ack of this.acks) {
      const applied = this.appliedAt.get(ack.index);
      if (applied === undefined || applied.term !== ack.term || applied.payload !== ack.payload) {
        return violation('committed proposal lost', `acknowledged ${ack.index}@${ack.term} is not what is applied there`);
      }
      for (const { node, applied: upTo } of nodes) {
        if (upTo < ack.index) {
          return violation('committed proposal lost', `${node} applied only up to ${upTo}, short of acknowledged ${ack.index}`);
        }
      }
    }
    return undefined;
  }

  private leader(node: string, term: number, chains: readonly number[]): Violation | undefined {
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== node) return violation('election safety', `${other} and ${node} both lead term ${term}`);
    this.leaderOfTerm.set(term, node);
    this.leaders.push({ term, node, chains });
    for (const [decidedTerm, commit] of this.decided) {
      if (decidedTerm < term && chains[commit.index - 1] !== commit.chain) {
        return violation('leader completeness', `${node}, leader of ${term}, lacks entry ${commit.index} committed in term ${decidedTerm}`);
      }
    }
    return undefined;
  }

  private commit(node: string, index: number, chainHash: number, leaderTerm: number | undefined): Violation | undefined {
    const known = this.committedChain.get(index);
    if (known !== undefined && known !== chainHash) {
      return violation('state machine safety', `${node} committed a different entry ${index} than another node`);
    }
    this.committedChain.set(index, chainHash);
    this.maxCommitted = Math.max(this.maxCommitted, index);
    if (leaderTerm === undefined) return undefined;
    const decided = this.decided.get(leaderTerm);
    if (decided === undefined || decided.index < index) this.decided.set(leaderTerm, { index, chain: chainHash });
    for (const leader of this.leaders) {
      if (leader.term > leaderTerm && leader.chains[index - 1] !== chainHash) {
        return violation('leader completeness', `${leader.node}, leader of ${leader.term}, lacks entry ${index} committed in term ${leaderTerm}`);
      }
    }
    return undefined;
  }

  /** Forced reconfiguration is safe only if the left-out voters are dead for good and this node holds every commit. */
  private force({ node, chains, voters, configs, leftOut, alive }: Extract<HistoryEvent, { kind: 'force' }>): Violation | undefined {
    for (const id of leftOut) this.forcedOut.add(id);
    const leftOutAlive = leftOut.filter((id) => alive.includes(id));
    if (leftOutAlive.length > 0) return violation('forced reconfiguration', `${node} forced out ${leftOutAlive.join(', ')}, not certainly dead`);
    if (!this.holdsEveryCommitted(chains)) {
      return violation('forced reconfiguration', `${node} was forced without entry ${this.maxCommitted}, committed`);
    }
    const apart = configs.find((config) => !quorumsIntersect(voters, config, alive));
    if (apart !== undefined) {
      return violation('forced reconfiguration', `quorums of ${voters.join(',')} and of the living in ${apart.join(',')} may not meet`);
    }
    return undefined;
  }

  private apply(node: string, index: number, term: number, payload: number): Violation | undefined {
    const expected = this.nextApply.get(node) ?? 1;
    if (index !== expected) return violation('state machine safety', `${node} applied ${index}, expected ${expected} next`);
    this.nextApply.set(node, index + 1);
    const first = this.appliedAt.get(index);
    if (first === undefined) this.appliedAt.set(index, { term, payload, node });
    else if (first.term !== term || first.payload !== payload) {
      return violation('state machine safety', `${node} applied ${index}@${term}, ${first.node} applied ${index}@${first.term}`);
    }
    return undefined;
  }
}

/**
 * Liveness: once the last fault heals, `condition` must hold within `boundTicks`.
 * @example const checker = new LivenessChecker(300, 'a new proposal committed'); checker.healed(1000); checker.check(1400, false);
 */
export class LivenessChecker {
  private healedAtTicks: number | undefined;

  constructor(
    readonly boundTicks: number,
    readonly condition: string,
  ) {}

  healed(atTicks: number): void {
    this.healedAtTicks = atTicks;
  }

  /** Called as time passes; `done` when the condition holds. */
  check(nowTicks: number, done: boolean): Violation | undefined {
    if (done || this.healedAtTicks === undefined || nowTicks - this.healedAtTicks <= this.boundTicks) return undefined;
    return violation('liveness', `not within ${this.boundTicks} ticks of the heal at tick ${this.healedAtTicks}: ${this.condition}`);
  }
}

const violation = (checker: string, message: string): Violation => ({ checker, message });

/**
 * Whether every majority of `a` shares a member with every majority of `b` that the
 * `alive` can form (none formable: vacuously true). Disjoint ones exist exactly when
 * each side can take its majority from its own members plus a split of the shared ones.
 * @example quorumsIntersect(['b'], ['a', 'b'], ['b']) // true: {a,b} has no living majority
 */
export function quorumsIntersect(a: readonly string[], b: readonly string[], alive: readonly string[]): boolean {
  const livingA = a.filter((id) => alive.includes(id));
  const livingB = b.filter((id) => alive.includes(id));
  const quorumA = Math.floor(a.length / 2) + 1;
  const quorumB = Math.floor(b.length / 2) + 1;
  if (livingA.length < quorumA || livingB.length < quorumB) return true;
  const shared = livingA.filter((id) => livingB.includes(id)).length;
  return Math.max(0, quorumA - (livingA.length - shared)) + Math.max(0, quorumB - (livingB.length - shared)) > shared;
}
