import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

describe('observer lifecycle', () => {
  let world: World;
  let service: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('lifecycle-1', { CAPACITY: '2' });
  });
  after(() => world.close());

  it('create: the job is queued, a service starts it, the manager shows it Processing there', async () => {
    const id = await world.createTicker('created-and-running');
    await world.waitForStatus(id, 'Processing', service.id);
    await waitFor('observations from the service', () => world.watch.runningOn(id, 500).includes(service.id));
    const observer = await world.observer(id);
    assert.deepEqual(
      observer.timeline.map((t) => t.event),
      ['created', 'started'],
    );
    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
  });

  it('a service never runs more than its capacity; the extra job waits and starts when a slot frees', async () => {
    const first = await world.createTicker('fills-a-slot');
    const second = await world.createTicker('fills-the-last-slot');
    await world.waitForStatus(first, 'Processing', service.id);
    await world.waitForStatus(second, 'Processing', service.id);
    const waiting = await world.createTicker('waits-for-a-slot');
    // The broker holds it: a full service receives nothing more.
    await waitFor(
      'the extra job to be ready in the queue',
      async () => (await world.queueCounts(world.names.jobsQueue('default'))).messageCount === 1,
    );
    assert.equal((await world.observer(waiting)).status, 'Created');
    // `running` (and its memory) is what the service itself reports in its heartbeats.
    await waitFor('the service to report 2 running', async () => (await world.service(service.id)).running === 2);
    const { body } = await world.api<{ memory: { heapUsedBytes: number; rssBytes: number } | null }>(
      'GET',
      `/services/${service.id}`,
    );
    assert.ok(body.memory && body.memory.heapUsedBytes > 0 && body.memory.rssBytes > body.memory.heapUsedBytes);

    assert.equal((await world.api('DELETE', `/observers/${second}`)).status, 202);
    await world.waitForStatus(second, 'Deleted');
    await world.waitForStatus(waiting, 'Processing', service.id);
    for (const id of [first, waiting]) {
      await world.api('DELETE', `/observers/${id}`);
      await world.waitForStatus(id, 'Deleted');
    }
  });

  it('delete: the AbortSignal fires, the job is acked, the observer ends Deleted and runs nowhere', async () => {
    const id = await world.createTicker('to-delete');
    await world.waitForStatus(id, 'Processing', service.id);
    const accepted = await world.api('DELETE', `/observers/${id}`);
    assert.equal(accepted.status, 202);
    assert.equal(accepted.body.status, 'OnDeleting');
    const deleted = await world.waitForStatus(id, 'Deleted', null);
    const last = deleted.timeline.at(-1);
    assert.equal(last?.event, 'deleted');
    assert.match(String(last?.reason), /signal fired [\d.]+ ms after the cancel arrived/);
    await waitFor('observations to stop', () => world.watch.runningOn(id, 300).length === 0);
    // Acked, not requeued: nothing is left in the queue for it.
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 0);
    const again = await world.api('DELETE', `/observers/${id}`);
    assert.equal(again.status, 410);
    assert.equal(again.contentType, 'application/problem+json; charset=utf-8');
  });

  it('a deleted name can be used again', async () => {
    const first = await world.createTicker('reused-name');
    await world.waitForStatus(first, 'Processing');
    await world.api('DELETE', `/observers/${first}`);
    await world.waitForStatus(first, 'Deleted');
    const second = await world.createTicker('reused-name');
    assert.notEqual(second, first);
    await world.api('DELETE', `/observers/${second}`);
    await world.waitForStatus(second, 'Deleted');
  });

  it('delete of a Created observer is accepted; its job is dropped when a service receives it', async () => {
    const blockers = [await world.createTicker('blocker-1'), await world.createTicker('blocker-2')];
    for (const id of blockers) await world.waitForStatus(id, 'Processing');
    const queued = await world.createTicker('deleted-while-queued');
    assert.equal((await world.observer(queued)).status, 'Created');
    const accepted = await world.api('DELETE', `/observers/${queued}`);
    assert.equal(accepted.status, 202);
    assert.equal(accepted.body.status, 'OnDeleting');
    // Free a slot: the service receives the job, remembers the cancel, acks and drops it.
    await world.api('DELETE', `/observers/${blockers[0]}`);
    await world.waitForStatus(queued, 'Deleted');
    assert.equal(world.watch.runningOn(queued, 10_000).length, 0, 'the cancelled observer never ran');
    await world.api('DELETE', `/observers/${blockers[1]}`);
    await world.waitForStatus(blockers[1] ?? '', 'Deleted');
  });

  it('a cancel that reached no service is sent again until a service confirms it', async () => {
    const id = await world.createTicker('deleted-while-moving');
    await world.waitForStatus(id, 'Processing', service.id);
    await service.process.kill();
    // No service is alive: the cancel reaches nobody.
    assert.equal((await world.api('DELETE', `/observers/${id}`)).status, 202);
    await world.waitForStatus(id, 'OnDeleting', null);
    const fresh = await world.startService('lifecycle-2', { CAPACITY: '2' });
    const deleted = await world.waitForStatus(id, 'Deleted');
    assert.equal(deleted.timeline.at(-1)?.serviceId, fresh.id, 'the new service confirmed the cancel');
    // The first broadcast reached nobody: only a cancel sent again can have stopped it.
    const metrics = await world.metrics();
    const resent = [...metrics.matchAll(/^vigil_cancels_sent_total\{why="(?:retry|runs-where-it-must-not)"\} (\d+)/gm)];
    assert.ok(resent.reduce((sum, match) => sum + Number(match[1]), 0) >= 1, 'the manager sent the cancel again');
    await waitFor('the observer to run nowhere', () => world.watch.runningOn(id, 300).length === 0);
    service = fresh;
  });
});
