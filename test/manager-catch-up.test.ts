import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { createRunningTickers, staged, waitUntilRunningOn, waitFor, World } from '@vigil/testkit';

describe('manager catch-up', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it('down while services die and observers move, the manager converges from the state queue on return', async () => {
    const a = await world.startService('catch-up-a');
    const b = await world.startService('catch-up-b');
    const { ids, byService } = await createRunningTickers(world, 'catch-up', 8);
    assert.ok((byService.get(a.id)?.length ?? 0) > 0, 'some observers run on a');

    await world.manager?.kill();
    // While the manager is away: a dies without a word and comes back under its name with a
    // new id, b is stopped gracefully; everything ends up on the new a.
    await a.process.kill();
    const a2 = await world.startService('catch-up-a');
    b.process.signal('SIGTERM');
    await b.process.exited;
    await waitUntilRunningOn(world, ids, () => a2.id);
    const backlog = (await world.queueCounts(world.names.stateQueue)).messageCount;
    assert.ok(backlog > 0, 'events wait in the state queue while the manager is down');

    await world.startManager();
    for (const id of ids) await world.waitForStatus(id, 'Processing', a2.id);
    const oldA = await world.api('GET', `/services/${a.id}`);
    assert.equal(oldA.body.status, 'Dead');
    assert.match(String(oldA.body.deathReason), /replaced by/);
    const oldB = await world.api('GET', `/services/${b.id}`);
    assert.equal(oldB.body.status, 'Dead');
    assert.match(String(oldB.body.deathReason), /SIGTERM/);
    await waitFor(
      'the new a to show all observers',
      async () => (await world.service(a2.id)).observers.length === ids.length,
    );
    await waitFor(
      'the state queue to be drained',
      async () => (await world.queueCounts(world.names.stateQueue)).messageCount === 0,
    );
  });
});

describe('a backlog applied in one batch', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it("keeps each observer's events in order: the first start stays, a newer generation moves it, a start after deletion is cancelled", async () => {
    const [first, second] = [randomUUID(), randomUUID()];
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(first, 'staged-1')));
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(second, 'staged-2')));
    await waitFor('the staged services', async () => (await world.api('GET', `/services/${second}`)).status === 200);
    const moving = await world.createTicker('moving');
    const gone = await world.createTicker('gone');
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.stopped(first, gone)));
    await world.waitForStatus(gone, 'Deleted', null);

    await world.manager?.kill();
    for (const event of [
      staged.started(first, moving, 'moving'),
      // The same generation on a second live service: a duplicate, not a move.
      staged.started(second, moving, 'moving'),
      // The first proves its copy after the second appeared: the second copy is released.
      staged.heartbeat(first, 'staged-1', [moving], [1]),
      // A newer generation on the second service: it moves there, and the first copy goes.
      staged.started(second, moving, 'moving', 2),
      staged.started(first, gone, 'gone'),
    ]) {
      await world.publishRaw(world.names.stateQueue, JSON.stringify(event));
    }
    await world.startManager();

    const observer = await world.waitForStatus(moving, 'Processing', second);
    assert.deepEqual(
      observer.timeline
        .filter((e) => ['started', 'duplicate', 'released', 'moved'].includes(e.event))
        .map((e) => [e.event, e.serviceId, e.generation]),
      [
        ['started', first, 1],
        ['duplicate', second, 1],
        ['released', second, 1],
        ['moved', second, 2],
        ['released', first, 1],
      ],
    );
    assert.equal((await world.observer(gone)).status, 'Deleted');
    await waitFor('a cancel of the deleted observer', async () => {
      const metrics = await world.metrics();
      return /vigil_cancels_sent_total\{why="runs-where-it-must-not"\} [1-9]/.test(metrics);
    });
    const metrics = await world.metrics();
    assert.match(metrics, /vigil_duplicate_runs_total\{cause="duplicate"\} 1/);
    assert.match(metrics, /vigil_duplicate_runs_total\{cause="stale-generation"\} 1/);
  });

  it('a batch of starts (observers.started) places each observer, in order with the events after it', async () => {
    const service = randomUUID();
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(service, 'staged-batch')));
    await waitFor('the staged service', async () => (await world.api('GET', `/services/${service}`)).status === 200);
    const kept = await world.createTicker('batch-kept');
    const stopped = await world.createTicker('batch-stopped');
    for (const event of [
      staged.startedTogether(service, [
        { observerId: kept, name: 'batch-kept' },
        { observerId: stopped, name: 'batch-stopped' },
      ]),
      staged.stopped(service, stopped),
    ]) {
      await world.publishRaw(world.names.stateQueue, JSON.stringify(event));
    }
    await world.waitForStatus(kept, 'Processing', service);
    await world.waitForStatus(stopped, 'Deleted', null);
    const timeline = (await world.observer(kept)).timeline.map((e) => [e.event, e.serviceId, e.reason]);
    assert.deepEqual(timeline.at(-1), ['started', service, 'redelivered']);
  });
});
