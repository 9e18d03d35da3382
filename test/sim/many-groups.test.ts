import { afterEach, expect, it } from 'vitest';
import { HEARTBEAT_INTERVAL_MS, ManyGroups } from './many-groups';

// Many raft groups on few brokers: the executor sends all groups' messages to a peer as
// one frame per flush, and holds heartbeats (and their answers) for the heartbeat flush,
// so what a node sends grows with its peers, not with its groups.

const BROKERS = 5;
const GROUPS = 100;
/** Simulated time for 100 groups to elect leaders that commit (elections take about 1 s). */
const SETTLE_MS_MAX = 20_000;

let cluster: ManyGroups | undefined;
afterEach(() => cluster?.stop());

it(`idle: ${BROKERS} brokers in ${GROUPS} groups send at most one frame per peer per heartbeat interval`, async () => {
  cluster = await ManyGroups.start(BROKERS, GROUPS);
  expect(await cluster.settle(SETTLE_MS_MAX)).toBe(true);
  // Past elections and catching up: a few heartbeat intervals to go quiet.
  await cluster.run(5 * HEARTBEAT_INTERVAL_MS);
  const before = cluster.framesByLink();
  const messagesBefore = cluster.totals().messagesSent;
  const intervals = 20;
  await cluster.run(intervals * HEARTBEAT_INTERVAL_MS);
  const after = cluster.framesByLink();
  const links = BROKERS * (BROKERS - 1);
  expect(after.size).toBe(links);
  for (const [link, frames] of after) {
    const sent = frames - (before.get(link) ?? 0);
    // The window may straddle one more flush than it has intervals.
    expect(sent, link).toBeLessThanOrEqual(intervals + 1);
    expect(sent, link).toBeGreaterThanOrEqual(intervals - 1);
  }
  // Each frame carries many groups' heartbeats and answers.
  const messages = cluster.totals().messagesSent - messagesBefore;
  const frames = [...after].reduce((n, [link, f]) => n + f - (before.get(link) ?? 0), 0);
  expect(messages / frames).toBeGreaterThan(GROUPS / 5);
  expect(cluster.settled()).toBe(true);
}, 120_000);

it(`under load, frames grow with peers, not with groups: proposals to 10 groups, then to all ${GROUPS}`, async () => {
  cluster = await ManyGroups.start(BROKERS, GROUPS);
  expect(await cluster.settle(SETTLE_MS_MAX)).toBe(true);
  const c = cluster;
  /** Proposes one entry to each of `groups` every 10 ms for `ms`; frames and messages sent meanwhile, and what committed. */
  const load = async (groups: readonly string[], ms: number) => {
    const before = c.totals();
    const commitsBefore = groups.map((g) => c.leaderOf(g)?.executor.raftState(g)?.commit ?? 0);
    for (let t = 0; t < ms; t += 10) {
      for (const group of groups) c.leaderOf(group)?.executor.input(group, { type: 'propose', payloads: [new Uint8Array(100)] });
      await c.run(10);
    }
    await c.run(100); // the last proposals commit
    const after = c.totals();
    const committed = groups.reduce((n, g, i) => n + (c.leaderOf(g)?.executor.raftState(g)?.commit ?? 0) - commitsBefore[i]!, 0);
    return { frames: after.framesSent - before.framesSent, messages: after.messagesSent - before.messagesSent, committed };
  };
  const few = await load(cluster.groups.slice(0, 10), 1_000);
  const all = await load(cluster.groups, 1_000);
  // Every proposal committed (1,000 ms / 10 ms = 100 rounds per group).
  expect(few.committed).toBe(10 * 100);
  expect(all.committed).toBe(GROUPS * 100);
  // Ten times the groups: far more messages, about the same frames.
  expect(all.messages).toBeGreaterThan(4 * few.messages);
  expect(all.frames).toBeLessThan(1.5 * few.frames);
  console.log(`many groups under load: 10 groups ${few.frames} frames / ${few.messages} messages; ${GROUPS} groups ${all.frames} frames / ${all.messages} messages`);
}, 120_000);
