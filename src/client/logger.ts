// Logging as in KafkaJS: numeric levels, a logCreator that receives structured entries,
// namespaced loggers. Quiet by default.

export const logLevel = { NOTHING: 0, ERROR: 1, WARN: 2, INFO: 4, DEBUG: 5 } as const;
export type LogLevel = (typeof logLevel)[keyof typeof logLevel];

export interface LogEntry {
  namespace: string;
  level: LogLevel;
  label: 'ERROR' | 'WARN' | 'INFO' | 'DEBUG';
  log: { timestamp: string; logger: 'letterbox'; message: string } & Record<string, unknown>;
}

/** Called once per client with its level; returns the function that writes entries. */
export type LogCreator = (level: LogLevel) => (entry: LogEntry) => void;

export interface Logger {
  error(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  debug(message: string, extra?: Record<string, unknown>): void;
  /** A logger whose entries carry `name` as their namespace (and, optionally, its own level). */
  namespace(name: string, level?: LogLevel): Logger;
  setLogLevel(level: LogLevel): void;
}

/** The default: one console line per entry, structured fields as JSON. */
export const consoleLogCreator: LogCreator = () => (entry) => {
  const { message, timestamp, logger: _, ...fields } = entry.log;
  const line = `${timestamp} ${entry.label} [${entry.namespace}] ${message}${Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : ''}`;
  if (entry.level === logLevel.ERROR) console.error(line);
  else if (entry.level === logLevel.WARN) console.warn(line);
  else console.log(line);
};

const labels = { 1: 'ERROR', 2: 'WARN', 4: 'INFO', 5: 'DEBUG' } as const;

/**
 * A root logger at `level` writing through `logCreator`.
 * @example const logger = createLogger(logLevel.INFO, consoleLogCreator).namespace('Consumer');
 */
export function createLogger(level: LogLevel, logCreator: LogCreator = consoleLogCreator): Logger {
  const shared = { level, write: logCreator(level) };
  const make = (namespace: string, ownLevel: LogLevel | undefined): Logger => {
    const at = (entryLevel: Exclude<LogLevel, 0>) => (message: string, extra: Record<string, unknown> = {}) => {
      if (entryLevel > (ownLevel ?? shared.level)) return;
      shared.write({ namespace, level: entryLevel, label: labels[entryLevel], log: { ...extra, timestamp: new Date().toISOString(), logger: 'letterbox', message } });
    };
    return {
      error: at(logLevel.ERROR),
      warn: at(logLevel.WARN),
      info: at(logLevel.INFO),
      debug: at(logLevel.DEBUG),
      namespace: (name, nsLevel) => make(name, nsLevel ?? ownLevel),
      setLogLevel: (newLevel) => {
        shared.level = newLevel;
      },
    };
  };
  return make('', undefined);
}
