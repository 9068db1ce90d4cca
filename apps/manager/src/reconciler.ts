import type { DataSource } from 'typeorm';
import type { JobMessage } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { ManagerBroker } from './broker';
import type { Metrics } from './metrics';
import { markServiceDead, type CrashLoopPolicy } from './state/projector';
import { sql } from './db/sql';

export interface ReconcilerOptions {
  db: DataSource;
  broker: ManagerBroker;
  metrics: Metrics;
  log: Logger;
  intervalMs: number;
  cancelRetryMs: number;
  heartbeatMisses: number;
  crashLoop: CrashLoopPolicy;
  /** True once every state event delivered so far has been applied. */
  stateCaughtUp: () => boolean;
  /** Resolves true once a barrier sent now has come back through the state queue, false if not in time. */
  stateBarrier: () => Promise<boolean>;
}

/** Rows left unpublished this long are from a manager that died mid-create. */
const UNPUBLISHED_GRACE_MS = 10_000;
const BATCH = 500;

/**
 * What the state queue alone cannot tell: services that went silent, cancels that were never
 * confirmed (the observer was moving), and jobs whose publish a crash interrupted.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: ReconcilerOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.tick().finally(() => {
        this.running = undefined;
      });
    }, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async tick(): Promise<void> {
    const { broker, log } = this.options;
    if (!broker.connected) return;
    try {
      await this.markSilentServicesDead();
      await this.retryCancels();
      await this.publishStrandedJobs();
    } catch (err) {
      log.warn({ err: coerceError(err) }, 'reconcile pass failed; next pass retries');
    }
  }

  /**
   * Only judged once the state queue is drained: after the manager's own downtime, heartbeats
   * still waiting in the queue would otherwise make every live service look silent.
   */
  private async markSilentServicesDead(): Promise<void> {
    const { db, broker, metrics, log, heartbeatMisses } = this.options;
    if (!this.options.stateCaughtUp() || (await broker.stateBacklog()) > 0) return;
    const findSilent = () =>
      sql<{ id: string; name: string }>(
        db,
        `SELECT id, name FROM services
         WHERE status = 'Alive' AND last_seen_at < now() - make_interval(secs => heartbeat_interval_ms * $1 / 1000.0)`,
        [heartbeatMisses],
      );
    if ((await findSilent()).length === 0) return;
    // Their heartbeats may still be on the way, behind a flood of other messages: what was
    // queued before a barrier sent now has been applied once it comes back.
    if (!(await this.options.stateBarrier())) return;
    for (const service of await findSilent()) {
      const reason = `no heartbeat for ${heartbeatMisses} intervals`;
      const { marked, quarantined } = await db.transaction((tx) =>
        markServiceDead(tx, service.id, reason, this.options.crashLoop),
      );
      await broker.broadcastCancels(quarantined, { deadLetter: true });
      if (marked) {
        metrics.servicesDeclaredDead.inc({ reason: 'silent' });
        log.warn({ serviceId: service.id, serviceName: service.name }, `service marked dead: ${reason}`);
      }
    }
  }

  /** Cancels of deletes, and of crash loops whose job no service has dead-lettered yet. */
  private async retryCancels(): Promise<void> {
    const { db, broker, metrics, cancelRetryMs } = this.options;
    const due = await sql<{ id: string; quarantine_pending: boolean }>(
      db,
      `UPDATE observers SET cancel_sent_at = now()
       WHERE id IN (SELECT id FROM observers WHERE (status = 'OnDeleting' OR quarantine_pending)
                    AND cancel_sent_at < now() - make_interval(secs => $1 / 1000.0) LIMIT $2)
       RETURNING id, quarantine_pending`,
      [cancelRetryMs, BATCH],
    );
    if (due.length === 0) return;
    await broker.broadcastCancels(due.filter((row) => !row.quarantine_pending).map((row) => row.id));
    await broker.broadcastCancels(
      due.filter((row) => row.quarantine_pending).map((row) => row.id),
      { deadLetter: true },
    );
    metrics.cancelsSent.inc({ why: 'retry' }, due.length);
  }

  private async publishStrandedJobs(): Promise<void> {
    const { db, broker, log } = this.options;
    const stranded = await sql<JobMessage>(
      db,
      `SELECT id AS "observerId", name, kind, pool, params FROM observers
       WHERE status = 'Created' AND NOT job_published AND created_at < now() - make_interval(secs => $1 / 1000.0)
       LIMIT $2`,
      [UNPUBLISHED_GRACE_MS, BATCH],
    );
    for (const job of stranded) {
      await broker.publishJob(job);
      await sql(db, `UPDATE observers SET job_published = true WHERE id = $1`, [job.observerId]);
      log.warn({ observerId: job.observerId }, 'published the job of an observer whose create was interrupted');
    }
  }
}
