/** What the raft benchmark worker exposes through Comlink. */
export interface RaftWorkerApi {
  /**
   * Starts `brokers` brokers in this worker, each in `groups` raft groups, elects a leader
   * in every group, then lets `seconds` of idle time pass (ticks and heartbeats only);
   * returns the wall-clock ms that took, which is CPU time: the worker does nothing else.
   */
  idle(brokers: number, groups: number, seconds: number): Promise<{ ms: number; messages: number; frames: number }>;
}
