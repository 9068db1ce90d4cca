/**
 * Several managers: one is active (applies state, reconciles), the others serve the API and
 * stand by. Killed under load, the active one is replaced within 5 s, and creates keep working
 * through either.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor, waitUntilManagerAgrees, World, type AppProcess } from '@vigil/testkit';

interface Manager {
  process: AppProcess;
  apiUrl: string;
}

/** The testkit's MANAGER_LEASE_MS default; a standby takes over at most this plus one renewal after. */
const TAKEOVER_BOUND_MS = 5_000;

describe('two managers', { timeout: 180_000 }, () => {
  let world: World;
  const managers: Manager[] = [];

  before(async () => {
    world = await World.create();
    for (let i = 0; i < 2; i++) {
      const process = await world.startManager();
      managers.push({ process, apiUrl: world.apiUrl });
    }
  });
  after(() => Promise.allSettled([world.close(), ...managers.map((m) => m.process.kill())]));

  async function role(manager: Manager): Promise<string | undefined> {
    const response = await world.apiAt<{ role?: string }>(manager.apiUrl.replace(/\/api\/v1$/, ''), 'GET', '/readyz');
    return response.body.role;
  }

  async function create(manager: Manager, name: string): Promise<string> {
    const response = await world.apiAt(manager.apiUrl, 'POST', '/observers', {
      name,
      kind: 'ticker',
      params: { intervalMs: 100 },
    });
    assert.equal(response.status, 201, `create ${name} through ${manager.apiUrl}: ${JSON.stringify(response.body)}`);
    return String(response.body.id);
  }

  it('exactly one is active; the other stands by and serves the API', async () => {
    const roles = await waitFor('one active manager', async () => {
      const found = await Promise.all(managers.map(role));
      return found.filter((r) => r === 'active').length === 1 && found;
    });
    assert.deepEqual([...roles].sort(), ['active', 'standby']);
    await world.startService('takeover-a', { CAPACITY: '500' });
    await world.startService('takeover-b', { CAPACITY: '500' });
    for (const manager of managers) {
      const id = await create(manager, `through-${managers.indexOf(manager)}`);
      world.apiUrl = manager.apiUrl;
      await world.waitForStatus(id, 'Processing');
    }
  });

  it('the active one killed under load: the other applies state within 5 s, creates work through it', async (t) => {
    const roles = await Promise.all(managers.map(role));
    const active = managers[roles.indexOf('active')]!;
    const standby = managers[roles.indexOf('standby')]!;
    world.apiUrl = standby.apiUrl;

    // Load: creates through both managers, until the active one dies; then through the survivor.
    const created: string[] = [];
    let loading = true;
    let serial = 0;
    const load = (async () => {
      while (loading) {
        const target = active.process.running && serial % 2 === 0 ? active : standby;
        const name = `load-${serial++}`;
        const response = await world
          .apiAt(target.apiUrl, 'POST', '/observers', { name, kind: 'ticker', params: { intervalMs: 100 } })
          .catch(() => undefined);
        if (response?.status === 201) created.push(String(response.body.id));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await waitFor('some load', () => created.length >= 20);

    active.process.signal('SIGKILL');
    const killedAt = Date.now();
    await active.process.exited;
    await waitFor('the standby to become active', async () => (await role(standby)) === 'active', {
      intervalMs: 20,
    });
    const activeAfterMs = Date.now() - killedAt;
    const probe = await create(standby, 'after-takeover');
    await world.waitForStatus(probe, 'Processing', undefined, 10_000);
    const appliedAfterMs = Date.now() - killedAt;
    t.diagnostic(`standby active ${activeAfterMs} ms after the kill; its state applied ${appliedAfterMs} ms after`);
    assert.ok(appliedAfterMs <= TAKEOVER_BOUND_MS, `state applied ${appliedAfterMs} ms after the kill`);
    assert.ok(standby.process.logged('this manager is now the active one').length === 1);

    loading = false;
    await load;
    // Every observer created through either manager runs, once, where the survivor says.
    await waitUntilManagerAgrees(world, created);
  });

  it('the killed manager, back, stands by', async () => {
    const back = await world.startManager();
    managers.push({ process: back, apiUrl: world.apiUrl });
    await waitFor('it to stand by', () => back.logged('another manager is active; standing by').length > 0);
    assert.equal(await role(managers.at(-1)!), 'standby');
  });
});
