import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

describe('an observer that kills the services running it', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager({ CRASH_LOOP_DEATHS: '3' });
  });
  after(() => world.close());

  it('is stopped after its services died 3 times: Failed, its job dead-lettered, the fleet alive', async () => {
    // As a container runtime would: a service that dies comes back under its name.
    const fleet = new Map<string, ServiceHandle>();
    for (const name of ['loop-a', 'loop-b']) fleet.set(name, await world.startService(name));
    const created = await world.api('POST', '/observers', { name: 'kills', kind: 'service-killer', params: {} });
    assert.equal(created.status, 201);
    const id = String(created.body.id);

    let restarts = 0;
    await waitFor(
      'the observer to be Failed',
      async () => {
        for (const [name, handle] of fleet) {
          if (handle.process.running) continue;
          fleet.set(name, await world.startService(name));
          restarts++;
        }
        return (await world.observer(id)).status === 'Failed';
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const failed = await world.observer(id);
    assert.match(String(failed.lastError), /crash loop: 3 services died/);
    assert.ok(restarts >= 2, `services were restarted ${restarts} times`);

    // The job ends in the dead-letter queue, and nothing runs it any more.
    assert.equal((await world.takeDeadLetter()).job.observerId, id);
    await world.waitForStatus(id, 'Failed', null);
    const survivors = [...fleet.values()];
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.ok(
      survivors.every((s) => s.process.running),
      'no service dies any more',
    );
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 0);
    assert.match(JSON.stringify((await world.observer(id)).timeline.map((e) => e.event)), /dead-lettered/);
  });
});
