import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { ObservationWatch } from '@vigil/testkit';

/** The duplicate detector the fault tests rely on must itself tell a duplicate from a move. */
describe('ObservationWatch.doubleRunMs', () => {
  const observerId = randomUUID();
  const [a, b] = [randomUUID(), randomUUID()];

  function feed(watch: ObservationWatch, ticks: [serviceId: string, seq: number, at: number][]) {
    for (const [serviceId, seq, at] of ticks) {
      const observation = {
        observerId,
        name: 'o',
        kind: 'ticker',
        serviceId,
        serviceName: 's',
        at: new Date(at).toISOString(),
        data: { seq },
      };
      watch.record(Buffer.from(JSON.stringify(observation)), at);
    }
  }

  it('a clean move counts 0', () => {
    const watch = new ObservationWatch();
    feed(watch, [
      [a, 0, 0],
      [a, 1, 100],
      [a, 2, 200],
      [b, 0, 260],
      [b, 1, 360],
    ]);
    assert.equal(watch.doubleRunMs(observerId), 0);
  });

  it('moving away and back counts 0: a run restarts its seq at 0', () => {
    const watch = new ObservationWatch();
    feed(watch, [
      [a, 0, 0],
      [a, 1, 100],
      [b, 0, 150],
      [a, 0, 200],
      [a, 1, 300],
    ]);
    assert.equal(watch.doubleRunMs(observerId), 0);
  });

  it('two runs going on at once count for as long as both published', () => {
    const watch = new ObservationWatch();
    feed(watch, [
      [a, 0, 0],
      [a, 1, 100],
      [b, 0, 150],
      [a, 2, 200],
      [b, 1, 250],
      [a, 3, 300],
      [b, 2, 350],
    ]);
    assert.equal(watch.doubleRunMs(observerId), 150);
  });
});
