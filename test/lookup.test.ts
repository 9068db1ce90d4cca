/**
 * Looking things up: observers and services by name or by the start of a name, and the kinds the
 * live services host, with their params schemas.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { World, type ServiceHandle } from '@vigil/testkit';

describe('lookup', { timeout: 120_000 }, () => {
  let world: World;
  let service: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('lookup-a');
    for (const name of ['btc-usd', 'btc-eur', 'eth_usd', 'ethxusd']) await world.createTicker(name);
  });
  after(() => world.close());

  async function names(query: string): Promise<string[]> {
    const response = await world.api<{ items: { name: string }[] }>('GET', `/observers?${query}`);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body.items.map((o) => o.name).sort();
  }

  it('finds observers by exact name and by prefix, taking _ and % literally', async () => {
    assert.deepEqual(await names('name=btc-usd'), ['btc-usd']);
    assert.deepEqual(await names('name=btc-*'), ['btc-eur', 'btc-usd']);
    assert.deepEqual(await names('name=eth_*'), ['eth_usd']);
    assert.deepEqual(await names('name=btc-*&kind=ticker&limit=1').then((n) => n.length), 1);
    assert.deepEqual(await names('name=nothing*'), []);
  });

  it('refuses a name filter that is no name', async () => {
    for (const bad of ['a%25', '*', 'a*b', '-a']) {
      const response = await world.api<{ errors: { path: string }[] }>('GET', `/observers?name=${bad}`);
      assert.equal(response.status, 400, bad);
      assert.equal(response.body.errors[0]?.path, 'query.name');
    }
  });

  it('finds services by name and prefix', async () => {
    const exact = await world.api<{ items: { id: string }[] }>('GET', '/services?name=lookup-a');
    assert.deepEqual(
      exact.body.items.map((s) => s.id),
      [service.id],
    );
    const prefix = await world.api<{ items: { id: string }[] }>('GET', '/services?name=lookup-*');
    assert.equal(prefix.body.items.length, 1);
    const none = await world.api<{ items: unknown[] }>('GET', '/services?name=lookup');
    assert.equal(none.body.items.length, 0);
  });

  it('lists the kinds with their schemas, overlap, pools and services', async () => {
    const response = await world.api<{
      items: {
        name: string;
        paramsSchema: { properties?: Record<string, unknown> };
        overlap: string;
        pools: string[];
        services: { id: string; name: string }[];
      }[];
    }>('GET', '/kinds');
    assert.equal(response.status, 200);
    const ticker = response.body.items.find((k) => k.name === 'ticker');
    assert.ok(ticker, response.body.items.map((k) => k.name).join(', '));
    assert.ok(ticker.paramsSchema.properties?.intervalMs, JSON.stringify(ticker.paramsSchema));
    assert.equal(ticker.overlap, 'allowed');
    assert.deepEqual(ticker.pools, ['default']);
    assert.deepEqual(ticker.services, [{ id: service.id, name: 'lookup-a' }]);
    assert.equal(response.body.items.find((k) => k.name === 'exclusive-ticker')?.overlap, 'never');
    assert.equal((await world.apiAs(null, 'GET', '/kinds')).status, 401);
  });
});
