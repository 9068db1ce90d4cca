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

  it('stopped under a burst of creates: each answers within 5 s, and a refused one leaves nothing behind', async (t) => {
    await world.startService('db-burst', { CAPACITY: '500' });
    const burst = Array.from({ length: 400 }, (_, i) => `burst-${i}`);
    const answers = burst.map(async (name) => {
      const started = Date.now();
      const response = await world.api('POST', '/observers', { name, kind: 'ticker', params: { intervalMs: 1_000 } });
      return { name, status: response.status, id: response.body.id as string | undefined, ms: Date.now() - started };
    });
    // Stopped with the burst under way: some creates are done, some in flight, some not begun.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await postgres.stop();
    const results = await Promise.all(answers);
    const slowest = Math.max(...results.map((r) => r.ms));
    const refused = results.filter((r) => r.status === 503);
    const created = results.filter((r) => r.status === 201);
    t.diagnostic(`${created.length} created, ${refused.length} refused (503); slowest answer ${slowest} ms`);
    assert.equal(created.length + refused.length, burst.length, 'each got 201 or 503');
    assert.ok(refused.length > 0, 'the outage refused some');
    assert.ok(slowest <= 5_000, `every answer within 5 s (slowest ${slowest} ms)`);

    await postgres.start();
    for (const { id } of created) await world.waitForStatus(id!, 'Processing', undefined, 30_000);
    const names = new Set(
      (await world.sql<{ name: string }>(`SELECT name FROM observers WHERE name LIKE 'burst-%'`)).map((r) => r.name),
    );
    for (const { name } of refused) assert.ok(!names.has(name), `${name} was refused yet exists`);
    assert.equal(names.size, created.length);
  });
});
