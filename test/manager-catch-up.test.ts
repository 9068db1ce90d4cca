import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRunningTickers, waitUntilRunningOn, waitFor, World } from '@vigil/testkit';

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
