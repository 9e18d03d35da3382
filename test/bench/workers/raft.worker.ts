import { expose } from 'comlink';
import { BenchCluster } from '../raft-cluster';
import type { RaftWorkerApi } from './raft-api';

const api: RaftWorkerApi = {
  async idle(brokers, groups, seconds) {
    const cluster = await BenchCluster.start(brokers, groups);
    await cluster.elect();
    const sent = () => [...cluster.executors.values()].reduce((n, e) => ({ messages: n.messages + e.stats.messagesSent, frames: n.frames + e.stats.framesSent }), { messages: 0, frames: 0 });
    const before = sent();
    const started = performance.now();
    await cluster.advance(seconds * 1000);
    const ms = performance.now() - started;
    const after = sent();
    cluster.stop();
    return { ms, messages: after.messages - before.messages, frames: after.frames - before.frames };
  },
};

expose(api);
