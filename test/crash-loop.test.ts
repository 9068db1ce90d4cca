import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { staged, waitFor, World, type ServiceHandle } from '@vigil/testkit';

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

describe('a crash loop seen by a service that has not heard of it yet', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    // One death is enough here, so synthetic events can stage the whole story.
    await world.startManager({ CRASH_LOOP_DEATHS: '1' });
  });
  after(() => world.close());

  it('a heartbeat listing the quarantined observer neither claims it nor clears its error', async () => {
    const [first, replacement, other] = [randomUUID(), randomUUID(), randomUUID()];
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(first, 'staged')));
    await waitFor('the staged service', async () => (await world.api('GET', `/services/${first}`)).status === 200);
    const id = await world.createTicker('looping');
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.started(first, id, 'looping')));
    await world.waitForStatus(id, 'Processing', first);
    // Its service dies without a word and comes back: a crash loop at the first death.
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(replacement, 'staged')));
    const failed = await world.waitForStatus(id, 'Failed', null);
    assert.match(String(failed.lastError), /crash loop/);

    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(other, 'bystander')));
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.heartbeat(other, 'bystander', [id])));
    await waitFor('the heartbeat to be applied', async () => (await world.service(other)).running === 1);
    const after = await world.observer(id);
    assert.equal(after.status, 'Failed');
    assert.equal(after.serviceId, null);
    assert.match(String(after.lastError), /crash loop/);
  });
});

describe('a service that dies under an observer that has run there for long', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    // One death would be a crash loop, for an observer that started on the service within 1 s.
    await world.startManager({ CRASH_LOOP_DEATHS: '1', CRASH_LOOP_RECENT_START_MS: '1000' });
  });
  after(() => world.close());

  it('does not count against it; against one that had just started there, it does', async () => {
    const [old, oldReplacement, fresh, freshReplacement] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(old, 'long-lived')));
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(fresh, 'short-lived')));
    await waitFor('the staged services', async () => (await world.api('GET', `/services/${fresh}`)).status === 200);
    const settled = await world.createTicker('settled');
    const newcomer = await world.createTicker('newcomer');
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.started(old, settled, 'settled')));
    await world.waitForStatus(settled, 'Processing', old);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.started(fresh, newcomer, 'newcomer')));
    await world.waitForStatus(newcomer, 'Processing', fresh);

    // Both services die without a word and come back under their names.
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(oldReplacement, 'long-lived')));
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.born(freshReplacement, 'short-lived')));
    const failed = await world.waitForStatus(newcomer, 'Failed', null);
    assert.match(String(failed.lastError), /crash loop/);
    const waiting = await world.waitForStatus(settled, 'Created', null);
    assert.equal(waiting.lastError, null);
  });
});
