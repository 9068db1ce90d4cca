import type { DataSource, EntityManager } from 'typeorm';
import type { StateEvent, StateEventOf } from '@vigil/contracts';
import type { ObserverStatus } from '../db/statuses';
import { recordTimeline, type TimelineEntry } from './timeline';
import { sql } from '../db/sql';

/** What applying an event asks of the broker once its transaction has committed. */
export interface Effects {
  /** Observers that run where they must not (deleted, being deleted, or unknown): cancel them. */
  cancel: string[];
  /** Observers found in a crash loop: cancel them and dead-letter their jobs. */
  quarantine: string[];
}

type Started = StateEventOf<'observer.started'>;
/** What the projector applies: a batch of starts is applied as the starts it holds. */
type Applied = Exclude<StateEvent, StateEventOf<'observers.started'>>;
type OtherEvent = Exclude<Applied, Started>;

/** When an observer counts as killing the services that run it. */
export interface CrashLoopPolicy {
  deaths: number;
  windowMs: number;
  /** A death counts against the observers that started on the service within this. */
  recentStartMs: number;
}

/**
 * Applies state events to the manager's tables. Events from different services interleave in
 * any order, so every change to an observer's placement is conditional on what the event's
 * service can speak for: a service may only release the observers recorded on it, and may only
 * claim observers that are waiting or recorded on a service that is gone.
 */
export class StateProjector {
  constructor(
    private readonly db: DataSource,
    private readonly crashLoop: CrashLoopPolicy,
  ) {}

  /** Applies events in order, in one transaction: all of them or none. */
  apply(events: readonly StateEvent[]): Promise<Effects> {
    return this.db.transaction(async (tx) => {
      const effects: Effects = { cancel: [], quarantine: [] };
      for (const run of inRuns(withoutStaleHeartbeats(events.flatMap(unbatched)))) {
        if (Array.isArray(run)) await this.observersStarted(tx, run, effects);
        else await this.applyOne(tx, run, effects);
      }
      return { cancel: [...new Set(effects.cancel)], quarantine: [...new Set(effects.quarantine)] };
    });
  }

  private async applyOne(tx: EntityManager, event: OtherEvent, effects: Effects): Promise<void> {
    switch (event.type) {
      case 'service.born':
        await this.serviceBorn(tx, event, effects);
        break;
      case 'service.heartbeat':
        await this.serviceHeartbeat(tx, event, effects);
        break;
      case 'service.died':
        await markServiceDead(tx, event.serviceId, `stopped: ${event.reason}`, undefined);
        break;
      case 'observer.stopped':
        await this.observerStopped(tx, event);
        break;
      case 'observer.failed':
        await this.observerFailed(tx, event);
        break;
      case 'manager.barrier':
        break;
    }
  }

  private async serviceBorn(tx: EntityManager, e: StateEventOf<'service.born'>, effects: Effects): Promise<void> {
    // A service killed without a word comes back under the same name with a new id.
    const replaced = await sql<{ id: string }>(
      tx,
      `SELECT id FROM services WHERE name = $1 AND id <> $2 AND status = 'Alive'`,
      [e.name, e.serviceId],
    );
    for (const { id } of replaced) {
      const { quarantined } = await markServiceDead(tx, id, `replaced by ${e.serviceId} (same name)`, this.crashLoop);
      effects.quarantine.push(...quarantined);
    }

    await sql(
      tx,
      `INSERT INTO services (id, name, status, capacity, pools, kinds, version, host, pid, started_at,
                             heartbeat_interval_ms, running, free_slots, last_seen_at, died_at, death_reason)
       VALUES ($1, $2, 'Alive', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now(), NULL, NULL)
       ON CONFLICT (id) DO UPDATE SET
         name = EXCLUDED.name, status = 'Alive', capacity = EXCLUDED.capacity, pools = EXCLUDED.pools,
         kinds = EXCLUDED.kinds, version = EXCLUDED.version, host = EXCLUDED.host, pid = EXCLUDED.pid,
         started_at = EXCLUDED.started_at, heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms,
         running = EXCLUDED.running, free_slots = EXCLUDED.free_slots, last_seen_at = now(),
         died_at = NULL, death_reason = NULL`,
      [
        e.serviceId,
        e.name,
        e.capacity,
        JSON.stringify(e.pools),
        JSON.stringify(e.kinds),
        e.version,
        e.host,
        e.pid,
        e.startedAt,
        e.heartbeatIntervalMs,
        e.running.length,
        Math.max(0, e.capacity - e.running.length),
      ],
    );
    // A re-announce after a lost connection: what it no longer runs went back to the queue.
    await releaseObservers(tx, e.serviceId, e.running, 'service reconnected without it');
    await this.claimRunning(tx, e.serviceId, e.running, effects);
  }

