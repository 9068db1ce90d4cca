import type { DataSource } from 'typeorm';
import { pause } from '@vigil/backoff';
import { sql } from './db/sql';

/** How often a feed looks for new rows, ms. */
const POLL_MS = 250;
/** Rows read at most per look. */
const BATCH = 500;
/**
 * A missing id may belong to a transaction that has not committed yet (ids are taken at insert,
 * rows become visible at commit): later rows wait this long for it before it is given up on
 * (a rolled-back insert leaves a gap for good), ms.
 */
const GAP_WAIT_MS = 2_000;

export interface ObserverEvent {
  observerId: string;
  name: string;
  kind: string;
  pool: string;
  event: string;
  status: string;
  serviceId: string | null;
  generation: number | null;
  reason: string | null;
  at: string;
}

export interface ServiceEvent {
  serviceId: string;
  name: string;
  event: string;
  reason: string | null;
  at: string;
}

export type FeedEvent =
  { id: string; type: 'observer'; data: ObserverEvent } | { id: string; type: 'service'; data: ServiceEvent };

/** Where a client is in both histories: `<observer event id>.<service event id>`. */
export interface FeedCursor {
  observers: number;
  services: number;
}

export function parseCursor(text: string | undefined): FeedCursor | undefined {
  const match = /^(\d{1,18})\.(\d{1,18})$/.exec(text ?? '');
  return match ? { observers: Number(match[1]), services: Number(match[2]) } : undefined;
}

const formatCursor = (cursor: FeedCursor) => `${cursor.observers}.${cursor.services}`;

/**
 * Reads one history table past an id, in id order, never skipping a row that commits late: a row
 * after a gap waits until the gap fills or GAP_WAIT_MS passed.
 */
class OrderedReader<R extends { id: string }> {
  private gapSince: number | undefined;

  constructor(
    public position: number,
    private readonly read: (after: number, limit: number) => Promise<R[]>,
  ) {}

  async next(): Promise<R[]> {
    const rows = await this.read(this.position, BATCH);
    const taken: R[] = [];
    for (const row of rows) {
      const id = Number(row.id);
      if (id !== this.position + 1) {
        this.gapSince ??= Date.now();
        if (Date.now() - this.gapSince < GAP_WAIT_MS) break;
      }
      this.gapSince = undefined;
      this.position = id;
      taken.push(row);
    }
    return taken;
  }
}

interface ObserverRow {
  id: string;
  observer_id: string;
  at: Date;
  event: string;
  status: string;
  service_id: string | null;
  generation: number | null;
  reason: string | null;
  name: string;
  kind: string;
  pool: string;
}

interface ServiceRow {
  id: string;
  service_id: string;
  at: Date;
  event: string;
  reason: string | null;
  name: string;
}

/**
 * The live event feed: every row of the observers' timeline (status changes, moves, generations,
 * verbs) and of the services' history (born, dead, draining), in order, from a cursor on. Any
 * manager serves it, active or standby: it reads the database the active one writes.
 */
export class EventFeed {
  constructor(private readonly db: DataSource) {}

  /** The cursor of the latest events: a client that gives none starts here. */
  async now(): Promise<FeedCursor> {
    const [row] = await sql<{ observers: string | null; services: string | null }>(
      this.db,
      `SELECT (SELECT max(id) FROM observer_events) AS observers, (SELECT max(id) FROM service_events) AS services`,
    );
    return { observers: Number(row?.observers ?? 0), services: Number(row?.services ?? 0) };
  }

  /**
   * Calls `emit` with each batch of events after `from`, until `signal` fires. With
   * `observerId`, only that observer's timeline.
   */
  async follow(
    from: FeedCursor,
    emit: (events: FeedEvent[]) => void,
    signal: AbortSignal,
    observerId?: string,
  ): Promise<void> {
    const observers = new OrderedReader<ObserverRow>(from.observers, (after, limit) =>
      sql<ObserverRow>(
        this.db,
        `SELECT e.id, e.observer_id, e.at, e.event, e.status, e.service_id, e.generation, e.reason, o.name, o.kind, o.pool
         FROM observer_events e JOIN observers o ON o.id = e.observer_id
         WHERE e.id > $1 ORDER BY e.id LIMIT $2`,
        [after, limit],
      ),
    );
    const services = new OrderedReader<ServiceRow>(from.services, (after, limit) =>
      sql<ServiceRow>(
        this.db,
        `SELECT e.id, e.service_id, e.at, e.event, e.reason, coalesce(s.name, '') AS name
         FROM service_events e LEFT JOIN services s ON s.id = e.service_id
         WHERE e.id > $1 ORDER BY e.id LIMIT $2`,
        [after, limit],
      ),
    );
    while (!signal.aborted) {
      const observersBefore = observers.position;
      const [observerRows, serviceRows] = await Promise.all([
        observers.next(),
        observerId ? Promise.resolve([]) : services.next(),
      ]);
      // Each event's id is the cursor right after it (the batch's service events come first),
      // so a client that resumes from any of them gets exactly what followed it.
      const events: FeedEvent[] = [];
      for (const row of serviceRows) {
        events.push({
          id: formatCursor({ observers: observersBefore, services: Number(row.id) }),
          type: 'service',
          data: {
            serviceId: row.service_id,
            name: row.name,
            event: row.event,
            reason: row.reason,
            at: row.at.toISOString(),
          },
        });
      }
      for (const row of observerRows) {
        if (observerId && row.observer_id !== observerId) continue;
        events.push({
          id: formatCursor({ observers: Number(row.id), services: services.position }),
          type: 'observer',
          data: {
            observerId: row.observer_id,
            name: row.name,
            kind: row.kind,
            pool: row.pool,
            event: row.event,
            status: row.status,
            serviceId: row.service_id,
            generation: row.generation,
            reason: row.reason,
            at: row.at.toISOString(),
          },
        });
      }
      if (events.length > 0) emit(events);
      const full = observerRows.length === BATCH || serviceRows.length === BATCH;
      if (!full) await pause(POLL_MS, signal);
    }
  }
}
