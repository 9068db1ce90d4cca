import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

const PROBLEM = 'application/problem+json; charset=utf-8';

describe('bad input', () => {
  let world: World;
  let service: ServiceHandle;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('bad-input-1');
  });
  after(() => world.close());

  async function post(body: unknown, contentType = 'application/json') {
    const response = await fetch(`${world.apiUrl}/observers`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: `Bearer ${world.adminToken}` },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      body: (await response.json()) as Record<string, unknown>,
    };
  }

  it('malformed or invalid bodies: 400 problem+json naming the field', async () => {
    const malformed = await post('{"name": ');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.contentType, PROBLEM);
    assert.match(String(malformed.body.detail), /not valid JSON/);

    const missing = await post({ kind: 'ticker', params: { intervalMs: 100 } });
    assert.equal(missing.status, 400);
    assert.deepEqual(
      (missing.body.errors as { path: string }[]).map((e) => e.path),
      ['body.name'],
    );

    for (const body of [
      { name: '', kind: 'ticker' },
      { name: 'has space', kind: 'ticker' },
      { name: 'x', kind: 'Ticker!' },
      { name: 'x', kind: 'ticker', params: [1, 2] },
      { name: 'x', kind: 'ticker', pool: 'No Such/Pool' },
      { name: 'x', kind: 'ticker', surprise: true },
      [1, 2, 3],
      'just a string',
      null,
    ]) {
      const response = await post(body);
      assert.equal(response.status, 400, `400 for ${JSON.stringify(body)}`);
      assert.equal(response.contentType, PROBLEM);
      assert.equal(response.body.status, 400);
      assert.equal(typeof response.body.type, 'string');
    }
  });

  it('a body that is not JSON: 415', async () => {
    const response = await post('name=x', 'application/x-www-form-urlencoded');
    assert.equal(response.status, 415);
    assert.equal(response.contentType, PROBLEM);
  });

  it('unknown kind or params failing the kind schema: 422', async () => {
    const unknown = await post({ name: 'unknown-kind', kind: 'no-such-kind' });
    assert.equal(unknown.status, 422);
    assert.match(String(unknown.body.detail), /no-such-kind/);

    const invalid = await post({ name: 'bad-params', kind: 'ticker', params: { intervalMs: 1 } });
    assert.equal(invalid.status, 422);
    assert.deepEqual(
      (invalid.body.errors as { path: string }[]).map((e) => e.path),
      ['params.intervalMs'],
    );

    const missing = await post({ name: 'missing-params', kind: 'ticker' });
    assert.equal(missing.status, 422);

    // Node's timers fire after 1 ms past 2^31 - 1 ms: such a ticker would tick a thousand times a second.
    const tooLong = await post({ name: 'too-long', kind: 'ticker', params: { intervalMs: 2 ** 31 } });
    assert.equal(tooLong.status, 422);
  });

  it('a name in use: 409; a pool no service serves: 503; nothing created by either', async () => {
    const id = await world.createTicker('taken');
    const taken = await post({ name: 'taken', kind: 'ticker', params: { intervalMs: 100 } });
    assert.equal(taken.status, 409);
    const unserved = await post({ name: 'nowhere', kind: 'ticker', params: { intervalMs: 100 }, pool: 'blue' });
    assert.equal(unserved.status, 503);
    assert.match(String(unserved.body.detail), /pool "blue"/);
    const list = await world.api<{ items: { name: string }[] }>('GET', '/observers');
    assert.deepEqual(
      list.body.items.map((o) => o.name),
      ['taken'],
    );
    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
  });

  it('the same name posted many times at once: one 201, the rest 409, one observer', async () => {
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => post({ name: 'raced', kind: 'ticker', params: { intervalMs: 100 } })),
    );
    assert.deepEqual(responses.map((r) => r.status).sort(), [201, ...Array<number>(19).fill(409)]);
    const list = await world.api<{ items: { id: string; name: string }[] }>('GET', '/observers?limit=100');
    const raced = list.body.items.filter((o) => o.name === 'raced');
    assert.equal(raced.length, 1);
    await world.api('DELETE', `/observers/${raced[0]!.id}`);
    await world.waitForStatus(raced[0]!.id, 'Deleted');
  });

  it('unknown ids and routes: 404; bad query strings: 400', async () => {
    for (const path of [
      `/observers/${randomUUID()}`,
      '/observers/not-a-uuid',
      `/services/${randomUUID()}`,
      '/nothing-here',
    ]) {
      const response = await world.api('GET', path);
      assert.equal(response.status, 404, path);
      assert.equal(response.contentType, PROBLEM);
    }
    assert.equal((await world.api('DELETE', `/observers/${randomUUID()}`)).status, 404);
    for (const query of ['status=Sleeping', 'limit=0', 'limit=abc', 'cursor=garbage', 'serviceId=123', 'color=red']) {
      const response = await world.api('GET', `/observers?${query}`);
      assert.equal(response.status, 400, query);
      assert.equal(response.contentType, PROBLEM);
    }
  });

  it('lists page with limit and cursor, and filter by status, kind, pool and service', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await world.createTicker(`page-${i}`, 1000));
    for (const id of ids) await world.waitForStatus(id, 'Processing');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await world.api(
        'GET',
        `/observers?status=Processing&kind=ticker&pool=default&serviceId=${service.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((o) => o.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen.sort(), [...ids].sort());
    const services = await world.api<{ items: { id: string; status: string; capacity: number; running: number }[] }>(
      'GET',
      '/services?status=Alive',
    );
    assert.deepEqual(
      services.body.items.map((s) => s.id),
      [service.id],
    );
    for (const id of ids) await world.api('DELETE', `/observers/${id}`);
    for (const id of ids) await world.waitForStatus(id, 'Deleted');
  });

  // Found by the fault suite's volume fuzzing (chaos/src/fuzz-rest.ts), each once a 500.
  it('query values Postgres refuses answer 400, not 500', async () => {
    const cursor = (createdAt: string) =>
      Buffer.from(JSON.stringify({ createdAt, id: randomUUID() })).toString('base64url');
    for (const path of [
      `/observers?cursor=${cursor('2026-13-01 00:00:00+00')}`,
      `/observers?cursor=${cursor('0000-01-01 00:00:00+00')}`,
      '/services?name=a%00b',
    ]) {
      const response = await world.api('GET', path);
      assert.equal(response.status, 400, path);
      assert.equal(response.contentType, PROBLEM);
    }
  });

  it('params the database cannot store answer 422 and do not refuse the creates batched with them', async () => {
    const ticker = (name: string, extra: string) =>
      `{"name": "${name}", "kind": "ticker", "params": {"intervalMs": 1000, ${extra}}}`;
    // The ticker's schema lets unknown params through; jsonb cannot hold any of these, and the
    // last one nests too deeply for JSON.stringify (so it is sent as text).
    const unstorable = [
      ticker('unstorable-nul', '"note": "a\\u0000b"'),
      ticker('unstorable-surrogate', '"note": "\\ud800"'),
      ticker('unstorable-deep', `"deep": ${'['.repeat(20_000)}1${']'.repeat(20_000)}`),
    ];
    const responses = await Promise.all([
      ...unstorable.map((body) => post(body)),
      ...Array.from({ length: 10 }, (_, i) =>
        post({ name: `beside-${i}`, kind: 'ticker', params: { intervalMs: 1000 } }),
      ),
    ]);
    assert.deepEqual(
      responses.map((r) => r.status),
      [422, 422, 422, ...Array<number>(10).fill(201)],
    );
    for (const response of responses.slice(0, 3)) assert.equal(response.contentType, PROBLEM);
    const list = await world.api<{ items: { id: string; name: string }[] }>('GET', '/observers?limit=100');
    const beside = list.body.items.filter((o) => o.name.startsWith('beside-'));
    assert.equal(beside.length, 10);
    assert.equal(list.body.items.filter((o) => o.name.startsWith('unstorable-')).length, 0);
    for (const { id } of beside) await world.api('DELETE', `/observers/${id}`);
    for (const { id } of beside) await world.waitForStatus(id, 'Deleted');
  });

  it('serves health, readiness, metrics and its OpenAPI document', async () => {
    const root = world.apiUrl.replace(/\/api\/v1$/, '');
    assert.equal((await fetch(`${root}/healthz`)).status, 200);
    const ready = (await (await fetch(`${root}/readyz`)).json()) as { status: string; role: string; managerId: string };
    assert.equal(ready.status, 'ready');
    assert.equal(ready.role, 'active', 'a lone manager is the active one');
    assert.match(ready.managerId, /\/\d+\//);
    const metrics = await (
      await fetch(`${root}/metrics`, { headers: { authorization: `Bearer ${world.adminToken}` } })
    ).text();
    assert.match(metrics, /vigil_state_events_total\{type="service.born"\} \d+/);
    const openapi = (await world.api<{ openapi: string; paths: Record<string, unknown> }>('GET', '/openapi.json')).body;
    assert.equal(openapi.openapi, '3.1.0');
    assert.ok(openapi.paths['/observers/{id}']);
  });

  it('garbage on the state queue is dead-lettered; the manager keeps applying events', async () => {
    const before = (await world.queueCounts(world.names.deadLetterQueue)).messageCount;
    const garbage = [
      'not json',
      '{"type":"service.born"}',
      JSON.stringify({ type: 'observer.started', serviceId: 'x' }),
      '[]',
      '"str"',
    ];
    for (const body of garbage) await world.publishRaw(world.names.stateQueue, body);
    await waitFor(
      'the garbage to be dead-lettered',
      async () => (await world.queueCounts(world.names.deadLetterQueue)).messageCount === before + garbage.length,
    );
    assert.equal(world.manager?.logged('invalid state message').length, garbage.length);
    const id = await world.createTicker('after-state-garbage');
    await world.waitForStatus(id, 'Processing', service.id);
    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
  });

  it('a valid state event the database cannot apply is dead-lettered after a few tries, not retried forever', async () => {
    const before = (await world.queueCounts(world.names.deadLetterQueue)).messageCount;
    const now = new Date().toISOString();
    // Valid by the contract, but Postgres has no year 0: the insert fails every time.
    const poison = {
      type: 'service.born',
      serviceId: randomUUID(),
      at: now,
      name: 'poison',
      capacity: 1,
      pools: ['default'],
      kinds: [],
      version: '0',
      host: 'h',
      pid: 1,
      startedAt: '0000-01-01T00:00:00Z',
      heartbeatIntervalMs: 1000,
      running: [],
    };
    await world.publishRaw(world.names.stateQueue, JSON.stringify(poison));
    await waitFor(
      'the poison event to be dead-lettered',
      async () => (await world.queueCounts(world.names.deadLetterQueue)).messageCount === before + 1,
      { timeoutMs: 30_000 },
    );
    assert.equal(world.manager?.logged('keeps failing to apply').length, 1);
    const id = await world.createTicker('after-poison');
    await world.waitForStatus(id, 'Processing', service.id);
    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
  });

  it('garbage on the jobs queue and the control exchange: dead-lettered or dropped with a log; the service lives on', async () => {
    const before = (await world.queueCounts(world.names.deadLetterQueue)).messageCount;
    const garbage = [
      '\u0000\u0001binary',
      '{"observerId":"nope"}',
      JSON.stringify({ observerId: randomUUID(), name: 'x', kind: 'ticker', pool: 'default' }),
    ];
    for (const body of garbage) await world.publishRaw(world.names.jobsQueue('default'), body);
    await waitFor(
      'the bad jobs to be dead-lettered',
      async () => (await world.queueCounts(world.names.deadLetterQueue)).messageCount === before + garbage.length,
    );

    const { connect } = await import('@vigil/broker');
    const connection = await connect(world.amqpUrl);
    const channel = await connection.createConfirmChannel();
    channel.publish(world.names.controlExchange, '', Buffer.from('{"type":"observer.cancel","observerId":42}'));
    channel.publish(world.names.controlExchange, '', Buffer.from('%%%'));
    await channel.waitForConfirms();
    await connection.close();
    await waitFor(
      'the service to log the bad control messages',
      () => service.process.logged('invalid control message').length === 2,
    );

    assert.ok(service.process.running);
    const id = await world.createTicker('after-job-garbage');
    await world.waitForStatus(id, 'Processing', service.id);
    await world.api('DELETE', `/observers/${id}`);
    await world.waitForStatus(id, 'Deleted');
  });
});
