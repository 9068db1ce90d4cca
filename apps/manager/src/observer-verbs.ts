import type { DataSource } from 'typeorm';
import { BrokerBlockedError } from '@vigil/broker';
import type { JobMessage } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { ManagerBroker } from './broker';
import type { ObserverStatus } from './db/statuses';
import { sql } from './db/sql';
import type { KindCatalog, KindCheck } from './kind-catalog';
import { COLUMNS, storable, toView, type ObserverRecord, type ObserverView } from './observers';

export type Verb = 'pause' | 'resume' | 'restart' | 'update';

export type VerbResult =
  | { type: 'accepted'; observer: ObserverView }
  | { type: 'not-found' }
  | { type: 'gone'; observer: ObserverView }
  /** Makes no sense in the observer's status: `allowed` says where it would. */
  | { type: 'wrong-status'; observer: ObserverView; allowed: readonly ObserverStatus[] }
  | { type: 'rejected'; check: Extract<KindCheck, { ok: false }> };

/** What `change` did: a verb's result, with the row as it is now when it was applied. */
type Changed =
  Exclude<VerbResult, { type: 'accepted' }> | { type: 'accepted'; observer: ObserverView; record: ObserverRecord };

/** In which statuses each verb makes sense: the README's lifecycle table. */
export const VERB_STATUSES: Record<Verb, readonly ObserverStatus[]> = {
  pause: ['Created', 'Processing'],
  resume: ['Paused'],
  restart: ['Created', 'Processing', 'Failed'],
  update: ['Created', 'Processing', 'Paused', 'Failed'],
};

/**
 * What an operator does to an observer that exists: pause it (it stops everywhere and is kept),
 * resume it, restart it at a new generation, change its params. Each writes a timeline row.
 * A verb that publishes a job writes the row first, so its start always finds it; if the
 * publish fails, the change stands and the lost-job audit publishes the job later.
 */
export class ObserverVerbs {
  constructor(
    private readonly db: DataSource,
    private readonly broker: ManagerBroker,
    private readonly catalog: KindCatalog,
    private readonly log: Logger,
  ) {}

  /**
   * Stops every copy of the current generation or older and keeps the observer `Paused`. The
   * pause is broadcast like a cancel and repeated until the copy's service confirms it.
   */
  async pause(id: string): Promise<VerbResult> {
    const row = await this.change(
      id,
      'pause',
      `status = 'Paused', cancel_sent_at = now()`,
      'paused',
      'paused by request: every copy up to this generation stops',
    );
    if (row.type !== 'accepted') return row;
    const { observer } = row;
    try {
      await this.broker.broadcastPauses([{ observerId: id, generation: observer.generation }]);
    } catch (err) {
      this.log.warn(
        { err: coerceError(err), observerId: id },
        'could not broadcast a pause now; the reconciler retries it',
      );
    }
    return row;
  }

  /** Runs it again, at the next generation. */
  async resume(id: string): Promise<VerbResult> {
    const row = await this.change(
      id,
      'resume',
      `status = CASE WHEN service_id IS NULL THEN 'Created' ELSE 'Processing' END,
       generation = generation + 1, unplaced_since = coalesce(unplaced_since, now())`,
      'resumed',
      'resumed by request',
    );
    return row.type === 'accepted' ? this.publish(row.record, {}) : row;
  }

  /**
   * A fresh run at the next generation: where it lands on the service running the old one, that
   * one stops and the new one starts; elsewhere, the old copy is released once the new one runs
   * (a planned move). A `Failed` observer runs again, its error cleared.
   */
  async restart(id: string): Promise<VerbResult> {
    const row = await this.change(
      id,
      'restart',
      `status = CASE WHEN status = 'Failed' THEN 'Created' ELSE status END,
       generation = generation + 1, moved_from = service_id, last_error = NULL,
       moved_at = CASE WHEN service_id IS NULL THEN moved_at ELSE now() END,
       unplaced_since = CASE WHEN service_id IS NULL THEN now() ELSE unplaced_since END`,
      'restarted',
      'restarted by request',
    );
    return row.type === 'accepted' ? this.publish(row.record, { fresh: true }) : row;
  }

