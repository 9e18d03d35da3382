import { expect } from 'vitest';
import {
  createCoordinator,
  describeGroup,
  stepCoordinator,
  type CoordinatorState,
  type GroupEffect,
  type GroupErrorCode,
  type GroupInput,
  type JoinReply,
  type OffsetCommit,
} from '../../src/group';

type Reply = Extract<GroupEffect, { type: 'reply' }>;
type Persist = Extract<GroupEffect, { type: 'persist' }>;

/** Input fields the harness fills in: the request id and the clock. */
type Request<T extends GroupInput['type']> = Omit<Extract<GroupInput, { type: T }>, 'type' | 'requestId' | 'now'>;

/**
 * One coordinator driven by hand: a clock, request ids, and every reply and write it
 * has produced, so a test reads like a transcript of requests and answers.
 */
export class Coordinator {
  state: CoordinatorState = createCoordinator();
  nowMs = 0;
  private nextRequestId = 1;
  readonly replies = new Map<number, Reply>();
  /** Writes not yet completed, oldest first. */
  readonly writes: Persist[] = [];
  /** Every effect of the last step. */
  last: GroupEffect[] = [];

  constructor(partitions: Record<string, number> = { t: 4 }) {
    this.input({ type: 'topics', now: 0, partitions });
  }

  input(input: GroupInput): GroupEffect[] {
    const { state, effects } = stepCoordinator(this.state, input);
    this.state = state;
    this.last = effects;
    for (const effect of effects) {
      if (effect.type === 'reply') {
        expect(this.replies.has(effect.requestId), `request ${effect.requestId} answered twice`).toBe(false);
        this.replies.set(effect.requestId, effect);
      } else this.writes.push(effect);
    }
    return effects;
  }

  private request<T extends GroupInput['type']>(type: T, fields: Request<T>): number {
    const requestId = this.nextRequestId++;
    this.input({ type, requestId, now: this.nowMs, ...fields } as unknown as GroupInput);
    return requestId;
  }

  /** Sends a join; answered later if a rebalance must wait. */
  join(clientId: string, options: Partial<Request<'join'>> = {}): number {
    return this.request('join', {
      groupId: 'g', memberId: null, clientId, sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 30_000, topics: ['t'], assignors: ['range'],
      ...options,
    });
  }
  sync(memberId: string, generationId: number, groupId = 'g'): number {
    return this.request('sync', { groupId, memberId, generationId });
  }
  heartbeat(memberId: string, generationId: number, groupId = 'g'): number {
    return this.request('heartbeat', { groupId, memberId, generationId });
  }
  leave(memberId: string, groupId = 'g'): number {
    return this.request('leave', { groupId, memberId });
  }
  commit(memberId: string | null, generationId: number, offsets: Array<Pick<OffsetCommit, 'partition' | 'offset'> & Partial<OffsetCommit>>, groupId = 'g'): number {
    return this.request('commit', {
      groupId, memberId, generationId, offsets: offsets.map((o) => ({ topic: 't', metadata: null, ...o })),
    });
  }
  deleteGroup(groupId = 'g'): number {
    return this.request('deleteGroup', { groupId });
  }
  /** Advances the clock and ticks. */
  advance(ms: number): void {
    this.nowMs += ms;
    this.input({ type: 'tick', now: this.nowMs });
  }
  /** Completes the oldest pending write. */
  persisted(): void {
    this.input({ type: 'persisted', requestId: this.writes.shift()!.requestId });
  }
  persistFailed(message: string, notCoordinator?: true): void {
    this.input({ type: 'persistFailed', requestId: this.writes.shift()!.requestId, message, ...(notCoordinator && { notCoordinator }) });
  }

  answered(requestId: number): boolean {
    return this.replies.has(requestId);
  }
  /** The JoinReply of an answered join. */
  joined(requestId: number): JoinReply {
    const reply = this.replies.get(requestId);
    expect(reply, `join ${requestId} answered`).toMatchObject({ ok: true });
    return (reply as Extract<Reply, { ok: true }>).value as JoinReply;
  }
  /** The error code of an answered request, or 'ok'. */
  outcome(requestId: number): GroupErrorCode | 'ok' | 'pending' {
    const reply = this.replies.get(requestId);
    return reply === undefined ? 'pending' : reply.ok ? 'ok' : reply.error;
  }
  /** A member's assignment from a sync for `generationId`. */
  assignment(memberId: string, generationId: number): Record<string, number[]> {
    const reply = this.replies.get(this.sync(memberId, generationId));
    expect(reply).toMatchObject({ ok: true });
    return { ...((reply as Extract<Reply, { ok: true }>).value as { assignment: Record<string, number[]> }).assignment };
  }
  describe(groupId = 'g') {
    return describeGroup(this.state, groupId);
  }
}
