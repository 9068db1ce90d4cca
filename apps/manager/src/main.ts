import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '@vigil/config';
import { coerceError, createLogger, type Logger } from '@vigil/logging';
import type { DataSource } from 'typeorm';
import { ManagerBroker } from './broker';
import { createDataSource } from './db/data-source';
import { loadEnv } from './env';
import { createApp } from './http/app';
import { KindCatalog } from './kind-catalog';
import { createMetrics } from './metrics';
import { Observers } from './observers';
import { Reconciler } from './reconciler';
import { Services } from './services';
import { StateConsumer } from './state/consumer';
import { StateProjector } from './state/projector';

/** A barrier not back by then (a large backlog, say) is given up on; the next pass sends another. */
const STATE_BARRIER_TIMEOUT_MS = 10_000;

/** The database may come up after the manager (any start order must work): retry until it does. */
async function connectDatabase(db: DataSource, log: Logger): Promise<void> {
  for (let delayMs = 200; ; delayMs = Math.min(delayMs * 2, 5_000)) {
    try {
      await db.initialize();
      return;
    } catch (err) {
      log.warn({ err: coerceError(err), retryInMs: delayMs }, 'database unavailable; retrying');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

async function run(): Promise<void> {
  const env = loadEnv();
  const log = createLogger({ level: env.LOG_LEVEL, base: { app: 'manager' } });
  const metrics = createMetrics();
  const db = createDataSource(env.DATABASE_URL);
  await connectDatabase(db, log);
  const crashLoop = {
    deaths: env.CRASH_LOOP_DEATHS,
    windowMs: env.CRASH_LOOP_WINDOW_MS,
    recentStartMs: env.CRASH_LOOP_RECENT_START_MS,
  };

  const consumer = new StateConsumer({
    projector: new StateProjector(db, crashLoop),
    onEffects: async (effects) => {
      await broker.broadcastCancels(effects.cancel);
      await broker.broadcastCancels(effects.quarantine, { deadLetter: true });
      metrics.cancelsSent.inc({ why: 'runs-where-it-must-not' }, effects.cancel.length);
      metrics.cancelsSent.inc({ why: 'crash-loop' }, effects.quarantine.length);
    },
    metrics,
    log,
    onBarrier: (barrierId) => barriers.get(barrierId)?.(),
  });
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
  });
  await broker.start();

  const reconciler = new Reconciler({
    db,
    broker,
    metrics,
    log,
    intervalMs: env.RECONCILE_INTERVAL_MS,
    cancelRetryMs: env.CANCEL_RETRY_MS,
    heartbeatMisses: env.HEARTBEAT_MISSES,
    crashLoop,
    stateCaughtUp: () => consumer.idle,
    stateBarrier,
  });
  reconciler.start();

  const app = createApp({
    observers: new Observers(db, broker, new KindCatalog(db), log),
    services: new Services(db),
    metrics,
    log,
    readiness: async () => {
      const down: string[] = [];
      if (!broker.connected) down.push('broker');
      await db.query('SELECT 1').catch(() => down.push('database'));
      return down;
    },
  });
  const server = app.listen(env.PORT, env.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  log.info({ port, api: `http://127.0.0.1:${port}/api/v1`, prefix: env.VIGIL_PREFIX }, 'manager ready');

  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'manager stopping');
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    await closed;
    await reconciler.stop();
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
