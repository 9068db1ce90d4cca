import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Backoff, pause } from '@vigil/backoff';
import { ConfigError } from '@vigil/config';
import { EgressPolicy } from '@vigil/egress';
import { coerceError, createLogger, type Logger } from '@vigil/logging';
import type { DataSource } from 'typeorm';
import { ManagerBroker } from './broker';
import { createDataSource } from './db/data-source';
import { loadEnv } from './env';
import { createApp } from './http/app';
import { KindCatalog } from './kind-catalog';
import { EventFeed } from './event-feed';
import { Leadership } from './leadership';
import { ObservationLog } from './observation-log';
import { MovePlanner } from './move-planner';
import { addFleetGauges, createMetrics } from './metrics';
import { Observers } from './observers';
import { Pruner } from './pruner';
import { ObserverVerbs } from './observer-verbs';
import { Reconciler } from './reconciler';
import { Services } from './services';
import { Tokens } from './tokens';
import { StateConsumer } from './state/consumer';
import type { Effects } from './state/placement';
import { StateProjector } from './state/projector';

/**
 * An observation larger than this is kept as a note of its size, so the kept ones take 100 MB
 * at worst with the defaults (10 each for 5,000 observers); a few MB as observers usually publish.
 */
const OBSERVATION_KEPT_MAX_BYTES = 2 * 1024;

/** Quorum queues rotate jobs held this long unless ROTATE_AFTER_MS says otherwise, ms. */
const DEFAULT_QUORUM_ROTATE_AFTER_MS = 60 * 60_000;

/** A barrier not back by then (a large backlog, say) is given up on; the next pass sends another. */
const STATE_BARRIER_TIMEOUT_MS = 10_000;

/** The database may come up after the manager (any start order must work): retry until it does. */
async function connectDatabase(db: DataSource, log: Logger): Promise<void> {
  const backoff = new Backoff({ initialDelayMs: 200, maxDelayMs: 5_000 });
  for (;;) {
    try {
      await db.initialize();
      return;
    } catch (err) {
      const retryInMs = backoff.next();
      log.warn({ err: coerceError(err), retryInMs }, 'database unavailable; retrying');
      await pause(retryInMs);
    }
  }
}

