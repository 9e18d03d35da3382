import type { Clock } from '../clock';
import { FencedLeaderEpochError, InconsistentClusterIdError, InvalidArgumentError, LeaderNotAvailableError, LetterboxError, NotLeaderOrFollowerError, TimeoutError, UnknownLeaderEpochError } from '../errors';
import { RPC_TIMEOUT_MS, type PeerRpc } from '../network/worker';
import type { FetchedPartitionBody, FetchMessage, ListOffsetsMessage, ProduceMessage } from '../protocol';
import type { FetchedPartition, FetchRequest, OffsetQuery, ProduceRequest, ProduceResult } from './api';

// Requests for partitions led by other brokers of the cluster go to them, worker to worker
// over peer RPC (`produce`, `fetch`, `listOffsets`, FORMATS.md), split by leader and sent in
// parallel; the rest are served here. A forwarded request is served only where its
// partitions are held: it is never forwarded again, so a stale placement costs a
// retriable NotLeaderOrFollowerError, never a loop. Each forwarded partition carries the
// leader epoch the sender's metadata has for it; the leader refuses one that differs from its
// own (KIP-320), so stale metadata is never acted on.

/** Where a partition is served: here, or by another broker (its id; -1: none now). */
export type Route = { readonly here: true } | { readonly here: false; readonly leader: number };

/** What the router needs of the broker. */
export interface RoutedBroker {
  /** Paces the resending of a produce's refused parts, and the checks of a forwarded produce's leader. */
  readonly clock: Clock;
  /** How often a forwarded produce checks that its leader is still the one this broker knows (raft's heartbeat interval: leadership news comes no faster). */
  readonly leaderCheckMs: number;
  readonly clusterId: string;
  /** The route of a partition; throws UnknownTopicOrPartitionError for one the cluster does not have. */
  routeOf(topic: string, partition: number): Route;
  /** The partition's leader epoch in this broker's metadata; -1 for a partition it has none for (a private broker's). */
  leaderEpochOf(topic: string, partition: number): number;
  /** The peer id of a live broker, or undefined. */
  addressOf(brokerId: number): string | undefined;
  readonly rpc: PeerRpc;
  /** Appends to partitions held here (each batch checked; refuses one not held here). */
  produceHere(acks: ProduceRequest['acks'], batches: ProduceRequest['batches']): Promise<ProduceResult[]>;
  /** Reads partitions held here, waiting up to maxWaitMs for minBytes, or until `signal` aborts. */
  fetchHere(request: Omit<FetchRequest, 'requestId'>, signal: AbortSignal): Promise<FetchedPartition[]>;
  listOffsetsHere(queries: ReadonlyArray<{ topic: string; partition: number; query: OffsetQuery }>): Promise<Array<number | undefined>>;
  /** Remote fetches still waiting at their leaders, by what they asked: a fetch asking the same again joins one. */
  readonly remoteFetches: Map<string, Promise<readonly FetchedPartitionBody[] | undefined>>;
}

/** Items grouped by route: those served here, and per leader those served elsewhere, each with its index in the request. */
function split<T extends { topic: string; partition: number }>(broker: RoutedBroker, items: readonly T[]): { here: number[]; elsewhere: Map<number, number[]> } {
  const here: number[] = [];
  const elsewhere = new Map<number, number[]>();
  items.forEach(({ topic, partition }, i) => {
    const route = broker.routeOf(topic, partition);
    if (route.here) here.push(i);
    else elsewhere.set(route.leader, [...(elsewhere.get(route.leader) ?? []), i]);
  });
  return { here, elsewhere };
}

function peerOf(broker: RoutedBroker, leader: number, topic: string, partition: number): string {
  const peer = leader < 0 ? undefined : broker.addressOf(leader);
  if (peer === undefined) throw new LeaderNotAvailableError(topic, partition);
  return peer;
}

/**
 * `request` (given the signal to send it with), given up with the retriable
 * NotLeaderOrFollowerError once this broker knows another leader than `leader` for one of
 * `partitions` (its replica's raft, or the metadata): a request to a leader that stopped (a
 * paused tab, a cut link) ends when the others elect a new one, not at the RPC bound. Whatever
 * the old leader still does with a produce is not acknowledged: it no longer leads, so its
 * append is never committed (or, committed by the new leader, a retry finds it a duplicate).
 */
