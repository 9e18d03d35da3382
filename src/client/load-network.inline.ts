// The script-tag build's ./load-network.ts: the network is in the one file anyway, and a static
// import lets the bundler drop what of it the client does not use.
import { joinCluster } from '../network';

export async function loadJoinCluster(): Promise<typeof joinCluster> {
  return joinCluster;
}
