import type { Run } from '@vigil/testkit';
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
    | 'moved-overlap-too-long'
    | 'joiner-left-idle'
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

/** A planned move away from `source`: from the manager's `moving` to its release of the copy there. */
export interface MoveWindow {
  source: string;
  from: number;
  to: number;
}

export interface TimelineEvent {
  at: string;
  event: string;
  serviceId: string | null;
}

/**
 * The planned moves in an observer's timeline: each `moving` (the manager published the next
 * generation to move it away from that service) until the manager's last release of the copy on
 * that service before the copy stopped (its `release-confirmed`), the observer came back to that
 * service, or another move began; `until` if no release came (the source died or still waits). The
 * last release, not the first: a manager killed between deciding a release and sending it leaves
 * the copy running until the next manager, hearing from the source, decides it again.
 */
export function moveWindows(timeline: readonly TimelineEvent[], until: number): MoveWindow[] {
  const moves: MoveWindow[] = [];
  for (const [i, entry] of timeline.entries()) {
    if (entry.event !== 'moving' || entry.serviceId === null) continue;
    const source = entry.serviceId;
    const rest = timeline.slice(i + 1);
    const over = rest.findIndex(
      (later) =>
        later.event === 'moving' ||
        (later.serviceId === source && ['release-confirmed', 'started', 'moved'].includes(later.event)),
    );
    const release = (over < 0 ? rest : rest.slice(0, over)).findLast(
      (later) => later.event === 'released' && later.serviceId === source,
    );
    moves.push({ source, from: Date.parse(entry.at), to: release ? Date.parse(release.at) : until });
  }
  return moves;
}

/** How much of [from, to] the union of `spans` covers, ms. */
function coveredMs(from: number, to: number, spans: readonly { from: number; to: number }[]): number {
  const clipped = spans
    .map((span) => ({ from: Math.max(from, span.from), to: Math.min(to, span.to) }))
    .filter((span) => span.to > span.from)
    .sort((a, b) => a.from - b.from);
  let covered = 0;
  let reached = from;
  for (const span of clipped) {
    if (span.to <= reached) continue;
    covered += span.to - Math.max(span.from, reached);
    reached = span.to;
  }
  return covered;
}

export interface Windows {
  /** Longest time an observer ran on two services at once outside a planned move's overlap. */
  doubleMs: number;
  /** Longest time an observer ran on both the source and the destination of a planned move. */
  plannedMs: number;
  /** Longest time an observer that should run ran nowhere. */
  nowhereMs: number;
  worstDouble?: string;
  worstPlanned?: string;
  worstNowhere?: string;
}

/**
 * The longest time any of `ids` ran on two services at once, and ran nowhere, between `from`
 * and `to` (epoch ms), from their runs in the observations stream. An observer's first run starts
 * its account, so the wait for a new observer to start is not counted as a gap.
 *
 * Two runs on two services overlap as a planned move only while the manager moved the observer
 * away from one of them (its timeline's `moving` until it released the copy there) and the other
 * run started after that move began: make-before-break runs both until the release. Whatever of
 * an overlap falls outside such a window (before the move, or after the release while the source
 * still publishes) counts as an ordinary double run. The manager's timeline is read only for
 * observers that ran twice at all; one it cannot read has no planned moves.
 */
export async function windows(chaos: ChaosWorld, ids: readonly string[], from: number, to: number): Promise<Windows> {
  const result: Windows = { doubleMs: 0, plannedMs: 0, nowhereMs: 0 };
  for (const id of ids) {
    const runs = chaos.world.watch
      .runsOf(id)
      .filter((r) => r.end + PUBLISH_INTERVAL_MS >= from && r.start <= to)
      .sort((a, b) => a.start - b.start);
    if (runs.length === 0) continue;
    // Two runs overlap only between observations both published.
    const overlaps: { a: Run; b: Run; from: number; to: number }[] = [];
    for (const [i, a] of runs.entries()) {
      for (const b of runs.slice(i + 1)) {
        const start = Math.max(a.start, b.start, from);
        const end = Math.min(a.end, b.end, to);
        if (a.serviceId !== b.serviceId && end > start) overlaps.push({ a, b, from: start, to: end });
      }
    }
    let double = 0;
    let planned = 0;
    if (overlaps.length > 0) {
      const timeline = await chaos.world.observer(id).then(
        (observer): readonly TimelineEvent[] => observer.timeline,
        () => [],
      );
      const moves = moveWindows(timeline, to);
      for (const { a, b, from: start, to: end } of overlaps) {
        const spans = moves.filter(
          (move) =>
            (move.source === a.serviceId && b.start >= move.from) ||
            (move.source === b.serviceId && a.start >= move.from),
        );
        const inMove = coveredMs(start, end, spans);
        planned = Math.max(planned, inMove);
        double = Math.max(double, end - start - inMove);
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
    if (planned > result.plannedMs) [result.plannedMs, result.worstPlanned] = [planned, id];
    if (nowhere > result.nowhereMs) [result.nowhereMs, result.worstNowhere] = [nowhere, id];
  }
  return result;
}
