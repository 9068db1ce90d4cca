import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
    duplicateRuns: new Counter({
      name: 'vigil_duplicate_runs_total',
      help: 'Copies of an observer released because another ran: duplicate (same generation) or stale-generation',
      labelNames: ['cause'] as const,
      registers: [registry],
    }),
    moves: new Counter({
      name: 'vigil_moves_total',
      help: 'Planned moves: published at a new generation, then completed (the copy left behind released)',
      labelNames: ['step'] as const,
      registers: [registry],
    }),
    movesPublished: new Counter({
      name: 'vigil_moves_published_total',
      help: 'Planned moves published, by why: stop (SIGTERM), drain (an operator), rebalance, rotate',
      labelNames: ['purpose'] as const,
      registers: [registry],
    }),
    shedRequests: new Counter({
      name: 'vigil_shed_requests_total',
      help: 'Observers the manager asked services to shed, by why: rebalance or rotate',
      labelNames: ['purpose'] as const,
      registers: [registry],
    }),
    jobsRepublished: new Counter({
      name: 'vigil_jobs_republished_total',
      help: 'Jobs published again at a new generation, by reason (lost: no live service held them)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    active: new Gauge({
      name: 'vigil_manager_active',
      help: '1 while this manager is the active one (applies state and reconciles), 0 while it stands by',
      registers: [registry],
    }),
    brokerBlocked: new Gauge({
      name: 'vigil_broker_blocked',
      help: '1 while the broker blocks this manager from publishing (a memory or disk alarm)',
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
