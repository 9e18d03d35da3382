// KafkaJS's request events for a broker's requests to other brokers: a call the page traced
// (NodeApi.reportPeerRequests) is routed through a router whose peer requests are observed,
// and each observation becomes a report with the call's trace. Untraced calls take the plain
// router: nothing is built or posted for them.

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