  private async serviceHeartbeat(
    tx: EntityManager,
    e: StateEventOf<'service.heartbeat'>,
    effects: Effects,
  ): Promise<void> {
    const updated = await sql<unknown>(
      tx,
      `UPDATE services SET status = 'Alive', running = $2, free_slots = $3, capacity = $4,
              heartbeat_interval_ms = $5, last_seen_at = now(), died_at = NULL, death_reason = NULL,
              heap_used_bytes = $6, rss_bytes = $7
       WHERE id = $1 RETURNING id`,
      [
        e.serviceId,
        e.running.length,
        e.freeSlots,
        e.capacity,
        e.heartbeatIntervalMs,
        e.memory?.heapUsedBytes ?? null,
        e.memory?.rssBytes ?? null,
      ],
    );
    if (updated.length === 0) {
      // Its birth was never seen (e.g. the database was reset): know it from the heartbeat
      // until it is born again.
      await sql(
        tx,
        `INSERT INTO services (id, name, status, capacity, pools, kinds, heartbeat_interval_ms, running, free_slots, last_seen_at)
         VALUES ($1, $2, 'Alive', $3, '[]', '[]', $4, $5, $6, now())`,
        [e.serviceId, e.name, e.capacity, e.heartbeatIntervalMs, e.running.length, e.freeSlots],
      );
    }
    await releaseObservers(tx, e.serviceId, e.running, 'not in its heartbeat');
    await this.claimRunning(tx, e.serviceId, e.running, effects);
  }

  /**
   * Records what a service says it runs; anything deleted or unknown among it gets cancelled,
   * and a crash loop whose job is still out gets its dead-lettering cancel again.
   */
  private async claimRunning(
    tx: EntityManager,
    serviceId: string,
    running: readonly string[],
    effects: Effects,
  ): Promise<void> {
    if (running.length === 0) return;
    const claimed = await sql<{ id: string }>(
      tx,
      `UPDATE observers o SET status = 'Processing', service_id = $1, updated_at = now(), last_error = NULL
       WHERE o.id = ANY($2::uuid[])
         AND o.status IN ('Created', 'Processing', 'Failed')
         AND NOT o.quarantine_pending
         AND o.service_id IS DISTINCT FROM $1
         AND (o.service_id IS NULL
              OR NOT EXISTS (SELECT 1 FROM services s WHERE s.id = o.service_id AND s.status = 'Alive'))
       RETURNING o.id`,
      [serviceId, running],
    );
    await recordTimeline(
      tx,
      claimed.map(({ id }) => ({
        observerId: id,
        event: 'started',
        status: 'Processing',
        serviceId,
        reason: 'reported running',
      })),
    );
    const unwanted = await sql<{ id: string; quarantine: boolean }>(
      tx,
      `SELECT r.id, coalesce(o.quarantine_pending, false) AS quarantine
       FROM unnest($1::uuid[]) AS r(id) LEFT JOIN observers o ON o.id = r.id
       WHERE o.id IS NULL OR o.quarantine_pending OR o.status NOT IN ('Created', 'Processing', 'Failed')`,
      [running],
    );
    effects.cancel.push(...unwanted.filter((row) => !row.quarantine).map((row) => row.id));
    effects.quarantine.push(...unwanted.filter((row) => row.quarantine).map((row) => row.id));
  }

