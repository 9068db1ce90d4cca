import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** What the service's gauges read when scraped. */
export interface ServiceGaugeSources {
  held: () => number;
  running: () => number;
  draining: () => boolean;
  observationsWaitingBytes: () => number;
  capacity: number;
}

/** An observer service's Prometheus metrics, served on METRICS_PORT when set. */
export function createServiceMetrics(sources: ServiceGaugeSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vigil_service_' });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('vigil_service_observers_running', 'Observers running here now', sources.running);
  gauge('vigil_service_jobs_held', 'Jobs held here (running, waiting, parked)', sources.held);
  gauge('vigil_service_capacity', 'Observers this service runs at once at most (its prefetch)', () => sources.capacity);
  gauge('vigil_service_draining', '1 while it drains (an operator, or a SIGTERM)', () => (sources.draining() ? 1 : 0));
  gauge(
    'vigil_service_observations_waiting_bytes',
    'Observations waiting for the broker to take them (publish backpressure), bytes',
    sources.observationsWaitingBytes,
  );
  return {
    registry,
    restarts: new Counter({
      name: 'vigil_service_observer_restarts_total',
      help: 'Observers that crashed and were restarted in-process',
      registers: [registry],
    }),
    observations: new Counter({
      name: 'vigil_service_observations_total',
      help: 'Observations published (sent), or dropped because the broker was behind',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    moves: new Counter({
      name: 'vigil_service_moves_total',
      help: 'Observers moved away from this service, by why (stop, drain, rebalance, rotate)',
      labelNames: ['purpose'] as const,
      registers: [registry],
    }),
  };
}

export type ServiceMetrics = ReturnType<typeof createServiceMetrics>;

/** Serves GET /metrics on `host:port`; resolves with the port it listens on. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  server.unref();
  return server;
}

export function listeningPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
