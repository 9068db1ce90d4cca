import type { DataSource } from 'typeorm';
import { pause } from '@vigil/backoff';
import { coerceError, type Logger } from '@vigil/logging';
import { sql } from './db/sql';

/** Rows deleted per statement: each holds its locks for a moment only. */
const BATCH = 1_000;
/** A breath between batches, so that pruning a long backlog never crowds out the state consumer, ms. */
const BETWEEN_BATCHES_MS = 20;

export interface PrunerOptions {
  db: DataSource;
  log: Logger;
  /** History older than this is deleted, ms. */
  retentionMs: number;
  intervalMs: number;
}

/**
 * Keeps the manager's tables from growing with history: timeline rows and service events older
 * than the retention period, observers deleted and services dead before it (with their rows).
 * Deletes in small batches, oldest first. Runs on the active manager only.
 */
export class Pruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly options: PrunerOptions) {}

  start(): void {
    this.stopping = false;
    this.timer ??= setInterval(() => {
      this.running ??= this.prune()
        .then(
          () => undefined,
          (err: unknown) => this.options.log.warn({ err: coerceError(err) }, 'pruning failed; next pass'),
        )
        .finally(() => (this.running = undefined));
    }, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass: every kind of history, each until nothing older than the retention is left. */
  async prune(): Promise<Record<string, number>> {
    const cutoff = new Date(Date.now() - this.options.retentionMs);
    const pruned = {
      observerEvents: await this.inBatches(
        `DELETE FROM observer_events WHERE id IN (
           SELECT id FROM observer_events WHERE at < $1 ORDER BY id LIMIT $2) RETURNING 1`,
        cutoff,
      ),
      serviceEvents: await this.inBatches(
        `DELETE FROM service_events WHERE id IN (
           SELECT id FROM service_events WHERE at < $1 ORDER BY id LIMIT $2) RETURNING 1`,
        cutoff,
      ),
      deletedObservers: await this.inBatches(
        `WITH gone AS (
           DELETE FROM observers WHERE id IN (
             SELECT id FROM observers WHERE status = 'Deleted' AND updated_at < $1 ORDER BY updated_at LIMIT $2)
           RETURNING id),
         timeline AS (DELETE FROM observer_events e USING gone WHERE e.observer_id = gone.id)
         SELECT 1 FROM gone`,
        cutoff,
      ),
      deadServices: await this.inBatches(
        `WITH gone AS (
           DELETE FROM services WHERE id IN (
             SELECT id FROM services WHERE status = 'Dead' AND died_at < $1 LIMIT $2)
           RETURNING id),
         history AS (DELETE FROM service_events e USING gone WHERE e.service_id = gone.id)
         SELECT 1 FROM gone`,
        cutoff,
      ),
    };
    if (Object.values(pruned).some((n) => n > 0)) this.options.log.info({ pruned, before: cutoff }, 'history pruned');
    return pruned;
  }

  /**
   * Runs `statement` (params: cutoff, batch size; a row back per row deleted) until it deletes
   * less than a batch; returns the rows deleted.
   */
  private async inBatches(statement: string, cutoff: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = (await sql(this.options.db, statement, [cutoff, BATCH])).length;
      total += deleted;
      if (deleted < BATCH || this.stopping) return total;
      await pause(BETWEEN_BATCHES_MS);
    }
  }
}
