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

/** A copy the manager released has stopped (its job acked). */
export type Released = StateEventOf<'observer.stopped'> & { reason: 'released' };

/**
 * Starts of copies and stops of released ones that can be applied together, each observer at
 * most once: they touch different observers, so their order among themselves does not matter. A
 * move of a thousand observers brings a thousand of each, interleaved as two services report them.
 */
export interface Run {
  starts: Started[];
  releases: Released[];
}

function isReleased(event: Applied): event is Released {
  return event.type === 'observer.stopped' && event.reason === 'released';
}

/**
 * Splits events into single events and runs (see `Run`): any other event, or a second event of
 * an observer already in the run, begins a new one.
 */
export function inRuns(events: readonly Applied[]): (OtherEvent | Run)[] {
  const out: (OtherEvent | Run)[] = [];
  let run: Run | undefined;
  let inRun = new Set<string>();
  const current = (observerId: string): Run => {
    const id = observerId.toLowerCase();
    if (!run || inRun.has(id)) {
      out.push((run = { starts: [], releases: [] }));
      inRun = new Set();
    }
    inRun.add(id);
    return run;
  };
  for (const event of events) {
    if (event.type === 'observer.started') current(event.observerId).starts.push(event);
    else if (isReleased(event)) current(event.observerId).releases.push(event);
    else {
      run = undefined;
      out.push(event);
    }
  }
  return out;
}

/**
 * Heartbeats that say nothing a later heartbeat of the same service does not: one without a
 * listing is superseded by any later heartbeat, one with a listing only by a later listing (a
 * heartbeat without one does not say what the service holds). Only within the stretch between two
 * barriers: a barrier promises that what came before it is applied once it comes back. During a
 * catch-up most of the backlog is heartbeats.
 */
export function supersededHeartbeats<T>(items: readonly T[], eventOf: (item: T) => StateEvent): Set<T> {
  const laterBeat = new Set<string>();
  const laterListing = new Set<string>();
  const superseded = new Set<T>();
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i]!;
    const event = eventOf(item);
    if (event.type === 'manager.barrier') {
      laterBeat.clear();
      laterListing.clear();
    }
    if (event.type !== 'service.heartbeat') continue;
    const listed = event.running !== undefined;
    if ((listed ? laterListing : laterBeat).has(event.serviceId)) {
      superseded.add(item);
      continue;
    }
    laterBeat.add(event.serviceId);
    if (listed) laterListing.add(event.serviceId);
  }
  return superseded;
}
