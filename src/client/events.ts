// Instrumentation events as in KafkaJS: namespaced names, `on()` returns a function that
// removes the listener, and payloads are only built when someone listens.

export interface InstrumentationEvent<P> {
  id: number;
  type: string;
  timestamp: number;
  payload: P;
}

/** A typed emitter over an event map (event name → payload type). */
export class Instrumentation<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(event: InstrumentationEvent<never>) => void>>();
  #nextId = 0;

  /**
   * Listens to `type`; returns a function that stops listening.
   * @example const off = consumer.on(consumer.events.FETCH, (e) => console.log(e.payload.numberOfBatches));
   */
  on<K extends keyof Events>(type: K, listener: (event: InstrumentationEvent<Events[K]>) => void): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    set.add(listener as (event: InstrumentationEvent<never>) => void);
    this.#listeners.set(type, set);
    return () => void set.delete(listener as (event: InstrumentationEvent<never>) => void);
  }

  /**
   * Whether anyone listens to any of `types`.
   * @example if (instrumentation.listens(['producer.network.request'])) trace();
   */
  listens(types: ReadonlyArray<keyof Events>): boolean {
    return types.some((type) => (this.#listeners.get(type)?.size ?? 0) > 0);
  }

  /** Emits `type` if anyone listens; `payload` is called only then. */
  emit<K extends keyof Events>(type: K, payload: () => Events[K]): void {
    const set = this.#listeners.get(type);
    if (set === undefined || set.size === 0) return;
    const event: InstrumentationEvent<Events[K]> = { id: this.#nextId++, type: String(type), timestamp: Date.now(), payload: payload() };
    for (const listener of set) {
      try {
        (listener as (e: InstrumentationEvent<Events[K]>) => void)(event);
      } catch {
        // a listener's failure must not break the client that emits
      }
    }
  }
}