async function atLeader<T>(broker: RoutedBroker, leader: number, partitions: ReadonlyArray<{ topic: string; partition: number }>, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const moved = leaderMoved(broker, leader, partitions);
  try {
    return await request(moved.signal);
  } catch (error) {
    throw moved.signal.aborted ? moved.signal.reason : error;
  } finally {
    moved.stop();
  }
}

/** Aborts with NotLeaderOrFollowerError once `partitions` have another leader than `leader` in this broker's view, checked each `leaderCheckMs`. */
function leaderMoved(broker: RoutedBroker, leader: number, partitions: ReadonlyArray<{ topic: string; partition: number }>): { signal: AbortSignal; stop: () => void } {
  const moved = new AbortController();
  let cancel = (): void => undefined;
  const check = () => {
    for (const { topic, partition } of partitions) {
      let route: Route;
      try {
        route = broker.routeOf(topic, partition);
      } catch {
        continue; // a topic being deleted: its answer says so
      }
      if (route.here || route.leader !== leader) return moved.abort(new NotLeaderOrFollowerError(topic, partition, route.here ? -1 : route.leader));
    }
    cancel = broker.clock.after(broker.leaderCheckMs, check);
  };
  cancel = broker.clock.after(broker.leaderCheckMs, check);
  return { signal: moved.signal, stop: () => cancel() };
}

/** Between attempts at the parts of a produce that failed while others were appended. */
const PRODUCE_RETRY_BACKOFF_MS = 100;

/**
 * Produces each batch at its partition's leader, the leaders in parallel; results in request
 * order. When every part is refused, nothing was appended and the first refusal is thrown (the
 * client retries as it decides). When some parts were appended and others refused with a
 * retriable error (a leader moved or not caught up yet), only the refused parts are sent again
 * (routed anew) until the RPC bound, as KafkaJS resends only to the brokers that did not
 * answer: resending all would append the others' batches twice. A refusal that outlives it is thrown.
 * @example const results = await produceRouted(broker, request.acks, request.batches);
 */
export async function produceRouted(broker: RoutedBroker, acks: ProduceRequest['acks'], batches: ProduceRequest['batches']): Promise<ProduceResult[]> {
  const results: Array<ProduceResult | undefined> = new Array(batches.length);
  const deadline = broker.clock.monotonic() + RPC_TIMEOUT_MS;
  let pending = batches.map((_, i) => i);
  for (;;) {
    const refused = await producePart(broker, acks, batches, pending, results);
    if (refused === undefined) return results as ProduceResult[];
    const appended = results.some((result) => result !== undefined);
    // Not a timeout either: a part that timed out may have been appended all the same.
    const again = appended && refused.error.retriable && !(refused.error instanceof TimeoutError);
    if (!again || broker.clock.monotonic() + PRODUCE_RETRY_BACKOFF_MS > deadline) throw refused.error;
    pending = refused.indices;
    await new Promise<void>((resolve) => broker.clock.after(PRODUCE_RETRY_BACKOFF_MS, resolve));
  }
}

