/** What every producer, consumer and admin call that reaches the node takes besides its arguments. */
export interface CallOptions {
  signal?: AbortSignal;
}
