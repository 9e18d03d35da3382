// Kafka's consumer protocol against KafkaJS's own AssignerProtocol: the same bytes both ways,
// on random inputs; malformed bytes give InvalidRecordError, never a RangeError.
import fc from 'fast-check';
import { AssignerProtocol } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { InvalidRecordError } from '../../src/errors';
import { decodeMemberAssignment, decodeMemberMetadata, encodeMemberAssignment, encodeMemberMetadata } from '../../src/protocol';

const topic = fc.string({ minLength: 1, maxLength: 20 });
const userData = fc.uint8Array({ maxLength: 16 });
const version = fc.integer({ min: 0, max: 3 });
const bytesOf = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);

describe('consumer protocol', () => {
  it('MemberMetadata: Letterbox encodes what KafkaJS encodes, and each decodes the other', () => {
    fc.assert(
      fc.property(version, fc.array(topic, { maxLength: 5 }), userData, (v, topics, data) => {
        const ours = encodeMemberMetadata({ version: v, topics, userData: data });
        const theirs = bytesOf(AssignerProtocol.MemberMetadata.encode({ version: v, topics, userData: Buffer.from(data) }));
        expect(ours).toEqual(theirs);
        expect(decodeMemberMetadata(theirs)).toEqual({ version: v, topics, userData: data });
        const decoded = AssignerProtocol.MemberMetadata.decode(Buffer.from(ours))!;
        expect([decoded.version, decoded.topics, new Uint8Array(decoded.userData)]).toEqual([v, topics, data]);
      }),
    );
  });

  it('MemberAssignment: the same bytes as KafkaJS both ways; empty bytes are no assignment', () => {
    fc.assert(
      fc.property(version, fc.dictionary(topic, fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 6 }), { maxKeys: 4 }), userData, (v, assignment, data) => {
        const ours = encodeMemberAssignment({ version: v, assignment, userData: data });
        const theirs = bytesOf(AssignerProtocol.MemberAssignment.encode({ version: v, assignment, userData: Buffer.from(data) }));
        expect(ours).toEqual(theirs);
        expect(decodeMemberAssignment(theirs)).toEqual({ version: v, assignment, userData: data });
        expect(AssignerProtocol.MemberAssignment.decode(Buffer.from(ours))?.assignment).toEqual(assignment);
      }),
    );
    expect(decodeMemberAssignment(new Uint8Array(0))).toBeNull();
    // fast-check seed 254817553 (CI): a topic named `__proto__` (a valid Kafka name) set the decoded object's prototype.
    const proto = JSON.parse('{"__proto__":[3]}') as Record<string, number[]>;
    const decoded = decodeMemberAssignment(encodeMemberAssignment({ version: 0, assignment: proto, userData: null }))!;
    expect(Object.getPrototypeOf(decoded.assignment)).toBe(Object.prototype);
    expect(Object.entries(decoded.assignment)).toEqual([['__proto__', [3]]]);
  });

  it('malformed bytes: truncated, negative or huge counts, trailing bytes, bad UTF-8 — InvalidRecordError', () => {
    const valid = encodeMemberAssignment({ version: 0, assignment: { orders: [0, 1] }, userData: null });
    for (let cut = 2; cut < valid.length; cut++) expect(() => decodeMemberAssignment(valid.subarray(0, cut))).toThrow(InvalidRecordError);
    expect(() => decodeMemberAssignment(Uint8Array.of(...valid, 0))).toThrow(InvalidRecordError);
    expect(() => decodeMemberMetadata(Uint8Array.of(0, 0, 0xff, 0xff, 0xff, 0xfe))).toThrow(InvalidRecordError);
    expect(() => decodeMemberMetadata(Uint8Array.of(0, 0, 0x7f, 0xff, 0xff, 0xff))).toThrow(InvalidRecordError);
    expect(() => decodeMemberMetadata(Uint8Array.of(0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff))).toThrow(InvalidRecordError);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        for (const decode of [decodeMemberMetadata, decodeMemberAssignment]) {
          try {
            decode(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(InvalidRecordError);
          }
        }
      }),
    );
  });
});
