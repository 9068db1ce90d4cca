/**
 * Nothing in the manager grows with history: timeline rows and service events past the
 * retention period are deleted, and so are observers deleted and services dead before it, while
 * everything newer stays.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, World } from '@vigil/testkit';

describe('retention', { timeout: 120_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager({ RETENTION_MS: String(3_600_000), PRUNE_INTERVAL_MS: '200' });
  });
  after(() => world.close());

  const count = async (statement: string, params: unknown[] = []) =>
    Number((await world.sql<{ n: string }>(statement, params))[0]!.n);

  it('prunes what is older than RETENTION_MS and keeps the rest', async () => {
    const old = await world.startService('retention-old');
    const live = await world.startService('retention-live');
    const kept = await world.createTicker('kept');
    const gone = await world.createTicker('gone');
    for (const id of [kept, gone]) await world.waitForStatus(id, 'Processing');
    await world.api('DELETE', `/observers/${gone}`);
    await world.waitForStatus(gone, 'Deleted');
    await old.process.kill();
    await waitFor('the old service dead', async () => (await world.service(old.id)).status === 'Dead');

    // Two hours ago: past the retention of one hour.
    const past = `now() - interval '2 hours'`;
    await world.sql(`UPDATE observers SET updated_at = ${past} WHERE id = $1`, [gone]);
    await world.sql(`UPDATE services SET died_at = ${past} WHERE id = $1`, [old.id]);
    await world.sql(`UPDATE observer_events SET at = ${past} WHERE observer_id = $1 AND event = 'created'`, [kept]);
    const keptRows = await count(`SELECT count(*) AS n FROM observer_events WHERE observer_id = $1`, [kept]);

    await waitFor('the old history gone', async () => {
      const observers = await count(`SELECT count(*) AS n FROM observers WHERE id = $1`, [gone]);
      const services = await count(`SELECT count(*) AS n FROM services WHERE id = $1`, [old.id]);
      return observers === 0 && services === 0;
    });
    assert.equal(await count(`SELECT count(*) AS n FROM observer_events WHERE observer_id = $1`, [gone]), 0);
    assert.equal(await count(`SELECT count(*) AS n FROM service_events WHERE service_id = $1`, [old.id]), 0);
    // Only its old row went: later rows stay (and more may have come, as it moved off the dead service).
    assert.equal(
      await count(`SELECT count(*) AS n FROM observer_events WHERE observer_id = $1 AND event = 'created'`, [kept]),
      0,
    );
    assert.ok(
      (await count(`SELECT count(*) AS n FROM observer_events WHERE observer_id = $1`, [kept])) >= keptRows - 1,
    );
    // It may have run on the killed service: then it is Processing again once the other reports it.
    await world.waitForStatus(kept, 'Processing', live.id);
    assert.equal((await world.service(live.id)).status, 'Alive');
    assert.ok(world.manager!.logged('history pruned').length >= 1);
  });
});