/** Sends batches `indices` to their leaders, filling `results` of those appended; the refused ones and the first refusal, if any. */
async function producePart(
  broker: RoutedBroker,
  acks: ProduceRequest['acks'],
  batches: ProduceRequest['batches'],
  indices: readonly number[],
  results: Array<ProduceResult | undefined>,
): Promise<{ indices: number[]; error: LetterboxError } | undefined> {
  const refused: number[] = [];
  let first: LetterboxError | undefined;
  const fail = (part: readonly number[], error: unknown) => {
    refused.push(...part);
    first ??= error instanceof LetterboxError ? error : new LeaderNotAvailableError(batches[part[0]!]!.topic, batches[part[0]!]!.partition);
  };
  const pick = (part: readonly number[]) => part.map((i) => batches[i]!);
  const fill = (part: readonly number[], answered: readonly ProduceResult[]) => part.forEach((i, k) => (results[i] = answered[k]!));
  let routes: { here: number[]; elsewhere: Map<number, number[]> };
  try {
    routes = split(broker, pick(indices));
  } catch (error) {
    fail(indices, error);
    return { indices: refused, error: first! };
  }
  const { here, elsewhere } = routes;
  const global = (part: number[]) => part.map((k) => indices[k]!);
  await Promise.all([
    here.length === 0 ? undefined : broker.produceHere(acks, pick(global(here))).then((answered) => fill(global(here), answered), (error: unknown) => fail(global(here), error)),
    ...[...elsewhere].map(async ([leader, local]) => {
      const part = global(local);
      try {
        const head = batches[part[0]!]!;
        const peer = peerOf(broker, leader, head.topic, head.partition);
        const forwarded = pick(part).map((batch) => ({ ...batch, leaderEpoch: broker.leaderEpochOf(batch.topic, batch.partition) }));
        const answer = await atLeader(broker, leader, forwarded, (signal) => broker.rpc.request(peer, 'produce', { kind: 'request', clusterId: broker.clusterId, acks, timeoutMs: RPC_TIMEOUT_MS, batches: forwarded }, { signal }));
        if (answer.kind !== 'response' || answer.results.length !== part.length) throw new InvalidArgumentError(`broker ${leader} answered a produce with ${answer.kind}`);
        // A leader appends all of its part or none of it.
        const error = answer.results.find((result) => result.error !== undefined)?.error;
        if (error !== undefined) return fail(part, error);
        fill(part, answer.results.map(({ topic, partition, baseOffset, logStartOffset }) => ({ topic, partition, baseOffset, logStartOffset })));
      } catch (error) {
        fail(part, error);
      }
    }),
  ]);
  return first === undefined ? undefined : { indices: refused.sort((x, y) => x - y), error: first };
}

/**
 * Fetches each partition from its leader, all at once; answers in request order. The first
 * part that brings data (or an error) ends the wait: the local part returns what it has,
 * and remote parts still waiting are not waited for (their partitions answer empty; the
 * consumer asks again). A leader that cannot be reached answers NOT_LEADER_OR_FOLLOWER.
 * @example const partitions = await fetchRouted(broker, request, signal);
 */
