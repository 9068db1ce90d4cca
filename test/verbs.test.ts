/**
 * Verbs on observers that exist: pause (stops everywhere, kept), resume, restart (also a Failed
 * one), and new params (live for a kind that takes them, a restart otherwise). Each answers 409
 * where it makes no sense, and writes a timeline row.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

interface ObserverBody {
  id: string;
  status: string;
  generation: number;
  params: Record<string, unknown>;
  serviceId: string | null;
}

const quiet = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('verbs', { timeout: 180_000 }, () => {
  let world: World;
  let service: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('verbs-a');
  });
  after(() => world.close());

  async function verb(id: string, name: string): Promise<{ status: number; body: ObserverBody & { type?: string } }> {
    return world.api<ObserverBody & { type?: string }>('POST', `/observers/${id}/${name}`);
  }

  async function running(name: string, kind = 'ticker', params: Record<string, unknown> = { intervalMs: 50 }) {
    const created = await world.api<ObserverBody>('POST', '/observers', { name, kind, params });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await world.waitForStatus(created.body.id, 'Processing', service.id);
    await waitFor(`${name} to tick`, () => world.watch.lastSeen(created.body.id, service.id) !== undefined);
    return created.body.id;
  }

  it('pause stops it everywhere and keeps it; resume runs it again at the next generation', async () => {
    const id = await running('pausable');
    const paused = await verb(id, 'pause');
    assert.equal(paused.status, 202);
    assert.equal(paused.body.status, 'Paused');
    await waitFor('the pause to be confirmed', async () => (await world.observer(id)).serviceId === null);
    const stoppedAt = Date.now();
    await quiet(500);
    assert.ok((world.watch.lastSeen(id, service.id) ?? 0) <= stoppedAt, 'no observation once paused');
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 0, 'its job is acked');
    assert.equal((await world.service(service.id)).running, 0);

    assert.equal((await verb(id, 'pause')).status, 409);
    const restart = await verb(id, 'restart');
    assert.equal(restart.status, 409);
    assert.match(restart.body.type ?? '', /wrong-status/);

    const resumed = await verb(id, 'resume');
    assert.equal(resumed.status, 202);
    assert.equal(resumed.body.generation, 2);
    const observer = await world.waitForStatus(id, 'Processing', service.id);
    assert.equal(observer.generation, 2);
    await waitFor('it to tick again', () => (world.watch.lastSeen(id, service.id) ?? 0) > stoppedAt + 500);
    const events = observer.timeline.map((e) => e.event);
    for (const event of ['paused', 'stopped', 'resumed']) assert.ok(events.includes(event), events.join(', '));
    assert.equal((await verb(id, 'resume')).status, 409);
  });

  it('restart starts a fresh run at the next generation', async () => {
    const id = await running('restartable');
    const before = world.watch.runsOf(id).length;
    const restarted = await verb(id, 'restart');
    assert.equal(restarted.status, 202);
    assert.equal(restarted.body.generation, 2);
    await waitFor('a new run (its count starts again)', () => world.watch.runsOf(id).length > before);
    await world.waitForStatus(id, 'Processing', service.id);
    assert.equal((await world.observer(id)).generation, 2);
    await quiet(300);
    assert.deepEqual(world.watch.runningOn(id, 200), [service.id]);
  });

  it('a Failed observer gets new params and is restarted', async () => {
    const created = await world.api<ObserverBody>('POST', '/observers', {
      name: 'failing',
      kind: 'crasher',
      params: { crashAfterMs: 10 },
    });
    const id = created.body.id;
    await world.waitForStatus(id, 'Failed');
    assert.equal((await verb(id, 'pause')).status, 409);
    const patched = await world.api<ObserverBody>('PATCH', `/observers/${id}`, { params: { crashAfterMs: 600_000 } });
    assert.equal(patched.status, 202);
    assert.equal(patched.body.status, 'Failed');
    assert.deepEqual(patched.body.params, { crashAfterMs: 600_000 });
    const restarted = await verb(id, 'restart');
    assert.equal(restarted.status, 202);
    const observer = await world.waitForStatus(id, 'Processing', service.id);
    assert.equal(observer.generation, 2);
    await quiet(500);
    assert.equal((await world.observer(id)).status, 'Processing', 'it runs with its new params');
  });

  it('new params reach a kind that takes them live without a restart', async () => {
    const id = await running('tunable', 'ticker', { intervalMs: 400 });
    const runs = world.watch.runsOf(id).length;
    const patched = await world.api<ObserverBody>('PATCH', `/observers/${id}`, { params: { intervalMs: 20 } });
    assert.equal(patched.status, 202);
    assert.equal(patched.body.generation, 2);
    await waitFor('generation 2 to run', async () => (await world.observer(id)).generation === 2);
    const since = Date.now();
    await quiet(600);
    assert.equal(world.watch.runsOf(id).length, runs, 'one run all along: no restart');
    const run = world.watch.runsOf(id).at(-1)!;
    assert.ok(run.lastSeq >= 10, `ticks at the new pace (seq ${run.lastSeq} ${Date.now() - since} ms later)`);
    assert.ok(service.process.logged('adopted in place').length >= 1);
  });

  it('new params restart a kind that does not take them live; bad params are refused', async () => {
    const id = await running('exclusive', 'exclusive-ticker', { intervalMs: 50 });
    const runs = world.watch.runsOf(id).length;
    const bad = await world.api<{ type: string }>('PATCH', `/observers/${id}`, { params: { intervalMs: 1 } });
    assert.equal(bad.status, 422);
    assert.match(bad.body.type, /invalid-params/);
    assert.equal((await world.api('PATCH', `/observers/${id}`, { parms: {} })).status, 400);
    const patched = await world.api<ObserverBody>('PATCH', `/observers/${id}`, { params: { intervalMs: 60 } });
    assert.equal(patched.status, 202);
    await waitFor('a new run', () => world.watch.runsOf(id).length > runs);
    await world.waitForStatus(id, 'Processing', service.id);
    assert.equal((await world.observer(id)).generation, 2);
  });

  it('a paused observer is deleted at once; verbs on a deleted or unknown one answer 410 and 404', async () => {
    const id = await running('short-lived');
    await verb(id, 'pause');
    await waitFor('the pause to be confirmed', async () => (await world.observer(id)).serviceId === null);
    const deleted = await world.api<ObserverBody>('DELETE', `/observers/${id}`);
    assert.equal(deleted.status, 202);
    assert.equal(deleted.body.status, 'Deleted');
    assert.equal((await verb(id, 'resume')).status, 410);
    assert.equal((await verb('00000000-0000-4000-8000-000000000000', 'pause')).status, 404);
    assert.equal((await verb('not-an-id', 'restart')).status, 404);
    const reader = await world.api<{ token: string }>('POST', '/tokens', { name: 'reader', role: 'read' });
    assert.equal((await world.apiAs(reader.body.token, 'POST', `/observers/${id}/pause`)).status, 403);
  });
});
