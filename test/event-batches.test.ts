import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { staged } from '@vigil/testkit';
import type { StateEvent } from '@vigil/contracts';
import { inRuns, supersededHeartbeats, unbatched } from '../apps/manager/src/state/event-batches';

/** The events a batch keeps: those no later heartbeat supersedes, in their order. */
function withoutStaleHeartbeats(events: StateEvent[]): StateEvent[] {
  const superseded = supersededHeartbeats(events, (event) => event);
  return events.filter((event) => !superseded.has(event));
}

const serviceA = randomUUID();
const serviceB = randomUUID();
const [x, y] = [randomUUID(), randomUUID()];

describe('manager: how a batch of state events is cut before it is applied', () => {
  it('unbatched: an observers.started becomes one observer.started per observer, with its generation', () => {
    const batch = staged.startedTogether(serviceA, [
      { observerId: x, name: 'x' },
      { observerId: y, name: 'y' },
    ]);
    const events = unbatched(batch);
    assert.deepEqual(
      events.map((e) => e.type === 'observer.started' && [e.observerId, e.serviceId, e.generation]),
      [
        [x, serviceA, 1],
        [y, serviceA, 1],
      ],
    );
    const heartbeat = staged.heartbeat(serviceA, 'a', [x]);
    assert.deepEqual(unbatched(heartbeat), [heartbeat]);
  });

  it('inRuns: starts and released stops go together, each observer once; another event, or the same observer again, begins a new run', () => {
    const heartbeat = staged.heartbeat(serviceA, 'a', []);
    const released = (serviceId: string, observerId: string) => ({
      ...staged.stopped(serviceId, observerId),
      reason: 'released' as const,
    });
    const cancelled = staged.stopped(serviceA, y);
    const runs = inRuns([
      staged.started(serviceA, x, 'x'),
      released(serviceB, y),
      staged.started(serviceB, x, 'x'),
      heartbeat,
      staged.started(serviceA, y, 'y'),
      cancelled,
      released(serviceA, x),
    ]);
    const shape = runs.map((run) =>
      'starts' in run
        ? { starts: run.starts.map((e) => e.observerId), releases: run.releases.map((e) => e.observerId) }
        : run.type,
    );
    assert.deepEqual(shape, [
      { starts: [x], releases: [y] },
      { starts: [x], releases: [] },
      'service.heartbeat',
      { starts: [y], releases: [] },
      'observer.stopped',
      { starts: [], releases: [x] },
    ]);
  });

  it('withoutStaleHeartbeats: only the last heartbeat of each service stays, in its place', () => {
    const first = staged.heartbeat(serviceA, 'a', [x]);
    const other = staged.heartbeat(serviceB, 'b', []);
    const start = staged.started(serviceA, y, 'y');
    const last = staged.heartbeat(serviceA, 'a', [x, y]);
    assert.deepEqual(withoutStaleHeartbeats([first, other, start, last]), [other, start, last]);
  });

  it('withoutStaleHeartbeats: a heartbeat without a listing never supersedes one with a listing', () => {
    const listing = staged.heartbeat(serviceA, 'a', [x]);
    const beat = staged.beat(serviceA, 'a', 1);
    const laterBeat = staged.beat(serviceA, 'a', 1);
    const laterListing = staged.heartbeat(serviceA, 'a', [x, y]);
    assert.deepEqual(withoutStaleHeartbeats([listing, beat, laterBeat]), [listing, laterBeat]);
    assert.deepEqual(withoutStaleHeartbeats([beat, listing, laterBeat]), [listing, laterBeat]);
    assert.deepEqual(withoutStaleHeartbeats([listing, beat, laterListing]), [laterListing]);
  });
});
