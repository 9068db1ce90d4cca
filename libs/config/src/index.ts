import { z } from 'zod';

/** Thrown when the environment fails its schema; lists every bad variable at once. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Parses `env` against a zod object of SCREAMING_CASE variables. */
export function parseEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    // An empty variable means "not set", as in docker-compose files with `VAR=`.
    input[key] = value === '' ? undefined : value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const [variable = '(environment)', ...rest] = issue.path.map(String);
      const where = rest.length > 0 ? ` (item ${Number(rest[0]) + 1})` : '';
      const given = input[variable];
      return `${variable}: ${issue.message}${where}${given === undefined ? '' : ` (got ${shown(variable, given)})`}`;
    }),
  );
}

/** Variables whose values are secrets by their name: never printed, even when wrong. */
const SECRET_NAME = /(TOKEN|PASSWORD|PASS|SECRET|KEY)$/;

/**
 * A bad value as a config error may show it: a secret by name is hidden, and so is the
 * password part of anything that looks like a URL (AMQP_URL, DATABASE_URL).
 */
function shown(variable: string, value: string): string {
  if (SECRET_NAME.test(variable)) return `a value of ${value.length} characters, not shown`;
  return JSON.stringify(value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#:@]*:)[^/?#@]*@/i, '$1***@'));
}

/** Environment helpers shared by every app. */
export const env = {
  integer: (opts: { min?: number; max?: number } = {}) =>
    z
      .string()
      .regex(/^-?\d+$/, 'must be a whole number')
      .transform(Number)
      .pipe(
        z
          .int()
          .min(opts.min ?? Number.MIN_SAFE_INTEGER)
          .max(opts.max ?? Number.MAX_SAFE_INTEGER),
      ),
  list: <T extends z.ZodType<unknown, string>>(item: T) =>
    z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((part) => part.trim())
          .filter((part) => part.length > 0),
      )
      .pipe(z.array(item).min(1, 'must list at least one value')),
  /** A value `parse` turns into something else; what it throws is the problem reported. */
  parsed: <T>(parse: (text: string) => T) =>
    z.string().transform((text, ctx) => {
      try {
        return parse(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
        return z.NEVER;
      }
    }),
  amqpUrl: () => z.url({ protocol: /^amqps?$/, error: 'must be an amqp:// or amqps:// URL' }),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
};

/** Variables every Vigil app reads (see README, "Configuration"). */
export const commonEnv = {
  AMQP_URL: env.amqpUrl().default('amqp://guest:guest@127.0.0.1:5672'),
  VIGIL_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _, . and -')
    .default('vigil'),
  LOG_LEVEL: env.logLevel().default('info'),
  /** AMQP connection heartbeat, seconds: how fast the broker notices a dead or frozen peer. */
  AMQP_HEARTBEAT_S: env.integer({ min: 1, max: 600 }).default(5),
  /** classic (default) or quorum: must be the same for every app sharing a prefix. */
  QUEUE_TYPE: z.enum(['classic', 'quorum']).default('classic'),
};
