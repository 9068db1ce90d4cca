/**
 * A broker memory alarm on a private node: RabbitMQ blocks every connection that publishes. The
 * manager answers creates with a 503 naming the alarm, never hangs; reads and accepted deletes keep
 * working; nobody is declared dead for the silence; once the alarm clears everything converges.
 */
import assert from 'node:assert/strict';
import { rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  createRunningTickers,
  startPrivateRabbit,
  waitFor,
  waitUntilManagerAgrees,
  World,
  type PrivateRabbit,
} from '@vigil/testkit';

describe('broker memory alarm', { timeout: 240_000 }, () => {
  let rabbit: PrivateRabbit;
  let world: World;

  before(async () => {
    rabbit = await startPrivateRabbit();
    world = await World.create({ amqpUrl: rabbit.url });
    await world.startManager();
  });
  after(async () => {
    await world?.close();
    await rabbit?.destroy();
  });

  it('creates get a 503 within 5 s, reads and deletes work, nobody dies, and all converges after', async (t) => {
    const healthFile = path.join(os.tmpdir(), `vigil-alarm-health-${process.pid}`);
    const a = await world.startService('alarm-a', { HEALTH_FILE: healthFile });
    const b = await world.startService('alarm-b');
    const { ids } = await createRunningTickers(world, 'alarm', 4);
    const [doomed, ...kept] = ids as [string, ...string[]];

    const alarmAt = Date.now();
    await rabbit.setMemoryHighWatermark(0);
    const root = world.apiUrl.replace(/\/api\/v1$/, '');
    await waitFor('the manager to be told its publishing is blocked', async () => {
      const ready = await world.apiAt<{ brokerBlocked: string | null }>(root, 'GET', '/readyz');
      return ready.body.brokerBlocked !== null;
    });

    async function postTimed() {
      const started = Date.now();
      const response = await world.api('POST', '/observers', {
        name: `during-alarm-${started}`,
        kind: 'ticker',
        params: { intervalMs: 100 },
      });
      return { ...response, ms: Date.now() - started };
    }
    const refused = await postTimed();
    t.diagnostic(`POST during the alarm: ${refused.status} after ${refused.ms} ms: ${JSON.stringify(refused.body)}`);
    assert.equal(refused.status, 503);
    assert.ok(refused.ms < 5_000, `answered in ${refused.ms} ms`);
    assert.equal(refused.body.type, 'urn:vigil:problem:broker-blocked');
    assert.match(String(refused.body.detail), /alarm/);
    assert.equal((await world.api('GET', `/observers?status=Processing`)).status, 200);
    assert.equal((await world.api('DELETE', `/observers/${doomed}`)).status, 202);

    // Three heartbeat intervals and more of silence: still nobody is declared dead.
    await delay(3_000);
    for (const service of [a, b]) assert.equal((await world.service(service.id)).status, 'Alive');
    // Nor would a container health check: the service keeps touching its health file.
    const healthAgeMs = Date.now() - (await stat(healthFile)).mtimeMs;
    assert.ok(healthAgeMs < 1_500, `health file touched ${healthAgeMs} ms ago`);

    await rabbit.setMemoryHighWatermark(0.4);
    const clearedAt = Date.now();
    await world.waitForStatus(doomed, 'Deleted', undefined, 30_000);
    const after = await world.createTicker('after-alarm');
    await world.waitForStatus(after, 'Processing', undefined, 30_000);
    await waitUntilManagerAgrees(world, [...kept, after]);
    t.diagnostic(`converged ${Date.now() - clearedAt} ms after the alarm cleared`);
    await waitFor('the deleted observer to run nowhere', () => world.watch.runningOn(doomed, 350).length === 0);
    // Observers ran on through the alarm: jobs are held on connections that only consume, which the
    // alarm spares. Their observations were held back while publishing was blocked, so the proof is
    // after it: each one's run from before the alarm goes on (its count never restarted) past the
    // clearing, and no other run began.
    for (const id of kept) {
      await waitFor(`${id}'s run to go on past the alarm`, () =>
        world.watch.runsOf(id).some((run) => run.start < alarmAt && run.end > clearedAt),
      );
      assert.deepEqual(
        world.watch.runsOf(id).filter((run) => run.start >= alarmAt),
        [],
        `${id} started again during or after the alarm`,
      );
    }
    for (const service of [a, b]) {
      assert.equal((await world.service(service.id)).status, 'Alive');
      assert.ok(service.process.running);
    }
    await rm(healthFile, { force: true });
  });
});
