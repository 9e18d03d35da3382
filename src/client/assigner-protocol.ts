// KafkaJS's AssignerProtocol: Kafka's consumer-protocol member metadata and assignment, encoded
// byte for byte as KafkaJS does (src/protocol/consumer-protocol.ts), for code that reads or
// writes them. Letterbox's own assignors run in the broker; custom assigners are not taken yet.
import { InvalidArgumentError } from '../errors';
import { decodeMemberAssignment, decodeMemberMetadata, encodeMemberAssignment, encodeMemberMetadata } from '../protocol';
import { Bytes } from './messages';
import * as check from './validate';

const bytesArgument = (value: unknown, what: string): Uint8Array => {
  if (value instanceof Uint8Array) return value;
  throw new InvalidArgumentError(`${what} must be a Uint8Array (or Buffer), got ${check.describe(value)}`);
};
const userDataOf = (value: unknown) => (value === undefined ? new Uint8Array(0) : value === null ? null : bytesArgument(value, 'userData'));
const int16 = (value: unknown) => check.integer(value, 'version', -0x8000, 0x7fff);

/**
 * Encodes and decodes consumer-protocol payloads as KafkaJS's AssignerProtocol; decoded bytes are Bytes (Buffer-like).
 * @example const metadata = AssignerProtocol.MemberMetadata.encode({ version: 0, topics: ['orders'] });
 */
export const AssignerProtocol = {
  MemberMetadata: {
    encode(metadata: { version: number; topics: string[]; userData?: Uint8Array | null }): Bytes {
      const m = check.object(metadata, 'metadata');
      const topics = check.array(m['topics'], 'topics').map((t, i) => check.string(t, `topics[${i}]`));
      return Bytes.view(encodeMemberMetadata({ version: int16(m['version']), topics, userData: userDataOf(m['userData']) }));
    },
    decode(buffer: Uint8Array): { version: number; topics: string[]; userData: Bytes | null } {
      const decoded = decodeMemberMetadata(bytesArgument(buffer, 'buffer'));
      return { ...decoded, userData: Bytes.view(decoded.userData) };
    },
  },
  MemberAssignment: {
    encode(assignment: { version: number; assignment: Record<string, number[]>; userData?: Uint8Array | null }): Bytes {
      const a = check.object(assignment, 'assignment');
      const byTopic = Object.fromEntries(
        Object.entries(check.object(a['assignment'], 'assignment.assignment')).map(([topic, partitions]) => [
          topic,
          check.array(partitions, `assignment["${topic}"]`).map((p, i) => check.integer(p, `assignment["${topic}"][${i}]`, 0, 0x7fffffff)),
        ]),
      );
      return Bytes.view(encodeMemberAssignment({ version: int16(a['version']), assignment: byTopic, userData: userDataOf(a['userData']) }));
    },
    decode(buffer: Uint8Array): { version: number; assignment: Record<string, number[]>; userData: Bytes | null } | null {
      const decoded = decodeMemberAssignment(bytesArgument(buffer, 'buffer'));
      return decoded === null ? null : { ...decoded, userData: Bytes.view(decoded.userData) };
    },
  },
};
