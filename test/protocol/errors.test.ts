import { describe, expect, it } from 'vitest';
import { CorruptBatchError, FrameError, InvalidRecordError, LetterboxError, UnsupportedCompressionError } from '../../src/errors';

describe('protocol errors', () => {
  it.each([
    [new CorruptBatchError('m'), 'CorruptBatchError', 'CORRUPT_MESSAGE'],
    [new UnsupportedCompressionError('m'), 'UnsupportedCompressionError', 'UNSUPPORTED_COMPRESSION_TYPE'],
    [new InvalidRecordError('m'), 'InvalidRecordError', 'INVALID_RECORD'],
    [new FrameError('MESSAGE_TOO_LARGE', 'm'), 'FrameError', 'MESSAGE_TOO_LARGE'],
  ])('%s is a LetterboxError named %s with code %s, not retriable', (error, name, code) => {
    expect(error).toBeInstanceOf(LetterboxError);
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.retriable).toBe(false);
  });

  it('keeps the cause', () => {
    const cause = new TypeError('inner');
    expect(new CorruptBatchError('outer', { cause }).cause).toBe(cause);
  });
});
