import { expose } from 'comlink';
import type { BroadcastWorkerApi } from './broadcast-api';

// The raw BroadcastChannel baseline's two ends. Messages are { echo } (answered at once) or
// { bulk } (counted; the receiver grants credit back every ackBytes). The bulk sender keeps a
// window, as any sane use must: BroadcastChannel has no backpressure, and an unbounded flood
// slowed it several-fold here (3–89 MB/s over three 32 MiB runs).

type Message = { echo: ArrayBuffer } | { bulk: ArrayBuffer } | { credit: number };

const api: BroadcastWorkerApi = {
  serve(name, ackBytes) {
    const channel = new BroadcastChannel(name);
    let unacked = 0;
    channel.onmessage = (event: MessageEvent<Message>) => {
      const message = event.data;
      if ('echo' in message) channel.postMessage(message);
      else if ('bulk' in message) {
        unacked += message.bulk.byteLength;
        if (unacked >= ackBytes) {
          channel.postMessage({ credit: unacked } satisfies Message);
          unacked = 0;
        }
      }
    };
  },
  async bulk(name, totalBytes, messageBytes, windowBytes) {
    const channel = new BroadcastChannel(name);
    const payload = new Uint8Array(messageBytes).fill(7).buffer;
    let sent = 0;
    let granted = 0;
    let wake: (() => void) | undefined;
    channel.onmessage = (event: MessageEvent<Message>) => {
      if ('credit' in event.data) granted += event.data.credit;
      wake?.();
    };
    const start = performance.now();
    while (granted < totalBytes) {
      while (sent < totalBytes && sent - granted + messageBytes <= windowBytes) {
        channel.postMessage({ bulk: payload } satisfies Message);
        sent += messageBytes;
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
    const ms = performance.now() - start;
    channel.close();
    return ms;
  },
  async rtt(name, rounds, messageBytes) {
    const channel = new BroadcastChannel(name);
    const times: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const start = performance.now();
      await new Promise<void>((resolve) => {
        channel.onmessage = () => resolve();
        channel.postMessage({ echo: new Uint8Array(messageBytes).buffer } satisfies Message);
      });
      times.push(performance.now() - start);
    }
    channel.close();
    return times;
  },
};

expose(api);
