import type { DataSource, EntityManager } from 'typeorm';
import type { JobMessage } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { ManagerBroker } from './broker';
import type { Metrics } from './metrics';
import { JOB_COLUMNS, sql } from './db/sql';
import { markServiceDead, type CrashLoopPolicy } from './state/service-deaths';
import { recordTimeline } from './state/timeline';

export interface ReconcilerOptions {
  db: DataSource;
  /** Runs a write in a transaction fenced by this manager's lease (see Leadership). */
  transaction: <T>(apply: (tx: EntityManager) => Promise<T>) => Promise<T>;
  broker: ManagerBroker;
  metrics: Metrics;
  log: Logger;
  intervalMs: number;
  cancelRetryMs: number;
  heartbeatMisses: number;
  /** An observer no live service has reported for this long is lost: its job is published again. */
  lostAfterMs: number;
  crashLoop: CrashLoopPolicy;
  /** True once every state event delivered so far has been applied. */
  stateCaughtUp: () => boolean;
  /** Resolves true once a barrier sent now has come back through the state queue, false if not in time. */
  stateBarrier: () => Promise<boolean>;
  /** Resolves once every state event delivered so far has been applied. */
  stateApplied: () => Promise<void>;
}

/** A create whose job is not marked published is left to its request this long, ms. */
const CREATE_GRACE_MS = 10_000;
const BATCH = 500;

/** A pool seen with no job waiting and a free slot, since a moment of both clocks. */
interface EmptyPool {
  /** The database's clock: only observers unplaced before this can be judged. */
  dbAt: Date;
  /** This process's monotonic clock, for how long it has been so. */
  localAt: number;
}

