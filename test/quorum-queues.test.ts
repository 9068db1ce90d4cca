import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertNoDuplicates, createRunningTickers, waitUntilRunningOn, World } from '@vigil/testkit';

describe('quorum queues (QUEUE_TYPE=quorum)', () => {
  let world: World;

  before(async () => {
    world = await World.create({ env: { QUEUE_TYPE: 'quorum' } });
    await world.startManager();
  });
  after(() => world.close());

  it('jobs live on a quorum queue; create, failover and delete work as on classic queues', async () => {
    const a = await world.startService('quorum-a');
    const b = await world.startService('quorum-b');
    const { ids, byService } = await createRunningTickers(world, 'quorum', 6);
    assert.ok((byService.get(a.id)?.length ?? 0) > 0);

    await a.process.kill();
    await waitUntilRunningOn(world, ids, () => b.id);
    await assertNoDuplicates(world, ids, 1_000);
    for (const id of ids) await world.waitForStatus(id, 'Processing', b.id);
    for (const id of ids) assert.equal((await world.api('DELETE', `/observers/${id}`)).status, 202);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 0);
  });
});
