import { describe, expect, it } from 'vitest';
import { realClock } from '../../src/clock';
import { LeaderNotAvailableError, NotLeaderOrFollowerError, TimeoutError, type LetterboxError } from '../../src/errors';
import type { PeerRpc } from '../../src/network/worker';
import type { ProduceRequest, ProduceResult } from '../../src/node';
import { produceRouted, type RoutedBroker } from '../../src/node/routing';

// produceRouted against a scripted cluster: partition p of topic 't' is led by broker p (1 here),
// each other broker answering at peer `b<p>` as `answers` says, attempt by attempt.

type Answer = 'ok' | LetterboxError;

function cluster(answers: Record<string, Answer[]>) {
  const appended: string[] = [];
  const offsets = new Map<number, number>();
  const append = (batches: ProduceRequest['batches']): ProduceResult[] =>
    batches.map(({ topic, partition }) => {
      appended.push(`${topic}-${partition}`);
      const baseOffset = offsets.get(partition) ?? 0;
      offsets.set(partition, baseOffset + 1);
      return { topic, partition, baseOffset, logStartOffset: 0 };
    });
  const rpc = {
    request: async (peer: string, _type: string, body: { batches: ProduceRequest['batches'] }) => {
      const answer = answers[peer]!.shift() ?? 'ok';
      if (answer !== 'ok') return { kind: 'response', results: body.batches.map(({ topic, partition }) => ({ topic, partition, baseOffset: -1, logStartOffset: -1, error: answer })) };
      return { kind: 'response', results: append(body.batches) };
    },
  } as unknown as PeerRpc;
  const broker: RoutedBroker = {
    clusterId: 'c',
    clock: realClock,
    rpc,
    routeOf: (_topic, partition) => (partition === 1 ? { here: true } : { here: false, leader: partition }),
    addressOf: (brokerId) => `b${brokerId}`,
    produceHere: async (_acks, batches) => append(batches),
    fetchHere: async () => [],
    listOffsetsHere: async () => [],
    remoteFetches: new Map(),
  };
  return { broker, appended };
}

const batches = (partitions: number[]): ProduceRequest['batches'] => partitions.map((partition) => ({ topic: 't', partition, bytes: new Uint8Array(1) }));

describe('produceRouted', () => {
  it('a part refused with a retriable error while others were appended is sent again alone: nothing is appended twice', async () => {
    const { broker, appended } = cluster({ b2: [new NotLeaderOrFollowerError('t', 2, 3), new LeaderNotAvailableError('t', 2)], b3: [] });
    const results = await produceRouted(broker, -1, batches([1, 2, 3]));
    expect(results.map((r) => [r.partition, r.baseOffset])).toEqual([[1, 0], [2, 0], [3, 0]]);
    expect(appended.sort()).toEqual(['t-1', 't-2', 't-3']);
  });

  it('every part refused: nothing was appended, the refusal is thrown for the client to decide', async () => {
    const refusal = new LeaderNotAvailableError('t', 2);
    const { broker, appended } = cluster({ b2: [refusal] });
    await expect(produceRouted(broker, -1, batches([2]))).rejects.toBe(refusal);
    expect(appended).toEqual([]);
  });

  it('a part that timed out is not sent again (it may have been appended): the timeout is thrown', async () => {
    const timeout = new TimeoutError('no answer');
    const { broker, appended } = cluster({ b2: [timeout], b3: [] });
    await expect(produceRouted(broker, -1, batches([1, 2, 3]))).rejects.toBe(timeout);
    expect(appended.sort()).toEqual(['t-1', 't-3']);
  });
});
