// The page's network (libp2p: most of the library's size), loaded only when a Letterbox joins a
// cluster: the ES build puts it in a chunk of its own. The script-tag build is one file either
// way and imports it statically (./load-network.inline.ts), which bundles it smaller.
import type { joinCluster } from '../network';

export async function loadJoinCluster(): Promise<typeof joinCluster> {
  return (await import('../network')).joinCluster;
}