  /**
   * Observers started (each at most once in `events`), in three statements whatever their
   * number: after an outage or a failover the backlog is mostly these.
   */
  private async observersStarted(tx: EntityManager, events: readonly Started[], effects: Effects): Promise<void> {
    const rows = await sql<{
      id: string;
      status: ObserverStatus;
      service_id: string | null;
      quarantine_pending: boolean;
    }>(
      tx,
      `SELECT id, status, service_id, quarantine_pending FROM observers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
      [events.map((e) => e.observerId)],
    );
    const current = new Map(rows.map((row) => [row.id, row]));
    const updates: { id: string; status: ObserverStatus; serviceId: string }[] = [];
    const timeline: TimelineEntry[] = [];
    for (const e of events) {
      const row = current.get(e.observerId.toLowerCase());
      if (!row || row.status === 'Deleted') {
        effects.cancel.push(e.observerId);
        continue;
      }
      if (row.quarantine_pending) {
        // Found in a crash loop and started again before any service heard so: tell it now.
        effects.quarantine.push(e.observerId);
        continue;
      }
      const status: ObserverStatus = row.status === 'OnDeleting' ? 'OnDeleting' : 'Processing';
      updates.push({ id: row.id, status, serviceId: e.serviceId });
      const moved = row.service_id !== null && row.service_id !== e.serviceId;
      timeline.push({
        observerId: row.id,
        event: moved ? 'moved' : 'started',
        status,
        serviceId: e.serviceId,
        reason: moved ? `from ${row.service_id}` : e.redelivered ? 'redelivered' : null,
      });
      // Being deleted while it moved: the cancel may have missed it, send it again now.
      if (status === 'OnDeleting') effects.cancel.push(e.observerId);
    }
    if (updates.length > 0) {
      await sql(
        tx,
        `UPDATE observers o SET status = u.status, service_id = u.service_id, last_error = NULL,
                job_published = true, updated_at = now(),
                recent_services = array_append(array_remove(o.recent_services, u.service_id), u.service_id)
         FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS u(id, status, service_id)
         WHERE o.id = u.id`,
        [updates.map((u) => u.id), updates.map((u) => u.status), updates.map((u) => u.serviceId)],
      );
    }
    await recordTimeline(tx, timeline);
  }

  private async observerStopped(tx: EntityManager, e: StateEventOf<'observer.stopped'>): Promise<void> {
    // A crash-loop stop leaves the observer Failed (its job dead-lettered) unless a delete
    // came meanwhile; a cancel ends it Deleted.
    const updated = await sql<{ status: ObserverStatus }>(
      tx,
      `UPDATE observers SET
         status = CASE WHEN $2 = 'crash-loop' AND status NOT IN ('OnDeleting', 'Deleted') THEN 'Failed' ELSE 'Deleted' END,
         last_error = CASE WHEN $2 = 'crash-loop' THEN coalesce(last_error, 'crash loop: its services kept dying')
                           ELSE last_error END,
         service_id = NULL, quarantine_pending = false, updated_at = now()
       WHERE id = $1 AND status <> 'Deleted' RETURNING status`,
      [e.observerId, e.reason],
    );
    const row = updated[0];
    if (!row) return;
    const latency =
      e.abortLatencyMs === undefined ? '' : `, signal fired ${e.abortLatencyMs.toFixed(2)} ms after the cancel arrived`;
    await recordTimeline(tx, [
      {
        observerId: e.observerId,
        event: row.status === 'Deleted' ? 'deleted' : 'dead-lettered',
        status: row.status,
        serviceId: e.serviceId,
        reason: `${e.reason}${e.graceful ? '' : ' (ignored its AbortSignal past the stop timeout)'}${latency}`,
      },
    ]);
  }

  private async observerFailed(tx: EntityManager, e: StateEventOf<'observer.failed'>): Promise<void> {
    // The job is dead-lettered: an observer that was being deleted is simply gone.
    const rows = await sql<{ status: ObserverStatus }>(
      tx,
      `UPDATE observers SET
         status = CASE WHEN status IN ('OnDeleting', 'Deleted') THEN 'Deleted' ELSE 'Failed' END,
         service_id = NULL, last_error = $2, updated_at = now()
       WHERE id = $1 RETURNING status`,
      [e.observerId, e.error],
    );
    const row = rows[0];
    if (!row) return;
    await recordTimeline(tx, [
      {
        observerId: e.observerId,
        event: 'failed',
        status: row.status,
        serviceId: e.serviceId,
        reason: `${e.error} (after ${e.attempts} attempts)`,
      },
    ]);
  }
}

function unbatched(event: StateEvent): Applied[] {
  if (event.type !== 'observers.started') return [event];
  const { serviceId, at } = event;
  return event.observers.map((o) => ({ type: 'observer.started', serviceId, at, ...o }));
}

/**
 * Splits events into single events and runs of `observer.started` that can be applied together:
 * consecutive, and each observer at most once (a second start of the same one begins a new run).
 */
function inRuns(events: readonly Applied[]): (OtherEvent | Started[])[] {
  const runs: (OtherEvent | Started[])[] = [];
  let run: Started[] = [];
  let inRun = new Set<string>();
  for (const event of events) {
    if (event.type !== 'observer.started') {
      run = [];
      inRun = new Set();
      runs.push(event);
      continue;
    }
    const id = event.observerId.toLowerCase();
    if (run.length === 0 || inRun.has(id)) {
      run = [];
      inRun = new Set();
      runs.push(run);
    }
    run.push(event);
    inRun.add(id);
  }
  return runs;
}

/**
 * A heartbeat is a snapshot of what its service runs: one followed by a later heartbeat of the
 * same service in the same batch says nothing the later one does not, so it is skipped. During
 * a catch-up most of the backlog is heartbeats.
 */
function withoutStaleHeartbeats<E extends StateEvent>(events: readonly E[]): E[] {
  const seenLater = new Set<string>();
  const kept: E[] = [];
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]!;
    if (event.type === 'service.heartbeat') {
      if (seenLater.has(event.serviceId)) continue;
      seenLater.add(event.serviceId);
    }
    kept.push(event);
  }
  return kept.reverse();
}

/**
 * Marks a service dead and puts what it ran back to waiting. A death without a graceful stop
 * (`crashLoop` given) counts against every observer it ran recently; one that reaches the
 * policy's count is Failed and returned, for its job to be dead-lettered.
 */
export async function markServiceDead(
  tx: EntityManager,
  serviceId: string,
  reason: string,
  crashLoop: CrashLoopPolicy | undefined,
): Promise<{ marked: boolean; quarantined: string[] }> {
  const updated = await sql<unknown>(
    tx,
    `UPDATE services SET status = 'Dead', died_at = now(), death_reason = $2, running = 0, free_slots = 0
     WHERE id = $1 AND status = 'Alive' RETURNING id`,
    [serviceId, reason],
  );
  const quarantined = crashLoop ? await countCrashDeaths(tx, serviceId, crashLoop) : [];
  await releaseObservers(tx, serviceId, [], `service dead: ${reason}`);
  return { marked: updated.length > 0, quarantined };
}

async function countCrashDeaths(tx: EntityManager, serviceId: string, policy: CrashLoopPolicy): Promise<string[]> {
  const counted = await sql<{ id: string; crash_deaths: number }>(
    tx,
    `UPDATE observers SET
       crash_deaths = CASE WHEN crash_window_started_at > now() - make_interval(secs => $2 / 1000.0)
                           THEN crash_deaths + 1 ELSE 1 END,
       crash_window_started_at = CASE WHEN crash_window_started_at > now() - make_interval(secs => $2 / 1000.0)
                                      THEN crash_window_started_at ELSE now() END,
       recent_services = array_remove(recent_services, $1::uuid)
     WHERE recent_services @> ARRAY[$1::uuid] AND status IN ('Created', 'Processing')
       AND EXISTS (SELECT 1 FROM observer_events e
                   WHERE e.observer_id = observers.id AND e.service_id = $1 AND e.event IN ('started', 'moved')
                     AND e.at > now() - make_interval(secs => $3 / 1000.0))
     RETURNING id, crash_deaths`,
    [serviceId, policy.windowMs, policy.recentStartMs],
  );
  const looping = counted.filter((row) => row.crash_deaths >= policy.deaths).map((row) => row.id);
  if (looping.length === 0) return [];
  const error = `crash loop: ${policy.deaths} services died while running it within ${policy.windowMs / 1000} s`;
  await sql(
    tx,
    `UPDATE observers SET status = 'Failed', service_id = NULL, last_error = $2, quarantine_pending = true,
            cancel_sent_at = now(), updated_at = now()
     WHERE id = ANY($1::uuid[])`,
    [looping, error],
  );
  await recordTimeline(
    tx,
    looping.map((id) => ({ observerId: id, event: 'failed', status: 'Failed', serviceId, reason: error })),
  );
  return looping;
}

/**
 * Observers recorded on `serviceId` but not in `keep` are no longer there: their jobs went back
 * to the queue. They wait (`Created`) until a service reports them started again.
 * (`NOT IN (SELECT unnest(…))` lets Postgres hash `keep`: `NOT (id = ANY(…))` compares every row
 * with every kept id, 28 ms for a heartbeat of 1,000 observers.)
 */
async function releaseObservers(
  tx: EntityManager,
  serviceId: string,
  keep: readonly string[],
  reason: string,
): Promise<void> {
  const released = await sql<{ id: string; status: ObserverStatus }>(
    tx,
    `UPDATE observers SET status = CASE WHEN status = 'OnDeleting' THEN 'OnDeleting' ELSE 'Created' END,
            service_id = NULL, updated_at = now()
     WHERE service_id = $1 AND status IN ('Processing', 'OnDeleting')
       AND id NOT IN (SELECT unnest($2::uuid[]))
     RETURNING id, status`,
    [serviceId, keep],
  );
  await recordTimeline(
    tx,
    released.map((r) => ({ observerId: r.id, event: 'released', status: r.status, serviceId, reason })),
  );
}