  /**
   * New params, checked against the kind's schema as its pool's services announced it. A
   * running observer gets them at the next generation: a kind that takes params live
   * (`onParams`) goes on without a restart where the job lands on its service, any other is
   * restarted. A paused or failed one keeps them for when it runs again.
   */
  async update(id: string, params: Record<string, unknown>): Promise<VerbResult> {
    const current = await this.find(id);
    if (!current) return { type: 'not-found' };
    const check = storable(params) ?? (await this.catalog.check(current.kind, current.pool, params));
    if (!check.ok) return { type: 'rejected', check };
    const running = current.status === 'Created' || current.status === 'Processing';
    const row = await this.change(
      id,
      'update',
      `params = $2::jsonb, secret_params = $3::jsonb,
       generation = CASE WHEN status IN ('Created', 'Processing') THEN generation + 1 ELSE generation END,
       moved_from = CASE WHEN status IN ('Created', 'Processing') THEN service_id ELSE moved_from END,
       moved_at = CASE WHEN status IN ('Created', 'Processing') AND service_id IS NOT NULL THEN now()
                       ELSE moved_at END`,
      'params-changed',
      running ? 'params changed by request: the next generation runs with them' : 'params changed by request',
      [JSON.stringify(params), JSON.stringify(check.secretPaths)],
    );
    if (row.type !== 'accepted') return row;
    if (!(row.observer.status === 'Created' || row.observer.status === 'Processing')) {
      return { type: 'accepted', observer: row.observer };
    }
    return this.publish(row.record, {});
  }

  private async find(id: string): Promise<ObserverRecord | undefined> {
    return (await sql<ObserverRecord>(this.db, `SELECT ${COLUMNS} FROM observers WHERE id = $1`, [id]))[0];
  }

  /**
   * Applies `set` to the row if the verb makes sense in its status, and writes the timeline row,
   * in one statement. `params` are $2 onwards in `set`.
   */
  private async change(
    id: string,
    verb: Verb,
    set: string,
    event: string,
    reason: string,
    params: unknown[] = [],
  ): Promise<Changed> {
    const allowed = VERB_STATUSES[verb];
    const at = params.length + 2;
    const rows = await sql<ObserverRecord>(
      this.db,
      `WITH updated AS (
         UPDATE observers SET ${set}, updated_at = now()
         WHERE id = $1 AND status = ANY($${at}::text[])
         RETURNING ${COLUMNS}),
       logged AS (
         INSERT INTO observer_events (observer_id, event, status, service_id, generation, reason)
         SELECT id, $${at + 1}, status, service_id, generation, $${at + 2} FROM updated)
       SELECT * FROM updated`,
      [id, ...params, allowed, event, reason],
    );
    const row = rows[0];
    if (row) return { type: 'accepted', observer: toView(row), record: row };
    const current = await this.find(id);
    if (!current) return { type: 'not-found' };
    if (current.status === 'Deleted') return { type: 'gone', observer: toView(current) };
    return { type: 'wrong-status', observer: toView(current), allowed };
  }

  /** Queues the job of the row as it is now: its stored params (views hide secret ones). */
  private async publish(record: ObserverRecord, extra: Pick<JobMessage, 'fresh'>): Promise<VerbResult> {
    const observer = toView(record);
    const job: JobMessage = {
      observerId: record.id,
      name: record.name,
      kind: record.kind,
      pool: record.pool,
      params: record.params,
      generation: record.generation,
      staleAfterMs: record.stale_after_ms,
      ...extra,
    };
    try {
      await this.broker.publishJob(job);
    } catch (err) {
      // Recorded already: the lost-job audit queues it within LOST_AFTER_MS.
      const blocked = err instanceof BrokerBlockedError ? err.reason : this.broker.blocked;
      const reason = blocked === undefined ? coerceError(err).message : `the broker blocks publishing (${blocked})`;
      this.log.warn({ observerId: observer.id, reason }, 'could not queue the job of a verb; the lost-job audit will');
    }
    return { type: 'accepted', observer };
  }
}
