import { REDACTED } from '@vigil/contracts';
import type { KindLogger } from '@vigil/observer-sdk';

/** Nesting followed into a logged object; deeper parts are logged as they are. */
const MAX_DEPTH = 8;

/** `text` with every secret in it replaced by REDACTED (`secrets` longest first). */
export function scrubText(text: string, secrets: readonly string[]): string {
  return secrets.reduce((scrubbed, secret) => scrubbed.replaceAll(secret, REDACTED), text);
}

/** A copy of what is about to be logged, without the secrets; errors keep their name and stack. */
export function scrub(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value, secrets);
  if (typeof value !== 'object' || value === null || depth >= MAX_DEPTH) return value;
  if (value instanceof Error) {
    const copy = new Error(scrubText(value.message, secrets));
    copy.name = value.name;
    copy.stack = value.stack === undefined ? undefined : scrubText(value.stack, secrets);
    return copy;
  }
  if (Array.isArray(value)) return value.map((item) => scrub(item, secrets, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, scrub(item, secrets, depth + 1)]));
}

/**
 * A logger that scrubs the observer's secret params from everything it is given: what a kind
 * logs, and the errors it throws, may hold them (a URL with its token, a failed login).
 */
export function scrubbingLogger(log: KindLogger, secrets: readonly string[]): KindLogger {
  const wrap =
    (level: keyof KindLogger) =>
    (obj: object, msg?: string): void => {
      const scrubbed = scrub(obj, secrets) as object;
      if (msg === undefined) log[level](scrubbed);
      else log[level](scrubbed, scrubText(msg, secrets));
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
