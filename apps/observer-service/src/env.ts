import os from 'node:os';
import { z } from 'zod';
import { PoolName } from '@vigil/contracts';
import { commonEnv, env, parseEnv } from '@vigil/config';
import { parseCidr } from '@vigil/egress';

const schema = z.object({
  ...commonEnv,
  /** Stable name of this service (one per container); a restart keeps it, the id changes. */
  SERVICE_NAME: z.string().min(1).max(200).default(os.hostname()),
  /** Observers run at once = AMQP prefetch; `auto` derives it from cores and the memory left (free, or under a container limit). */
  CAPACITY: z
    .union([z.literal('auto'), env.integer({ min: 1, max: 65_535 })], {
      error: 'must be "auto" or a whole number from 1 to 65535',
    })
    .default('auto'),
  POOLS: env.list(PoolName).default(['default']),
  /** How often the service reports itself on the state queue, ms. */
  HEARTBEAT_INTERVAL_MS: env.integer({ min: 100 }).default(5_000),
  /**
   * A heartbeat lists everything the service holds when that changed, when the manager asks, and
   * at least every this many heartbeats (1: every one).
   */
  HEARTBEAT_LISTING_EVERY: env.integer({ min: 1 }).default(12),
  /** How long a stopping observer may take to end after its AbortSignal fired, ms. */
  STOP_TIMEOUT_MS: env.integer({ min: 0 }).default(5_000),
  /**
   * On SIGTERM, how long the service waits for its observers to be moved (each new copy running
   * elsewhere before this one stops) before it stops the rest and hands their jobs back, ms.
   * 0: no moves, stop at once.
   */
  DRAIN_TIMEOUT_MS: env.integer({ min: 0 }).default(5_000),
  /** Restart policy for crashing observers (a kind may override it). */
  RESTART_MAX: env.integer({ min: 0 }).default(5),
  RESTART_INITIAL_DELAY_MS: env.integer({ min: 0 }).default(1_000),
  RESTART_MAX_DELAY_MS: env.integer({ min: 0 }).default(60_000),
  /** A run that lasted this long counts as healthy again and resets the restart count, ms. */
  RESTART_RESET_AFTER_MS: env.integer({ min: 0 }).default(5 * 60_000),
  /** How long a cancel is remembered, so a job delivered later for it is dropped, ms. */
  CANCEL_MEMORY_MS: env.integer({ min: 0 }).default(10 * 60_000),
  /**
   * A file touched after every heartbeat the broker confirmed: container health checks judge
   * the service by its age. Unset: none.
   */
  HEALTH_FILE: z.string().min(1).optional(),
  /** Comma-separated modules (paths or package names) whose exports add kinds. */
  KIND_MODULES: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part.length > 0),
    )
    .default([]),
  /** Where GET /metrics (Prometheus) is served; unset: nowhere. */
  METRICS_PORT: env.integer({ min: 0, max: 65_535 }).optional(),
  /** The address the metrics listen on: this machine only, unless told otherwise (0.0.0.0 in a container). */
  METRICS_HOST: z.string().default('127.0.0.1'),
  /** Ranges http-poll may reach although the egress policy refuses them (README, "Built-in kinds"). */
  HTTP_POLL_ALLOW_CIDRS: env.list(env.parsed(parseCidr)).default([]),
});

export type ServiceEnv = z.infer<typeof schema>;

export function loadEnv(source: NodeJS.ProcessEnv = process.env): ServiceEnv {
  return parseEnv(schema, source);
}
