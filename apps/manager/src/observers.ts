import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { Backoff, pause } from '@vigil/backoff';
import { BrokerBlockedError } from '@vigil/broker';
import { redactSecrets, type JobMessage, type SecretPath } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { ManagerBroker } from './broker';
import { OBSERVER_STATUSES, type ObserverStatus } from './db/statuses';
import type { KindCatalog, KindCheck } from './kind-catalog';
import { Batched } from './db/batched';
import { nameMatch, sql, type NameFilter } from './db/sql';
import type { ObserverView, TimelineView } from './views';

export type { ObserverView, TimelineView } from './views';

export interface CreateObserver {
  name: string;
  kind: string;
  pool: string;
  params: Record<string, unknown>;
  staleAfterMs?: number | undefined;
}

export type CreateResult =
  | { type: 'created'; observer: ObserverView }
  | { type: 'name-in-use'; name: string }
  | { type: 'quota-exceeded'; pool: string; quota: ObserverQuota }
  | { type: 'rejected'; check: Extract<KindCheck, { ok: false }> }
  | { type: 'broker-unavailable'; error: Error }
  | { type: 'broker-blocked'; reason: string };

export type DeleteResult =
  | { type: 'accepted'; observer: ObserverView }
  | { type: 'already-deleted'; observer: ObserverView }
  | { type: 'not-found' };

export interface ListFilter {
  name?: NameFilter;
  status?: ObserverStatus;
  serviceId?: string;
  kind?: string;
  pool?: string;
  limit: number;
  /** Postgres' own text of the last item's created_at (microseconds), and its id. */
  cursor?: { createdAt: string; id: string };
}

/** How many observers (not Deleted) may exist, in all and in one pool. */
export interface ObserverQuota {
  total: number;
  perPool: number;
}

type InsertOutcome = 'created' | 'name-in-use' | 'quota-exceeded';

export interface ObserverRecord {
  id: string;
  name: string;
  kind: string;
  pool: string;
  params: Record<string, unknown>;
  /** Paths in `params` whose values no view shows. */
  secret_params: SecretPath[];
  status: ObserverStatus;
  service_id: string | null;
  generation: number;
  last_error: string | null;
  wait_reason: string | null;
  stale_after_ms: number | null;
  stale_since: Date | null;
  last_published_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /** created_at at full precision: a JavaScript Date would cut the cursor to milliseconds. */
  created_at_text: string;
}

export const COLUMNS =
  'id, name, kind, pool, params, secret_params, status, service_id, generation, last_error, wait_reason, ' +
  'stale_after_ms, stale_since, last_published_at, created_at, updated_at, created_at::text AS created_at_text';

/** The live count is read again at least this often, to see other managers' creates. */
const LIVE_COUNT_MAX_AGE_MS = 10_000;

/** A create whose compensation failed (the database was away) retries it with these pauses. */
const COMPENSATION_BACKOFF = { initialDelayMs: 500, maxDelayMs: 10_000 };

/** Creating, deleting and reading observers: the manager's commands, apart from HTTP. */
export class Observers {
  constructor(
    private readonly db: DataSource,
    private readonly broker: ManagerBroker,
    private readonly catalog: KindCatalog,
    private readonly log: Logger,
    private readonly quota: ObserverQuota,
    /** A list page stops before its items' JSON passes this many bytes. */
    private readonly listMaxBytes: number,
  ) {}

