import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertNoDuplicates,
  createRunningTickers,
  slowestArrival,
  waitUntilRunningOn,
  waitFor,
  World,
  type ServiceHandle,
} from '@vigil/testkit';

describe('failover', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  /** Two fresh services, and observers spread over both; returns the victim and the survivor. */
  async function fleetOf(label: string, count = 10) {
    const a = await world.startService(`${label}-a`);
    const b = await world.startService(`${label}-b`);
    const { ids, byService } = await createRunningTickers(world, label, count);
    const victimIds = byService.get(a.id) ?? [];
    assert.ok(victimIds.length > 0 && victimIds.length < count, 'the broker spread the jobs over both services');
    return { victim: a, survivor: b, ids, victimIds };
  }

  async function cleanUp(ids: readonly string[], services: ServiceHandle[]) {
    for (const id of ids) await world.api('DELETE', `/observers/${id}`);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    for (const service of services) await service.process.kill();
  }

  it('kill -9: the observers run on the survivor, the manager marks the service Dead and records where', async (t) => {
    const { victim, survivor, ids, victimIds } = await fleetOf('kill');
    const killedAt = Date.now();
    victim.process.signal('SIGKILL');
    await waitUntilRunningOn(world, ids, () => survivor.id);
    t.diagnostic(
      `kill -9: ${victimIds.length} observers all publishing on the survivor ${slowestArrival(world, victimIds, survivor.id, killedAt)} ms after the kill`,
    );

    const dead = await waitFor('the manager to mark the service dead', async () => {
      const service = await world.service(victim.id);
      return service.status === 'Dead' ? service : false;
    });
    assert.equal(dead.observers.length, 0);
    for (const id of victimIds) {
      const observer = await world.waitForStatus(id, 'Processing', survivor.id);
      assert.ok(observer.timeline.some((e) => e.serviceId === survivor.id && ['moved', 'started'].includes(e.event)));
    }
    await cleanUp(ids, [survivor]);
  });

  it('SIGTERM: graceful handoff, jobs requeued for others at once, service.died, exit code 0', async (t) => {
    const { victim, survivor, ids, victimIds } = await fleetOf('term');
    const stoppedAt = Date.now();
    victim.process.signal('SIGTERM');
    const exit = await victim.process.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    const exitedAfter = Date.now() - stoppedAt;
    await waitUntilRunningOn(world, ids, () => survivor.id);
    t.diagnostic(
      `SIGTERM: exit 0 after ${exitedAfter} ms; ${victimIds.length} observers all publishing on the survivor ${slowestArrival(world, victimIds, survivor.id, stoppedAt)} ms after the signal`,
    );

    // Announced, not suspected: the manager knows at once why it is gone.
    const dead = await waitFor('the service to be Dead', async () => {
      const service = await world.api('GET', `/services/${victim.id}`);
      return service.body.status === 'Dead' ? service.body : false;
    });
    assert.match(String(dead.deathReason), /SIGTERM/);
    for (const id of victimIds) await world.waitForStatus(id, 'Processing', survivor.id);
    await cleanUp(ids, [survivor]);
  });

  it('SIGSTOP: the observers move after the AMQP heartbeat timeout; after SIGCONT no duplicate survives', async (t) => {
    const { victim, survivor, ids, victimIds } = await fleetOf('freeze');
    const frozenAt = Date.now();
    victim.process.signal('SIGSTOP');
    await waitUntilRunningOn(world, ids, () => survivor.id, { timeoutMs: 30_000 });
    t.diagnostic(
      `SIGSTOP: ${victimIds.length} observers all publishing on the survivor ${slowestArrival(world, victimIds, survivor.id, frozenAt)} ms after the freeze (AMQP heartbeat 1 s)`,
    );
    for (const id of victimIds) await world.waitForStatus(id, 'Processing', survivor.id);

    victim.process.signal('SIGCONT');
    const resumedAt = Date.now();
    await waitFor(
      'the resumed service to abort what it no longer owns',
      () =>
        victim.process.logged('aborted every observer delivered on it').length > 0 ||
        victim.process.logged('process was frozen').length > 0,
    );
    await assertNoDuplicates(world, ids, 2_000);
    for (const id of ids) assert.deepEqual(world.watch.runningOn(id, 300), [survivor.id]);
    for (const id of victimIds) {
      const last = world.watch.lastSeen(id, victim.id) ?? 0;
      assert.ok(last < resumedAt, `observer ${id} published from the resumed service after SIGCONT`);
    }
    // It reconnects as the same service and takes jobs again.
    await waitFor(
      'the resumed service to be Alive again',
      async () => (await world.service(victim.id)).status === 'Alive',
      {
        timeoutMs: 15_000,
      },
    );
    await cleanUp(ids, [survivor, victim]);
  });
});
