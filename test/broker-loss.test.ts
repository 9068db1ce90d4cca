import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertNoDuplicates,
  createRunningTickers,
  startPrivateRabbit,
  type PrivateRabbit,
  waitFor,
  World,
  waitUntilManagerAgrees,
} from '@vigil/testkit';

/** Every observer runs on exactly one live service, seen from outside. */
async function waitUntilEachRunsOnce(world: World, ids: readonly string[], timeoutMs = 30_000) {
  let counts: number[] = [];
  await waitFor(
    'every observer to run exactly once',
    () => {
      counts = ids.map((id) => world.watch.runningOn(id, 350).length);
      return counts.every((count) => count === 1);
    },
    { timeoutMs },
  ).catch((err: Error) => {
    const nowhere = counts.filter((count) => count === 0).length;
    const twice = counts.filter((count) => count > 1).length;
    const logs = world.services.map((s) => `--- ${s.name}\n${s.process.tail(15)}`).join('\n');
    throw new Error(`${err.message} (running nowhere: ${nowhere}, on two services: ${twice})\n${logs}`);
  });
}

describe('broker lost', { timeout: 240_000 }, () => {
  let rabbit: PrivateRabbit;
  let world: World;

  before(async () => {
    rabbit = await startPrivateRabbit();
    world = await World.create({ amqpUrl: rabbit.url });
    await world.startManager();
  });
  after(async () => {
    await world?.close();
    await rabbit?.destroy();
  });

  it('broker killed: services abort their observers, reconnect, re-announce and run them again; nothing lost', async (t) => {
    const a = await world.startService('broker-a');
    const b = await world.startService('broker-b');
    const { ids } = await createRunningTickers(world, 'broker', 8);
    // Killed right after the creates: RabbitMQ 3.10 killed within about 100 ms of delivering jobs
    // may lose them, and the manager's lost-job audit publishes them again (at generation 2).
    await rabbit.kill();
    for (const service of [a, b]) {
      await waitFor(
        `${service.name} to abort its observers`,
        () => service.process.logged('aborted every observer delivered on it').length > 0,
      );
    }
    await rabbit.start();
    await waitUntilEachRunsOnce(world, ids);
    await assertNoDuplicates(world, ids, 1_500);
    for (const service of [a, b]) {
      assert.ok(service.process.logged('observer service starting').length === 1, 'the same process, reconnected');
      assert.ok(service.process.running);
    }
    // The manager reconnected too, and its view matches what runs.
    await waitUntilManagerAgrees(world, ids);
    assert.deepEqual((await world.api<{ items: unknown[] }>('GET', '/observers?status=Created')).body.items, []);
    const generations = await Promise.all(ids.map(async (id) => (await world.observer(id)).generation));
    t.diagnostic(`republished after the broker lost them: ${generations.filter((g) => g > 1).length} of ${ids.length}`);
    // Deletes work after the reconnect.
    for (const id of ids) assert.equal((await world.api('DELETE', `/observers/${id}`)).status, 202);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    await a.process.kill();
    await b.process.kill();
  });

  it('full blackout: everything killed, restarted in any order; each observer runs again exactly once', async () => {
    const a = await world.startService('blackout-a');
    const b = await world.startService('blackout-b');
    const { ids } = await createRunningTickers(world, 'blackout', 6);

    await Promise.all([a.process.kill(), b.process.kill(), world.manager?.kill(), rabbit.kill()]);
    // Services first, while the broker is still down: they keep retrying.
    const a2 = world.startService('blackout-a');
    const b2 = world.startService('blackout-b');
    await rabbit.start();
    await Promise.all([a2, b2]);
    await waitUntilEachRunsOnce(world, ids);
    await world.startManager();
    await waitUntilManagerAgrees(world, ids);
    await assertNoDuplicates(world, ids, 1_000);
  });
});
