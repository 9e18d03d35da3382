/** What the raw BroadcastChannel worker exposes through Comlink: worker to worker across two tabs, no protocol of ours. */
export interface BroadcastWorkerApi {
  /** Answers on `channel`: echoes small messages; counts bulk bytes and grants credit every `ackBytes`. */
  serve(channel: string, ackBytes: number): void;
  /** Sends `totalBytes` in messages of `messageBytes`, with at most `windowBytes` ungranted; resolves with the ms from first send to the last grant. */
  bulk(channel: string, totalBytes: number, messageBytes: number, windowBytes: number): Promise<number>;
  /** `rounds` echoes of `messageBytes`, one at a time; each round trip in ms. */
  rtt(channel: string, rounds: number, messageBytes: number): Promise<number[]>;
}
