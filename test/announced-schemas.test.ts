import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { staged, waitFor, World, type ServiceHandle } from '@vigil/testkit';

/** Nested `depth` objects deep. */
function nested(depth: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < depth; i++) schema = { type: 'object', properties: { inner: schema } };
  return schema;
}

const HOSTILE = {
  'remote-ref': { type: 'object', properties: { url: { $ref: 'http://127.0.0.1:9/schema.json' } } },
  deep: nested(200),
  huge: { type: 'object', description: 'x'.repeat(200_000) },
  lookahead: { type: 'object', properties: { s: { type: 'string', pattern: '^(?=a)a+$' } } },
};

describe('manager: params schemas announced by services are bounded', () => {
  let world: World;
  let service: ServiceHandle;
  const hostileId = randomUUID();

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('schemas-1');
  });
  after(() => world.close());

  it('a birth with hostile schemas: one log line per refused kind, creates answer 422, the rest keeps working', async () => {
    const born = {
      ...staged.born(hostileId, 'hostile'),
      pools: ['hostile'],
      kinds: [
        ...Object.entries(HOSTILE).map(([name, paramsSchema]) => ({ name, paramsSchema })),
        // RE2 matches this in linear time: a create with a long near-match answers at once.
        { name: 'redos', paramsSchema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } } },
      ],
    };
    await world.publishRaw(world.names.stateQueue, JSON.stringify(born));
    const refusals = () => world.manager!.logged('is refused');
    await waitFor('the manager to log the refusals', () => refusals().length === Object.keys(HOSTILE).length, {
      timeoutMs: 20_000,
    });
    const byKind = new Map(refusals().map((line) => [line.kind, line]));
    for (const kind of Object.keys(HOSTILE)) {
      assert.equal(byKind.get(kind)?.serviceId, hostileId, `${kind} refused, naming its service`);
    }
    assert.match(String(byKind.get('remote-ref')?.why), /points outside the schema/);
    assert.match(String(byKind.get('deep')?.why), /nests deeper than 32/);
    assert.match(String(byKind.get('huge')?.why), /larger than 65536 bytes/);
    assert.match(String(byKind.get('lookahead')?.why), /not supported/);

    for (const [kind, why] of [
      ['remote-ref', /points outside the schema/],
      ['huge', /larger than/],
    ] as const) {
      const answer = await world.api<{ type: string; detail: string }>('POST', '/observers', {
        name: `${kind}-1`,
        kind,
        pool: 'hostile',
        params: {},
      });
      assert.equal(answer.status, 422);
      assert.equal(answer.body.type, 'urn:vigil:problem:schema-refused');
      assert.match(answer.body.detail, why);
      assert.match(answer.body.detail, new RegExp(hostileId));
    }

    const started = Date.now();
    const redos = await world.api<{ type: string }>('POST', '/observers', {
      name: 'redos-1',
      kind: 'redos',
      pool: 'hostile',
      params: { s: `${'a'.repeat(10_000)}!` },
    });
    assert.equal(redos.status, 422);
    assert.equal(redos.body.type, 'urn:vigil:problem:invalid-params');
    assert.ok(Date.now() - started < 2_000, `answered in ${Date.now() - started} ms`);

    // Born again (a reconnect): nothing new to say.
    await world.publishRaw(world.names.stateQueue, JSON.stringify({ ...born, at: new Date().toISOString() }));
    await world.publishRaw(world.names.stateQueue, JSON.stringify(staged.heartbeat(hostileId, 'hostile', [])));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(refusals().length, Object.keys(HOSTILE).length);

    assert.equal(world.manager!.running, true);
    const id = await world.createTicker('after-hostile');
    await world.waitForStatus(id, 'Processing', service.id);
  });
});
