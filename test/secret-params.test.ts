import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect } from '@vigil/broker';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

const API_KEY = 'sk-live-7f3a9c1e5b';
const PASSWORD = 'hunter2-but-longer';
const digest = (text: string) => createHash('sha256').update(text).digest('hex');

interface Secretive {
  params: { label: string; auth: { apiKey: string }; accounts: { user: string; password: string }[] };
}

describe('secret params: shown as "***", run with their values, never logged', () => {
  let world: World;
  let service: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('secrets-1');
  });
  after(() => world.close());

  it('create, GET, list and DELETE answer "***"; the run gets the values; no log line holds them', async () => {
    const connection = await connect(world.amqpUrl);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, world.names.observationsExchange, 'secretive.#');
    type Seen = { data: { apiKey: string; passwords: string[] } };
    const seen: Seen[] = [];
    await channel.consume(queue, (msg) => msg && seen.push(JSON.parse(msg.content.toString()) as Seen), {
      noAck: true,
    });

    try {
      const params = {
        label: 'visible',
        auth: { apiKey: API_KEY },
        accounts: [{ user: 'ann', password: PASSWORD }],
      };
      const created = await world.api<Secretive & { id: string }>('POST', '/observers', {
        name: 'secretive-1',
        kind: 'secretive',
        params,
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const shown = {
        label: 'visible',
        auth: { apiKey: '***' },
        accounts: [{ user: 'ann', password: '***' }],
      };
      assert.deepEqual(created.body.params, shown);
      const id = created.body.id;

      await world.waitForStatus(id, 'Processing', service.id);
      const got = await world.api<Secretive>('GET', `/observers/${id}`);
      assert.deepEqual(got.body.params, shown);
      const listed = await world.api<{ items: (Secretive & { id: string })[] }>('GET', '/observers?kind=secretive');
      assert.deepEqual(listed.body.items.find((item) => item.id === id)?.params, shown);

      await waitFor('the secretive observer to publish', () => seen.length > 0);
      assert.deepEqual(seen[0]!.data, { apiKey: digest(API_KEY), passwords: [digest(PASSWORD)] });
      await waitFor('the secretive observer to log', () => service.process.logged('secretive: the key is').length > 0);
      const carelessLine = service.process.logged('secretive: the key is')[0]!;
      assert.equal(carelessLine.msg, 'secretive: the key is ***');
      assert.deepEqual(carelessLine.params, shown);

      const deleted = await world.api<Secretive>('DELETE', `/observers/${id}`);
      assert.equal(deleted.status, 202);
      assert.deepEqual(deleted.body.params, shown);
      await world.waitForStatus(id, 'Deleted');

      // Stored as given: the redaction is of what is shown, not of what is kept.
      const [row] = await world.sql<{ params: Secretive['params'] }>('SELECT params FROM observers WHERE id = $1', [
        id,
      ]);
      assert.equal(row!.params.auth.apiKey, API_KEY);

      for (const app of [world.manager!, service.process]) {
        const leaks = app.lines.filter((line) => line.includes(API_KEY) || line.includes(PASSWORD));
        assert.deepEqual(leaks, [], `${app.label} logged a secret`);
      }
    } finally {
      await connection.close();
    }
  });

  it('a secret that fails its schema is refused without its value in the answer', async () => {
    const tooShort = 'abc1234';
    const refused = await world.api<{ detail: string }>('POST', '/observers', {
      name: 'secretive-short',
      kind: 'secretive',
      params: { auth: { apiKey: tooShort } },
    });
    assert.equal(refused.status, 422);
    assert.match(refused.body.detail, /params\.auth\.apiKey/);
    assert.doesNotMatch(JSON.stringify(refused.body), new RegExp(tooShort));
  });
});
