/**
 * Live events over HTTP: the event feed (observers' timelines and services' history, resumable
 * from Last-Event-ID) and an observer's latest observations followed by live ones.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bearer, openSse, waitFor, World } from '@vigil/testkit';

interface ObserverEventData {
  observerId: string;
  name: string;
  event: string;
  status: string;
  generation: number | null;
}

const data = <T>(event: { data: string }) => JSON.parse(event.data) as T;

describe('live events', { timeout: 120_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it('the feed shows services born and observers created, started, paused and deleted, in order', async () => {
    const feed = await openSse(`${world.apiUrl}/events`, bearer(world.adminToken));
    assert.equal(feed.status, 200);
    await world.startService('events-a');
    await feed.next('the birth', (e) => e.event === 'service' && data<{ event: string }>(e).event === 'born');
    const id = await world.createTicker('evented');
    await world.waitForStatus(id, 'Processing');
    await world.api('POST', `/observers/${id}/pause`);
    await world.api('DELETE', `/observers/${id}`);
    await feed.next('the deletion', (e) => e.event === 'observer' && data<ObserverEventData>(e).status === 'Deleted');
    const mine = feed.events.filter((e) => e.event === 'observer').map((e) => data<ObserverEventData>(e));
    const events = mine.filter((e) => e.observerId === id).map((e) => e.event);
    assert.deepEqual(events.slice(0, 2), ['created', 'started'], events.join(', '));
    assert.ok(events.includes('paused') && events.indexOf('paused') < events.indexOf('deleted'), events.join(', '));
    assert.equal(mine[0]?.name, 'evented');
    const ids = feed.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'every event has its own id');
    feed.close();
  });

  it('a client that comes back with Last-Event-ID gets exactly what it missed', async () => {
    const first = await openSse(`${world.apiUrl}/events`, bearer(world.adminToken));
    const a = await world.createTicker('missed-a');
    const seen = await first.next('missed-a created', (e) => e.data.includes(a));
    first.close();
    const b = await world.createTicker('missed-b');
    const c = await world.createTicker('missed-c');
    for (const id of [a, b, c]) await world.waitForStatus(id, 'Processing');

    const again = await openSse(`${world.apiUrl}/events`, { ...bearer(world.adminToken), 'last-event-id': seen.id! });
    await again.next('missed-c started', (e) => e.data.includes(c) && data<ObserverEventData>(e).event === 'started');
    const resumed = again.events.map((e) => data<ObserverEventData>(e)).filter((e) => e.observerId !== undefined);
    assert.ok(!resumed.some((e) => e.observerId === a && e.event === 'created'), 'nothing seen before is sent again');
    for (const id of [b, c]) {
      assert.deepEqual(
        resumed.filter((e) => e.observerId === id).map((e) => e.event),
        ['created', 'started'],
      );
    }
    again.close();
    const bad = await world.api<{ type: string }>('GET', '/events?since=nonsense');
    assert.equal(bad.status, 400);
  });

  it("an observer's latest observations come first, then live ones", async () => {
    const id = await world.createTicker('watched', 50);
    await waitFor('a few ticks kept', async () => {
      const kept = await world.api<{ items: { data: { seq: number } }[] }>('GET', `/observers/${id}/observations`);
      return kept.body.items.length >= 5;
    });
    const stream = await openSse(`${world.apiUrl}/observers/${id}/observations?limit=3`, bearer(world.adminToken));
    assert.equal(stream.status, 200);
    await waitFor('live ones after the kept ones', () => stream.events.length >= 8);
    const seqs = stream.events.map((e) => data<{ data: { seq: number } }>(e).data.seq);
    assert.ok(
      seqs.every((seq, i) => i === 0 || seq === seqs[i - 1]! + 1),
      `in order, none missed: ${seqs.join(', ')}`,
    );
    assert.ok(stream.events.every((e) => e.event === 'observation'));
    stream.close();
    const unknown = await world.api('GET', '/observers/00000000-0000-4000-8000-000000000000/observations');
    assert.equal(unknown.status, 404);
    assert.equal((await world.apiAs(null, 'GET', `/observers/${id}/observations`)).status, 401);
  });
});
