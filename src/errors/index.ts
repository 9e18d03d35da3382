// The error tree, as KafkaJS has one: every error the project raises is a
// LetterboxError with a stable `code` (Kafka's error name where Kafka has one) and a
// `retriable` flag that retry logic reads instead of matching messages.

export interface LetterboxErrorOptions {
  /** Whether trying the same call again may succeed. Default false. */
  retriable?: boolean;
  cause?: unknown;
}

/**
 * Base of every error Letterbox raises.
 * @example if (error instanceof LetterboxError && error.retriable) retry();
 */
export class LetterboxError extends Error {
  override name = 'LetterboxError';
  /** Stable machine-readable code, e.g. `CORRUPT_MESSAGE`. */
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: LetterboxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/**
 * Bytes that claim to be a record batch but are not one: too short, wrong magic, a
 * length that disagrees with the bytes, a record that overruns its batch, a bad CRC.
 * @example try { verifyBatch(bytes) } catch (e) { if (e instanceof CorruptBatchError) truncateHere(); }
 */
export class CorruptBatchError extends LetterboxError {
  override name = 'CorruptBatchError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('CORRUPT_MESSAGE', message, options);
  }
}

/**
 * A batch whose compression codec Letterbox cannot (de)compress (snappy, lz4, zstd, or an unknown id).
 * @example if (e instanceof UnsupportedCompressionError) reply(e.code);
 */
export class UnsupportedCompressionError extends LetterboxError {
  override name = 'UnsupportedCompressionError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('UNSUPPORTED_COMPRESSION_TYPE', message, options);
  }
}

/**
 * A record or batch that cannot be encoded: an offset or timestamp out of range, a count over the format's limits.
 * @example encodeBatch({ ...batch, baseOffset: -5 }) // throws InvalidRecordError
 */
export class InvalidRecordError extends LetterboxError {
  override name = 'InvalidRecordError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('INVALID_RECORD', message, options);
  }
}

/**
 * A peer frame that cannot be accepted. `code` says why: `MESSAGE_TOO_LARGE` (over the
 * size limit), `UNSUPPORTED_VERSION` (a version of a message type this node does not
 * speak), `INVALID_REQUEST` (unknown message type), `CORRUPT_MESSAGE` (a body that does
 * not decode). The connection stays usable after any of them.
 * @example if (result.error instanceof FrameError) answer(result.requestId, result.error);
 */
export class FrameError extends LetterboxError {
  override name = 'FrameError';
}
