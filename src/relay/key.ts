import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';

/**
 * The relay's libp2p key from `path`, created there (mode 0600) on first use. It is the
 * relay's identity, not data: keeping it lets pages re-dial a restarted relay at the same
 * peer id. Without a path, a fresh key per start.
 * @example const key = await loadOrCreateKey('.letterbox/relay.key');
 */
export async function loadOrCreateKey(path: string | undefined): Promise<PrivateKey> {
  if (path === undefined) return generateKeyPair('Ed25519');
  const stored = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (stored !== undefined) return privateKeyFromProtobuf(stored);
  const key = await generateKeyPair('Ed25519');
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600 });
  return key;
}
