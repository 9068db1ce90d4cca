import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createRunningTickers,
  waitUntilRunningOn,
  startPrivatePostgres,
  type PrivatePostgres,
  waitFor,
  World,
} from '@vigil/testkit';

describe('database lost', { timeout: 120_000 }, () => {
  let postgres: PrivatePostgres;
  let world: World;

  before(async () => {
    postgres = await startPrivatePostgres();
    world = await World.create({ postgresUrl: postgres.url });
    await world.startManager();
  });
  after(async () => {
    await world?.close();
    await postgres?.destroy();
  });

  it('observers keep running; the API answers 503; once the database is back the manager catches up', async () => {
    const a = await world.startService('db-a');
    const b = await world.startService('db-b');
    const { ids } = await createRunningTickers(world, 'db', 6);

    await postgres.kill();
    const refused = await world.api('POST', '/observers', {
      name: 'while-down',
      kind: 'ticker',
      params: { intervalMs: 100 },
    });
    assert.equal(refused.status, 503);
    assert.equal(refused.contentType, 'application/problem+json; charset=utf-8');
    const readiness = await fetch(world.apiUrl.replace(/\/api\/v1$/, '/readyz'));
    assert.equal(readiness.status, 503);

    // The fleet does not need the manager's database: a service dies, its observers move.
    await a.process.kill();
    await waitUntilRunningOn(world, ids, () => b.id);

    await postgres.start();
    for (const id of ids) await world.waitForStatus(id, 'Processing', b.id, 30_000);
    await waitFor('the dead service to be recorded', async () => (await world.service(a.id)).status === 'Dead');
    const created = await world.api('POST', '/observers', {
      name: 'after-db',
      kind: 'ticker',
      params: { intervalMs: 100 },
    });
    assert.equal(created.status, 201);
    assert.ok(world.manager?.running, 'the manager rode the outage out');
  });
});
