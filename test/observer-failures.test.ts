import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { World, type ServiceHandle } from '@vigil/testkit';

describe('observers that crash or will not stop', () => {
  let world: World;
  let service: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('failures-1', { STOP_TIMEOUT_MS: '500' });
  });
  after(() => world.close());

  it('a crashing observer is restarted with backoff; past its limit it is Failed and its job dead-lettered', async () => {
    const created = await world.api('POST', '/observers', {
      name: 'crashes',
      kind: 'crasher',
      params: { crashAfterMs: 20 },
    });
    assert.equal(created.status, 201);
    const id = String(created.body.id);
    const failed = await world.waitForStatus(id, 'Failed', null);
    // The kind allows 3 restarts: 4 attempts in all.
    assert.equal(failed.lastError, 'crashed on attempt 3');
    assert.match(String(failed.timeline.at(-1)?.reason), /after 4 attempts/);
    assert.equal(service.process.logged('observer crashed; restarting').length, 3);

    // Dead-lettered, not redelivered forever: the job sits in the dead-letter queue.
    const dead = await world.takeDeadLetter();
    assert.equal(dead.job.observerId, id);
    assert.equal(dead.deaths[0]?.queue, world.names.jobsQueue('default'));
    assert.equal(dead.deaths[0]?.reason, 'rejected');
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 0);

    // A failed observer holds no job: deleting it is immediate.
    const deleted = await world.api('DELETE', `/observers/${id}`);
    assert.equal(deleted.status, 202);
    assert.equal(deleted.body.status, 'Deleted');
  });

  it('an observer that ignores its AbortSignal is given up on after the stop timeout', async () => {
    const created = await world.api('POST', '/observers', { name: 'stubborn', kind: 'stubborn', params: {} });
    const id = String(created.body.id);
    await world.waitForStatus(id, 'Processing', service.id);
    await world.api('DELETE', `/observers/${id}`);
    const deleted = await world.waitForStatus(id, 'Deleted');
    assert.match(String(deleted.timeline.at(-1)?.reason), /ignored its AbortSignal/);
    assert.equal(service.process.logged('observer ignored its AbortSignal').length, 1);
  });
});
