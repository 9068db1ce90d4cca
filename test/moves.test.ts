/**
 * Moves nobody stops a service for: an operator drain (the service stays up), rebalancing onto a
 * service that joins, rotation of jobs held long (in place when the next generation lands on its
 * own service), and a new holder killed in the middle of a move. Gaps and double runs are judged
 * from the observations stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

const TICK_MS = 100;
/** Ticks come every TICK_MS: a gap longer than two of them is silence, not timing. */
const MAX_GAP_MS = 2 * TICK_MS;

interface ServiceBody {
  id: string;
  status: string;
  drainingSince: string | null;
  running: number;
}

/** Where the manager has each observer running, by service id. */
async function placement(world: World, ids: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const id of ids) {
    const { status, serviceId } = await world.observer(id);
    if (status !== 'Processing' || serviceId === null) continue;
    counts.set(serviceId, (counts.get(serviceId) ?? 0) + 1);
  }
  return counts;
}

/** The longest silence of each observer across its runs, as the watch saw it, ms. */
function longestGapMs(world: World, id: string, since: number): number {
  const runs = world.watch.runsOf(id).filter((run) => run.end >= since);
  let longest = 0;
  for (const run of runs)
    for (const silence of run.silences) if (silence.from >= since) longest = Math.max(longest, silence.ms);
  // Between runs: from the end of the latest run before each start to that start.
  for (const run of runs) {
    const before = runs.filter((other) => other !== run && other.start < run.start).map((other) => other.end);
    if (before.length > 0) longest = Math.max(longest, run.start - Math.max(...before));
  }
  return longest;
}

describe('operator drain', { timeout: 180_000 }, () => {
  let world: World;
  let a: ServiceHandle;
  let b: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it('empties a live service make-before-break; it shows Draining, stays up, and takes nothing new', async (t) => {
    a = await world.startService('op-a');
    const ids = await world.createTickers('op', 6, TICK_MS);
    for (const id of ids) await world.waitForStatus(id, 'Processing', a.id);
    await waitFor('every observer to tick', () => ids.every((id) => world.watch.lastSeen(id, a.id) !== undefined));
    b = await world.startService('op-b');

    const since = Date.now();
    const drained = await world.api<ServiceBody>('POST', `/services/${a.id}/drain`);
    assert.equal(drained.status, 200, JSON.stringify(drained.body));
    assert.equal(drained.body.status, 'Draining');
    for (const id of ids) await world.waitForStatus(id, 'Processing', b.id);
    const gaps = ids.map((id) => longestGapMs(world, id, since));
    const overlaps = ids.map((id) => world.watch.doubleRunMs(id));
    t.diagnostic(`gaps ${gaps.join(', ')} ms; overlaps ${overlaps.join(', ')} ms`);
    for (const gap of gaps) assert.ok(gap <= MAX_GAP_MS, `silent for ${gap} ms`);
    for (const overlap of overlaps) assert.ok(overlap <= 1_000, `two copies for ${overlap} ms`);
    assert.equal(a.process.running, true, 'a drained service stays up');
    assert.equal((await world.observer(ids[0]!)).generation, 2);

    const listed = await world.api<{ items: ServiceBody[] }>('GET', '/services?status=Draining');
    assert.deepEqual(
      listed.body.items.map((s) => s.id),
      [a.id],
    );
    const [fresh] = await world.createTickers('op-new', 1, TICK_MS);
    await world.waitForStatus(fresh!, 'Processing', b.id);
    // Heartbeats keep it alive and Draining.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const later = await world.api<ServiceBody>('GET', `/services/${a.id}`);
    assert.equal(later.body.status, 'Draining');
    assert.equal(later.body.running, 0);
  });

  it('undrained, it takes jobs again: draining the other service moves everything back onto it', async () => {
    const undrained = await world.api<ServiceBody>('POST', `/services/${a.id}/undrain`);
    assert.equal(undrained.status, 200);
    assert.equal(undrained.body.status, 'Alive');
    assert.equal(undrained.body.drainingSince, null);
    assert.equal((await world.api('POST', `/services/${b.id}/drain`)).status, 200);
    await waitFor('b to be empty', async () => (await world.service(b.id)).running === 0 || undefined);
    const observers = await world.api<{ items: { serviceId: string | null }[] }>('GET', '/observers?status=Processing');
    assert.ok(observers.body.items.length === 7);
    assert.ok(observers.body.items.every((o) => o.serviceId === a.id));
  });

  it('refuses what makes no sense: a dead or unknown service, a token that is not admin', async () => {
    await b.process.kill();
    await waitFor('b to be dead', async () => (await world.service(b.id)).status === 'Dead');
    const dead = await world.api<{ type: string }>('POST', `/services/${b.id}/drain`);
    assert.equal(dead.status, 409);
    assert.match(dead.body.type, /service-dead/);
    assert.equal((await world.api('POST', `/services/00000000-0000-4000-8000-000000000000/drain`)).status, 404);
    const writer = await world.api<{ token: string }>('POST', '/tokens', { name: 'writer', role: 'write' });
    assert.equal((await world.apiAs(writer.body.token, 'POST', `/services/${a.id}/drain`)).status, 403);
  });
});

