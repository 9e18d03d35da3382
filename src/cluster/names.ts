import { InvalidTopicError } from '../errors';

/** The internal topic of consumer groups' committed offsets (Kafka's name), created by the controller on demand. */
export const OFFSETS_TOPIC = '__consumer_offsets';

/**
 * Whether `name` is one of Letterbox's internal topics: created only by brokers (the
 * controller accepts the name, a user's createTopics does not) and never deleted by users.
 * @example isInternalTopic('__consumer_offsets') // → true
 */
export const isInternalTopic = (name: string): boolean => name === OFFSETS_TOPIC;

/** Kafka's limits: 249 characters of [a-zA-Z0-9._-], not "." or "..". */
const TOPIC_NAME_MAX = 249;

/**
 * Throws InvalidTopicError unless `name` is a legal user topic name (Kafka's rules; names
 * starting with `__` are reserved for Letterbox's internal topics).
 * @example validateTopicName('orders.v1');
 */
export function validateTopicName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new InvalidTopicError(`a topic name must be a string, got ${typeof name}`);
  if (name.length === 0) throw new InvalidTopicError('a topic name cannot be empty');
  if (name.length > TOPIC_NAME_MAX) throw new InvalidTopicError(`topic name is ${name.length} characters; at most ${TOPIC_NAME_MAX}`);
  if (name === '.' || name === '..') throw new InvalidTopicError(`"${name}" is not a legal topic name`);
  if (!/^[a-zA-Z0-9._-]+$/.test(name)) throw new InvalidTopicError(`topic name "${name}" may contain only ASCII letters, digits, ".", "_" and "-"`);
  if (name.startsWith('__')) throw new InvalidTopicError(`topic names starting with "__" are reserved for internal topics: "${name}"`);
}

