import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '@vigil/config';
import { EgressPolicy } from '@vigil/egress';
import { createLogger } from '@vigil/logging';
import { resolveCapacity } from './capacity';
import { loadEnv } from './env';
import { listeningPort, serveMetrics } from './metrics';
import { KindRegistry, loadKindModules } from './kind-registry';
import { builtInKinds } from './kinds';
import { ObserverService } from './service';

async function run(): Promise<void> {
  const env = loadEnv();
  const log = createLogger({ level: env.LOG_LEVEL, base: { app: 'observer-service' } });
  const version = (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string })
    .version;
  const service = new ObserverService({
    amqpUrl: env.AMQP_URL,
    prefix: env.VIGIL_PREFIX,
    queueType: env.QUEUE_TYPE,
    amqpHeartbeatS: env.AMQP_HEARTBEAT_S,
    name: env.SERVICE_NAME,
    capacity: resolveCapacity(env.CAPACITY),
    pools: env.POOLS,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    listingEveryBeats: env.HEARTBEAT_LISTING_EVERY,
    healthFile: env.HEALTH_FILE,
    stopTimeoutMs: env.STOP_TIMEOUT_MS,
    drainTimeoutMs: env.DRAIN_TIMEOUT_MS,
    restartPolicy: {
      maxRestarts: env.RESTART_MAX,
      initialDelayMs: env.RESTART_INITIAL_DELAY_MS,
      maxDelayMs: env.RESTART_MAX_DELAY_MS,
      resetAfterMs: env.RESTART_RESET_AFTER_MS,
    },
    cancelMemoryMs: env.CANCEL_MEMORY_MS,
    kinds: new KindRegistry([
      ...builtInKinds(new EgressPolicy(env.HTTP_POLL_ALLOW_CIDRS)),
      ...loadKindModules(env.KIND_MODULES),
    ]),
    version,
    log,
  });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'stopping gracefully');
    service.stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await service.start();
  if (env.METRICS_PORT !== undefined) {
    const server = await serveMetrics(service.metrics.registry, env.METRICS_HOST, env.METRICS_PORT);
    log.info({ metrics: `http://${env.METRICS_HOST}:${listeningPort(server)}/metrics` }, 'metrics served');
  }
  log.info({ serviceId: service.id }, 'observer service ready');
}

run().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`observer-service: ${err.message}`);
  else console.error('observer-service failed to start:', err);
  process.exit(1);
});
