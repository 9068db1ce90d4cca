import { z } from 'zod';

/** What a kind may log; pino loggers satisfy it. */
export interface KindLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Everything `run` gets: its params, its AbortSignal and a way to publish observations. */
export interface ObserverContext<P> {
  readonly observerId: string;
  readonly name: string;
  readonly kind: string;
  readonly pool: string;
  readonly params: P;
  /** Fires when the observer must stop: cancelled, moved, or its service stopping. */
  readonly signal: AbortSignal;
  /** 0 on the first run; n after n in-process restarts following a crash. */
  readonly attempt: number;
  /**
   * This placement's number: 1 when created, higher each time the manager placed the observer
   * anew. A copy of an older generation may still be running elsewhere for a moment (a service
   * that lost its broker connection and has not noticed yet); guard side effects with it.
   */
  readonly generation: number;
  /**
   * `fencingToken(observerId, generation)`: one string that orders copies of this observer as
   * their generations do. Store it beside what the observer writes, and refuse a write that
   * carries a lower one (README, "Writing a kind").
   */
  readonly fencingToken: string;
  /**
   * Publishes `data` on the observations exchange (routing key `<kind>.<observerId>`). Returns
   * false when the observation was dropped: the service is sending faster than the broker takes,
   * and this observer already has its share of observations waiting.
   */
  readonly publish: (data: unknown) => boolean;
  readonly log: KindLogger;
}

/** How a crashing observer is restarted in-process before it is marked Failed. */
export interface RestartPolicy {
  /** Restarts after the first crash before the observer fails for good. */
  maxRestarts: number;
  /** Delay before the first restart, ms; doubles with every restart up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** A run that lasted this long (ms) resets the restart count. */
  resetAfterMs: number;
}

export interface ObserverKind<S extends z.ZodType = z.ZodType> {
  /** Lowercase letters, digits and dashes, e.g. `http-poll`. */
  readonly name: string;
  readonly description?: string;
  /** Validates params: by the manager on create (as JSON Schema) and by the service on start. */
  readonly params: S;
  /**
   * Runs the observer until `ctx.signal` fires, then resolves. A throw (or a return before the
   * signal fired) counts as a crash and is retried under the restart policy.
   */
  run(ctx: ObserverContext<z.infer<S>>): Promise<void>;
  readonly restartPolicy?: Partial<RestartPolicy>;
  /**
   * Whether two copies may run for a moment while the observer moves (default `allowed`): a
   * planned move starts the new copy before it stops the old one, so nothing is missed in
   * between. `never` for a kind whose side effects must not come from two copies at once (and
   * that cannot guard them with `ctx.fencingToken`): its moves stop the old copy first.
   */
  readonly overlap?: 'allowed' | 'never';
  /**
   * Takes new params live (`PATCH /observers/{id}`): called on the running copy with the new
   * params, already checked against `params`; `ctx.params` has them from then on. A kind without
   * it is restarted with the new params instead. It runs in the observer's own attempt: a throw
   * counts as a crash.
   */
  onParams?(params: z.infer<S>, ctx: ObserverContext<z.infer<S>>): void;
  /**
   * An observer of this kind that publishes nothing for this long is reported stale (a flag
   * beside its status, an event, a metric) while its service heartbeats on: a watcher whose
   * socket hangs open. A create may set its own `staleAfterMs`. The flag clears on its next
   * publish. Unset: never stale.
   */
  readonly staleAfterMs?: number;
  /** A stale observer is restarted at a new generation (a fresh run, maybe elsewhere). */
  readonly restartWhenStale?: boolean;
}

/** Digits of the generation in a fencing token: every safe integer fits. */
const GENERATION_DIGITS = 16;

/**
 * `<observerId>/<generation, zero-padded>`: compared as strings, tokens of one observer order
 * as their generations do, and tokens of different observers never compare equal.
 */
export function fencingToken(observerId: string, generation: number): string {
  return `${observerId}/${String(generation).padStart(GENERATION_DIGITS, '0')}`;
}

/** Declares a kind; the identity function that gives `run` its params type. */
export function defineKind<S extends z.ZodType>(kind: ObserverKind<S>): ObserverKind<S> {
  return kind;
}

/**
 * Marks a params field secret (JSON Schema's `writeOnly`): the manager shows its value as "***"
 * in every answer and the service keeps it out of its logs, while `run` gets it as given. It is
 * still stored and sent in plain text (README, "Secret params").
 */
export function secret<T extends z.ZodType>(schema: T): T {
  return schema.meta({ writeOnly: true });
}

/** Resolves when `signal` fires (at once if it already has). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * The longest delay Node's timers take (about 24.8 days); a longer one fires after 1 ms, with a
 * warning. Bound a kind's interval params by it when they feed `setInterval` or `setTimeout`.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Waits `ms` (any length), or less if `signal` fires first; resolves to false when aborted. */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  let left = ms;
  for (; left > MAX_TIMER_MS; left -= MAX_TIMER_MS) if (!(await wait(MAX_TIMER_MS, signal))) return false;
  return wait(left, signal);
}

function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export { z };
export { Backoff, backoffDelay, type BackoffPolicy } from '@vigil/backoff';
