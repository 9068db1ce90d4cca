import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { World } from '@vigil/testkit';

// The apps run without HTTP_POLL_ALLOW_CIDRS: the egress policy's defaults. Nothing here reaches
// a non-loopback address: those are refused at create, before any service sees them.
describe('http-poll egress: refused targets', () => {
  let world: World;
  let server: Server;
  let connections = 0;

  before(async () => {
    server = createServer((_req, res) => res.end('internal'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    world = await World.create();
    await world.startManager();
    await world.startService('egress-1');
  });
  after(async () => {
    await world.close();
    server.close();
  });

  it('a URL naming a refused address answers 422 at params.url, and nothing is created', async () => {
    for (const [url, why] of [
      ['http://10.0.0.1/', /10\.0\.0\.1 is in 10\.0\.0\.0\/8 \(private\)/],
      [
        'http://169.254.169.254/latest/meta-data',
        /169\.254\.169\.254 is in 169\.254\.0\.0\/16 \(link-local, cloud metadata\)/,
      ],
      ['http://[::ffff:127.0.0.1]:8080/', /\(IPv4 127\.0\.0\.1\) is in 127\.0\.0\.0\/8 \(loopback\)/],
    ] as const) {
      const response = await world.api('POST', '/observers', { name: 'inside', kind: 'http-poll', params: { url } });
      assert.equal(response.status, 422, url);
      assert.equal(response.body.type, 'urn:vigil:problem:invalid-params');
      const errors = response.body.errors as { path: string; message: string }[];
      assert.deepEqual(
        errors.map((e) => e.path),
        ['params.url'],
      );
      assert.match(errors[0]!.message, why);
      assert.match(errors[0]!.message, /HTTP_POLL_ALLOW_CIDRS/);
    }
    const list = await world.api<{ items: unknown[] }>('GET', '/observers');
    assert.deepEqual(list.body.items, []);
  });

  it('polls no more often than once a second', async () => {
    const response = await world.api('POST', '/observers', {
      name: 'eager',
      kind: 'http-poll',
      params: { url: 'http://localhost:1/', intervalMs: 100 },
    });
    assert.equal(response.status, 422);
    assert.deepEqual(
      (response.body.errors as { path: string }[]).map((e) => e.path),
      ['params.intervalMs'],
    );
  });

  it('a name that resolves to a refused address fails the observer, without a connection', async () => {
    const url = `http://localhost:${(server.address() as AddressInfo).port}/`;
    const created = await world.api('POST', '/observers', { name: 'local', kind: 'http-poll', params: { url } });
    assert.equal(created.status, 201);
    const failed = await world.waitForStatus(String(created.body.id), 'Failed');
    assert.match(String(failed.lastError), /localhost resolves to .* \(loopback\).*HTTP_POLL_ALLOW_CIDRS/);
    assert.equal(connections, 0);
  });
});
