// Cluster discovery on the relay: the wire format of the /letterbox/discovery protocol and
// the relay's membership table. Pure; the relay (src/relay) and the page (src/network) do the I/O.
export {
  DISCOVERY_PROTOCOL,
  RELAY_INFO_PATH,
  DISCOVERY_MESSAGE_BYTES_MAX,
  MEMBERS_PER_CLUSTER_MAX,
  CLUSTERS_MAX,
  CLUSTER_NAME_PATTERN,
  DiscoveryError,
  encodeDiscoveryMessage,
  createDiscoveryDecoder,
  parseDiscoveryRequest,
  parseDiscoveryEvent,
  type DiscoveryRequest,
  type DiscoveryEvent,
  type DiscoveryErrorCode,
} from './wire';
export { createMembership, type Membership, type Delivery } from './membership';
