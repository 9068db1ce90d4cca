import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The manager's Prometheus metrics, on one registry served at GET /metrics. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vigil_manager_' });
  return {
    registry,
    stateEvents: new Counter({
      name: 'vigil_state_events_total',
      help: 'State events applied, by type; an observers.started counts as the observer.started events it carries',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    stateMessages: new Counter({
      name: 'vigil_state_messages_total',
      help: 'State messages applied (an observers.started counts once)',
      registers: [registry],
    }),
    invalidMessages: new Counter({
      name: 'vigil_invalid_state_messages_total',
      help: 'State messages that failed validation and were dead-lettered',
      registers: [registry],
    }),
    cancelsSent: new Counter({
      name: 'vigil_cancels_sent_total',
      help: 'Cancel broadcasts, first sends and retries',
      labelNames: ['why'] as const,
      registers: [registry],
    }),
    servicesDeclaredDead: new Counter({
      name: 'vigil_services_declared_dead_total',
      help: 'Services the manager marked dead, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'vigil_http_request_duration_seconds',
      help: 'REST API response times',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