export async function fetchRouted(broker: RoutedBroker, request: Omit<FetchRequest, 'requestId'>, signal: AbortSignal): Promise<FetchedPartition[]> {
  const { here, elsewhere } = split(broker, request.partitions);
  if (elsewhere.size === 0) return broker.fetchHere(request, signal);
  const local = new AbortController();
  const ended = AbortSignal.any([signal, local.signal]);
  const answered: Array<FetchedPartition | undefined> = new Array(request.partitions.length);
  const empty = (i: number, errorCode?: 'NOT_LEADER_OR_FOLLOWER'): FetchedPartition => {
    const { topic, partition } = request.partitions[i]!;
    return { topic, partition, highWatermark: -1, logStartOffset: -1, batches: [], ...(errorCode && { errorCode }) };
  };
  /** Each part: its indices, and the partitions it answers (in their order). */
  const parts: Array<Promise<{ indices: number[]; partitions: FetchedPartition[] }>> = [];
  if (here.length > 0) parts.push(broker.fetchHere({ ...request, partitions: here.map((i) => request.partitions[i]!) }, ended).then((partitions) => ({ indices: here, partitions })));
  for (const [leader, indices] of elsewhere) {
    const unreachable = () => ({ indices, partitions: indices.map((i) => empty(i, 'NOT_LEADER_OR_FOLLOWER')) });
    const peer = leader < 0 ? undefined : broker.addressOf(leader);
    if (peer === undefined) {
      parts.push(Promise.resolve(unreachable()));
      continue;
    }
    const { maxWaitMs, minBytes, maxBytes } = request;
    const partitions = indices.map((i) => request.partitions[i]!).map((p) => ({ ...p, leaderEpoch: broker.leaderEpochOf(p.topic, p.partition) }));
    const body = { kind: 'request' as const, clusterId: broker.clusterId, maxWaitMs, minBytes, maxBytes, partitions };
    // A remote fetch is not abandoned when another part answers first (the leader would hold
    // it until maxWait, and a consumer's next fetches would pile up there): the next fetch of
    // the same partitions at the same offsets waits on it instead of asking again.
    const key = `${peer} ${maxWaitMs} ${minBytes} ${maxBytes} ${JSON.stringify(body.partitions)}`;
    let remote = broker.remoteFetches.get(key);
    if (remote === undefined) {
      const asked = broker.rpc.request(peer, 'fetch', body, { timeoutMs: maxWaitMs + RPC_TIMEOUT_MS }).then(
        (answer) => (answer.kind === 'response' && answer.partitions.length === indices.length ? answer.partitions : undefined),
        () => undefined, // the leader unreachable
      );
      remote = asked;
      broker.remoteFetches.set(key, asked);
      void asked.then(() => broker.remoteFetches.get(key) === asked && broker.remoteFetches.delete(key));
    }
    const endedHere = new Promise<'ended'>((resolve) => (ended.aborted ? resolve('ended') : ended.addEventListener('abort', () => resolve('ended'), { once: true })));
    parts.push(
      Promise.race([remote, endedHere]).then((answer) => {
        if (answer === 'ended') return { indices, partitions: indices.map((i) => empty(i)) };
        if (answer === undefined) return unreachable();
        // Each caller its own bytes: the node transfers fetched buffers to the page.
        return { indices, partitions: answer.map((p) => ({ ...p, batches: p.batches.map((batch) => batch.slice()) })) };
      }),
    );
  }
  await new Promise<void>((resolve) => {
    let pending = parts.length;
    for (const part of parts) {
      void part.then(({ indices, partitions }) => {
        indices.forEach((i, k) => (answered[i] = partitions[k]));
        const useful = partitions.some((p) => p.errorCode !== undefined || p.batches.length > 0);
        if (useful || --pending === 0) resolve();
      });
    }
    ended.addEventListener('abort', () => resolve(), { once: true });
  });
  local.abort();
  // The local part returns at once once aborted: its partitions belong in the answer.
  if (here.length > 0) {
    const { indices, partitions } = await parts[0]!;
    indices.forEach((i, k) => (answered[i] = partitions[k]));
  }
  return Array.from(answered, (p, i) => p ?? empty(i));
}

/**
 * Lists offsets at each partition's leader, each leader within `timeoutMs` (default the RPC
 * bound); answers in query order.
 * @example const [latest] = await listOffsetsRouted(broker, [{ topic: 't', partition: 0, query: 'latest' }]);
 */
export async function listOffsetsRouted(broker: RoutedBroker, queries: ReadonlyArray<{ topic: string; partition: number; query: OffsetQuery }>, timeoutMs = RPC_TIMEOUT_MS): Promise<Array<number | undefined>> {
  const { here, elsewhere } = split(broker, queries);
  const results: Array<number | undefined> = new Array(queries.length);
  await Promise.all([
    here.length === 0 ? undefined : broker.listOffsetsHere(here.map((i) => queries[i]!)).then((offsets) => here.forEach((i, k) => (results[i] = offsets[k]))),
    ...[...elsewhere].map(async ([leader, indices]) => {
      const first = queries[indices[0]!]!;
      const peer = peerOf(broker, leader, first.topic, first.partition);
      const forwarded = indices.map((i) => queries[i]!).map((q) => ({ ...q, leaderEpoch: broker.leaderEpochOf(q.topic, q.partition) }));
      const answer = await atLeader(broker, leader, forwarded, (signal) => broker.rpc.request(peer, 'listOffsets', { kind: 'request', clusterId: broker.clusterId, queries: forwarded }, { timeoutMs, signal }));
      if (answer.kind !== 'response' || answer.results.length !== indices.length) throw new InvalidArgumentError(`broker ${leader} answered listOffsets with ${answer.kind}`);
      answer.results.forEach((result, k) => {
        if ('error' in result) throw result.error;
        results[indices[k]!] = result.offset;
      });
    }),
  ]);
  return results;
}

