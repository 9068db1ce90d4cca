import type { EntityManager } from 'typeorm';
import { sql } from '../db/sql';
import { releaseObservers } from './placement';
import { recordServiceEvent, recordTimeline } from './timeline';

/** When an observer counts as killing the services that run it. */
export interface CrashLoopPolicy {
  deaths: number;
  windowMs: number;
  /** A death counts against the observers that started on the service within this. */
  recentStartMs: number;
}

/**
 * Marks a service dead and puts what it ran back to waiting. A death without a graceful stop
 * (`crashLoop` given) counts against every observer it ran recently; one that reaches the
 * policy's count is Failed and returned, for its job to be dead-lettered. Also returned: the
 * services that contended for what it ran, to be asked for their listings.
 */
export async function markServiceDead(
  tx: EntityManager,
  serviceId: string,
  reason: string,
  crashLoop: CrashLoopPolicy | undefined,
): Promise<{ marked: boolean; quarantined: string[]; contenders: string[] }> {
  const updated = await sql<unknown>(
    tx,
    `UPDATE services SET status = 'Dead', died_at = now(), death_reason = $2, running = 0, free_slots = 0
     WHERE id = $1 AND status = 'Alive' RETURNING id`,
    [serviceId, reason],
  );
  if (updated.length > 0) await recordServiceEvent(tx, serviceId, 'died', reason);
  const quarantined = crashLoop ? await countCrashDeaths(tx, serviceId, crashLoop) : [];
  const { contenders } = await releaseObservers(tx, serviceId, `service dead: ${reason}`);
  return { marked: updated.length > 0, quarantined, contenders };
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
    `UPDATE observers SET status = 'Failed', service_id = NULL, running_generation = NULL, last_error = $2,
            quarantine_pending = true, cancel_sent_at = now(), updated_at = now()
     WHERE id = ANY($1::uuid[])`,
    [looping, error],
  );
  await recordTimeline(
    tx,
    looping.map((id) => ({ observerId: id, event: 'failed', status: 'Failed', serviceId, reason: error })),
  );
  return looping;
}
