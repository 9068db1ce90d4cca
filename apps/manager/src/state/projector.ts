import type { EntityManager } from 'typeorm';
import type { JobMessage, MovePurpose, StateEvent, StateEventOf } from '@vigil/contracts';
import type { ObserverStatus } from '../db/statuses';
import { JOB_COLUMNS, sql } from '../db/sql';
import { inRuns, unbatched, type OtherEvent, type Released, type Started } from './event-batches';
import { noEffects, placeListing, placeReports, type Effects } from './placement';
import type { Release, Report } from './placement-rules';
import { markServiceDead, type CrashLoopPolicy } from './service-deaths';
import { recordServiceEvent, recordTimeline } from './timeline';

type Holdings = StateEventOf<'service.born'> | (StateEventOf<'service.heartbeat'> & { running: string[] });

/** Why an observer moves, in its timeline. */
const MOVE_WHY: Record<MovePurpose, string> = {
  stop: 'its service is stopping',
  drain: 'its service is drained',
  rebalance: 'rebalancing',
  rotate: 'its job was held long enough to rotate',
};

/**
 * Runs `apply` in a transaction that first checks this manager still holds the lease it was
 * given; it fails (and nothing is written) if another manager has taken over.
 */
export type FencedTransaction = <T>(apply: (tx: EntityManager) => Promise<T>) => Promise<T>;

/**
 * Applies state events to the manager's tables. Events from different services interleave in
 * any order, so every change to an observer's placement is conditional on what the event's
 * service can speak for (see `decidePlacement`): a service may only release the observers
 * recorded on it, and a copy the manager does not keep is released, never silently recorded.
 */
export class StateProjector {
  constructor(
    private readonly transaction: FencedTransaction,
    private readonly crashLoop: CrashLoopPolicy,
  ) {}

