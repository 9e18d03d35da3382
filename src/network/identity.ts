import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';

/**
 * A new Ed25519 libp2p key as protobuf bytes, offered to the worker, which keeps the slot's
 * first one (so a reopened tab on the same slot keeps its peer id).
 * @example const stored = await node.networkKey(await createSlotKey());
 */
export async function createSlotKey(): Promise<Uint8Array> {
  return privateKeyToProtobuf(await generateKeyPair('Ed25519'));
}

/**
 * The libp2p key from bytes made by {@link createSlotKey}.
 * @example const privateKey = slotKeyFromBytes(stored);
 */
export function slotKeyFromBytes(bytes: Uint8Array): PrivateKey {
  return privateKeyFromProtobuf(bytes);
}