  /**
   * New rows with their first timeline entry, many per statement. A row comes back
   * `name-in-use` when its name is taken among the live observers (or earlier in the same
   * batch), and `quota-exceeded` when its pool or the whole system holds the most observers
   * allowed. One batch is written at a time, so the quota holds for this manager's creates;
   * several managers creating at the same moment may pass it by a batch.
   */
  private readonly inserts = new Batched<CreateObserver & { id: string; secretPaths: SecretPath[] }, InsertOutcome>(
    async (rows) => {
      const admitted: typeof rows = [];
      for (const row of rows) if (await this.quotaAdmits(row.pool)) admitted.push(row);
      const created = await sql<{ id: string }>(
        this.db,
        `WITH created AS (
         INSERT INTO observers (id, name, kind, pool, params, secret_params, stale_after_ms, status, unplaced_since)
         SELECT id, name, kind, pool, params, secret_params, stale_after_ms, 'Created', now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::int[])
              AS i(id, name, kind, pool, params, secret_params, stale_after_ms)
         ON CONFLICT (name) WHERE status <> 'Deleted' DO NOTHING
         RETURNING id),
       logged AS (INSERT INTO observer_events (observer_id, event, status, generation)
                  SELECT id, 'created', 'Created', 1 FROM created)
       SELECT id FROM created`,
        [
          admitted.map((r) => r.id),
          admitted.map((r) => r.name),
          admitted.map((r) => r.kind),
          admitted.map((r) => r.pool),
          admitted.map((r) => JSON.stringify(r.params)),
          admitted.map((r) => JSON.stringify(r.secretPaths)),
          admitted.map((r) => r.staleAfterMs ?? null),
        ],
      );
      const tried = new Set(admitted.map((row) => row.id));
      const ids = new Set(created.map((row) => row.id));
      return rows.map((r) => (ids.has(r.id) ? 'created' : tried.has(r.id) ? 'name-in-use' : 'quota-exceeded'));
    },
  );

