import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { bearer, httpRequest, waitFor, World } from '@vigil/testkit';

const PROBLEM = 'application/problem+json; charset=utf-8';
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

/** Every route but the two health probes, each with what it needs to be answered. */
const ROUTES: { method: string; path: string; body?: unknown; role: 'read' | 'write' | 'admin' }[] = [
  { method: 'GET', path: '/metrics', role: 'read' },
  { method: 'GET', path: '/api/v1/openapi.json', role: 'read' },
  { method: 'GET', path: '/api/v1/observers', role: 'read' },
  { method: 'GET', path: '/api/v1/observers/counts', role: 'read' },
  { method: 'GET', path: `/api/v1/observers/${UNKNOWN_ID}`, role: 'read' },
  { method: 'GET', path: '/api/v1/services', role: 'read' },
  { method: 'GET', path: `/api/v1/services/${UNKNOWN_ID}`, role: 'read' },
  { method: 'POST', path: '/api/v1/observers', body: { name: 'auth-x', kind: 'ticker' }, role: 'write' },
  { method: 'DELETE', path: `/api/v1/observers/${UNKNOWN_ID}`, role: 'write' },
  { method: 'POST', path: `/api/v1/observers/${UNKNOWN_ID}/pause`, role: 'write' },
  { method: 'POST', path: `/api/v1/observers/${UNKNOWN_ID}/resume`, role: 'write' },
  { method: 'POST', path: `/api/v1/observers/${UNKNOWN_ID}/restart`, role: 'write' },
  { method: 'PATCH', path: `/api/v1/observers/${UNKNOWN_ID}`, body: { params: {} }, role: 'write' },
  { method: 'GET', path: '/api/v1/kinds', role: 'read' },
  { method: 'POST', path: `/api/v1/services/${UNKNOWN_ID}/drain`, role: 'admin' },
  { method: 'POST', path: `/api/v1/services/${UNKNOWN_ID}/undrain`, role: 'admin' },
  { method: 'GET', path: '/api/v1/tokens', role: 'admin' },
  { method: 'POST', path: '/api/v1/tokens', body: { name: 'x', role: 'read' }, role: 'admin' },
  { method: 'DELETE', path: `/api/v1/tokens/${UNKNOWN_ID}`, role: 'admin' },
  { method: 'GET', path: '/api/v1/no-such-route', role: 'read' },
];

