// KafkaJS's `retry` option, shared by the producer and the consumer: how often a failed call is
// tried again and how long to wait between tries (exponential, capped at maxRetryTime).
import * as check from './validate';

export interface RetryOptions {
  /** Tries after the first. Default 5. */
  retries?: number;
  /** Wait before the first retry, in ms. Default 300. */
  initialRetryTime?: number;
  /** Longest wait between retries, in ms. Default 30000. */
  maxRetryTime?: number;
  /** Growth of the wait per retry. Default 2. */
  multiplier?: number;
  /** Consumer only: asked, once retries are spent, whether the consumer restarts (resolve true) or stops. Default: it restarts on a retriable LetterboxError, stops on any other error. */
  restartOnFailure?: (error: Error) => Promise<boolean>;
}

export interface Retry {
  retries: number;
  restartOnFailure: ((error: Error) => Promise<boolean>) | undefined;
  /** Wait before retry number `attempt` (0 for the first). */
  delay(attempt: number): number;
}

/**
 * Checks a `retry` option and fills in KafkaJS's defaults.
 * @example const retry = retryOf(config.retry, 'retry'); await sleep(retry.delay(0));
 */
export function retryOf(value: unknown, what: string): Retry {
  const r = check.object(value, what, true);
  const initial = check.integer(r['initialRetryTime'], `${what}.initialRetryTime`, 0, undefined, 300);
  const max = check.integer(r['maxRetryTime'], `${what}.maxRetryTime`, 0, undefined, 30_000);
  const multiplier = check.number(r['multiplier'], `${what}.multiplier`, 1, 2);
  return {
    retries: check.integer(r['retries'], `${what}.retries`, 0, undefined, 5),
    restartOnFailure: check.func<(error: Error) => Promise<boolean>>(r['restartOnFailure'], `${what}.restartOnFailure`, true),
    delay: (attempt) => Math.min(max, initial * multiplier ** attempt),
  };
}
