import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { staged } from '@vigil/testkit';
import { inRuns, unbatched, withoutStaleHeartbeats } from '../apps/manager/src/state/event-batches';

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

  it('inRuns: consecutive starts form one run; another event, or the same observer again, begins a new one', () => {
    const heartbeat = staged.heartbeat(serviceA, 'a', []);
    const runs = inRuns([
      staged.started(serviceA, x, 'x'),
      staged.started(serviceB, y, 'y'),
      staged.started(serviceB, x, 'x'),
      heartbeat,
      staged.started(serviceA, y, 'y'),
    ]);
    const shape = runs.map((run) => (Array.isArray(run) ? run.map((e) => e.observerId) : run.type));
    assert.deepEqual(shape, [[x, y], [x], 'service.heartbeat', [y]]);
  });

  it('withoutStaleHeartbeats: only the last heartbeat of each service stays, in its place', () => {
    const first = staged.heartbeat(serviceA, 'a', [x]);
    const other = staged.heartbeat(serviceB, 'b', []);
    const start = staged.started(serviceA, y, 'y');
    const last = staged.heartbeat(serviceA, 'a', [x, y]);
    assert.deepEqual(withoutStaleHeartbeats([first, other, start, last]), [other, start, last]);
  });
});