  /**
   * Deletions with their timeline entries, many per statement; an observer that is not
   * Created, Processing or Failed comes back `undefined`.
   */
  private readonly removals = new Batched<string, ObserverRecord | undefined>(async (ids) => {
    const rows = await sql<ObserverRecord>(
      this.db,
      `WITH updated AS (
         UPDATE observers SET
           status = CASE WHEN (status = 'Failed' AND NOT quarantine_pending) OR (status = 'Paused' AND service_id IS NULL)
                         THEN 'Deleted' ELSE 'OnDeleting' END,
           quarantine_pending = false, cancel_sent_at = now(), updated_at = now()
         WHERE id = ANY($1::uuid[]) AND status IN ('Created', 'Processing', 'Paused', 'Failed')
         RETURNING ${COLUMNS}),
       logged AS (
         INSERT INTO observer_events (observer_id, event, status, service_id, reason, generation)
         SELECT id, CASE WHEN status = 'Deleted' THEN 'deleted' ELSE 'cancel-sent' END, status, service_id,
                'DELETE requested', generation
         FROM updated)
       SELECT * FROM updated`,
      [ids],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id.toLowerCase()));
  });

  /** Observers not Deleted, per pool, as last counted plus those admitted since. */
  private live: { countedAt: number; perPool: Map<string, number>; total: number } | undefined;

  /**
   * Whether one more observer fits `pool`'s quota; counts it if so. Counting every observer for
   * each batch would cost a scan per batch; instead the count is read now and then and kept up by
   * this manager's own creates. Deletions make it too high, never too low, so a create it would
   * refuse is judged again on a fresh count first.
   */
  private async quotaAdmits(pool: string): Promise<boolean> {
    const fits = (live: NonNullable<typeof this.live>) =>
      live.total < this.quota.total && (live.perPool.get(pool) ?? 0) < this.quota.perPool;
    let live = this.live;
    if (!live || Date.now() - live.countedAt > LIVE_COUNT_MAX_AGE_MS || !fits(live)) {
      const counts = await sql<{ pool: string; n: number }>(
        this.db,
        `SELECT pool, count(*)::int AS n FROM observers WHERE status <> 'Deleted' GROUP BY pool`,
      );
      live = {
        countedAt: Date.now(),
        perPool: new Map(counts.map((c) => [c.pool, c.n])),
        total: counts.reduce((sum, c) => sum + c.n, 0),
      };
      this.live = live;
    }
    if (!fits(live)) return false;
    live.total += 1;
    live.perPool.set(pool, (live.perPool.get(pool) ?? 0) + 1);
    return true;
  }

  private readonly publishedMarks = new Batched<string, void>(async (ids) => {
    await sql(this.db, `UPDATE observers SET job_published = true WHERE id = ANY($1::uuid[])`, [ids]);
    return ids.map(() => undefined);
  });

  /**
   * The row is committed before the job is published, so the service's `observer.started`
   * always finds it. If the publish fails the row is removed again and the caller told so; a
   * manager that dies in between leaves an unpublished row, which the lost-job audit publishes.
   */
  async create(input: CreateObserver): Promise<CreateResult> {
    const check = storable(input.params) ?? (await this.catalog.check(input.kind, input.pool, input.params));
    if (!check.ok) return { type: 'rejected', check };
    const id = randomUUID();
    const inserted = await this.inserts.add({ id, ...input, secretPaths: check.secretPaths });
    if (inserted === 'name-in-use') return { type: 'name-in-use', name: input.name };
    if (inserted === 'quota-exceeded') return { type: 'quota-exceeded', pool: input.pool, quota: this.quota };
    const job: JobMessage = {
      observerId: id,
      name: input.name,
      kind: input.kind,
      pool: input.pool,
      params: input.params,
      generation: 1,
      staleAfterMs: input.staleAfterMs ?? null,
    };
    try {
      await this.broker.publishJob(job);
    } catch (err) {
      this.undoCreate(id);
      // A publish that timed out because the alarm came meanwhile is the alarm's doing too.
      const blocked = err instanceof BrokerBlockedError ? err.reason : this.broker.blocked;
      if (blocked !== undefined) return { type: 'broker-blocked', reason: blocked };
      return { type: 'broker-unavailable', error: coerceError(err) };
    }
    // The job is out: from here the observer exists, whatever happens to this bookkeeping.
    // (The first observer.started also sets the flag.)
    await this.publishedMarks
      .add(id)
      .catch((err: unknown) => this.log.warn({ err, observerId: id }, 'could not mark the job published'));
    const now = new Date().toISOString();
    const observer: ObserverView = {
      id,
      ...input,
      params: redactSecrets(input.params, check.secretPaths),
      status: 'Created',
      serviceId: null,
      generation: 1,
      lastError: null,
      waitReason: null,
      staleAfterMs: input.staleAfterMs ?? null,
      staleSince: null,
      lastPublishedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    return { type: 'created', observer };
  }

  /**
   * A create whose job could not be queued leaves nothing behind. A publish that timed out may
   * still reach the queue; that job then finds no row, and its service is told to cancel it.
   * While the database is away the removal is retried, in the background, until it is done.
   */
  private undoCreate(id: string): void {
    const backoff = new Backoff(COMPENSATION_BACKOFF);
    const attempt = async (): Promise<void> => {
      try {
        await sql(this.db, `DELETE FROM observer_events WHERE observer_id = $1`, [id]);
        await sql(this.db, `DELETE FROM observers WHERE id = $1 AND NOT job_published`, [id]);
      } catch (err) {
        const delayMs = backoff.next();
        this.log.warn({ err: coerceError(err), observerId: id, retryInMs: delayMs }, 'could not undo a failed create');
        await pause(delayMs);
        return attempt();
      }
    };
    void attempt();
  }

  /**
   * Broadcasts the cancel; the service holding the observer (or the one its job reaches next)
   * stops it and reports back. A failed observer holds no job any more and is deleted at once,
   * unless it failed in a crash loop and its job is still out there.
   */
  async remove(id: string): Promise<DeleteResult> {
    const row = await this.removals.add(id);
    if (row) {
      if (row.status === 'OnDeleting') await this.sendCancel(id);
      return { type: 'accepted', observer: toView(row) };
    }
    const observer = await this.get(id);
    if (!observer) return { type: 'not-found' };
    if (observer.status === 'Deleted') return { type: 'already-deleted', observer };
    // Already OnDeleting: the request is repeated, so is the cancel.
    await this.sendCancel(id);
    return { type: 'accepted', observer };
  }

  async get(id: string): Promise<ObserverView | undefined> {
    const rows = await sql<ObserverRecord>(this.db, `SELECT ${COLUMNS} FROM observers WHERE id = $1`, [id]);
    return rows[0] && toView(rows[0]);
  }

  async timeline(id: string, limit = 200): Promise<TimelineView[]> {
    const rows = await sql<{
      at: Date;
      event: string;
      status: ObserverStatus;
      service_id: string | null;
      generation: number | null;
      reason: string | null;
    }>(
      this.db,
      `SELECT at, event, status, service_id, generation, reason FROM
           (SELECT * FROM observer_events WHERE observer_id = $1 ORDER BY id DESC LIMIT $2) latest
         ORDER BY id`,
      [id, limit],
    );
    return rows.map((r) => ({
      at: r.at.toISOString(),
      event: r.event,
      status: r.status,
      serviceId: r.service_id,
      generation: r.generation,
      reason: r.reason,
    }));
  }

  /** How many observers are in each status (every status named, 0 when none): one scan, no rows sent. */
  async countByStatus(): Promise<Record<ObserverStatus, number>> {
    const rows = await sql<{ status: ObserverStatus; n: number }>(
      this.db,
      `SELECT status, count(*)::int AS n FROM observers GROUP BY status`,
    );
    const counts = Object.fromEntries(OBSERVER_STATUSES.map((status) => [status, 0])) as Record<ObserverStatus, number>;
    for (const row of rows) counts[row.status] = row.n;
    return counts;
  }

  async list(
    filter: ListFilter,
  ): Promise<{ items: ObserverView[]; nextCursor: { createdAt: string; id: string } | null }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      params.push(value);
      where.push(clause.replace('?', `$${params.length}`));
    };
    if (filter.name) {
      const { op, value } = nameMatch(filter.name);
      add(`name ${op} ?`, value);
    }
    if (filter.status) add('status = ?', filter.status);
    if (filter.serviceId) add('service_id = ?', filter.serviceId);
    if (filter.kind) add('kind = ?', filter.kind);
    if (filter.pool) add('pool = ?', filter.pool);
    if (filter.cursor) {
      params.push(filter.cursor.createdAt, filter.cursor.id);
      where.push(`(created_at, id) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(filter.limit + 1);
    const rows = await sql<ObserverRecord>(
      this.db,
      `SELECT ${COLUMNS} FROM observers ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at, id LIMIT $${params.length}`,
      params,
    );
    // Params may be large (up to the body limit each): a page ends early rather than grow
    // without bound, and its cursor goes on from where it ended.
    const page: ObserverRecord[] = [];
    const items: ObserverView[] = [];
    let bytes = 0;
    for (const row of rows.slice(0, filter.limit)) {
      const view = toView(row);
      bytes += Buffer.byteLength(JSON.stringify(view));
      if (items.length > 0 && bytes > this.listMaxBytes) break;
      page.push(row);
      items.push(view);
    }
    const last = page.at(-1);
    const more = rows.length > page.length;
    return { items, nextCursor: more && last ? { createdAt: last.created_at_text, id: last.id } : null };
  }

  private async sendCancel(id: string): Promise<void> {
    try {
      await this.broker.broadcastCancels([id]);
    } catch (err) {
      this.log.warn({ err, observerId: id }, 'could not broadcast a cancel now; the reconciler retries it');
    }
  }
}

export function toView(row: ObserverRecord): ObserverView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    pool: row.pool,
    params: redactSecrets(row.params, row.secret_params),
    status: row.status,
    serviceId: row.service_id,
    generation: row.generation,
    lastError: row.last_error,
    waitReason: row.wait_reason,
    staleAfterMs: row.stale_after_ms,
    // The flag is about a running copy: one that stopped or moved since says nothing now.
    staleSince: row.status === 'Processing' ? (row.stale_since?.toISOString() ?? null) : null,
    lastPublishedAt: row.last_published_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * Params Postgres' jsonb cannot hold, whatever the kind's schema says: nesting too deep to
 * serialize, a NUL character, half a surrogate pair (JSON.stringify escapes those two, so they
 * are found in its output).
 */
export function storable(params: Record<string, unknown>): Extract<KindCheck, { ok: false }> | undefined {
  let text: string;
  try {
    text = JSON.stringify(params);
  } catch {
    return { ok: false, reason: 'invalid-params', detail: 'params nest too deeply to store' };
  }
  // An escape is one only after an even number of backslashes.
  if (/(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i.test(text)) {
    return { ok: false, reason: 'invalid-params', detail: 'params hold a NUL character or half a surrogate pair' };
  }
  return undefined;
}