  /** Applies events in order, in one transaction: all of them or none. */
  apply(events: readonly StateEvent[]): Promise<Effects> {
    return this.transaction(async (tx) => {
      const effects = noEffects();
      for (const run of inRuns(events.flatMap(unbatched))) {
        if (!('starts' in run)) {
          await this.applyOne(tx, run, effects);
          continue;
        }
        await placeReports(tx, run.starts.map(startReport), effects);
        await this.copiesReleased(tx, run.releases);
      }
      return {
        cancel: [...new Set(effects.cancel)],
        quarantine: [...new Set(effects.quarantine)],
        release: onceEach(effects.release),
        moves: effects.moves,
        drains: effects.drains,
        restarts: effects.restarts,
        listings: [...new Set(effects.listings)],
      };
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
        effects.listings.push(
          ...(await markServiceDead(tx, event.serviceId, `stopped: ${event.reason}`, undefined)).contenders,
        );
        break;
      case 'observer.stopped':
        await this.observerStopped(tx, event);
        break;
      case 'observer.failed':
        await this.observerFailed(tx, event);
        break;
      case 'service.draining':
        await this.serviceDraining(tx, event, effects);
        break;
      case 'observer.stale':
        await this.observerStale(tx, event, effects);
        break;
      case 'manager.barrier':
        break;
    }
  }

  /**
   * A service asks for copies to be moved: the next generation of each copy it listed (and the
   * manager has there, at that generation) is published, and the copy left on the service is
   * released once the new one runs elsewhere. Never two generations in the queue for nothing: a
   * copy the manager does not have there is not moved, and the service keeps it (or, stopping,
   * hands its job back).
   */
  private async serviceDraining(
    tx: EntityManager,
    e: StateEventOf<'service.draining'>,
    effects: Effects,
  ): Promise<void> {
    // Read too late (this manager was down or behind): the service has given up on an answer
    // (a stopping one has handed the jobs back already). Moving them now would only queue a
    // second job each.
    if (Date.now() - Date.parse(e.at) > e.answerWithinMs) return;
    const alive = await sql<{ id: string; newly: boolean }>(
      tx,
      `UPDATE services s SET draining_since = CASE WHEN $2 THEN coalesce(s.draining_since, now()) ELSE s.draining_since END
       FROM (SELECT id, draining_since FROM services WHERE id = $1 FOR UPDATE) old
       WHERE s.id = old.id AND s.status = 'Alive'
       RETURNING s.id, (old.draining_since IS NULL AND s.draining_since IS NOT NULL) AS newly`,
      [e.serviceId, e.purpose === 'stop'],
    );
    if (alive.length === 0) return;
    if (alive[0]?.newly) await recordServiceEvent(tx, e.serviceId, 'draining', 'stopping (SIGTERM)');
    // Only as many as there is room for, per pool: a job published for a move nobody can take
    // would leave the service waiting for nothing until its timeout. A rotation's next generation
    // may land back on its own service (and is adopted there); the other moves must go elsewhere.
    const candidates = await sql<{ id: string; pool: string; free: number }>(
      tx,
      `SELECT o.id, o.pool, coalesce((
           SELECT sum(s.free_slots) FROM services s
           WHERE s.status = 'Alive' AND s.draining_since IS NULL AND ($4 OR s.id <> $1)
             AND s.pools @> jsonb_build_array(o.pool)), 0)::int AS free
       FROM unnest($2::uuid[], $3::int[]) AS r(id, generation)
       JOIN observers o ON o.id = r.id
       WHERE o.service_id = $1 AND o.running_generation = r.generation AND o.generation = r.generation
         AND o.status = 'Processing' AND o.contender_service_id IS NULL AND NOT o.quarantine_pending
       ORDER BY o.pool, o.id`,
      [e.serviceId, e.running, e.generations, e.purpose === 'rotate'],
    );
    const taken = new Map<string, number>();
    const movable = candidates.filter(({ pool, free }) => {
      const count = taken.get(pool) ?? 0;
      if (count >= free) return false;
      taken.set(pool, count + 1);
      return true;
    });
    const moved = await sql<JobMessage & { observerId: string }>(
      tx,
      `UPDATE observers o SET generation = o.generation + 1, moved_from = $1, moved_at = now(), updated_at = now()
       WHERE o.id = ANY($2::uuid[])
       RETURNING ${JOB_COLUMNS}`,
      [e.serviceId, movable.map((c) => c.id)],
    );
    await recordTimeline(
      tx,
      moved.map((job) => ({
        observerId: job.observerId,
        event: 'moving',
        status: 'Processing',
        serviceId: e.serviceId,
        generation: job.generation,
        reason: `${MOVE_WHY[e.purpose]}: generation ${job.generation} published to move it`,
      })),
    );
    effects.moves.push({ serviceId: e.serviceId, purpose: e.purpose, requestId: e.requestId, jobs: moved });
  }

  private async serviceBorn(tx: EntityManager, e: StateEventOf<'service.born'>, effects: Effects): Promise<void> {
    // A service killed without a word comes back under the same name with a new id.
    const replaced = await sql<{ id: string }>(
      tx,
      `SELECT id FROM services WHERE name = $1 AND id <> $2 AND status = 'Alive'`,
      [e.name, e.serviceId],
    );
    for (const { id } of replaced) {
      const { quarantined, contenders } = await markServiceDead(
        tx,
        id,
        `replaced by ${e.serviceId} (same name)`,
        this.crashLoop,
      );
      effects.quarantine.push(...quarantined);
      effects.listings.push(...contenders);
    }
    const born = await sql<{ inserted: boolean }>(
      tx,
      `INSERT INTO services (id, name, status, capacity, pools, kinds, version, host, pid, started_at,
                             heartbeat_interval_ms, running, free_slots, last_seen_at, died_at, death_reason)
       VALUES ($1, $2, 'Alive', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now(), NULL, NULL)
       ON CONFLICT (id) DO UPDATE SET
         name = EXCLUDED.name, status = 'Alive', capacity = EXCLUDED.capacity, pools = EXCLUDED.pools,
         kinds = EXCLUDED.kinds, version = EXCLUDED.version, host = EXCLUDED.host, pid = EXCLUDED.pid,
         started_at = EXCLUDED.started_at, heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms,
         running = EXCLUDED.running, free_slots = EXCLUDED.free_slots, last_seen_at = now(),
         died_at = NULL, death_reason = NULL
       RETURNING (xmax = 0) AS inserted`,
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
        Math.max(0, e.capacity - e.running.length - (e.waiting?.length ?? 0)),
      ],
    );
    if (born[0]?.inserted) {
      await recordServiceEvent(tx, e.serviceId, 'born', `${e.name}: ${e.capacity} slots, pools ${e.pools.join(', ')}`);
    }
    // A re-announce after a lost connection: what it no longer runs went back to the queue.
    await this.holdings(tx, e, 'service reconnected without it', effects);
    // Tells it this manager reads heartbeats without a listing.
    effects.listings.push(e.serviceId);
  }