/**
 * What the state queue alone cannot tell: services that went silent, cancels that were never
 * confirmed (the observer was moving), and jobs that no service holds any more (lost by the
 * broker, purged, or never published because a create was cut short). Runs on the active
 * manager only.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly emptyPools = new Map<string, EmptyPool>();

  constructor(private readonly options: ReconcilerOptions) {}

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.tick().finally(() => {
        this.running = undefined;
      });
    }, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    this.emptyPools.clear();
  }

  async tick(): Promise<void> {
    const { broker, log } = this.options;
    if (!broker.connected) return;
    try {
      if (broker.blocked !== undefined) {
        await this.forgiveSilence();
        return;
      }
      await this.markSilentServicesDead();
      await this.retryCancels();
      await this.auditLostJobs();
      await this.replaceLegacyStateQueue();
    } catch (err) {
      log.warn({ err: coerceError(err) }, 'reconcile pass failed; next pass retries');
    }
  }

  /**
   * While the broker blocks publishing, no service can send a heartbeat: none is silent by its
   * own doing, and none may be declared dead for it.
   */
  private async forgiveSilence(): Promise<void> {
    await this.options.transaction((tx) => sql(tx, `UPDATE services SET last_seen_at = now() WHERE status = 'Alive'`));
  }

  /** Judged only once the state queue is drained and a barrier sent now has come back. */
  private async caughtUp(): Promise<boolean> {
    const { broker } = this.options;
    if (!this.options.stateCaughtUp() || (await broker.stateBacklog()) > 0) return false;
    // Heartbeats may still be on the way, behind a flood of other messages: what was queued
    // before a barrier sent now has been applied once it comes back.
    return this.options.stateBarrier();
  }

  private async markSilentServicesDead(): Promise<void> {
    const { db, broker, metrics, log, heartbeatMisses } = this.options;
    const findSilent = () =>
      sql<{ id: string; name: string }>(
        db,
        `SELECT id, name FROM services
         WHERE status = 'Alive' AND last_seen_at < now() - make_interval(secs => heartbeat_interval_ms * $1 / 1000.0)`,
        [heartbeatMisses],
      );
    if ((await findSilent()).length === 0 || !(await this.caughtUp())) return;
    for (const service of await findSilent()) {
      const reason = `no heartbeat for ${heartbeatMisses} intervals`;
      const { marked, quarantined, contenders } = await this.options.transaction((tx) =>
        markServiceDead(tx, service.id, reason, this.options.crashLoop),
      );
      await broker.broadcastCancels(quarantined, { deadLetter: true });
      if (contenders.length > 0) await broker.askForListings(contenders);
      if (marked) {
        metrics.servicesDeclaredDead.inc({ reason: 'silent' });
        log.warn({ serviceId: service.id, serviceName: service.name }, `service marked dead: ${reason}`);
      }
    }
  }

  /**
   * Cancels of deletes, of crash loops whose job no service has dead-lettered yet, and of
   * pauses whose copy has not stopped yet.
   */
  private async retryCancels(): Promise<void> {
    const { broker, metrics, cancelRetryMs } = this.options;
    const due = await this.options.transaction((tx) =>
      sql<{ id: string; quarantine_pending: boolean; status: string; generation: number }>(
        tx,
        `UPDATE observers SET cancel_sent_at = now()
         WHERE id IN (SELECT id FROM observers
                      WHERE (status = 'OnDeleting' OR quarantine_pending OR (status = 'Paused' AND service_id IS NOT NULL))
                        AND cancel_sent_at < now() - make_interval(secs => $1 / 1000.0) LIMIT $2)
         RETURNING id, quarantine_pending, status, generation`,
        [cancelRetryMs, BATCH],
      ),
    );
    if (due.length === 0) return;
    const paused = due.filter((row) => row.status === 'Paused' && !row.quarantine_pending);
    await broker.broadcastPauses(paused.map((row) => ({ observerId: row.id, generation: row.generation })));
    await broker.broadcastCancels(
      due.filter((row) => row.status !== 'Paused' && !row.quarantine_pending).map((row) => row.id),
    );
    await broker.broadcastCancels(
      due.filter((row) => row.quarantine_pending).map((row) => row.id),
      { deadLetter: true },
    );
    metrics.cancelsSent.inc({ why: 'retry' }, due.length);
  }

  /**
   * The lost-job audit. An observer that should run (not Deleted, not Failed) and that no live
   * service has reported for LOST_AFTER_MS is lost if its job is not waiting in its pool's queue.
   * So is a move (or a restart, or new params) whose next generation no service has run
   * LOST_AFTER_MS after it was published: its old copy runs on, but the job that was to replace it
   * is gone, and without it the move never ends (a drain would wait for it forever, and the
   * rebalancer waits for the pool's moves to end).
   * The audit tells a lost job from one waiting for a free slot by the pool: it judges a pool only
   * when the pool's queue has no job ready and its services have free slots (from their
   * heartbeats), and has been so for longer than their heartbeat interval, so that any service
   * holding a job has reported it; and only once the state queue is drained and a barrier has
   * come back, so that those reports are applied. A lost job is published again at generation
   * + 1: a copy of the older generation that surfaces later is dropped by services or released,
   * and so is a stalled move's old copy once the new one runs.
   */
  private async auditLostJobs(): Promise<void> {
    const { db, broker, lostAfterMs } = this.options;
    const pools = await sql<{ pool: string }>(
      db,
      `SELECT pool FROM observers
       WHERE service_id IS NULL AND status IN ('Created', 'OnDeleting')
         AND unplaced_since < now() - make_interval(secs => $1 / 1000.0)
       UNION
       SELECT pool FROM observers
       WHERE service_id IS NOT NULL AND generation <> running_generation
         AND status = 'Processing' AND contender_service_id IS NULL
         AND moved_at < now() - make_interval(secs => $1 / 1000.0)`,
      [lostAfterMs],
    );
    for (const pool of this.emptyPools.keys()) if (!pools.some((p) => p.pool === pool)) this.emptyPools.delete(pool);
    const judgeable: { pool: string; since: Date }[] = [];
    for (const { pool } of pools) {
      const [fleet] = await sql<{ free_slots: string; interval_ms: number | null; now: Date }>(
        db,
        `SELECT coalesce(sum(free_slots), 0) AS free_slots, max(heartbeat_interval_ms) AS interval_ms, now() AS now
         FROM services WHERE status = 'Alive' AND pools @> $1::jsonb`,
        [JSON.stringify([pool])],
      );
      const ready = await broker.readyJobs(pool);
      if (!fleet || Number(fleet.free_slots) === 0 || ready > 0) {
        this.emptyPools.delete(pool);
        continue;
      }
      let empty = this.emptyPools.get(pool);
      if (!empty) this.emptyPools.set(pool, (empty = { dbAt: fleet.now, localAt: performance.now() }));
      const settleMs = 1.5 * (fleet.interval_ms ?? 0);
      if (performance.now() - empty.localAt >= settleMs) judgeable.push({ pool, since: empty.dbAt });
    }
    if (judgeable.length === 0 || !(await this.caughtUp())) return;
    for (const { pool, since } of judgeable) {
      await this.republishLost(pool, since);
      await this.republishStalledMoves(pool, since);
    }
  }

  private async republishLost(pool: string, since: Date): Promise<void> {
    const { metrics, log, lostAfterMs } = this.options;
    const jobs = await this.options.transaction(async (tx) => {
      const rows = await sql<JobMessage & { status: 'Created' | 'OnDeleting' }>(
        tx,
        `UPDATE observers SET generation = generation + 1, job_published = false, unplaced_since = now(),
                updated_at = now()
         WHERE id IN (SELECT id FROM observers
                      WHERE pool = $1 AND service_id IS NULL AND status IN ('Created', 'OnDeleting')
                        AND unplaced_since < $2 AND unplaced_since < now() - make_interval(secs => $3 / 1000.0)
                        AND (job_published OR created_at < now() - make_interval(secs => $4 / 1000.0))
                      ORDER BY id LIMIT $5 FOR UPDATE)
         RETURNING ${JOB_COLUMNS}, status`,
        [pool, since, lostAfterMs, CREATE_GRACE_MS, BATCH],
      );
      await recordTimeline(
        tx,
        rows.map((job) => ({
          observerId: job.observerId,
          event: 'republished',
          status: job.status,
          serviceId: null,
          generation: job.generation,
          reason: `lost: no live service reported it for ${lostAfterMs} ms, and no job of it waits in its queue`,
        })),
      );
      return rows;
    });
    if (jobs.length === 0) return;
    const published = await this.publishAgain(jobs.map(({ status: _status, ...job }) => job));
    await sql(this.options.db, `UPDATE observers SET job_published = true WHERE id = ANY($1::uuid[])`, [published]);
    metrics.jobsRepublished.inc({ reason: 'lost' }, published.length);
    log.warn(
      { pool, observers: published.length, sample: published.slice(0, 10) },
      'republished lost jobs at a new generation',
    );
  }

  /**
   * Moves of this pool whose next generation was published before the pool was first seen with
   * nothing waiting, and that no service has reported running since: published again at the
   * generation after, from the same old copy (which is released once the new one runs).
   */
  private async republishStalledMoves(pool: string, since: Date): Promise<void> {
    const { metrics, log, lostAfterMs } = this.options;
    const jobs = await this.options.transaction(async (tx) => {
      const rows = await sql<JobMessage & { serviceId: string }>(
        tx,
        `UPDATE observers SET generation = generation + 1, moved_at = now(), updated_at = now()
         WHERE id IN (SELECT id FROM observers
                      WHERE pool = $1 AND service_id IS NOT NULL AND generation <> running_generation
                        AND status = 'Processing' AND contender_service_id IS NULL
                        AND moved_at < $2 AND moved_at < now() - make_interval(secs => $3 / 1000.0)
                      ORDER BY id LIMIT $4 FOR UPDATE)
         RETURNING ${JOB_COLUMNS}, service_id AS "serviceId"`,
        [pool, since, lostAfterMs, BATCH],
      );
      await recordTimeline(
        tx,
        rows.map((job) => ({
          observerId: job.observerId,
          event: 'republished',
          status: 'Processing',
          serviceId: job.serviceId,
          generation: job.generation,
          reason:
            `move stalled: no service ran generation ${job.generation - 1} for ${lostAfterMs} ms, and no job ` +
            `of it waits in its queue; the copy here runs until generation ${job.generation} does`,
        })),
      );
      return rows;
    });
    if (jobs.length === 0) return;
    const published = await this.publishAgain(jobs.map(({ serviceId: _serviceId, ...job }) => job));
    metrics.jobsRepublished.inc({ reason: 'stalled-move' }, published.length);
    log.warn(
      { pool, observers: published.length, sample: published.slice(0, 10) },
      'republished the jobs of stalled moves at a new generation',
    );
  }

  /** Publishes each job; returns the observers whose job the broker took. */
  private async publishAgain(jobs: readonly JobMessage[]): Promise<string[]> {
    const { broker, log } = this.options;
    const published: string[] = [];
    for (const job of jobs) {
      try {
        await broker.publishJob(job);
        published.push(job.observerId);
      } catch (err) {
        log.warn({ err: coerceError(err), observerId: job.observerId }, 'could not republish a job; next pass');
      }
    }
    return published;
  }

  /** A state queue from a version before single-active-consumer is replaced once it is empty. */
  private async replaceLegacyStateQueue(): Promise<void> {
    const { broker } = this.options;
    if (!broker.stateQueueLegacy || !this.options.stateCaughtUp() || (await broker.stateBacklog()) > 0) return;
    await broker.replaceLegacyStateQueue(this.options.stateApplied);
  }
}