describe('authentication', () => {
  let world: World;
  let root: string;
  const tokens: Record<string, { id: string; token: string }> = {};

  before(async () => {
    world = await World.create();
    await world.startManager();
    await world.startService('auth-1');
    root = world.apiUrl.replace(/\/api\/v1$/, '');
    for (const role of ['read', 'write', 'admin']) {
      const created = await world.api<{ id: string; token: string }>('POST', '/tokens', { name: `${role}-bot`, role });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      tokens[role] = created.body;
    }
  });
  after(() => world.close());

  it('every route answers 401 problem+json without a token, or with a bad one; the health probes stay open', async () => {
    const headers: Record<string, string>[] = [
      {},
      bearer('not-a-token-at-all-but-long-enough-0000'),
      { authorization: `Basic ${Buffer.from('vigil:vigil').toString('base64')}` },
      { authorization: `Bearer ${world.adminToken} extra` },
      { authorization: 'Bearer' },
    ];
    for (const route of ROUTES) {
      for (const header of headers) {
        const answer = await httpRequest(route.method, `${root}${route.path}`, route.body, header);
        const what = `${route.method} ${route.path} with ${JSON.stringify(header)}`;
        assert.equal(answer.status, 401, what);
        assert.equal(answer.headers['content-type'], PROBLEM, what);
        assert.match(String(answer.headers['www-authenticate']), /^Bearer realm="vigil"/, what);
        assert.equal((JSON.parse(answer.text) as { type: string }).type, 'urn:vigil:problem:unauthorized', what);
      }
    }
    assert.equal((await httpRequest('GET', `${root}/healthz`)).status, 200);
    assert.equal((await httpRequest('GET', `${root}/readyz`)).status, 200);
  });

  it('each role may do what it should and gets 403 for the rest', async () => {
    for (const role of ['read', 'write', 'admin'] as const) {
      for (const route of ROUTES) {
        const answer = await httpRequest(route.method, `${root}${route.path}`, route.body, bearer(tokens[role]!.token));
        const allowed = ['read', 'write', 'admin'].indexOf(role) >= ['read', 'write', 'admin'].indexOf(route.role);
        const what = `${role} token: ${route.method} ${route.path} answered ${answer.status} ${answer.text.slice(0, 200)}`;
        if (allowed) {
          assert.notEqual(answer.status, 401, what);
          assert.notEqual(answer.status, 403, what);
        } else {
          assert.equal(answer.status, 403, what);
          assert.match(
            (JSON.parse(answer.text) as { detail: string }).detail,
            new RegExp(`role "${route.role}"`),
            what,
          );
        }
      }
    }
    // Cleanup: the write and admin tokens created an observer each.
    const list = await world.api<{ items: { id: string }[] }>('GET', '/observers');
    for (const { id } of list.body.items) await world.api('DELETE', `/observers/${id}`);
  });

  it('tokens: shown once, kept hashed, listed without their text, dead at once when revoked', async () => {
    const created = await world.api<{ id: string; token: string; hint: string; role: string }>('POST', '/tokens', {
      name: 'ci',
      role: 'write',
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.location, `/api/v1/tokens/${created.body.id}`);
    const { id, token } = created.body;
    assert.match(token, /^vgl_[A-Za-z0-9_-]{43}$/);
    assert.ok(token.startsWith(created.body.hint.replace('…', '')), 'the hint is the token’s start');

    const stored = await world.sql<{ token_sha256: Buffer; text: string }>(
      'SELECT token_sha256, row_to_json(api_tokens)::text AS text FROM api_tokens WHERE id = $1',
      [id],
    );
    assert.deepEqual(stored[0]!.token_sha256, createHash('sha256').update(token).digest());
    assert.ok(!stored[0]!.text.includes(token.slice(4)), 'the row does not hold the token');

    const list = await world.api<{ items: Record<string, unknown>[] }>('GET', '/tokens');
    const listed = list.body.items.find((item) => item.id === id);
    assert.deepEqual(Object.keys(listed ?? {}).sort(), ['createdAt', 'hint', 'id', 'name', 'revokedAt', 'role']);
    assert.ok(!JSON.stringify(list.body).includes(token), 'no list shows a token');

    assert.equal((await world.apiAs(token, 'GET', '/observers')).status, 200);
    const revoked = await world.api<{ revokedAt: string | null }>('DELETE', `/tokens/${id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt);
    const after = await world.apiAs<{ detail: string }>(token, 'GET', '/observers');
    assert.equal(after.status, 401);
    assert.match(after.body.detail, /unknown or revoked/);
    assert.equal((await world.api('DELETE', `/tokens/${UNKNOWN_ID}`)).status, 404);

    const bad = await world.api<{ errors: { path: string }[] }>('POST', '/tokens', { name: 'x', role: 'root' });
    assert.equal(bad.status, 400);
    assert.deepEqual(
      bad.body.errors.map((e) => e.path),
      ['body.role'],
    );
  });

  it('VIGIL_AUTH=off lets requests in without a token, and says so at start', async () => {
    const open = await World.create();
    try {
      const manager = await open.startManager({ VIGIL_AUTH: 'off' });
      assert.equal(manager.logged('VIGIL_AUTH=off').length, 1);
      assert.equal((await open.apiAs(null, 'GET', '/observers')).status, 200);
      assert.equal((await open.apiAs(null, 'GET', '/tokens')).status, 200);
    } finally {
      await open.close();
    }
  });
});

describe('limits', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager({
      MAX_OBSERVERS: '3',
      MAX_OBSERVERS_PER_POOL: '2',
      WRITE_RATE_LIMIT_PER_MINUTE: '12',
      LIST_MAX_BYTES: '4096',
    });
    await world.startService('limits-1', { POOLS: 'default,blue' });
  });
  after(() => world.close());

  const create = (name: string, pool = 'default', params: Record<string, unknown> = { intervalMs: 1_000 }) =>
    world.api<{ id: string; type: string; detail: string }>('POST', '/observers', {
      name,
      kind: 'ticker',
      pool,
      params,
    });

  it('the observer quota, per pool and in all, answers 422 quota-exceeded; a deletion frees a place', async () => {
    assert.equal((await create('quota-1')).status, 201);
    const second = await create('quota-2');
    assert.equal(second.status, 201);
    const third = await create('quota-3');
    assert.equal(third.status, 422);
    assert.equal(third.body.type, 'urn:vigil:problem:quota-exceeded');
    assert.match(third.body.detail, /MAX_OBSERVERS_PER_POOL 2/);
    assert.equal((await create('quota-blue-1', 'blue')).status, 201);
    assert.equal((await create('quota-blue-2', 'blue')).status, 422, 'three in all');

    await world.api('DELETE', `/observers/${second.body.id}`);
    await world.waitForStatus(second.body.id, 'Deleted');
    assert.equal((await create('quota-3')).status, 201);
  });

  it('writes are rate limited per token: 429 with RateLimit headers; another token still writes', async () => {
    // The quota test made 7 writes with the admin token; 12 a minute are allowed.
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await world.api('DELETE', `/observers/${UNKNOWN_ID}`));
    assert.deepEqual(
      answers.map((a) => a.status),
      [404, 404, 404, 404, 404, 429],
    );
    const limited = answers.at(-1)!;
    assert.equal(limited.contentType, PROBLEM);
    assert.equal((limited.body as { type: string }).type, 'urn:vigil:problem:rate-limited');
    assert.match(String(limited.headers.ratelimit), /remaining=0/);
    assert.equal((await world.api('GET', '/observers')).status, 200, 'reads are not limited');

    const other = await world.api<{ token: string }>('POST', '/tokens', { name: 'other', role: 'write' });
    assert.equal((await world.apiAs(other.body.token, 'DELETE', `/observers/${UNKNOWN_ID}`)).status, 404);
  });

  it('a list page stops before LIST_MAX_BYTES, and its cursor reaches every observer', async () => {
    const big = await World.create();
    try {
      await big.startManager({ LIST_MAX_BYTES: '4096' });
      await big.startService('limits-big');
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const answer = await big.api<{ id: string }>('POST', '/observers', {
          name: `big-${i}`,
          kind: 'ticker',
          params: { intervalMs: 1_000, note: 'x'.repeat(1_500) },
        });
        assert.equal(answer.status, 201);
        ids.add(answer.body.id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: { status: number; text: string } = await httpRequest(
          'GET',
          `${big.apiUrl}/observers?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
          undefined,
          bearer(big.adminToken),
        );
        assert.equal(page.status, 200);
        const body = JSON.parse(page.text) as { items: { id: string }[]; nextCursor: string | null };
        assert.ok(Buffer.byteLength(page.text) < 4096 + 512, `a page of ${Buffer.byteLength(page.text)} bytes`);
        seen.push(...body.items.map((item) => item.id));
        cursor = body.nextCursor;
        pages++;
      } while (cursor);
      assert.ok(pages >= 3, `${pages} pages`);
      assert.deepEqual(new Set(seen), ids);
      assert.equal(seen.length, ids.size);
    } finally {
      await big.close();
    }
  });
});

describe('error answers', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
  });
  after(() => world.close());

  it('carry an id to look up in the log, never the database’s own text', async () => {
    // Well-formed but impossible: Postgres refuses the date when the list query runs.
    const cursor = Buffer.from(JSON.stringify({ createdAt: '2026-13-45 00:00:00+00', id: UNKNOWN_ID })).toString(
      'base64url',
    );
    const answer = await world.api<{ detail: string; errorId: string }>('GET', `/observers?cursor=${cursor}`);
    assert.equal(answer.status, 400);
    assert.match(answer.body.detail, /cannot be used/);
    assert.doesNotMatch(answer.body.detail, /out of range|date\/time/);
    // The answer can come before the manager's stdout reaches this process.
    const logged = await waitFor('the error in the log', () => {
      const lines = world.manager!.lines.filter((line) => line.includes(answer.body.errorId));
      return lines.length > 0 && lines;
    });
    assert.equal(logged.length, 1);
    assert.match(logged[0]!, /out of range/);
  });
});
