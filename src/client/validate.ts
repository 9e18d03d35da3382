// Argument checks for the public API, one style for every entry point: each check takes the
// value and the argument's name as the caller wrote it, returns the value typed, and throws
// InvalidArgumentError naming the argument and what it got. Entry points check everything
// before they act, so a refused call changes nothing, and pass on only checked values (a
// function or a cyclic object never reaches the worker as a DataCloneError).
import { InvalidArgumentError } from '../errors';

/** What a value is, for messages: `null`, `an array`, `a function`, `NaN`, `"text"`, `42`, ... */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? `a ${value.length}-character string` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return `a ${typeof value}`;
}

const fail = (what: string, expected: string, value: unknown): never => {
  throw new InvalidArgumentError(`${what} must be ${expected}, got ${describe(value)}`);
};

/** A plain object (not null, not an array); `undefined` gives `{}` when optional. */
export function object(value: unknown, what: string, optional = false): Record<string, unknown> {
  if (value === undefined && optional) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(what, 'an object', value);
  return value as Record<string, unknown>;
}

export function array(value: unknown, what: string): unknown[];
export function array(value: unknown, what: string, optional: true): unknown[] | undefined;
export function array(value: unknown, what: string, optional = false): unknown[] | undefined {
  if (value === undefined && optional) return undefined;
  if (!Array.isArray(value)) return fail(what, 'an array', value);
  return value;
}

export function string(value: unknown, what: string): string;
export function string(value: unknown, what: string, optional: true): string | undefined;
export function string(value: unknown, what: string, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value === '') return fail(what, 'a non-empty string', value);
  return value;
}

export function boolean(value: unknown, what: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') return fail(what, 'true or false', value);
  return value;
}

/** A whole number in [min, max]; `undefined` gives `fallback` when one is passed. */
export function integer(value: unknown, what: string, min: number, max?: number): number;
export function integer<F extends number | null | undefined>(value: unknown, what: string, min: number, max: number | undefined, fallback: F): number | F;
export function integer(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER, ...fallback: Array<number | null | undefined>): number | null | undefined {
  if (value === undefined && fallback.length > 0) return fallback[0];
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    return fail(what, max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`, value);
  }
  return value as number;
}

export function func<F extends (...args: never[]) => unknown>(value: unknown, what: string): F;
export function func<F extends (...args: never[]) => unknown>(value: unknown, what: string, optional: true): F | undefined;
export function func<F extends (...args: never[]) => unknown>(value: unknown, what: string, optional = false): F | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'function') return fail(what, 'a function', value);
  return value as F;
}

/** A finite number ≥ `min`; `undefined` gives `fallback`. */
export function number(value: unknown, what: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) return fail(what, `a number ≥ ${min}`, value);
  return value;
}

/** One of `values`; `undefined` gives `fallback` when one is passed. */
export function oneOf<T>(value: unknown, what: string, values: readonly T[], ...fallback: T[]): T {
  if (value === undefined && fallback.length > 0) return fallback[0]!;
  if (!values.includes(value as T)) return fail(what, `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`, value);
  return value as T;
}

/** A whole number written as a decimal string (≥ `min`), as KafkaJS writes offsets and timestamps; returned as a number. */
export function decimal(value: unknown, what: string, min: number): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) return fail(what, `a decimal string ≥ ${min}`, value);
  return n;
}

/** The last argument of async calls: `{ signal? }`. */
export function callOptions(value: unknown, what = 'options'): { signal?: AbortSignal } {
  const { signal } = object(value, what, true);
  if (signal === undefined) return {};
  if (!(signal instanceof AbortSignal)) return fail(`${what}.signal`, 'an AbortSignal', signal);
  return { signal };
}

/** A listener registration: `type` one of the emitter's events, `listener` a function. */
export function listener(type: unknown, fn: unknown, events: readonly string[]): void {
  oneOf(type, 'event type', events);
  func(fn, 'listener');
}
