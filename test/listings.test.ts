/**
 * Heartbeats list what a service holds only when the manager can do without the rest: when the
 * holdings changed, when the manager asks (`service.list`), and every few beats. A service that
 * was never asked (a manager from before) lists them in every heartbeat.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, mock } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import type { StateEvent, StateEventOf } from '@vigil/contracts';
import { createLogger } from '@vigil/logging';
import { createRunningTickers, waitFor, World } from '@vigil/testkit';
import { StateReporter, type Holdings } from '../apps/observer-service/src/state-reporter';

const INTERVAL_MS = 100;

function reporterWith(listingEveryBeats: number) {
  const beats: StateEventOf<'service.heartbeat'>[] = [];
  let holdings: Holdings = {
    running: { ids: ['a'], generations: [1] },
    parked: [],
    held: 1,
    observationsDropped: 0,
    draining: false,
  };
  let refuse = false;
  const reporter = new StateReporter({
    serviceId: '00000000-0000-4000-8000-000000000001',
    name: 'reporter',
    capacity: 10,
    pools: ['default'],
    kinds: [],
    version: '0',
    startedAt: new Date().toISOString(),
    heartbeatIntervalMs: INTERVAL_MS,
    listingEveryBeats,
    healthFile: undefined,
    send: (event: StateEvent) => {
      if (event.type === 'service.heartbeat') beats.push(event);
      return refuse ? Promise.reject(new Error('refused')) : Promise.resolve();
    },
    holdings: () => ({
      ...holdings,
      running: { ids: [...holdings.running.ids], generations: [...holdings.running.generations] },
    }),
    log: createLogger({ level: 'silent', base: {} }),
  });
  return {
    reporter,
    /** Whether each heartbeat sent since the last call listed the holdings. */
    async listed(beatCount: number): Promise<boolean[]> {
      beats.length = 0;
      for (let i = 0; i < beatCount; i++) {
        mock.timers.tick(INTERVAL_MS);
        await turn();
      }
      return beats.map((beat) => beat.running !== undefined);
    },
    sent: beats,
    change(ids: string[]) {
      holdings = { ...holdings, running: { ids, generations: ids.map(() => 1) }, held: ids.length };
    },
    refuse(value: boolean) {
      refuse = value;
    },
  };
}

describe('heartbeat listings: what the service decides', () => {
  before(() => mock.timers.enable({ apis: ['setInterval'] }));
  after(() => mock.timers.reset());

  it('lists in every heartbeat until the manager has asked once', async () => {
    const r = reporterWith(4);
    r.reporter.startHeartbeats();
    assert.deepEqual(await r.listed(5), [true, true, true, true, true]);
    r.reporter.stopHeartbeats();
  });

  it('once asked: lists at once, then on a change, after a refused listing, and every few beats', async () => {
    const r = reporterWith(4);
    r.reporter.startHeartbeats();
    r.reporter.listingWanted();
    await turn();
    assert.equal(r.sent.at(-1)?.running?.length, 1, 'a listing goes at once');
    assert.deepEqual(await r.listed(4), [false, false, false, true], 'every fourth beat lists');
    const light = r.sent[0]!;
    assert.equal(light.runningCount, 1);
    assert.equal(light.generations, undefined);

    r.change(['a', 'b']);
    assert.deepEqual(await r.listed(2), [true, false], 'a change is listed once');

    r.change(['b']);
    r.refuse(true);
    assert.deepEqual(await r.listed(1), [true]);
    r.refuse(false);
    assert.deepEqual(await r.listed(2), [true, false], 'a listing the broker refused is sent again');
    r.reporter.stopHeartbeats();
  });
});

describe('heartbeat listings: the manager and the services', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  const counts = async () => {
    const text = await world.metrics();
    return {
      beats: Number(/vigil_state_events_total\{type="service\.heartbeat"\} (\d+)/.exec(text)?.[1] ?? 0),
      listings: Number(/^vigil_state_listings_total (\d+)/m.exec(text)?.[1] ?? 0),
    };
  };

  it('at rest most heartbeats carry no listing; a change is listed at the next one', async () => {
    const service = await world.startService('listings-rest', { HEARTBEAT_LISTING_EVERY: '5' });
    const { ids } = await createRunningTickers(world, 'listings-rest', 2, 1_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = await counts();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const rest = await counts();
    const beats = rest.beats - before.beats;
    const listings = rest.listings - before.listings;
    assert.ok(beats >= 6, `heartbeats kept coming (${beats})`);
    assert.ok(listings >= 1 && listings <= Math.ceil(beats / 5) + 1, `${listings} of ${beats} heartbeats listed`);
    assert.equal((await world.service(service.id)).running, 2, 'the running count comes without a listing');

    await world.api('DELETE', `/observers/${ids[0]}`);
    await world.waitForStatus(ids[0]!, 'Deleted');
    await waitFor(
      'the service listed once its holdings changed',
      async () => (await counts()).listings > rest.listings,
    );
    await waitFor('the running count to follow', async () => (await world.service(service.id)).running === 1);
    await world.api('DELETE', `/observers/${ids[1]}`);
    await service.process.kill();
  });

  it("kill -9: the survivor's copies, contenders while the victim looked alive, are claimed from its listing once it is dead", async () => {
    // Listings every thousand beats: only the manager's requests bring them in time.
    const env = { HEARTBEAT_LISTING_EVERY: '1000' };
    const victim = await world.startService('listings-victim', env);
    const survivor = await world.startService('listings-survivor', env);
    const { ids, byService } = await createRunningTickers(world, 'listings-kill', 8, 1_000);
    const moved = byService.get(victim.id) ?? [];
    assert.ok(moved.length > 0, 'the broker gave the victim some jobs');
    await victim.process.kill();
    for (const id of moved) await world.waitForStatus(id, 'Processing', survivor.id, 15_000);
    const generations = await world.sql<{ generation: number }>(
      `SELECT generation FROM observers WHERE id = ANY($1::uuid[])`,
      [moved],
    );
    assert.deepEqual(
      generations.map((row) => row.generation),
      moved.map(() => 1),
      'claimed from the listing the manager asked for, not republished as lost',
    );
    for (const id of ids) await world.api('DELETE', `/observers/${id}`);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    await survivor.process.kill();
  });

  it('a service the manager had given up on is asked for its listing, and its observers are placed on it again', async () => {
    // A listing every thousand beats: only the manager's request can bring one in time.
    const service = await world.startService('listings-revived', { HEARTBEAT_LISTING_EVERY: '1000' });
    const { ids } = await createRunningTickers(world, 'listings-revived', 3, 1_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // What the manager would have written had the service's heartbeats stopped for a while.
    await world.sql(`UPDATE services SET status = 'Dead', died_at = now() WHERE id = $1`, [service.id]);
    await world.sql(
      `UPDATE observers SET status = 'Created', service_id = NULL, running_generation = NULL, unplaced_since = now()
       WHERE service_id = $1`,
      [service.id],
    );
    const revivedAt = Date.now();
    for (const id of ids) await world.waitForStatus(id, 'Processing', service.id);
    const tookMs = Date.now() - revivedAt;
    assert.equal((await world.service(service.id)).status, 'Alive');
    const generations = await world.sql<{ generation: number }>(
      `SELECT generation FROM observers WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    assert.deepEqual(
      generations.map((row) => row.generation),
      [1, 1, 1],
      `placed again from the listing (${tookMs} ms), not republished as lost`,
    );
    for (const id of ids) await world.api('DELETE', `/observers/${id}`);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    await service.process.kill();
  });
});