  private async serviceHeartbeat(
    tx: EntityManager,
    e: StateEventOf<'service.heartbeat'>,
    effects: Effects,
  ): Promise<void> {
    const running = e.running?.length ?? e.runningCount ?? 0;
    const updated = await sql<{ draining: boolean; was_alive: boolean }>(
      tx,
      `UPDATE services s SET status = 'Alive', running = $2, free_slots = $3, capacity = $4,
              heartbeat_interval_ms = $5, last_seen_at = now(), died_at = NULL, death_reason = NULL,
              heap_used_bytes = $6, rss_bytes = $7
       FROM (SELECT id, status FROM services WHERE id = $1 FOR UPDATE) old
       WHERE s.id = old.id
       RETURNING s.draining_since IS NOT NULL AS draining, old.status = 'Alive' AS was_alive`,
      [
        e.serviceId,
        running,
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
        [e.serviceId, e.name, e.capacity, e.heartbeatIntervalMs, running, e.freeSlots],
      );
    }
    if (e.running) {
      await this.holdings(tx, { ...e, running: e.running }, 'not in its heartbeat', effects);
    } else {
      await this.waiting(tx, e.waiting ?? []);
      // A service the manager had given up on (or never knew) may hold what the manager has
      // since placed elsewhere or marked as waiting: it is asked for its listing now.
      if (!updated[0]?.was_alive) effects.listings.push(e.serviceId);
    }
    // A live service not draining while an operator drains it (or the other way round) missed the
    // message that said so: it is sent again. (A service stopping on SIGTERM says it drains, and
    // is recorded so.)
    const recorded = updated[0]?.draining ?? false;
    if (e.draining !== undefined && e.draining !== recorded) {
      effects.drains.push({ serviceId: e.serviceId, draining: recorded });
    }
  }

  /**
   * What a birth or heartbeat says the service holds: anything recorded on it and not listed went
   * back to the queue; each listed copy is placed (claimed, kept, or released); jobs parked there
   * for want of a kind are not lost, and say why they wait.
   */
  private async holdings(tx: EntityManager, e: Holdings, releaseReason: string, effects: Effects): Promise<void> {
    await placeListing(tx, e, releaseReason, effects);
    await this.waiting(tx, e.waiting ?? []);
  }

  /** Jobs parked on a service for want of a kind: not lost (their clock restarts), and why they wait. */
  private async waiting(tx: EntityManager, waiting: NonNullable<Holdings['waiting']>): Promise<void> {
    if (waiting.length === 0) return;
    await sql(
      tx,
      `UPDATE observers o SET wait_reason = w.reason, unplaced_since = now()
       FROM unnest($1::uuid[], $2::text[]) AS w(id, reason)
       WHERE o.id = w.id AND o.service_id IS NULL AND o.status IN ('Created', 'OnDeleting')`,
      [waiting.map((w) => w.observerId), waiting.map((w) => w.reason)],
    );
  }

