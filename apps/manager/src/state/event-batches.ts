import type { StateEvent, StateEventOf } from '@vigil/contracts';

export type Started = StateEventOf<'observer.started'>;
/** What the projector applies: a batch of starts is applied as the starts it holds. */
export type Applied = Exclude<StateEvent, StateEventOf<'observers.started'>>;
export type OtherEvent = Exclude<Applied, Started>;

/** An `observers.started` as the `observer.started` events it carries; any other event as itself. */
export function unbatched(event: StateEvent): Applied[] {
  if (event.type !== 'observers.started') return [event];
  const { serviceId, at } = event;
  return event.observers.map((o) => ({ type: 'observer.started', serviceId, at, ...o }));
}

/**
 * Splits events into single events and runs of `observer.started` that can be applied together:
 * consecutive, and each observer at most once (a second start of the same one begins a new run).
 */
export function inRuns(events: readonly Applied[]): (OtherEvent | Started[])[] {
  const runs: (OtherEvent | Started[])[] = [];
  let run: Started[] = [];
  let inRun = new Set<string>();
  for (const event of events) {
    if (event.type !== 'observer.started') {
      run = [];
      inRun = new Set();
      runs.push(event);
      continue;
    }
    const id = event.observerId.toLowerCase();
    if (run.length === 0 || inRun.has(id)) {
      run = [];
      inRun = new Set();
      runs.push(run);
    }
    run.push(event);
    inRun.add(id);
  }
  return runs;
}

/**
 * A heartbeat is a snapshot of what its service runs: one followed by a later heartbeat of the
 * same service in the same batch says nothing the later one does not, so it is skipped (the later
 * one keeps its place in the order). During a catch-up most of the backlog is heartbeats.
 */
export function withoutStaleHeartbeats<E extends StateEvent>(events: readonly E[]): E[] {
  const seenLater = new Set<string>();
  const kept: E[] = [];
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]!;
    if (event.type === 'service.heartbeat') {
      if (seenLater.has(event.serviceId)) continue;
      seenLater.add(event.serviceId);
    }
    kept.push(event);
  }
  return kept.reverse();
}
