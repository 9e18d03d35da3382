// KafkaJS's request events for a broker's requests to other brokers: a call the page traced
// (NodeApi.reportPeerRequests) is routed through a router whose peer requests are observed,
// and each observation becomes a report with the call's trace. Untraced calls take the plain
// router: nothing is built or posted for them.

import type { Clock } from '../clock';
import type { PeerMessageName, PeerRequestObservation, PeerRpc } from '../network/worker';
import { KAFKA_API_KEYS, type KafkaApiName } from '../protocol';
import type { PeerRequestReport } from './api';
import type { RoutedBroker } from './routing';

/** Kafka's names of the peer requests the router makes. */
const KAFKA_NAMES: Partial<Record<PeerMessageName, KafkaApiName>> = { produce: 'Produce', fetch: 'Fetch', listOffsets: 'ListOffsets' };

/**
 * A broker of a cluster as its requests' events name it: as admin.describeCluster() lists it,
 * `host:port`, with its peer id as host and port 0.
 * @example peerBrokerName('12D3KooW…') // '12D3KooW…:0'
 */
export const peerBrokerName = (peerId: string): string => `${peerId}:0`;

/**
 * `router` with each peer request reported to `report` under `trace`.
 * @example const results = await produceRouted(tracedRouter(router, trace, report), acks, batches);
 */
export function tracedRouter(router: RoutedBroker, trace: number, report: (report: PeerRequestReport) => void): RoutedBroker {
  const { rpc } = router;
  const request: PeerRpc['request'] = (peerId, type, body, options = {}) => rpc.request(peerId, type, body, { ...options, observe: observer(peerId, type, trace, report) });
  return { ...router, rpc: { ...rpc, request } };
}

/**
 * How long a traced call, once done, waits for the page to take the reports of its peer
 * requests before it answers anyway (a page gone, or too busy to take them): one peer
 * request's bound (BROWSER_TIMING.requestTimeoutMs).
 */
export const REPORTS_TAKEN_MS = 2_000;

/**
 * Runs `call` on `router` traced under `trace`, and answers once the page has taken every
 * report made meanwhile (`report` resolves when it has, at most `boundMs` later): KafkaJS emits
 * a request's REQUEST before the call it served resolves, so a listener has them all by then.
 * The reports go to the page on a channel of their own, which the answer would overtake.
 * @example const results = await tracedCall(router, trace, report, clock, (traced) => produceRouted(traced, acks, batches));
 */
export async function tracedCall<T>(
  router: RoutedBroker,
  trace: number,
  report: (report: PeerRequestReport) => Promise<void>,
  clock: Pick<Clock, 'after'>,
  call: (router: RoutedBroker) => Promise<T>,
  boundMs = REPORTS_TAKEN_MS,
): Promise<T> {
  const taken: Array<Promise<void>> = [];
  const traced = tracedRouter(router, trace, (r) => void taken.push(report(r).catch(() => undefined)));
  try {
    return await call(traced);
  } finally {
    if (taken.length > 0) {
      let cancel: (() => void) | undefined;
      await Promise.race([Promise.all(taken), new Promise<void>((resolve) => (cancel = clock.after(boundMs, resolve)))]);
      cancel?.();
    }
  }
}

function observer(peerId: string, type: PeerMessageName, trace: number, report: (report: PeerRequestReport) => void): (observation: PeerRequestObservation) => void {
  const broker = peerBrokerName(peerId);
  const kafkaName = KAFKA_NAMES[type];
  const names = { apiName: kafkaName ?? type, apiKey: kafkaName === undefined ? -1 : KAFKA_API_KEYS[kafkaName] };
  return (observation) => {
    if (observation.kind === 'queue') return report({ type: 'request_queue_size', trace, payload: { broker, queueSize: observation.queueSize } });
    const { requestId: correlationId, createdAt, version: apiVersion } = observation;
    if (observation.kind === 'answered') {
      const { sentAt, answeredAt, bytes: size } = observation;
      return report({ type: 'request', trace, payload: { broker, correlationId, size, createdAt, sentAt, pendingDuration: sentAt - createdAt, duration: answeredAt - sentAt, ...names, apiVersion } });
    }
    const sentAt = observation.sentAt ?? observation.timedOutAt;
    report({ type: 'request_timeout', trace, payload: { broker, correlationId, createdAt, sentAt, pendingDuration: sentAt - createdAt, ...names, apiVersion } });
  };
}