describe('rebalance', { timeout: 180_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager({ REBALANCE: 'on', REBALANCE_MAX_MOVES_PER_S: '20' });
  });
  after(() => world.close());

  it('a service that joins takes its even share, with no gap, no duplicate, and no observer moved twice', async (t) => {
    const a = await world.startService('even-a', { CAPACITY: '20' });
    const ids = await world.createTickers('even', 12, TICK_MS);
    for (const id of ids) await world.waitForStatus(id, 'Processing', a.id);
    await waitFor('every observer to tick', () => ids.every((id) => world.watch.lastSeen(id, a.id) !== undefined));

    const since = Date.now();
    const b = await world.startService('even-b', { CAPACITY: '20' });
    await waitFor('an even split', async () => {
      const counts = await placement(world, ids);
      return counts.get(a.id) === 6 && counts.get(b.id) === 6;
    });
    const evenMs = Date.now() - since;
    // Quiet for a while: nothing moves again.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const counts = await placement(world, ids);
    assert.equal(counts.get(a.id), 6);
    assert.equal(counts.get(b.id), 6);
    const generations = await Promise.all(ids.map(async (id) => (await world.observer(id)).generation));
    assert.ok(
      generations.every((g) => g <= 2),
      `no observer moved twice: ${generations.join(', ')}`,
    );
    assert.equal(generations.filter((g) => g === 2).length, 6);
    const gaps = ids.map((id) => longestGapMs(world, id, since));
    t.diagnostic(`even after ${evenMs} ms; gaps ${gaps.join(', ')} ms`);
    for (const gap of gaps) assert.ok(gap <= MAX_GAP_MS, `silent for ${gap} ms`);
    for (const id of ids) assert.deepEqual(world.watch.runningOn(id, 500).length, 1, 'one copy once quiet');
    assert.doesNotMatch(await world.metrics(), /vigil_duplicate_runs_total\{/);
    assert.match(await world.metrics(), /vigil_moves_published_total\{purpose="rebalance"\} 6/);
  });
});

describe('rotation', { timeout: 180_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager({ ROTATE_AFTER_MS: '1500' });
  });
  after(() => world.close());

  it('a job held past ROTATE_AFTER_MS is acked and replaced; on its own service the run goes on in place', async (t) => {
    const a = await world.startService('rotate-a');
    const ids = await world.createTickers('rotate', 3, TICK_MS);
    const [exclusive] = await world.createTickers('rotate-exclusive', 1, TICK_MS, 'exclusive-ticker');
    for (const id of [...ids, exclusive!]) await world.waitForStatus(id, 'Processing', a.id);
    const since = Date.now();

    await waitFor('each job rotated twice', async () => {
      const generations = await Promise.all(ids.map(async (id) => (await world.observer(id)).generation));
      return generations.every((g) => g >= 3);
    });
    for (const id of ids) {
      const runs = world.watch.runsOf(id);
      assert.equal(runs.length, 1, 'one run all along: adopted in place, never restarted');
      assert.ok(longestGapMs(world, id, since) <= MAX_GAP_MS);
    }
    const started =
      a.process.logged('observer started').length +
      a.process.logged('observers started').reduce((sum, line) => sum + Number(line.started), 0);
    assert.equal(started, 4, 'nothing started again');
    assert.ok(a.process.logged('adopted in place').length >= 6);
    // The held jobs are the new ones: one unacked per observer, none waiting.
    const counts = await world.queueCounts(world.names.jobsQueue('default'));
    assert.equal(counts.messageCount, 0);
    assert.equal((await world.observer(exclusive!)).generation, 1, 'a kind that must never overlap is not rotated');
    const timeline = (await world.observer(ids[0]!)).timeline.map((e) => e.reason ?? '');
    t.diagnostic(timeline.join(' | '));
    assert.ok(timeline.some((reason) => /held long enough to rotate/.test(reason)));
  });
});

describe('a move whose new holder dies', { timeout: 180_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it('converges: every observer runs once, on the survivor', async (t) => {
    const a = await world.startService('mid-a');
    const ids = await world.createTickers('mid', 6, TICK_MS);
    for (const id of ids) await world.waitForStatus(id, 'Processing', a.id);
    const b = await world.startService('mid-b');

    a.process.signal('SIGTERM');
    await waitFor('a moved copy to run on b', () => ids.some((id) => world.watch.firstSeen(id, b.id) !== undefined), {
      intervalMs: 5,
    });
    await b.process.kill();
    assert.equal((await a.process.exited).code, 0);
    const c = await world.startService('mid-c');
    for (const id of ids) await world.waitForStatus(id, 'Processing', c.id, 30_000);
    await waitFor('every observer to tick on c', () => ids.every((id) => world.watch.lastSeen(id, c.id) !== undefined));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    for (const id of ids) assert.deepEqual(world.watch.runningOn(id, 500), [c.id], 'one copy, on c');
    const generations = await Promise.all(ids.map(async (id) => (await world.observer(id)).generation));
    t.diagnostic(`generations ${generations.join(', ')}`);
  });
});
