import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  level: string;
  /** Bound to every line, e.g. `{ app: 'manager' }`. */
  base: Record<string, unknown>;
}

/** JSON lines on stdout; child loggers carry their context (`log.child({ observerId })`). */
export function createLogger(options: LoggerOptions): Logger {
  return pino({
    level: options.level,
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
  });
}

/** Turns anything thrown into an Error, so that logs and messages always have one. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}
