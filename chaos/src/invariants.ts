import type { ChaosWorld } from './world';
import { PUBLISH_INTERVAL_MS, type ManagerObserver, type Workload } from './workload';

/** An observer counts as running on a service that published for it this recently. */
export const RUNNING_WINDOW_MS = 4 * PUBLISH_INTERVAL_MS;

export interface Violation {
  rule:
    | 'runs-not-exactly-once'
    | 'deleted-but-runs'
    | 'unknown-runs'
    | 'manager-disagrees'
    | 'job-count'
    | 'process-crashed'
    | 'ran-twice-too-long'
    | 'nowhere-too-long';
  observerId?: string;
  name?: string;
  detail: string;
}

/** Every observer the manager knows, page by page. */
export async function managerObservers(chaos: ChaosWorld): Promise<ManagerObserver[]> {
  const all: ManagerObserver[] = [];
  let cursor: string | undefined;
  do {
    const response = await chaos.world.api<{ items: ManagerObserver[]; nextCursor: string | null }>(
      'GET',
      `/observers?limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
    );
    if (response.status !== 200) throw new Error(`GET /observers: ${response.status}`);
    all.push(...response.body.items);
    cursor = response.body.nextCursor ?? undefined;
  } while (cursor);
  return all;
}

/**
 * The invariants of docs/design.md, checked from outside: what runs is read from the
 * observations stream, never from the manager. With the workload paused and settled:
 * - every observer it created and did not delete runs on exactly one service,
 * - every one it deleted (and any it never created) runs nowhere,
 * - the manager shows each where it runs (Processing on that service) or Deleted,
 * - the jobs queue holds one message per live observer, all of them held by a service,
 * - no app process exited unless the suite ended it.
 */
export async function checkInvariants(
  chaos: ChaosWorld,
  workload: Workload,
  observers: readonly ManagerObserver[],
): Promise<Violation[]> {
  const { watch } = chaos.world;
  const violations: Violation[] = [];
  const managerById = new Map(observers.map((o) => [o.id, o]));
  const expected = new Map<string, { name: string; live: boolean }>();
  for (const entry of workload.entries.values()) {
    if (entry.id) expected.set(entry.id, { name: entry.name, live: entry.state === 'live' });
  }

  for (const [id, { name, live }] of expected) {
    const on = watch.runningOn(id, RUNNING_WINDOW_MS);
    const shown = managerById.get(id);
    if (live) {
      if (on.length !== 1) {
        violations.push({
          rule: 'runs-not-exactly-once',
          observerId: id,
          name,
          detail: `runs on ${on.length} services (${on.join(', ')})`,
        });
      } else if (shown?.status !== 'Processing' || shown.serviceId !== on[0]) {
        violations.push({
          rule: 'manager-disagrees',
          observerId: id,
          name,
          detail: `runs on ${on[0]}; the manager shows ${shown?.status ?? 'nothing'} on ${shown?.serviceId ?? 'no service'}`,
        });
      }
    } else {
      if (on.length > 0) {
        violations.push({ rule: 'deleted-but-runs', observerId: id, name, detail: `runs on ${on.join(', ')}` });
      } else if (shown?.status !== 'Deleted') {
        violations.push({
          rule: 'manager-disagrees',
          observerId: id,
          name,
          detail: `deleted and runs nowhere; the manager shows ${shown?.status ?? 'nothing'}`,
        });
      }
    }
  }
  for (const id of watch.observerIds()) {
    if (expected.has(id)) continue;
    const on = watch.runningOn(id, RUNNING_WINDOW_MS);
    if (on.length > 0) violations.push({ rule: 'unknown-runs', observerId: id, detail: `runs on ${on.join(', ')}` });
  }

  const live = [...expected.values()].filter((e) => e.live).length;
  const jobsQueue = chaos.world.names.jobsQueue('default');
  const queues = await chaos.queues().catch((err: Error) => err);
  const jobs = queues instanceof Error ? undefined : queues.find((q) => q.name === jobsQueue);
  if (queues instanceof Error) {
    violations.push({ rule: 'job-count', detail: `the broker does not list its queues: ${queues.message}` });
  } else if (!jobs || jobs.ready !== 0 || jobs.unacked !== live) {
    violations.push({
      rule: 'job-count',
      detail: `${live} live observers; the jobs queue holds ${jobs ? `${jobs.ready} ready, ${jobs.unacked} unacked` : 'nothing (missing)'}`,
    });
  }

  for (const crash of chaos.crashed()) {
    violations.push({ rule: 'process-crashed', detail: `${crash.label} (pid ${crash.pid}):\n${crash.tail}` });
  }
  return violations;
}

/**
 * The longest time any of `ids` ran on two services at once, and ran nowhere, between `from`
 * and `to` (epoch ms), from their runs in the observations stream. An observer's first run starts its account, so
 * the wait for a new observer to start is not counted as a gap.
 */
export function windows(
  chaos: ChaosWorld,
  ids: readonly string[],
  from: number,
  to: number,
): { doubleMs: number; nowhereMs: number; worstDouble?: string; worstNowhere?: string } {
  const result: { doubleMs: number; nowhereMs: number; worstDouble?: string; worstNowhere?: string } = {
    doubleMs: 0,
    nowhereMs: 0,
  };
  for (const id of ids) {
    const runs = chaos.world.watch
      .runsOf(id)
      .filter((r) => r.end + PUBLISH_INTERVAL_MS >= from && r.start <= to)
      .sort((a, b) => a.start - b.start);
    if (runs.length === 0) continue;
    // Two runs overlap only between observations both published.
    let double = 0;
    for (const [i, a] of runs.entries()) {
      for (const b of runs.slice(i + 1)) {
        if (a.serviceId !== b.serviceId)
          double = Math.max(double, Math.min(a.end, b.end, to) - Math.max(a.start, b.start, from));
      }
    }
    // A run covers one interval past its last observation: the next was not due yet.
    // Silences within a run (its service frozen) count where no other run covers them.
    const spans = runs.flatMap((r) => {
      let start = r.start;
      const parts: { start: number; end: number }[] = [];
      for (const silence of r.silences) {
        parts.push({ start, end: silence.from + PUBLISH_INTERVAL_MS });
        start = silence.from + silence.ms;
      }
      parts.push({ start, end: r.end + PUBLISH_INTERVAL_MS });
      return parts;
    });
    spans.sort((a, b) => a.start - b.start);
    let covered = Math.max(from, runs[0]!.start);
    let nowhere = 0;
    for (const span of spans) {
      if (span.start > covered) nowhere = Math.max(nowhere, Math.min(span.start, to) - covered);
      covered = Math.max(covered, span.end);
    }
    nowhere = Math.max(nowhere, to - covered);
    if (double > result.doubleMs) [result.doubleMs, result.worstDouble] = [double, id];
    if (nowhere > result.nowhereMs) [result.nowhereMs, result.worstNowhere] = [nowhere, id];
  }
  return result;
}
