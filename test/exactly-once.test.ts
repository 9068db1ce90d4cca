/**
 * Exactly one run, held by the protocol: a duplicate job is released, lost jobs (and the lost
 * next generation of a move) are published again at a new generation, a create cut short is not
 * published twice, and a job no service can run says why it waits. What runs where is judged from the observations stream.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeMessage, type JobMessage } from '@vigil/contracts';
import { assertNoDuplicates, createRunningTickers, waitFor, World } from '@vigil/testkit';

/** The testkit's LOST_AFTER_MS. */
const LOST_AFTER_MS = 2_000;

function tickerJob(observerId: string, name: string, generation = 1): JobMessage {
  return { observerId, name, kind: 'ticker', pool: 'default', params: { intervalMs: 100 }, generation };
}

describe('exactly one run', { timeout: 180_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it('a duplicate job on a second service: the later copy is released within 2 heartbeat intervals', async (t) => {
    const intervalMs = 500;
    const a = await world.startService('dup-a', { CAPACITY: '1', HEARTBEAT_INTERVAL_MS: String(intervalMs) });
    const id = await world.createTicker('dup');
    await world.waitForStatus(id, 'Processing', a.id);
    const b = await world.startService('dup-b', { HEARTBEAT_INTERVAL_MS: String(intervalMs) });

    // A copy of the job as the manager published it; a is full, so b takes it.
    await world.publishRaw(world.names.jobsQueue('default'), encodeMessage(tickerJob(id, 'dup')));
    await waitFor('the copy to run on b', () => world.watch.firstSeen(id, b.id) !== undefined);
    await waitFor('one copy to be left, on a', () => {
      const on = world.watch.runningOn(id, 350);
      return on.length === 1 && on[0] === a.id;
    });
    const doubleMs = world.watch.doubleRunMs(id);
    t.diagnostic(`the duplicate ran beside the first copy for ${doubleMs} ms (heartbeat interval ${intervalMs} ms)`);
    assert.ok(doubleMs <= 2 * intervalMs, `ran twice for ${doubleMs} ms`);
    await assertNoDuplicates(world, [id], 1_000, { toleranceMs: doubleMs });

    const observer = await world.waitForStatus(id, 'Processing', a.id);
    const released = observer.timeline.find((e) => e.event === 'released');
    assert.equal(released?.serviceId, b.id);
    assert.match(String(released?.reason), /duplicate/);
    assert.match(await world.metrics(), /vigil_duplicate_runs_total\{cause="duplicate"\} 1/);
    // The released copy's job was acked: one message is left, held by a.
    await waitFor(
      'one job left',
      async () => (await world.queueCounts(world.names.jobsQueue('default'))).messageCount === 0,
    );
    assert.equal(a.process.logged('observer stopped').length, 0, 'the first copy never stopped');

    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
    await Promise.all([a.process.kill(), b.process.kill()]);
  });

  it('a newer generation delivered to the service running it is adopted in place: no restart, no gap', async () => {
    const a = await world.startService('adopt-a', { CAPACITY: '2' });
    const id = await world.createTicker('adopt');
    await world.waitForStatus(id, 'Processing', a.id);
    await waitFor('a few ticks', () => (world.watch.runsOf(id)[0]?.lastSeq ?? 0) >= 3);

    // Generation 2 of the same run, as a rotation would publish it; a is the only service.
    await world.publishRaw(world.names.jobsQueue('default'), encodeMessage(tickerJob(id, 'adopt', 2)));
    const observer = await waitFor('the manager to record generation 2 on a', async () => {
      const now = await world.observer(id);
      return now.generation === 2 && now.serviceId === a.id ? now : undefined;
    });
    assert.match(JSON.stringify(observer.timeline), /generation 2 replaced 1 here/);
    const lastSeq = world.watch.runsOf(id)[0]!.lastSeq;
    await waitFor('more ticks', () => world.watch.runsOf(id)[0]!.lastSeq >= lastSeq + 3);
    assert.equal(world.watch.runsOf(id).length, 1, 'one run all along: the ticker never counted from 0 again');
    assert.equal(a.process.logged('adopted in place').length, 1);
    assert.equal(a.process.logged('observer stopped').length, 0);
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 0, 'nothing handed back');
    assert.equal((await world.service(a.id)).running, 1);

    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
    await a.process.kill();
  });

  it('a purged jobs queue: every observer runs again within LOST_AFTER_MS + 2 s, at generation 2', async (t) => {
    const names = ['purge-a', 'purge-b'];
    // Stopped without moves: their jobs go back to the queue as they are, to be purged there.
    const noMoves = { DRAIN_TIMEOUT_MS: '0' };
    const [a, b] = [await world.startService(names[0]!, noMoves), await world.startService(names[1]!, noMoves)];
    const { ids } = await createRunningTickers(world, 'purge', 6);
    for (const service of [a, b]) service.process.signal('SIGTERM');
    await Promise.all([a.process.exited, b.process.exited]);
    assert.equal(await world.purge(world.names.jobsQueue('default')), ids.length, 'the requeued jobs, all purged');

    for (const name of names) await world.startService(name);
    const restartedAt = Date.now();
    await waitFor(
      'every observer to run again, once',
      () => ids.every((id) => world.watch.runningOn(id, 350).length === 1),
      { timeoutMs: LOST_AFTER_MS + 10_000 },
    );
    const tookMs = Date.now() - restartedAt;
    t.diagnostic(
      `purged jobs running again ${tookMs} ms after the services came back (LOST_AFTER_MS ${LOST_AFTER_MS})`,
    );
    assert.ok(tookMs <= LOST_AFTER_MS + 2_000, `running again ${tookMs} ms after the services came back`);
    for (const id of ids) {
      const observer = await world.waitForStatus(id, 'Processing');
      assert.equal(observer.generation, 2);
      assert.ok(observer.timeline.some((e) => e.event === 'republished' && /lost/.test(String(e.reason))));
      assert.ok(
        observer.timeline.every((e) => typeof e.generation === 'number'),
        'every timeline row names its generation',
      );
    }
    assert.match(await world.metrics(), /vigil_jobs_republished_total\{reason="lost"\} 6/);
    await assertNoDuplicates(world, ids, 1_000);
    for (const id of ids) await world.api('DELETE', `/observers/${id}`);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
    for (const service of world.services.filter((s) => names.includes(s.name))) await service.process.kill();
  });

  it('a job waiting in a full pool is not lost: no republish however long it waits', async () => {
    const full = await world.startService('full-a', { CAPACITY: '2' });
    const { ids: running } = await createRunningTickers(world, 'full', 2);
    const waiting = [await world.createTicker('full-waits-1'), await world.createTicker('full-waits-2')];
    await delay(LOST_AFTER_MS + 2_000);
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 2, 'two jobs wait');
    for (const id of waiting) {
      const observer = await world.observer(id);
      assert.equal(observer.status, 'Created');
      assert.equal(observer.generation, 1);
    }
    for (const id of running) await world.api('DELETE', `/observers/${id}`);
    for (const id of waiting) {
      const observer = await world.waitForStatus(id, 'Processing', full.id);
      assert.equal(observer.generation, 1, 'the job that waited is the one that runs');
    }
    for (const id of waiting) await world.api('DELETE', `/observers/${id}`);
    for (const id of [...running, ...waiting]) await world.waitForStatus(id, 'Deleted');
    await full.process.kill();
  });

  it('a move whose next generation is lost: the old copy runs on until the audit publishes the one after', async (t) => {
    // Both services full: a restart's next generation waits in the queue, where it is purged.
    const a = await world.startService('stall-a', { CAPACITY: '1' });
    const id = await world.createTicker('stall');
    await world.waitForStatus(id, 'Processing', a.id);
    const b = await world.startService('stall-b', { CAPACITY: '1' });
    const other = await world.createTicker('stall-other');
    await world.waitForStatus(other, 'Processing', b.id);
    assert.equal((await world.api('POST', `/observers/${id}/restart`)).status, 202);
    await waitFor(
      'generation 2 waiting in the queue',
      async () => (await world.queueCounts(world.names.jobsQueue('default'))).messageCount === 1,
    );
    assert.equal(await world.purge(world.names.jobsQueue('default')), 1);

    // With nowhere to run, the move is not stalled but waiting: generation 1 runs on.
    await delay(LOST_AFTER_MS + 1_000);
    assert.deepEqual(world.watch.runningOn(id, 350), [a.id]);
    assert.equal((await world.observer(id)).generation, 2);

    const c = await world.startService('stall-c', { CAPACITY: '1' });
    const observer = await waitFor(
      'generation 3 to run on c, and a to be released',
      async () => {
        const now = await world.observer(id);
        const on = world.watch.runningOn(id, 350);
        return now.serviceId === c.id && on.length === 1 && on[0] === c.id ? now : undefined;
      },
      { timeoutMs: LOST_AFTER_MS + 10_000 },
    );
    assert.equal(observer.generation, 3);
    const republished = observer.timeline.find((e) => e.event === 'republished');
    assert.equal(republished?.generation, 3);
    assert.equal(republished?.serviceId, a.id);
    assert.match(String(republished?.reason), /move stalled/);
    assert.match(await world.metrics(), /vigil_jobs_republished_total\{reason="stalled-move"\} 1/);
    // Make-before-break: a's copy ran until c's did (a ticker ticks every 100 ms).
    const runs = world.watch.runsOf(id);
    const lastOnA = Math.max(...runs.filter((run) => run.serviceId === a.id).map((run) => run.end));
    const gapMs = runs.find((run) => run.serviceId === c.id)!.start - lastOnA;
    t.diagnostic(`from a's last tick to c's first: ${gapMs} ms`);
    assert.ok(gapMs <= 200, `silent for ${gapMs} ms`);

    for (const observerId of [id, other]) await world.api('DELETE', `/observers/${observerId}`);
    for (const observerId of [id, other]) await world.waitForStatus(observerId, 'Deleted');
    await Promise.all([a.process.kill(), b.process.kill(), c.process.kill()]);
  });

  it('a create cut short after its publish, the manager down past 10 s: the job is not published twice', async () => {
    const a = await world.startService('stranded-a');
    await world.manager!.kill();
    // What a manager killed between the publish and the mark leaves: a row not marked published,
    // made long ago as far as its clock goes, and its job in the queue.
    const id = randomUUID();
    await world.sql(
      `INSERT INTO observers (id, name, kind, pool, params, status, unplaced_since, created_at, updated_at)
       VALUES ($1, 'stranded', 'ticker', 'default', '{"intervalMs": 100}', 'Created',
               now() - interval '60 s', now() - interval '60 s', now() - interval '60 s')`,
      [id],
    );
    await world.publishRaw(world.names.jobsQueue('default'), encodeMessage(tickerJob(id, 'stranded')));
    await waitFor('it to run on a', () => world.watch.runningOn(id, 350)[0] === a.id);

    await world.startManager();
    const observer = await world.waitForStatus(id, 'Processing', a.id);
    await delay(LOST_AFTER_MS + 1_000);
    await assertNoDuplicates(world, [id], 500);
    assert.deepEqual(world.watch.runningOn(id, 350), [a.id]);
    const now = await world.observer(id);
    assert.equal(now.generation, 1);
    assert.ok(!now.timeline.some((e) => e.event === 'republished'), JSON.stringify(observer.timeline));
    assert.equal((await world.queueCounts(world.names.jobsQueue('default'))).messageCount, 0);
    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
    await a.process.kill();
  });

  it('a job no service that takes it can run: parked with a growing pause, the API says why, then it runs', async () => {
    const capable = await world.startService('kinds-capable', { CAPACITY: '1' });
    const lacking = await world.startService('kinds-lacking', { KIND_MODULES: '' });
    const slowStop = { kind: 'slow-stop', params: { intervalMs: 100 } };
    const filler = (await world.api('POST', '/observers', { name: 'filler', ...slowStop })).body.id as string;
    await world.waitForStatus(filler, 'Processing', capable.id, 30_000);

    const waiting = (await world.api('POST', '/observers', { name: 'waits', ...slowStop })).body.id as string;
    const reason = await waitFor('the API to say why it waits', async () => {
      const observer = (await world.api<{ status: string; waitReason: string | null }>('GET', `/observers/${waiting}`))
        .body;
      return observer.status === 'Created' && observer.waitReason;
    });
    assert.match(reason, /no kind "slow-stop"/);
    // No hot loop: the pauses grow (1 s, 2 s, ...), so a few seconds see a few parkings.
    await delay(3_000);
    const parkings = lacking.process.logged('unknown kind').length;
    assert.ok(parkings >= 1 && parkings <= 3, `parked ${parkings} times in about 3 s`);

    await world.api('DELETE', `/observers/${filler}`);
    const running = await world.waitForStatus(waiting, 'Processing', capable.id, 40_000);
    assert.equal(running.waitReason, null);
    assert.equal(running.generation, 1, 'waiting is not lost');
    await world.api('DELETE', `/observers/${waiting}`);
    await world.waitForStatus(waiting, 'Deleted');
    await Promise.all([capable.process.kill(), lacking.process.kill()]);
  });
});
