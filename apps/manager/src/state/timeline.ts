import type { DataSource, EntityManager } from 'typeorm';
import type { ObserverStatus } from '../db/statuses';
import { sql } from '../db/sql';

export interface TimelineEntry {
  observerId: string;
  event: string;
  status: ObserverStatus;
  serviceId: string | null;
  reason?: string | null;
  /** The generation the row is about (the copy started, released or republished); by default the observer's. */
  generation?: number | null;
}

/** Appends a row to the services' history (the event feed shows it). */
export async function recordServiceEvent(
  db: EntityManager | DataSource,
  serviceId: string,
  event: 'born' | 'died' | 'draining' | 'undrained',
  reason: string | null = null,
): Promise<void> {
  await sql(db, `INSERT INTO service_events (service_id, event, reason) VALUES ($1, $2, $3)`, [
    serviceId,
    event,
    reason,
  ]);
}

/** Appends timeline rows in one statement, in the order given (rows are read back by id). */
export async function recordTimeline(db: EntityManager, entries: readonly TimelineEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await sql(
    db,
    `INSERT INTO observer_events (observer_id, event, status, service_id, reason, generation)
     SELECT e.observer_id, e.event, e.status, e.service_id, e.reason, coalesce(e.generation, o.generation)
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::int[]) WITH ORDINALITY
          AS e(observer_id, event, status, service_id, reason, generation, position)
     LEFT JOIN observers o ON o.id = e.observer_id
     ORDER BY e.position`,
    [
      entries.map((e) => e.observerId),
      entries.map((e) => e.event),
      entries.map((e) => e.status),
      entries.map((e) => e.serviceId),
      entries.map((e) => e.reason ?? null),
      entries.map((e) => e.generation ?? null),
    ],
  );
}