async function run(): Promise<void> {
  const env = loadEnv();
  if (env.MANAGER_LEASE_RENEW_MS >= env.MANAGER_LEASE_MS) {
    throw new ConfigError([
      `MANAGER_LEASE_RENEW_MS: must be less than MANAGER_LEASE_MS (${env.MANAGER_LEASE_MS}) (got ${env.MANAGER_LEASE_RENEW_MS})`,
    ]);
  }
  const log = createLogger({ level: env.LOG_LEVEL, base: { app: 'manager' } });
  if (env.VIGIL_AUTH === 'off') {
    log.warn({}, 'VIGIL_AUTH=off: the API lets every request in as an admin; use this on a trusted network only');
  } else if (env.VIGIL_ADMIN_TOKEN === undefined) {
    log.info({}, 'no VIGIL_ADMIN_TOKEN: only tokens kept in the database are accepted');
  }
  const metrics = createMetrics();
  const db = createDataSource(env.DATABASE_URL);
  await connectDatabase(db, log);
  addFleetGauges(metrics, db);
  const crashLoop = {
    deaths: env.CRASH_LOOP_DEATHS,
    windowMs: env.CRASH_LOOP_WINDOW_MS,
    recentStartMs: env.CRASH_LOOP_RECENT_START_MS,
  };

  const leadership: Leadership = new Leadership({
    db,
    leaseMs: env.MANAGER_LEASE_MS,
    renewMs: env.MANAGER_LEASE_RENEW_MS,
    log,
    onActive: async () => {
      metrics.active.set(1);
      await broker.consumeState();
      reconciler.start();
      planner.start();
      pruner.start();
    },
    onStandby: async () => {
      metrics.active.set(0);
      await pruner.stop();
      await planner.stop();
      await reconciler.stop();
      await broker.stopConsumingState();
      consumer.forget();
    },
  });

  const observations = new ObservationLog({
    perObserver: env.OBSERVATIONS_KEPT,
    observers: env.OBSERVATIONS_OBSERVERS_KEPT,
    maxBytes: OBSERVATION_KEPT_MAX_BYTES,
  });
  const catalog = new KindCatalog(db, log, new EgressPolicy(env.HTTP_POLL_ALLOW_CIDRS));
  const consumer = new StateConsumer({
    projector: new StateProjector((apply) => leadership.transaction(apply), crashLoop),
    onEffects: async (effects) => {
      await sendEffects(effects).catch((err: unknown) => {
        // What was not sent is sent again once the services' listings show it still needed.
        broker.askForListings().catch(() => undefined);
        throw err;
      });
    },
    metrics,
    log,
    onBarrier: (barrierId) => barriers.get(barrierId)?.(),
    onBorn: (born) => catalog.announce(born.serviceId, born.kinds),
  });
  const sendEffects = async (effects: Effects): Promise<void> => {
    await broker.broadcastCancels(effects.cancel);
    await broker.broadcastCancels(effects.quarantine, { deadLetter: true });
    metrics.cancelsSent.inc({ why: 'runs-where-it-must-not' }, effects.cancel.length);
    metrics.cancelsSent.inc({ why: 'crash-loop' }, effects.quarantine.length);
    // A move of many observers completes in a few batches: one line each, not one per observer
    // (the timeline has every observer's).
    const moved = effects.release.filter((release) => release.reason === 'moved');
    if (moved.length > 0) {
      metrics.moves.inc({ step: 'completed' }, moved.length);
      const from = [...new Set(moved.map((release) => release.serviceId))];
      log.info({ moved: moved.length, from }, 'moved; releasing the copies left on their old services');
    }
    for (const release of effects.release) {
      if (release.reason === 'moved') continue;
      if (release.reason === 'paused') {
        metrics.cancelsSent.inc({ why: 'paused' });
        log.info(release, `a paused observer runs on ${release.serviceId}; releasing it`);
        continue;
      }
      const overlapMs = Math.max(0, Date.now() - Date.parse(release.overlapSince));
      metrics.duplicateRuns.inc({ cause: release.reason });
      log.warn(
        { ...release, overlapMs },
        `two copies of an observer ran; releasing the one on ${release.serviceId} (${release.reason})`,
      );
    }
    await broker.sendReleases(effects.release);
    await Promise.all(effects.moves.map(startMove));
    await Promise.all(effects.drains.map(({ serviceId, draining }) => broker.sendServiceDrain(serviceId, draining)));
    // A restart whose publish fails leaves the stale copy running, still flagged stale.
    await Promise.allSettled(effects.restarts.map((job) => broker.publishJob(job)));
    if (effects.listings.length > 0) await broker.askForListings(effects.listings);
  };
  /**
   * Publishes the next generation of each observer a service asked to move, and tells the service
   * which ones are moving (see `ManagerBroker.publishMove`).
   */
  const startMove = async (move: Effects['moves'][number]): Promise<void> => {
    const { serviceId, purpose, jobs } = move;
    const outcomes = await broker.publishMove(serviceId, jobs, move.requestId);
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') return;
      log.warn(
        { err: coerceError(outcome.reason), observerId: jobs[i]?.observerId },
        'could not publish a move; the lost-job audit publishes it again once its copy stopped',
      );
    });
    const moving = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    metrics.moves.inc({ step: 'published' }, moving);
    metrics.movesPublished.inc({ purpose }, moving);
    log.info({ serviceId, purpose, moving, of: jobs.length }, 'moving observers off a service');
  };
  /** Barriers on their way through the state queue, by id: what to call when each comes back. */
  const barriers = new Map<string, () => void>();
  const stateBarrier = async (): Promise<boolean> => {
    const barrierId = randomUUID();
    const back = new Promise<boolean>((resolve) => {
      barriers.set(barrierId, () => resolve(true));
      setTimeout(() => resolve(false), STATE_BARRIER_TIMEOUT_MS).unref();
    });
    try {
      await broker.publishBarrier(barrierId);
      return await back;
    } finally {
      barriers.delete(barrierId);
    }
  };
  const broker: ManagerBroker = new ManagerBroker({
    url: env.AMQP_URL,
    prefix: env.VIGIL_PREFIX,
    queueType: env.QUEUE_TYPE,
    heartbeatS: env.AMQP_HEARTBEAT_S,
    log,
    onStateMessage: (delivery) => consumer.push(delivery),
    onObservation: (routingKey, body) => observations.record(routingKey, body),
    onBlocked: (reason) => metrics.brokerBlocked.set(reason === undefined ? 0 : 1),
  });
  await broker.start();

  const reconciler = new Reconciler({
    db,
    transaction: (apply) => leadership.transaction(apply),
    broker,
    metrics,
    log,
    intervalMs: env.RECONCILE_INTERVAL_MS,
    cancelRetryMs: env.CANCEL_RETRY_MS,
    heartbeatMisses: env.HEARTBEAT_MISSES,
    lostAfterMs: env.LOST_AFTER_MS,
    crashLoop,
    stateCaughtUp: () => consumer.idle,
    stateBarrier,
    stateApplied: () => consumer.whenIdle(),
  });

  const pruner = new Pruner({ db, log, retentionMs: env.RETENTION_MS, intervalMs: env.PRUNE_INTERVAL_MS });
  const planner = new MovePlanner({
    db,
    broker,
    metrics,
    log,
    intervalMs: env.RECONCILE_INTERVAL_MS,
    rebalance: {
      enabled: env.REBALANCE === 'on',
      maxMovesPerS: env.REBALANCE_MAX_MOVES_PER_S,
      cooldownMs: env.REBALANCE_COOLDOWN_MS,
      tolerance: env.REBALANCE_TOLERANCE_PERCENT / 100,
    },
    rotation: {
      afterMs: env.ROTATE_AFTER_MS ?? (env.QUEUE_TYPE === 'quorum' ? DEFAULT_QUORUM_ROTATE_AFTER_MS : 0),
      maxPerS: env.ROTATE_MAX_PER_S,
    },
  });

  const app = createApp({
    observers: new Observers(
      db,
      broker,
      catalog,
      log,
      {
        total: env.MAX_OBSERVERS,
        perPool: env.MAX_OBSERVERS_PER_POOL ?? env.MAX_OBSERVERS,
      },
      env.LIST_MAX_BYTES,
    ),
    verbs: new ObserverVerbs(db, broker, catalog, log),
    feed: new EventFeed(db),
    observations,
    tokens: new Tokens(db, { adminToken: env.VIGIL_ADMIN_TOKEN }),
    auth: env.VIGIL_AUTH,
    writeRateLimitPerMinute: env.WRITE_RATE_LIMIT_PER_MINUTE,
    services: new Services(db, broker),
    metrics,
    log,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    readiness: async () => {
      const down: string[] = [];
      if (!broker.connected) down.push('broker');
      await db.query('SELECT 1').catch(() => down.push('database'));
      return down;
    },
    role: () => ({
      managerId: leadership.managerId,
      active: leadership.active,
      epoch: leadership.currentEpoch ?? null,
      brokerBlocked: broker.blocked ?? null,
    }),
  });
  const server = app.listen(env.PORT, env.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  leadership.start();
  log.info(
    { port, api: `http://127.0.0.1:${port}/api/v1`, prefix: env.VIGIL_PREFIX, managerId: leadership.managerId },
    'manager ready',
  );

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'manager stopping');
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    await closed;
    // The lease is given up, so that a standby takes over at once.
    await leadership.stop();
    consumer.stop();
    await broker.close().catch((err: unknown) => log.warn({ err: coerceError(err) }, 'broker close failed'));
    await db.destroy();
    log.info({}, 'manager stopped');
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stop(signal).then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err: coerceError(err) }, 'stop failed');
          process.exit(1);
        },
      );
    });
  }
}

run().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`manager: ${err.message}`);
  else console.error('manager failed to start:', err);
  process.exit(1);
});
