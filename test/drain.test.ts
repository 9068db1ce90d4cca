/**
 * SIGTERM drains a service make-before-break: each observer's next generation starts elsewhere
 * before the copy on the stopping service is released, so it is never silent. Without a manager
 * the service falls back to stopping its observers and handing their jobs back, at once; a kind
 * that must never overlap is stopped first and moved after. Judged from the observations stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

const TICK_MS = 100;

describe('drain on SIGTERM', { timeout: 180_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  /** Creates `count` observers of `kind` ticking every TICK_MS, all running on `serviceId`. */
  async function running(prefix: string, count: number, serviceId: string, kind = 'ticker'): Promise<string[]> {
    const ids = await world.createTickers(prefix, count, TICK_MS, kind);
    for (const id of ids) await world.waitForStatus(id, 'Processing', serviceId);
    await waitFor('every observer to tick', () => ids.every((id) => world.watch.lastSeen(id, serviceId) !== undefined));
    return ids;
  }

  /**
   * Kills a service and waits until the manager has it dead: its free slots would otherwise
   * count as room for the next test's moves.
   */
  async function gone(service: ServiceHandle): Promise<void> {
    await service.process.kill();
    await waitFor(`${service.name} to be dead`, async () => (await world.service(service.id)).status === 'Dead');
  }

  /** How long the observer published from neither service around the move, ms (0 when they overlapped). */
  function gapMs(id: string, from: string, to: string): number {
    return Math.max(0, world.watch.firstSeen(id, to)! - world.watch.lastSeen(id, from)!);
  }

  it('moves every observer before it stops: no gap, a bounded overlap, generation 2, no duplicate counted', async (t) => {
    const a = await world.startService('drain-a');
    const ids = await running('drain', 8, a.id);
    const b = await world.startService('drain-b');

    const stoppedAt = Date.now();
    a.process.signal('SIGTERM');
    assert.equal((await a.process.exited).code, 0);
    const exitMs = Date.now() - stoppedAt;
    for (const id of ids) await world.waitForStatus(id, 'Processing', b.id);

    const gaps = ids.map((id) => gapMs(id, a.id, b.id));
    const overlaps = ids.map((id) => world.watch.doubleRunMs(id));
    t.diagnostic(`exit after ${exitMs} ms; gaps ${gaps.join(', ')} ms; overlaps ${overlaps.join(', ')} ms`);
    // Ticks come every TICK_MS: a gap longer than two of them is silence, not timing.
    for (const gap of gaps) assert.ok(gap <= 2 * TICK_MS, `silent for ${gap} ms`);
    for (const overlap of overlaps) assert.ok(overlap <= 1_000, `two copies for ${overlap} ms`);
    assert.equal(a.process.logged('observers are being moved').length, 1);

    const observer = await world.observer(ids[0]!);
    assert.equal(observer.generation, 2);
    const events = observer.timeline.map((e) => e.event);
    assert.ok(events.includes('moving') && events.includes('moved'), events.join(', '));
    assert.match(JSON.stringify(observer.timeline), /planned move from/);
    const metrics = await world.metrics();
    assert.match(metrics, new RegExp(`vigil_moves_total\\{step="completed"\\} ${ids.length}`));
    assert.doesNotMatch(metrics, /vigil_duplicate_runs_total\{/);
    await waitFor(
      'no job left over in the queue',
      async () => (await world.queueCounts(world.names.jobsQueue('default'))).messageCount === 0,
    );

    for (const id of ids) await world.api('DELETE', `/observers/${id}`);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    await gone(b);
  });

  it('with no room elsewhere nothing is moved: the service stops at once and hands the jobs back as they were', async () => {
    const a = await world.startService('alone-a');
    const ids = await running('alone', 3, a.id);
    const stoppedAt = Date.now();
    a.process.signal('SIGTERM');
    assert.equal((await a.process.exited).code, 0);
    assert.ok(Date.now() - stoppedAt < 2_000, `exited after ${Date.now() - stoppedAt} ms`);
    await waitFor(
      'the jobs back in the queue',
      async () => (await world.queueCounts(world.names.jobsQueue('default'))).messageCount === ids.length,
    );
    const b = await world.startService('alone-b');
    for (const id of ids) assert.equal((await world.waitForStatus(id, 'Processing', b.id)).generation, 1);
    for (const id of ids) await world.api('DELETE', `/observers/${id}`);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    await gone(b);
  });

  it('a kind that must never overlap is stopped first, then runs elsewhere', async () => {
    const a = await world.startService('exclusive-a');
    const [id] = await running('exclusive', 1, a.id, 'exclusive-ticker');
    const b = await world.startService('exclusive-b');

    a.process.signal('SIGTERM');
    assert.equal((await a.process.exited).code, 0);
    await world.waitForStatus(id!, 'Processing', b.id);
    await waitFor('it to tick on b', () => world.watch.firstSeen(id!, b.id) !== undefined);
    assert.equal(world.watch.doubleRunMs(id!), 0, 'never two copies');
    assert.ok(world.watch.firstSeen(id!, b.id)! >= world.watch.lastSeen(id!, a.id)!);
    assert.equal(a.process.logged('must never overlap').length, 1);

    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id!, 'Deleted');
    await gone(b);
  });

  it('with no manager to answer, the service stops its observers and hands their jobs back at once', async () => {
    const a = await world.startService('lonely-a');
    const ids = await running('lonely', 3, a.id);
    const b = await world.startService('lonely-b');
    await world.manager!.kill();

    const stoppedAt = Date.now();
    a.process.signal('SIGTERM');
    assert.equal((await a.process.exited).code, 0);
    const exitMs = Date.now() - stoppedAt;
    assert.ok(exitMs < 3_000 + 2_000, `exited after ${exitMs} ms`);
    assert.equal(a.process.logged('no manager answered the request to move observers').length, 1);
    await waitFor('every observer to tick on b', () =>
      ids.every((id) => (world.watch.lastSeen(id, b.id) ?? 0) > stoppedAt),
    );

    await world.startManager();
    for (const id of ids) await world.waitForStatus(id, 'Processing', b.id);
    assert.equal((await world.observer(ids[0]!)).generation, 1, 'nothing was moved: the jobs went back as they were');
    await gone(b);
  });
});
