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

/** The browser refused to store more (IndexedDB QuotaExceededError). The write was not applied; retry after freeing space. */
export class StorageFullError extends LetterboxError {
  override name = 'StorageFullError';
  constructor(message = 'storage quota exceeded: the write was not applied', options: LetterboxErrorOptions = {}) {
    super('KAFKA_STORAGE_ERROR', message, { retriable: true, ...options });
  }
}

/** The store is closed: by `close()`, or because another tab upgraded the database. */
export class StorageClosedError extends LetterboxError {
  override name = 'StorageClosedError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('STORAGE_CLOSED', message, options);
  }
}

/** Any other failure of the underlying store. */
export class StorageError extends LetterboxError {
  override name = 'StorageError';
  constructor(message: string, options: LetterboxErrorOptions = {}) {
    super('KAFKA_STORAGE_ERROR', message, options);
  }
}