  private async observerStopped(tx: EntityManager, e: StateEventOf<'observer.stopped'>): Promise<void> {
    if (e.reason === 'cancelled' && (await this.pauseConfirmed(tx, e))) return;
    // A crash-loop stop leaves the observer Failed (its job dead-lettered) unless a delete
    // came meanwhile; a cancel ends it Deleted.
    const updated = await sql<{ status: ObserverStatus }>(
      tx,
      `UPDATE observers SET
         status = CASE WHEN $2 = 'crash-loop' AND status NOT IN ('OnDeleting', 'Deleted') THEN 'Failed' ELSE 'Deleted' END,
         last_error = CASE WHEN $2 = 'crash-loop' THEN coalesce(last_error, 'crash loop: its services kept dying')
                           ELSE last_error END,
         service_id = NULL, running_generation = NULL, contender_service_id = NULL, contender_since = NULL,
         quarantine_pending = false, updated_at = now()
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
        generation: e.generation ?? null,
        reason: `${e.reason}${e.graceful ? '' : ' (ignored its AbortSignal past the stop timeout)'}${latency}`,
      },
    ]);
  }

  /**
   * A copy stopped for a pause: the observer stays `Paused` and runs nowhere once its recorded
   * copy has stopped. A pause's stop that comes after a resume (the observer is `Created` or
   * `Processing` at a later generation) only says that older copy is gone. Returns false when
   * the stop was a delete's.
   */
  private async pauseConfirmed(tx: EntityManager, e: StateEventOf<'observer.stopped'>): Promise<boolean> {
    const rows = await sql<{ status: ObserverStatus; generation: number }>(
      tx,
      `SELECT status, generation FROM observers WHERE id = $1 FOR UPDATE`,
      [e.observerId],
    );
    const row = rows[0];
    if (!row) return false;
    const { status } = row;
    // Running again at a later generation than the copy that stopped: that copy was paused. A
    // cancelled copy of the generation that should run is a delete's, as it always was.
    const resumedSince =
      (status === 'Created' || status === 'Processing') && (e.generation ?? row.generation) < row.generation;
    if (status !== 'Paused' && !resumedSince) return false;
    await sql(
      tx,
      `UPDATE observers SET service_id = NULL, running_generation = NULL, updated_at = now(),
              unplaced_since = CASE WHEN status = 'Paused' THEN unplaced_since ELSE now() END,
              status = CASE WHEN status = 'Paused' THEN status ELSE 'Created' END
       WHERE id = $1 AND service_id = $2 AND running_generation <= coalesce($3, running_generation)`,
      [e.observerId, e.serviceId, e.generation ?? null],
    );
    await recordTimeline(tx, [
      {
        observerId: e.observerId,
        event: 'stopped',
        status,
        serviceId: e.serviceId,
        generation: e.generation ?? null,
        reason: status === 'Paused' ? 'paused: the copy stopped and its job was acked' : 'a paused copy stopped',
      },
    ]);
    return true;
  }

  /**
   * Copies the manager released have stopped and their jobs are acked. Where the manager still
   * had one recorded as the copy running (nothing else reported since), that observer now runs
   * nowhere.
   */
  private async copiesReleased(tx: EntityManager, events: readonly Released[]): Promise<void> {
    if (events.length === 0) return;
    const ids = events.map((e) => e.observerId);
    // Locked in id order, as placements lock them: two transactions never wait on each other in a circle.
    const rows = await sql<{ id: string; status: ObserverStatus }>(
      tx,
      `SELECT id, status FROM observers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
      [ids],
    );
    const updated = await sql<{ id: string; status: ObserverStatus }>(
      tx,
      `UPDATE observers o SET
         status = CASE WHEN o.service_id = r.service_id AND o.status = 'Processing' THEN 'Created' ELSE o.status END,
         service_id = CASE WHEN o.service_id = r.service_id THEN NULL ELSE o.service_id END,
         running_generation = CASE WHEN o.service_id = r.service_id THEN NULL ELSE o.running_generation END,
         unplaced_since = CASE WHEN o.service_id = r.service_id THEN now() ELSE o.unplaced_since END,
         contender_service_id = CASE WHEN o.contender_service_id = r.service_id THEN NULL ELSE o.contender_service_id END,
         contender_since = CASE WHEN o.contender_service_id = r.service_id THEN NULL ELSE o.contender_since END,
         updated_at = now()
       FROM unnest($1::uuid[], $2::uuid[]) AS r(id, service_id)
       WHERE o.id = r.id AND (o.service_id = r.service_id OR o.contender_service_id = r.service_id)
       RETURNING o.id, o.status`,
      [ids, events.map((e) => e.serviceId)],
    );
    const status = new Map([...rows, ...updated].map((row) => [row.id, row.status]));
    await recordTimeline(
      tx,
      events.flatMap((e) => {
        const now = status.get(e.observerId.toLowerCase());
        if (!now) return [];
        return [
          {
            observerId: e.observerId,
            event: 'release-confirmed',
            status: now,
            serviceId: e.serviceId,
            generation: e.generation ?? null,
            reason: 'the copy stopped and its job was acked',
          },
        ];
      }),
    );
  }

