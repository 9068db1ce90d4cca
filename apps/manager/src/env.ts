import { z } from 'zod';
import { commonEnv, env, parseEnv } from '@vigil/config';
import { parseCidr } from '@vigil/egress';

const schema = z.object({
  ...commonEnv,
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' })
    .default('postgres://postgres@127.0.0.1:5432/vigil'),
  PORT: env.integer({ min: 0, max: 65_535 }).default(3000),
  /** Address the REST API listens on: this machine only, unless told otherwise (0.0.0.0 in a container). */
  HOST: z.string().default('127.0.0.1'),
  /** `off` lets every request in as an admin: for a trusted network only, and warned about at every start. */
  VIGIL_AUTH: z.enum(['on', 'off']).default('on'),
  /** An admin token for bootstrap and automation, beside the tokens kept in the database. */
  VIGIL_ADMIN_TOKEN: z
    .string()
    .min(32, 'must be at least 32 characters (e.g. openssl rand -hex 32)')
    .max(512, 'must be at most 512 characters')
    .regex(/^[A-Za-z0-9\-._~+/]+=*$/, 'letters, digits and -._~+/ only (it travels in a Bearer header)')
    .optional(),
  /** Creates and deletes each token may make a minute (per manager); 0 switches the limit off. */
  WRITE_RATE_LIMIT_PER_MINUTE: env.integer({ min: 0 }).default(6_000),
  /** Observers not Deleted, across all pools: a create beyond it is refused (422 quota-exceeded). */
  MAX_OBSERVERS: env.integer({ min: 1 }).default(200_000),
  /** Observers not Deleted in any one pool; MAX_OBSERVERS when unset. */
  MAX_OBSERVERS_PER_POOL: env.integer({ min: 1 }).optional(),
  /** A list page stops before its JSON passes this many bytes (it always holds one item), bytes. */
  LIST_MAX_BYTES: env.integer({ min: 1_024 }).default(4 * 1024 * 1024),
  /** How often the reconciler looks for dead services, unconfirmed cancels and unpublished jobs, ms. */
  RECONCILE_INTERVAL_MS: env.integer({ min: 10 }).default(1_000),
  /** An OnDeleting observer whose cancel went unconfirmed this long gets the cancel again, ms. */
  CANCEL_RETRY_MS: env.integer({ min: 10 }).default(5_000),
  /** A service silent for this many heartbeat intervals is marked dead. */
  HEARTBEAT_MISSES: env.integer({ min: 1 }).default(3),
  /**
   * An observer that should run and that no live service has reported for this long is lost, and
   * its job is published again (at the next generation), ms. Three default heartbeat intervals: a
   * service holding it has said so by then.
   */
  LOST_AFTER_MS: env.integer({ min: 100 }).default(15_000),
  /** The active manager's lease, ms: a standby takes over this long after the active one died. */
  MANAGER_LEASE_MS: env.integer({ min: 500 }).default(3_000),
  /** How often the lease is renewed, or sought by a standby, ms. */
  MANAGER_LEASE_RENEW_MS: env.integer({ min: 100 }).default(1_000),
  /** A request not answered in this long gets a 503, ms. */
  REQUEST_TIMEOUT_MS: env.integer({ min: 100 }).default(5_000),
  /**
   * An observer whose services die this many times (without a graceful stop) within
   * CRASH_LOOP_WINDOW_MS while running it is in a crash loop: Failed, its job dead-lettered.
   */
  CRASH_LOOP_DEATHS: env.integer({ min: 1 }).default(5),
  CRASH_LOOP_WINDOW_MS: env.integer({ min: 1 }).default(10 * 60_000),
  /**
   * A death counts against the observers that started on the service this recently: one that
   * ran there for long did not bring it down, whatever did.
   */
  CRASH_LOOP_RECENT_START_MS: env.integer({ min: 1 }).default(60_000),
  /** The latest observations the manager keeps per observer, for GET /observers/{id}/observations. */
  OBSERVATIONS_KEPT: env.integer({ min: 1, max: 1_000 }).default(10),
  /** Observers whose latest observations are kept at most (those heard from least recently go first). */
  OBSERVATIONS_OBSERVERS_KEPT: env.integer({ min: 1 }).default(5_000),
  /** Timeline rows, service events, deleted observers and dead services older than this are deleted, ms. */
  RETENTION_MS: env.integer({ min: 1_000 }).default(7 * 24 * 3_600_000),
  /** How often history past RETENTION_MS is looked for, ms. */
  PRUNE_INTERVAL_MS: env.integer({ min: 100 }).default(60_000),
  /** `off`: services are never rebalanced (a service that joins stays empty until others die or drain). */
  REBALANCE: z.enum(['on', 'off']).default('on'),
  /** Rebalancing moves started per second at most, across the fleet. */
  REBALANCE_MAX_MOVES_PER_S: env.integer({ min: 1 }).default(100),
  /** An observer moved this recently is not moved again to rebalance, ms. */
  REBALANCE_COOLDOWN_MS: env.integer({ min: 0 }).default(5 * 60_000),
  /** A pool is rebalanced once a service's count is off its even share by more than this, percent. */
  REBALANCE_TOLERANCE_PERCENT: env.integer({ min: 1, max: 100 }).default(10),
  /**
   * A job held this long is rotated (acked, a fresh one in its place), ms; 0: never. Unset: one
   * hour on quorum queues, whose log cannot be truncated past the oldest unacked message, and
   * never on classic ones.
   */
  ROTATE_AFTER_MS: env.integer({ min: 0 }).optional(),
  /** Rotations started per second at most, across the fleet. */
  ROTATE_MAX_PER_S: env.integer({ min: 1 }).default(50),
  /** Ranges a URL param (http-poll's url) may name by IP address although the egress policy refuses them. */
  HTTP_POLL_ALLOW_CIDRS: env.list(env.parsed(parseCidr)).default([]),
});

export type ManagerEnv = z.infer<typeof schema>;

export function loadEnv(source: NodeJS.ProcessEnv = process.env): ManagerEnv {
  return parseEnv(schema, source);
}