/**
 * The refusal of a partition asked for at leader epoch `asked` by a broker whose metadata has
 * `current` for it (KIP-320), if it differs. Where either side has none (-1), whether the
 * partition is held here decides, as before epochs. Pure, so the simulation runs it too.
 * @example leaderEpochRefusal('t', 0, 3, 4) // → FencedLeaderEpochError
 */
export function leaderEpochRefusal(topic: string, partition: number, asked: number, current: number): LetterboxError | undefined {
  if (asked < 0 || current < 0) return undefined;
  if (asked < current) return new FencedLeaderEpochError(topic, partition, asked, current);
  if (asked > current) return new UnknownLeaderEpochError(topic, partition, asked, current);
  return undefined;
}

/**
 * Serves other brokers' forwarded requests from the partitions held here (never forwarding
 * them again); returns a function that stops serving.
 * @example const stop = serveRouted(broker);
 */
export function serveRouted(broker: RoutedBroker): () => void {
  const { rpc } = broker;
  const check = (clusterId: string, what: string) => {
    if (clusterId !== broker.clusterId) throw new InconsistentClusterIdError(`a ${what} for cluster ${clusterId}; this is cluster ${broker.clusterId}`);
  };
  const epochRefusal = ({ topic, partition, leaderEpoch }: { topic: string; partition: number; leaderEpoch: number }) =>
    leaderEpochRefusal(topic, partition, leaderEpoch, broker.leaderEpochOf(topic, partition));
  const stops = [
    rpc.handle('produce', async (body): Promise<ProduceMessage> => {
      if (body.kind !== 'request') throw new InvalidArgumentError('a produce response sent as a request');
      check(body.clusterId, 'produce');
      try {
        const refusal = body.batches.map(epochRefusal).find((error) => error !== undefined);
        if (refusal !== undefined) throw refusal;
        return { kind: 'response', results: await broker.produceHere(body.acks, body.batches.map(({ topic, partition, bytes }) => ({ topic, partition, bytes }))) };
      } catch (error) {
        // All or nothing here (every batch is checked before any is appended): the refusal is each batch's.
        return { kind: 'response', results: body.batches.map(({ topic, partition }) => ({ topic, partition, baseOffset: -1, logStartOffset: -1, error: error as LetterboxError })) };
      }
    }),
    rpc.handle('fetch', async (body, { signal }): Promise<FetchMessage> => {
      if (body.kind !== 'request') throw new InvalidArgumentError('a fetch response sent as a request');
      check(body.clusterId, 'fetch');
      const { maxWaitMs, minBytes, maxBytes, partitions } = body;
      // Partitions asked at another leader epoch answer its error code; the rest are read.
      const refusals = partitions.map((p) => epochRefusal(p)?.code as 'FENCED_LEADER_EPOCH' | 'UNKNOWN_LEADER_EPOCH' | undefined);
      const readable = partitions.filter((_, i) => refusals[i] === undefined).map(({ topic, partition, fetchOffset, maxBytes }) => ({ topic, partition, fetchOffset, maxBytes }));
      const read = readable.length === 0 ? [] : await broker.fetchHere({ maxWaitMs, minBytes, maxBytes, partitions: readable }, signal);
      let next = 0;
      return {
        kind: 'response',
        partitions: partitions.map(({ topic, partition }, i) => {
          const errorCode = refusals[i];
          return errorCode === undefined ? read[next++]! : { topic, partition, highWatermark: -1, logStartOffset: -1, batches: [], errorCode };
        }),
      };
    }),
    rpc.handle('listOffsets', async (body): Promise<ListOffsetsMessage> => {
      if (body.kind !== 'request') throw new InvalidArgumentError('a listOffsets response sent as a request');
      check(body.clusterId, 'listOffsets');
      return {
        kind: 'response',
        results: await Promise.all(
          body.queries.map(({ topic, partition, leaderEpoch, query }) => {
            const refusal = epochRefusal({ topic, partition, leaderEpoch });
            if (refusal !== undefined) return { error: refusal };
            return broker.listOffsetsHere([{ topic, partition, query }]).then(([offset]) => ({ offset }), (error: unknown) => ({ error: error as LetterboxError }));
          }),
        ),
      };
    }),
  ];
  return () => stops.forEach((stop) => stop());
}