  /**
   * The copy the manager keeps went silent past its `staleAfterMs`, or spoke again: the flag is
   * set or cleared, with a timeline row (so the event feed shows it). A stale observer whose kind
   * asks for it is restarted at the next generation, a fresh run.
   */
  private async observerStale(tx: EntityManager, e: StateEventOf<'observer.stale'>, effects: Effects): Promise<void> {
    const restart = e.stale && e.restart;
    const rows = await sql<JobMessage & { status: ObserverStatus }>(
      tx,
      `UPDATE observers SET
         stale_since = CASE WHEN $4 THEN coalesce(stale_since, now()) ELSE NULL END,
         last_published_at = $5::timestamptz,
         generation = CASE WHEN $6 THEN generation + 1 ELSE generation END,
         moved_from = CASE WHEN $6 THEN service_id ELSE moved_from END,
         moved_at = CASE WHEN $6 THEN now() ELSE moved_at END,
         updated_at = now()
       WHERE id = $1 AND service_id = $2 AND running_generation = $3 AND status = 'Processing'
       RETURNING ${JOB_COLUMNS}, status`,
      [e.observerId, e.serviceId, e.generation, e.stale, e.lastPublishedAt, restart],
    );
    const row = rows[0];
    if (!row) return;
    const silent = e.lastPublishedAt ? `nothing published since ${e.lastPublishedAt}` : 'nothing published yet';
    await recordTimeline(tx, [
      {
        observerId: e.observerId,
        event: e.stale ? 'stale' : 'fresh',
        status: row.status,
        serviceId: e.serviceId,
        generation: e.generation,
        reason: e.stale
          ? `${silent}${restart ? `; restarted as generation ${row.generation}` : ''}`
          : 'it published again',
      },
    ]);
    if (restart) {
      const { status: _status, ...job } = row;
      effects.restarts.push({ ...job, fresh: true });
    }
  }

  private async observerFailed(tx: EntityManager, e: StateEventOf<'observer.failed'>): Promise<void> {
    // The job is dead-lettered: an observer that was being deleted is simply gone. A stale copy
    // failing says nothing of the generation that should run.
    const rows = await sql<{ status: ObserverStatus }>(
      tx,
      `UPDATE observers SET
         status = CASE WHEN status IN ('OnDeleting', 'Deleted') THEN 'Deleted' ELSE 'Failed' END,
         service_id = NULL, running_generation = NULL, contender_service_id = NULL, contender_since = NULL,
         last_error = $2, updated_at = now()
       WHERE id = $1 AND generation <= coalesce($3, generation) RETURNING status`,
      [e.observerId, e.error, e.generation ?? null],
    );
    const row = rows[0];
    if (!row) return;
    await recordTimeline(tx, [
      {
        observerId: e.observerId,
        event: 'failed',
        status: row.status,
        serviceId: e.serviceId,
        generation: e.generation ?? null,
        reason: `${e.error} (after ${e.attempts} attempts)`,
      },
    ]);
  }
}

/**
 * A copy is released once per batch: a heartbeat of its old service, still listing it, asks for
 * the release its start asked for already.
 */
function onceEach(releases: readonly Release[]): Release[] {
  const seen = new Set<string>();
  return releases.filter((r) => {
    const key = `${r.observerId} ${r.serviceId} ${r.generation}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function startReport(e: Started): Report {
  return {
    serviceId: e.serviceId,
    observerId: e.observerId,
    generation: e.generation,
    source: 'start',
    at: e.at,
    redelivered: e.redelivered,
  };
}
