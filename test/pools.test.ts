import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World } from '@vigil/testkit';

describe('pools', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it('a service serving several pools shares one capacity among them; another service takes what it cannot', async () => {
    const both = await world.startService('pools-both', { POOLS: 'blue,green', CAPACITY: '2' });
    const blue = [await world.createTicker('blue-1', 100, 'blue'), await world.createTicker('blue-2', 100, 'blue')];
    for (const id of blue) await world.waitForStatus(id, 'Processing', both.id);

    const green = await world.createTicker('green-1', 100, 'green');
    await waitFor(
      'the green job to wait in its queue',
      async () => (await world.queueCounts(world.names.jobsQueue('green'))).messageCount === 1,
    );
    assert.equal((await world.observer(green)).status, 'Created');
    assert.deepEqual(world.watch.runningOn(green, 5_000), [], 'the full service did not run it');

    const greenOnly = await world.startService('pools-green', { POOLS: 'green', CAPACITY: '5' });
    await world.waitForStatus(green, 'Processing', greenOnly.id);

    // A slot frees on the full service: it consumes again.
    await world.api('DELETE', `/observers/${blue[0]}`);
    await world.waitForStatus(blue[0] ?? '', 'Deleted');
    const blue3 = await world.createTicker('blue-3', 100, 'blue');
    await world.waitForStatus(blue3, 'Processing', both.id);
    await waitFor('the service to report 2 running', async () => (await world.service(both.id)).running === 2);
  });
});
