import type { RemoteNode } from '../context';

/** The topics a consumer subscribed to: what it joins its group with and where it starts without a committed offset. */
export class Subscriptions {
  readonly #subscriptions: Array<{ topic: string | RegExp; fromBeginning: boolean }> = [];

  add(topics: ReadonlyArray<string | RegExp>, fromBeginning: boolean): void {
    for (const topic of topics) this.#subscriptions.push({ topic, fromBeginning });
  }

  get isEmpty(): boolean {
    return this.#subscriptions.length === 0;
  }

  /**
   * The topics this member joins with: every topic subscribed by name, existing or not (so a
   * topic deleted and created again is assigned again), and the existing ones a RegExp matches.
   */
  async topics(node: RemoteNode): Promise<string[]> {
    const names = await node.listTopics();
    const matched = names.filter((name) => this.#subscriptions.some(({ topic }) => topic instanceof RegExp && topic.test(name)));
    const named = this.#subscriptions.flatMap(({ topic }) => (typeof topic === 'string' ? [topic] : []));
    return [...new Set([...named, ...matched])];
  }

  /** Kafka's auto.offset.reset for `topic`: earliest when a subscription matching it reads from the beginning, else latest. */
  fromBeginning(topic: string): boolean {
    return this.#subscriptions.some((s) => s.fromBeginning && (typeof s.topic === 'string' ? s.topic === topic : s.topic.test(topic)));
  }
}
