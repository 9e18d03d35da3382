import { transferHandlers, type TransferHandler } from 'comlink';
import * as errors from './errors';

// Comlink's own 'throw' handler keeps only name, message and stack of an Error. This one
// carries the project's errors whole — class, code, retriable and their own fields — so a
// typed error thrown in the worker is the same typed error on the page.

interface SerializedError {
  isError: true;
  value: { className: string; name: string; message: string; stack?: string; fields: Record<string, unknown> } | { plain: unknown };
}

const classes = new Map<string, typeof errors.LetterboxError>(
  Object.values(errors)
    .filter((value): value is typeof errors.LetterboxError => typeof value === 'function' && (value === errors.LetterboxError || value.prototype instanceof errors.LetterboxError))
    .map((cls) => [cls.errorName, cls]),
);

function serialize(error: unknown): SerializedError['value'] {
  if (!(error instanceof Error)) return { plain: error };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (key !== 'name' && key !== 'message' && key !== 'stack') {
      try {
        fields[key] = structuredClone(value);
      } catch {
        // a field that cannot cross threads is dropped rather than failing the call
      }
    }
  }
  const className = error instanceof errors.LetterboxError ? (error.constructor as typeof errors.LetterboxError).errorName : 'Error';
  return { className, name: error.name, message: error.message, ...(error.stack === undefined ? {} : { stack: error.stack }), fields };
}

function revive(value: SerializedError['value']): unknown {
  if ('plain' in value) return value.plain;
  const cls = classes.get(value.className);
  const error: Error = cls === undefined ? new Error(value.message) : (Object.create(cls.prototype) as Error);
  Object.assign(error, value.fields);
  Object.defineProperty(error, 'message', { value: value.message, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(error, 'name', { value: value.name, writable: true, configurable: true, enumerable: false });
  if (value.stack !== undefined) Object.defineProperty(error, 'stack', { value: value.stack, writable: true, configurable: true, enumerable: false });
  return error;
}

/**
 * Replaces Comlink's 'throw' handler so that Letterbox errors cross the worker boundary
 * with their class, `code`, `retriable` and fields. Call on both sides (page and worker).
 * @example registerErrorTransfer(); expose(api);
 */
export function registerErrorTransfer(): void {
  const builtin = transferHandlers.get('throw') as TransferHandler<{ value: unknown }, SerializedError> | undefined;
  if (builtin === undefined) throw new Error('comlink has no "throw" transfer handler to replace');
  transferHandlers.set('throw', {
    canHandle: builtin.canHandle, // values Comlink marks as thrown
    serialize: ({ value }) => [{ isError: true, value: serialize(value) }, []],
    deserialize: (serialized) => {
      throw revive(serialized.value);
    },
  } satisfies TransferHandler<{ value: unknown }, SerializedError>);
}
