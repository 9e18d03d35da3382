import { InvalidArgumentError, NotConnectedError } from '../errors';
import type { TopicSpec } from '../node/api';
import type { Letterbox } from './letterbox';
import { abortable } from './node-connection';
import type { CallOptions } from './producer';

export interface PartitionMetadata {
  partitionErrorCode: number;
  partitionId: number;
  leader: number;
  replicas: number[];
  isr: number[];
  offlineReplicas: number[];
}

export interface TopicMetadata {
  name: string;
  partitions: PartitionMetadata[];
}

/**
 * Topic administration, KafkaJS-style (the rest of KafkaJS's admin follows).
 * @example const admin = letterbox.admin(); await admin.connect();
 */
export class Admin {
  readonly #letterbox: Letterbox;
  #connected = false;

  constructor(letterbox: Letterbox) {
    this.#letterbox = letterbox;
  }

  /** @example await admin.connect(); */
  async connect(): Promise<void> {
    await this.#letterbox.node();
    this.#connected = true;
  }

  /** @example await admin.disconnect(); */
  async disconnect(): Promise<void> {
    this.#connected = false;
  }

  /**
   * Creates topics; resolves true if all were created, false if any existed already.
   * @example await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 4, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] });
   */
  async createTopics(options: { topics: TopicSpec[]; validateOnly?: boolean }, call: CallOptions = {}): Promise<boolean> {
    const node = await this.#node();
    if (typeof options !== 'object' || options === null || !Array.isArray(options.topics)) throw new InvalidArgumentError('createTopics takes { topics: [...] }');
    const created = await abortable(node.createTopics(options.topics, options.validateOnly ?? false), call.signal);
    return created.every(Boolean);
  }

  /**
   * Names of all topics.
   * @example const names = await admin.listTopics();
   */
  async listTopics(call: CallOptions = {}): Promise<string[]> {
    return abortable((await this.#node()).listTopics(), call.signal);
  }

  /**
   * Partitions and leaders of the named topics (all if none named).
   * @example const { topics } = await admin.fetchTopicMetadata({ topics: ['orders'] });
   */
  async fetchTopicMetadata(options: { topics?: string[] } = {}, call: CallOptions = {}): Promise<{ topics: TopicMetadata[] }> {
    const node = await this.#node();
    const states = await abortable(node.describeTopics(options.topics), call.signal);
    return {
      topics: states.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionErrorCode: 0, partitionId: p.partition, leader: p.leader, replicas: [p.leader], isr: [p.leader], offlineReplicas: [] })),
      })),
    };
  }

  async #node() {
    if (!this.#connected) throw new NotConnectedError('the admin client is not connected: call connect() first');
    return this.#letterbox.node();
  }
}
