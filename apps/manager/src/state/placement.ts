import type { EntityManager } from 'typeorm';
import type { JobMessage, MovePurpose } from '@vigil/contracts';
import type { ObserverStatus } from '../db/statuses';
import { sql } from '../db/sql';
import { decidePlacement, type Placement, type PlacementRow, type Release, type Report } from './placement-rules';
import { recordTimeline, type TimelineEntry } from './timeline';

/** What applying events asks of the broker once their transaction has committed. */
export interface Effects {
  /** Observers that run where they must not (deleted, being deleted, or unknown): cancel them. */
  cancel: string[];
  /** Observers found in a crash loop: cancel them and dead-letter their jobs. */
  quarantine: string[];
  /** Copies to stop on one service each: the manager keeps another. */
  release: Release[];
  /** Services asking for moves, each with the next generation of the observers to move from it. */
  moves: { serviceId: string; purpose: MovePurpose; requestId: string | undefined; jobs: JobMessage[] }[];
  /** Services whose heartbeat disagrees with the drain an operator asked for: tell them again. */
  drains: { serviceId: string; draining: boolean }[];
  /** Next generations to publish as fresh runs (stale observers whose kinds ask for a restart). */
  restarts: JobMessage[];
  /** Services to ask for a full listing of what they hold (`service.list`). */
  listings: string[];
}

export function noEffects(): Effects {
  return { cancel: [], quarantine: [], release: [], moves: [], drains: [], restarts: [], listings: [] };
}

interface RowRecord {
  id: string;
  status: ObserverStatus;
  generation: number;
  service_id: string | null;
  running_generation: number | null;
  contender_service_id: string | null;
  contender_since: Date | null;
  quarantine_pending: boolean;
  moved_from: string | null;
  holder_alive: boolean;
  contender_alive: boolean;
}

/** Services kept per observer for crash-loop counting, the latest ones. */
const RECENT_SERVICES_KEPT = 16;

/**
 * Applies reports of running copies (starts, or what a birth or heartbeat lists), each observer
 * at most once, in a few statements whatever their number. For holdings only the rows that differ
 * from the report are read: a heartbeat of ten thousand observers that changes nothing writes
 * nothing.
 */
