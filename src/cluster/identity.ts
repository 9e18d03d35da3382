import { BrokerIdentityError, InconsistentClusterIdError, StaleControllerEpochError } from '../errors';
import type { NodeId } from '../raft';
import type { MetadataImage } from './image';

// Identity, one word one meaning: a broker id (int32, assigned by the controller at first
// registration, kept in the slot's database) names a broker; a storage incarnation names
// a slot's database; a raft member is the two together, so a broker back with its
// storage (a reopened tab, a tab adopting the slot) is the same member, and one whose
// storage was lost is a new member under a new broker id.

/**
 * The raft member id of a broker with its storage incarnation.
 * @example memberId(3, 'k2x9') // '3.k2x9'
 */
export const memberId = (brokerId: number, incarnation: string): NodeId => `${brokerId}.${incarnation}`;

/**
 * Splits a member id, or undefined when it is not one.
 * @example parseMemberId('3.k2x9') // { brokerId: 3, incarnation: 'k2x9' }
 */
export function parseMemberId(id: NodeId): { brokerId: number; incarnation: string } | undefined {
  const dot = id.indexOf('.');
  const brokerId = Number(id.slice(0, dot));
  if (dot <= 0 || dot === id.length - 1 || !Number.isInteger(brokerId) || brokerId < 1 || brokerId > 0x7fffffff || String(brokerId) !== id.slice(0, dot)) return undefined;
  return { brokerId, incarnation: id.slice(dot + 1) };
}

/**
 * Admits a metadata-group message (a raft message, a record) from member `from` that says
 * it belongs to cluster `clusterId`; a typed error when it must not be applied: another
 * cluster's, not a member id, or a broker id this image registers with another storage
 * incarnation (an old one, or an impostor). A broker the image does not know yet is
 * admitted: a new learner's image is empty until it catches up, and raft's own terms
 * and quorums judge the message.
 * @example const refused = checkPeerMessage(image, ourClusterId, frame.clusterId, message.from); if (refused) return report(refused);
 */
export function checkPeerMessage(
  image: MetadataImage,
  ourClusterId: string,
  clusterId: string,
  from: NodeId,
): InconsistentClusterIdError | BrokerIdentityError | undefined {
  if (clusterId !== ourClusterId) return new InconsistentClusterIdError(`a message from ${from} of cluster ${clusterId}; this is cluster ${ourClusterId}`);
  const member = parseMemberId(from);
  if (member === undefined) return new InconsistentClusterIdError(`"${from}" is not a member id of cluster ${ourClusterId}`);
  const known = image.broker(member.brokerId);
  if (known !== undefined && known.incarnation !== member.incarnation) {
    return new BrokerIdentityError('STALE_BROKER_EPOCH', member.brokerId, `broker ${member.brokerId} is registered with incarnation ${known.incarnation}, not ${member.incarnation}`);
  }
  return undefined;
}

/**
 * Admits an answer claiming to come from the active controller `from` of `epoch` (a raft
 * term), given what this broker's raft member knows: the term it is in and who led it.
 * An older epoch is stale; a second controller of the known term is forged.
 * @example const refused = checkControllerEpoch({ term: state.term, leader: state.leader }, reply.controllerEpoch, peer);
 */
export function checkControllerEpoch(
  known: { readonly term: number; readonly leader: NodeId | undefined },
  epoch: number,
  from: NodeId,
): StaleControllerEpochError | undefined {
  if (!Number.isSafeInteger(epoch) || epoch < known.term) return new StaleControllerEpochError(`controller epoch ${epoch} from ${from} is older than ${known.term}`);
  if (epoch === known.term && known.leader !== undefined && known.leader !== from) {
    return new StaleControllerEpochError(`${from} claims controller epoch ${epoch}, which ${known.leader} leads`);
  }
  return undefined;
}
