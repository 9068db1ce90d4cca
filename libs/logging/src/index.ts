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

/** A child logger made on first use; `bindings` are there to add to a line of the parent's. */
export interface LazyChild {
  (): Logger;
  readonly bindings: Record<string, unknown>;
}

/**
 * A child costs about 600 bytes of heap for as long as it is referenced; a service keeps one
 * per observer it runs, and most observers never log again after they start.
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): LazyChild {
  let child: Logger | undefined;
  return Object.assign(() => (child ??= parent.child(bindings)), { bindings });
}

/** Turns anything thrown into an Error, so that logs and messages always have one. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}
