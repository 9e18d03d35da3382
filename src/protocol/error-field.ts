// Errors in peer bodies (FORMATS.md § Cluster message fields, error): class name, code,
// message, retriable, and the error's own fields of primitive value; read back as an
// instance of its class, so a typed error crosses brokers as it crosses the worker boundary.

import * as errors from '../errors';
import { FrameError, LetterboxError } from '../errors';
import type { FieldReader, FieldWriter } from './fields';

const corrupt = (message: string): FrameError => new FrameError('CORRUPT_MESSAGE', message);

/** Every LetterboxError class by `errorName` (KafkaJS's names included), as src/errors/transfer.ts finds them to revive errors across threads. */
const ERROR_CLASSES = new Map<string, typeof LetterboxError>(
  Object.values(errors)
    .filter((value): value is typeof LetterboxError => typeof value === 'function' && (value === LetterboxError || value.prototype instanceof LetterboxError))
    .map((cls) => [cls.errorName, cls]),
);
/** Own fields carried in the fixed part of the layout, or not at all. */
const ERROR_OWN_FIELDS = new Set(['name', 'message', 'stack', 'cause', 'code', 'retriable']);
const VALUE_TAGS = { undefined: 0, false: 1, true: 2, number: 3, string: 4 } as const;

type FieldValue = string | number | boolean | undefined;
const isFieldValue = (value: unknown): value is FieldValue => value === undefined || ['string', 'number', 'boolean'].includes(typeof value);

/** Writes `error`. @example writeError(w, new NotControllerError('not me', hint)) */
export function writeError(w: FieldWriter, error: LetterboxError): void {
  const className = (error.constructor as typeof LetterboxError).errorName;
  w.string(className).string(error.code).string(error.message).bool(error.retriable);
  // Fields of other values (arrays, objects) do not occur in the errors the controller and the data path answer with, and are not carried.
  const fields = Object.entries(error).filter((field): field is [string, FieldValue] => !ERROR_OWN_FIELDS.has(field[0]) && isFieldValue(field[1]));
  w.array(fields, ([key, value]) => {
    w.string(key);
    if (typeof value === 'string') w.int8(VALUE_TAGS.string).string(value);
    else if (typeof value === 'number') w.int8(VALUE_TAGS.number).float64(value);
    else w.int8(value === undefined ? VALUE_TAGS.undefined : value ? VALUE_TAGS.true : VALUE_TAGS.false);
  });
}

function readFieldValue(r: FieldReader): FieldValue {
  const tag = r.int8('field value type');
  switch (tag) {
    case VALUE_TAGS.undefined:
      return undefined;
    case VALUE_TAGS.false:
    case VALUE_TAGS.true:
      return tag === VALUE_TAGS.true;
    case VALUE_TAGS.number:
      return r.float64('field value');
    case VALUE_TAGS.string:
      return r.string('field value');
    default:
      throw corrupt(`unknown field value type ${tag}`);
  }
}

/** Rebuilds the error as an instance of its class (LetterboxError for a class this node lacks), without running a constructor. */
export function readError(r: FieldReader): LetterboxError {
  const className = r.string('error class');
  const cls = ERROR_CLASSES.get(className) ?? LetterboxError;
  const error = Object.create(cls.prototype) as LetterboxError;
  const define = (key: string, value: FieldValue, enumerable = true): void => {
    Object.defineProperty(error, key, { value, enumerable, writable: true, configurable: true });
  };
  const code = r.string('error code');
  define('message', r.string('error message'), false);
  define('name', className);
  define('code', code);
  define('retriable', r.bool('retriable'));
  for (const [key, value] of r.array('error fields', () => [r.string('field name'), readFieldValue(r)] as const)) {
    // Refuses duplicates and anything the instance or its prototypes have (constructor, toString, …).
    if (ERROR_OWN_FIELDS.has(key) || key in error) throw corrupt(`error field "${key}" is reserved or repeated`);
    define(key, value);
  }
  return error;
}

