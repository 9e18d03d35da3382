import { InconsistentClusterIdError, InvalidArgumentError, LeaderNotAvailableError, type LetterboxError } from '../errors';
import { RPC_TIMEOUT_MS, type PeerRpc } from '../network/worker';
import type { FetchedPartitionBody, FetchMessage, ListOffsetsMessage, ProduceMessage } from '../protocol';
import type { FetchedPartition, FetchRequest, OffsetQuery, ProduceRequest, ProduceResult } from './api';

// Requests for partitions led by other brokers of the cluster go to them, worker to worker
// over peer RPC (`produce`, `fetch`, `listOffsets`, FORMATS.md), split by leader and sent in
// parallel; the rest are served here. A forwarded request is served only where its
// partitions are held: it is never forwarded again, so a stale placement costs a
// retriable NotLeaderOrFollowerError, never a loop.

/** Where a partition is served: here, or by another broker (its id; -1: none now). */
export type Route = { readonly here: true } | { readonly here: false; readonly leader: number };

/** What the router needs of the broker. */
export interface RoutedBroker {
  readonly clusterId: string;
  /** The route of a partition; throws UnknownTopicOrPartitionError for one the cluster does not have. */
  routeOf(topic: string, partition: number): Route;
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
 * Produces each batch at its partition's leader; results in request order. Throws the
 * first refusal (a batch refused at one leader may have been appended at another: as with
 * Kafka, partitions are independent).
 * @example const results = await produceRouted(broker, request.acks, request.batches);
 */
export async function produceRouted(broker: RoutedBroker, acks: ProduceRequest['acks'], batches: ProduceRequest['batches']): Promise<ProduceResult[]> {
  const { here, elsewhere } = split(broker, batches);
  const results: ProduceResult[] = new Array(batches.length);
  const pick = (indices: number[]) => indices.map((i) => batches[i]!);
  const fill = (indices: number[]) => (answered: readonly ProduceResult[]) => indices.forEach((i, k) => (results[i] = answered[k]!));
  await Promise.all([
    here.length === 0 ? undefined : broker.produceHere(acks, pick(here)).then(fill(here)),
    ...[...elsewhere].map(async ([leader, indices]) => {
      const first = batches[indices[0]!]!;
      const peer = peerOf(broker, leader, first.topic, first.partition);
      const answer = await broker.rpc.request(peer, 'produce', { kind: 'request', clusterId: broker.clusterId, acks, timeoutMs: RPC_TIMEOUT_MS, batches: pick(indices) });
      if (answer.kind !== 'response' || answer.results.length !== indices.length) throw new InvalidArgumentError(`broker ${leader} answered a produce with ${answer.kind}`);
      for (const result of answer.results) if (result.error !== undefined) throw result.error;
      fill(indices)(answer.results.map(({ topic, partition, baseOffset, logStartOffset }) => ({ topic, partition, baseOffset, logStartOffset })));
    }),
  ]);
  return results;
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
    const body = { kind: 'request' as const, clusterId: broker.clusterId, maxWaitMs, minBytes, maxBytes, partitions: indices.map((i) => request.partitions[i]!) };
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
 * Lists offsets at each partition's leader; answers in query order.
 * @example const [latest] = await listOffsetsRouted(broker, [{ topic: 't', partition: 0, query: 'latest' }]);
 */
export async function listOffsetsRouted(broker: RoutedBroker, queries: ReadonlyArray<{ topic: string; partition: number; query: OffsetQuery }>): Promise<Array<number | undefined>> {
  const { here, elsewhere } = split(broker, queries);
  const results: Array<number | undefined> = new Array(queries.length);
  await Promise.all([
    here.length === 0 ? undefined : broker.listOffsetsHere(here.map((i) => queries[i]!)).then((offsets) => here.forEach((i, k) => (results[i] = offsets[k]))),
    ...[...elsewhere].map(async ([leader, indices]) => {
      const first = queries[indices[0]!]!;
      const peer = peerOf(broker, leader, first.topic, first.partition);
      const answer = await broker.rpc.request(peer, 'listOffsets', { kind: 'request', clusterId: broker.clusterId, queries: indices.map((i) => queries[i]!) });
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
 * Serves other brokers' forwarded requests from the partitions held here (never forwarding
 * them again); returns a function that stops serving.
 * @example const stop = serveRouted(broker);
 */
export function serveRouted(broker: RoutedBroker): () => void {
  const { rpc } = broker;
  const check = (clusterId: string, what: string) => {
    if (clusterId !== broker.clusterId) throw new InconsistentClusterIdError(`a ${what} for cluster ${clusterId}; this is cluster ${broker.clusterId}`);
  };
  const stops = [
    rpc.handle('produce', async (body): Promise<ProduceMessage> => {
      if (body.kind !== 'request') throw new InvalidArgumentError('a produce response sent as a request');
      check(body.clusterId, 'produce');
      try {
        return { kind: 'response', results: await broker.produceHere(body.acks, [...body.batches]) };
      } catch (error) {
        // All or nothing here (every batch is checked before any is appended): the refusal is each batch's.
        return { kind: 'response', results: body.batches.map(({ topic, partition }) => ({ topic, partition, baseOffset: -1, logStartOffset: -1, error: error as LetterboxError })) };
      }
    }),
    rpc.handle('fetch', async (body, { signal }): Promise<FetchMessage> => {
      if (body.kind !== 'request') throw new InvalidArgumentError('a fetch response sent as a request');
      check(body.clusterId, 'fetch');
      const { maxWaitMs, minBytes, maxBytes, partitions } = body;
      return { kind: 'response', partitions: await broker.fetchHere({ maxWaitMs, minBytes, maxBytes, partitions: [...partitions] }, signal) };
    }),
    rpc.handle('listOffsets', async (body): Promise<ListOffsetsMessage> => {
      if (body.kind !== 'request') throw new InvalidArgumentError('a listOffsets response sent as a request');
      check(body.clusterId, 'listOffsets');
      return {
        kind: 'response',
        results: await Promise.all(body.queries.map((query) => broker.listOffsetsHere([query]).then(([offset]) => ({ offset }), (error: unknown) => ({ error: error as LetterboxError })))),
      };
    }),
  ];
  return () => stops.forEach((stop) => stop());
}
