/**
 * Observer liveness apart from its service's: an observer silent past its staleAfterMs is
 * flagged stale (with when it last published, a timeline row, an event, a metric) and the flag
 * clears when it publishes again; a kind may ask for a stale observer to be restarted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

interface Observer {
  status: string;
  generation: number;
  staleAfterMs: number | null;
  staleSince: string | null;
  lastPublishedAt: string | null;
  timeline: { event: string; reason: string | null }[];
}

describe('stale observers', { timeout: 120_000 }, () => {
  let world: World;
  let service: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('stale-a');
  });
  after(() => world.close());

  const observer = async (id: string) => (await world.api<Observer>('GET', `/observers/${id}`)).body;

  it('is flagged while silent past its own staleAfterMs, and the flag clears when it publishes again', async () => {
    const created = await world.api<Observer & { id: string }>('POST', '/observers', {
      name: 'faltering',
      kind: 'faltering',
      params: { ticks: 5, silentMs: 2_000 },
      staleAfterMs: 500,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.staleAfterMs, 500);
    const { id } = created.body;
    const stale = await waitFor('the stale flag', async () => {
      const o = await observer(id);
      return o.staleSince !== null && o;
    });
    assert.equal(stale.status, 'Processing', 'stale is a flag beside the status');
    assert.ok(stale.lastPublishedAt !== null);
    assert.match(await world.metrics(), /^vigil_observers_stale 1$/m);
    assert.equal(service.process.logged('observer stale').length, 1);
    const fresh = await waitFor('the flag to clear', async () => {
      const o = await observer(id);
      return o.staleSince === null && o.timeline.some((e) => e.event === 'fresh') && o;
    });
    const events = fresh.timeline.map((e) => e.event);
    assert.ok(events.indexOf('stale') < events.indexOf('fresh'), events.join(', '));
    assert.equal(fresh.generation, 1, 'flagged, not restarted: its kind did not ask');
  });

  it('is restarted at the next generation when its kind asks for it', async () => {
    const created = await world.api<{ id: string }>('POST', '/observers', { name: 'hanging', kind: 'hanging' });
    const { id } = created.body;
    const restarted = await waitFor('a restart', async () => {
      const o = await observer(id);
      return o.generation >= 2 && o.status === 'Processing' && o;
    });
    assert.ok(restarted.timeline.some((e) => e.event === 'stale' && /restarted as generation 2/.test(e.reason ?? '')));
    await waitFor('a fresh run', () => world.watch.runsOf(id).length >= 2);
  });

  it('refuses a staleAfterMs out of bounds', async () => {
    const answer = await world.api<{ errors: { path: string }[] }>('POST', '/observers', {
      name: 'bad-stale',
      kind: 'ticker',
      params: { intervalMs: 100 },
      staleAfterMs: 5,
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.errors[0]?.path, 'body.staleAfterMs');
  });
});
