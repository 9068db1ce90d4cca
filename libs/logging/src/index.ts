import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

export interface LoggerOptions {
  level: string;
  /** Bound to every line, e.g. `{ app: 'manager' }`. */
  base: Record<string, unknown>;
}

/**
 * JSON lines on stdout, or readable lines when stdout is a terminal (a person runs it, as with
 * `npm start`); child loggers carry their context (`log.child({ observerId })`).
 */
export function createLogger(options: LoggerOptions): Logger {
  const config: pino.LoggerOptions = {
    level: options.level,
    base: { pid: process.pid, ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
  };
  // Written off the event loop: a synchronous write to a pipe whose reader is slow (a log shipper,
  // a busy parent process) stalls every observer of the service until the reader catches up.
  // What is still buffered is written synchronously on exit.
  if (!process.stdout.isTTY) return pino(config, pino.destination({ dest: 1, sync: false }));
  // In this thread and synchronous: a line logged just before the process exits is not lost.
  return pino(
    config,
    pretty({ colorize: true, sync: true, singleLine: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' }),
  );
}

/** Turns anything thrown into an Error, so that logs and messages always have one. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}
