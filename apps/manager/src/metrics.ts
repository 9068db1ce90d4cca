import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DataSource } from 'typeorm';
import { sql } from './db/sql';

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
    listings: new Counter({
      name: 'vigil_state_listings_total',
      help: 'Births and heartbeats that listed everything their service holds (superseded ones included)',
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
      help: 'Jobs published again at a new generation, by reason (lost: no live service held them; stalled-move: the next generation of a move never ran)',
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

/** A scrape reads the fleet's numbers from Postgres at most this often; scrapes in between reuse them, ms. */
const FLEET_READ_EVERY_MS = 5_000;

interface FleetNumbers {
  observers: { status: string; n: number }[];
  stale: number;
  liveServices: number;
  freeSlots: { pool: string; free: number }[];
  oldestHeldJobAgeS: number;
}

/**
 * Gauges of the fleet as the database has it: observers by status, live services, free slots per
 * pool, and the age of the job held longest (what rotation keeps down). Every manager serves
 * them, so any one scraped tells the same.
 */
export function addFleetGauges(metrics: Metrics, db: DataSource): void {
  let last: { at: number; numbers: Promise<FleetNumbers> } | undefined;
  const read = () => {
    if (!last || Date.now() - last.at > FLEET_READ_EVERY_MS) {
      last = { at: Date.now(), numbers: readFleet(db) };
      // A failed read is not kept: the next scrape tries again.
      const attempt = last;
      attempt.numbers.catch(() => {
        if (last === attempt) last = undefined;
      });
    }
    return last.numbers;
  };
  const { registry } = metrics;
  new Gauge({
    name: 'vigil_observers',
    help: 'Observers by status (Deleted ones are not counted)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const { observers } = await read();
      this.reset();
      for (const { status, n } of observers) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'vigil_observers_stale',
    help: 'Observers running and silent past their staleAfterMs, as their services reported',
    registers: [registry],
    async collect() {
      this.set((await read()).stale);
    },
  });
  new Gauge({
    name: 'vigil_services_live',
    help: 'Services alive (draining ones included)',
    registers: [registry],
    async collect() {
      this.set((await read()).liveServices);
    },
  });
  new Gauge({
    name: 'vigil_pool_free_slots',
    help: 'Free slots of the live services that are not draining, per pool',
    labelNames: ['pool'] as const,
    registers: [registry],
    async collect() {
      const { freeSlots } = await read();
      this.reset();
      for (const { pool, free } of freeSlots) this.set({ pool }, free);
    },
  });
  new Gauge({
    name: 'vigil_oldest_held_job_age_seconds',
    help: 'How long the job held longest has been held (since its create or its last move), seconds',
    registers: [registry],
    async collect() {
      this.set((await read()).oldestHeldJobAgeS);
    },
  });
}

async function readFleet(db: DataSource): Promise<FleetNumbers> {
  const [observers, stale, services, free, oldest] = await Promise.all([
    sql<{ status: string; n: number }>(
      db,
      `SELECT status, count(*)::int AS n FROM observers WHERE status <> 'Deleted' GROUP BY status`,
    ),
    sql<{ n: number }>(
      db,
      `SELECT count(*)::int AS n FROM observers WHERE status = 'Processing' AND stale_since IS NOT NULL`,
    ),
    sql<{ n: number }>(db, `SELECT count(*)::int AS n FROM services WHERE status = 'Alive'`),
    sql<{ pool: string; free: number }>(
      db,
      `SELECT p.pool, sum(s.free_slots)::int AS free
       FROM services s CROSS JOIN LATERAL jsonb_array_elements_text(s.pools) AS p(pool)
       WHERE s.status = 'Alive' AND s.draining_since IS NULL GROUP BY p.pool`,
    ),
    sql<{ age: number | null }>(
      db,
      `SELECT extract(epoch FROM now() - min(coalesce(moved_at, created_at)))::float8 AS age
       FROM observers WHERE status = 'Processing'`,
    ),
  ]);
  return {
    observers,
    stale: stale[0]?.n ?? 0,
    liveServices: services[0]?.n ?? 0,
    freeSlots: free,
    oldestHeldJobAgeS: oldest[0]?.age ?? 0,
  };
}