export async function placeReports(tx: EntityManager, reports: readonly Report[], effects: Effects): Promise<void> {
  if (reports.length === 0) return;
  const starts = reports.some((r) => r.source === 'start');
  const rows = await sql<RowRecord>(
    tx,
    `SELECT o.id, o.status, o.generation, o.service_id, o.running_generation, o.contender_service_id,
            o.contender_since, o.quarantine_pending, o.moved_from,
            coalesce(h.status = 'Alive', false) AS holder_alive, coalesce(c.status = 'Alive', false) AS contender_alive
     FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS r(id, service_id, generation)
     JOIN observers o ON o.id = r.id
     LEFT JOIN services h ON h.id = o.service_id
     LEFT JOIN services c ON c.id = o.contender_service_id
     WHERE $4 OR o.service_id IS DISTINCT FROM r.service_id OR o.running_generation IS DISTINCT FROM r.generation
        OR o.status <> 'Processing' OR o.contender_service_id IS NOT NULL OR o.quarantine_pending
     ORDER BY o.id
     FOR UPDATE OF o`,
    [reports.map((r) => r.observerId), reports.map((r) => r.serviceId), reports.map((r) => r.generation), starts],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  const unknown = await sql<{ id: string }>(
    tx,
    `SELECT r.id FROM unnest($1::uuid[]) AS r(id) WHERE NOT EXISTS (SELECT 1 FROM observers o WHERE o.id = r.id)`,
    [reports.map((r) => r.observerId)],
  );
  effects.cancel.push(...unknown.map((row) => row.id));

  const updates: { id: string; next: Placement; claimed: boolean; started: boolean; serviceId: string }[] = [];
  const timeline: TimelineEntry[] = [];
  for (const report of reports) {
    const record = byId.get(report.observerId.toLowerCase());
    if (!record) continue;
    const row = toPlacementRow(record);
    const decision = decidePlacement(row, report);
    if (decision.cancel) effects.cancel.push(report.observerId);
    if (decision.quarantine) effects.quarantine.push(report.observerId);
    if (decision.release) effects.release.push(decision.release);
    if (decision.askListings) effects.listings.push(...decision.askListings);
    if (decision.next) {
      updates.push({
        id: row.id,
        next: decision.next,
        claimed: decision.claimed === true,
        started: report.source === 'start',
        serviceId: report.serviceId,
      });
    } else if (report.source === 'start' && !decision.release) {
      // Unchanged, yet the job was out: the create's bookkeeping may have been cut short.
      updates.push({ id: row.id, next: row, claimed: false, started: true, serviceId: report.serviceId });
    }
    const status = decision.next?.status ?? row.status;
    for (const note of decision.notes) timeline.push({ observerId: row.id, status, ...note });
  }
  await writePlacements(tx, updates);
  await recordTimeline(tx, timeline);
}

function toPlacementRow(record: RowRecord): PlacementRow {
  return {
    id: record.id,
    status: record.status,
    generation: record.generation,
    serviceId: record.service_id,
    runningGeneration: record.running_generation,
    contenderServiceId: record.contender_service_id,
    contenderSince: record.contender_since?.toISOString() ?? null,
    quarantinePending: record.quarantine_pending,
    movedFrom: record.moved_from,
    holderAlive: record.holder_alive,
    contenderAlive: record.contender_alive,
  };
}

async function writePlacements(
  tx: EntityManager,
  updates: { id: string; next: Placement; claimed: boolean; started: boolean; serviceId: string }[],
): Promise<void> {
  if (updates.length === 0) return;
  await sql(
    tx,
    `UPDATE observers o SET
       status = u.status, generation = u.generation, service_id = u.service_id,
       running_generation = u.running_generation, contender_service_id = u.contender,
       contender_since = u.contender_since,
       unplaced_since = CASE WHEN u.service_id IS NULL THEN coalesce(o.unplaced_since, now()) ELSE NULL END,
       last_error = CASE WHEN u.claimed THEN NULL ELSE o.last_error END,
       wait_reason = CASE WHEN u.service_id IS NULL THEN o.wait_reason ELSE NULL END,
       -- A new run (another generation, or another service) has not been silent yet.
       stale_since = CASE WHEN u.running_generation IS DISTINCT FROM o.running_generation
                            OR u.service_id IS DISTINCT FROM o.service_id THEN NULL ELSE o.stale_since END,
       job_published = o.job_published OR u.started,
       -- The latest RECENT_SERVICES_KEPT only: a crash loop needs a few, and services that stop
       -- gracefully are never removed from it otherwise.
       recent_services = CASE WHEN u.started
                              THEN (array_append(array_remove(o.recent_services, u.reporter), u.reporter))
                                   [greatest(1, cardinality(o.recent_services) + 2 - ${RECENT_SERVICES_KEPT}):]
                              ELSE o.recent_services END,
       updated_at = now()
     FROM unnest($1::uuid[], $2::text[], $3::int[], $4::uuid[], $5::int[], $6::uuid[], $7::timestamptz[],
                 $8::bool[], $9::bool[], $10::uuid[])
          AS u(id, status, generation, service_id, running_generation, contender, contender_since, claimed, started,
               reporter)
     WHERE o.id = u.id`,
    [
      updates.map((u) => u.id),
      updates.map((u) => u.next.status),
      updates.map((u) => u.next.generation),
      updates.map((u) => u.next.serviceId),
      updates.map((u) => u.next.runningGeneration),
      updates.map((u) => u.next.contenderServiceId),
      updates.map((u) => u.next.contenderSince),
      updates.map((u) => u.claimed),
      updates.map((u) => u.started),
      updates.map((u) => u.serviceId),
    ],
  );
}

/**
 * What a birth or heartbeat lists, against what the manager has recorded on the service, in one
 * read of the service's rows: recorded and not listed went back to the queue (released, see
 * `releaseObservers`); listed copies the row already says run there, at that generation and
 * uncontested, need nothing; the others are placed (`placeReports`). A listing of ten thousand
 * observers that changes nothing costs one index range scan, not three lookups per observer.
 */
export async function placeListing(
  tx: EntityManager,
  listing: { serviceId: string; running: readonly string[]; generations?: readonly number[] | undefined; at: string },
  releaseReason: string,
  effects: Effects,
): Promise<void> {
  const { serviceId } = listing;
  const rows = await sql<{
    id: string;
    service_id: string | null;
    status: ObserverStatus;
    running_generation: number | null;
    contender_service_id: string | null;
    quarantine_pending: boolean;
  }>(
    tx,
    `SELECT id, service_id, status, running_generation, contender_service_id, quarantine_pending
     FROM observers WHERE service_id = $1 OR contender_service_id = $1`,
    [serviceId],
  );
  const listed = new Map<string, number>();
  // Services from before generations run generation 1 only.
  listing.running.forEach((id, i) => listed.set(id.toLowerCase(), listing.generations?.[i] ?? 1));
  const recorded = new Map(rows.map((row) => [row.id, row]));
  const { contenders } = await releaseObservers(tx, serviceId, releaseReason, {
    gone: rows.filter((row) => row.service_id === serviceId && !listed.has(row.id)).map((row) => row.id),
    notContending: rows
      .filter((row) => row.contender_service_id === serviceId && !listed.has(row.id))
      .map((row) => row.id),
  });
  effects.listings.push(...contenders);
  const reports: Report[] = [];
  for (const [observerId, generation] of listed) {
    const row = recorded.get(observerId);
    const settled =
      row?.service_id === serviceId &&
      row.running_generation === generation &&
      row.status === 'Processing' &&
      row.contender_service_id === null &&
      !row.quarantine_pending;
    if (!settled) reports.push({ serviceId, observerId, generation, source: 'holding', at: listing.at });
  }
  await placeReports(tx, reports, effects);
}

/**
 * Observers recorded on `serviceId` are no longer there (all of them, or those `gone`): their
 * jobs went back to the queue (or were lost). They wait (`Created`) until a service reports them
 * again, and the audit's clock starts. A contender copy on the service is forgotten (all, or
 * those `notContending`). Returns the services that contended for the released observers: their
 * copies are likely the ones running now, and their listings claim them.
 */
export async function releaseObservers(
  tx: EntityManager,
  serviceId: string,
  reason: string,
  only?: { gone: readonly string[]; notContending: readonly string[] },
): Promise<{ contenders: string[] }> {
  // `null`: every row of the service.
  const gone = only ? only.gone : null;
  const notContending = only ? only.notContending : null;
  const released =
    gone !== null && gone.length === 0
      ? []
      : await sql<{ id: string; status: ObserverStatus; running_generation: number | null; contender: string | null }>(
          tx,
          `UPDATE observers o SET status = CASE WHEN o.status IN ('OnDeleting', 'Paused') THEN o.status ELSE 'Created' END,
                  service_id = NULL, running_generation = NULL, contender_service_id = NULL, contender_since = NULL,
                  unplaced_since = now(), updated_at = now()
           FROM (SELECT id, running_generation, contender_service_id FROM observers
                 WHERE service_id = $1 AND status IN ('Processing', 'OnDeleting', 'Paused')
                   AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))
                 FOR UPDATE) old
           WHERE o.id = old.id
           RETURNING o.id, o.status, old.running_generation, old.contender_service_id AS contender`,
          [serviceId, gone],
        );
  if (notContending === null || notContending.length > 0) {
    await sql(
      tx,
      `UPDATE observers SET contender_service_id = NULL, contender_since = NULL
       WHERE contender_service_id = $1 AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))`,
      [serviceId, notContending],
    );
  }
  await recordTimeline(
    tx,
    released.map((r) => ({
      observerId: r.id,
      event: 'released',
      status: r.status,
      serviceId,
      reason,
      generation: r.running_generation,
    })),
  );
  return { contenders: [...new Set(released.flatMap((r) => (r.contender ? [r.contender] : [])))] };
}
