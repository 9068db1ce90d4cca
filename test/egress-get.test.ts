import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { EgressPolicy, EgressRefused, guardedGet, parseCidr, type Resolve } from '@vigil/egress';

// Every server here listens on loopback, and every request goes to loopback or is refused
// before it connects.

interface TestServer {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Host headers of the requests received. */
  hosts: string[];
}

const servers: Server[] = [];
after(() => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
});

async function serve(handler: RequestListener, host = '127.0.0.1', port = 0): Promise<TestServer> {
  const seen: TestServer = { port: 0, connections: 0, hosts: [] };
  const server = createServer((req, res) => {
    seen.hosts.push(req.headers.host ?? '');
    handler(req, res);
  });
  server.on('connection', () => seen.connections++);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  seen.port = (server.address() as AddressInfo).port;
  return seen;
}

const allowing = (...cidrs: string[]) => new EgressPolicy(cidrs.map(parseCidr));
const MAX = 256 * 1024;

describe('guarded GET: connects only where the egress policy allows', () => {
  it('refuses loopback without the allow-list, before connecting: a literal address and a name', async () => {
    const target = await serve((_req, res) => res.end('secret'));
    for (const host of ['127.0.0.1', 'localhost']) {
      await assert.rejects(
        guardedGet(`http://${host}:${target.port}/`, { policy: new EgressPolicy(), maxBytes: MAX }),
        (err: unknown) => {
          assert.ok(err instanceof EgressRefused, String(err));
          assert.match(err.message, /is in (127\.0\.0\.0\/8|::1\/128) \(loopback\).*HTTP_POLL_ALLOW_CIDRS/);
          if (host === 'localhost') assert.match(err.message, /localhost resolves to/);
          return true;
        },
      );
    }
    assert.equal(target.connections, 0);
  });

  it('fetches from loopback once 127.0.0.0/8 is allowed', async () => {
    const target = await serve((_req, res) => res.writeHead(201).end('hello'));
    const response = await guardedGet(`http://127.0.0.1:${target.port}/x`, {
      policy: allowing('127.0.0.0/8'),
      maxBytes: MAX,
    });
    assert.deepEqual(
      [response.status, response.body.toString(), response.bytes, response.truncated, response.address],
      [201, 'hello', 5, false, '127.0.0.1'],
    );
    assert.equal(response.sha256, createHash('sha256').update('hello').digest('hex'));
  });

  it('judges every redirect target before connecting to it', async () => {
    const v6 = await serve((_req, res) => res.end('inner'), '::1');
    const targets = [`http://[::1]:${v6.port}/`, 'http://169.254.169.254/latest/meta-data'];
    const redirector = await serve((req, res) => {
      const index = Number(req.url?.slice(1));
      res.writeHead(302, { location: targets[index] }).end();
    });
    for (const [index, refused] of [
      [0, '::1/128'],
      [1, '169.254.0.0/16'],
    ] as const) {
      await assert.rejects(
        guardedGet(`http://127.0.0.1:${redirector.port}/${index}`, { policy: allowing('127.0.0.0/8'), maxBytes: MAX }),
        (err: unknown) => err instanceof EgressRefused && err.refusal.range === refused,
      );
    }
    assert.equal(v6.connections, 0);
    // Allowed, the same redirect is followed.
    const followed = await guardedGet(`http://127.0.0.1:${redirector.port}/0`, {
      policy: allowing('127.0.0.0/8', '::1/128'),
      maxBytes: MAX,
    });
    assert.deepEqual([followed.body.toString(), followed.url, followed.address], ['inner', targets[0], '::1']);
  });

  it('gives up after 5 redirects', async () => {
    const loop = await serve((_req, res) => res.writeHead(307, { location: '/again' }).end());
    await assert.rejects(
      guardedGet(`http://127.0.0.1:${loop.port}/`, { policy: allowing('127.0.0.0/8'), maxBytes: MAX }),
      /more than 5 redirects/,
    );
    assert.equal(loop.hosts.length, 6);
  });

  it('stops reading an endless body at the cap and closes the connection', async () => {
    const chunk = Buffer.alloc(16 * 1024, 'a');
    let written = 0;
    let closed!: () => void;
    const socketClosed = new Promise<void>((resolve) => (closed = resolve));
    const endless = await serve((req, res) => {
      req.socket.on('close', closed);
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const response = await guardedGet(`http://127.0.0.1:${endless.port}/`, {
      policy: allowing('127.0.0.0/8'),
      maxBytes: MAX,
      keepBytes: 64 * 1024,
    });
    await socketClosed;
    assert.deepEqual([response.truncated, response.bytes, response.body.length], [true, MAX, 64 * 1024]);
    assert.equal(response.sha256, createHash('sha256').update(Buffer.alloc(MAX, 'a')).digest('hex'));
    // The server stopped at what the socket buffers hold, not at the memory of this process.
    assert.ok(written < 64 * 1024 * 1024, `written ${written} bytes`);
  });

  it('honours its abort signal', async () => {
    const silent = await serve(() => undefined);
    await assert.rejects(
      guardedGet(`http://127.0.0.1:${silent.port}/`, {
        policy: allowing('127.0.0.0/8'),
        maxBytes: MAX,
        signal: AbortSignal.timeout(200),
      }),
      (err: unknown) => !(err instanceof EgressRefused) && (err as Error).name === 'TimeoutError',
    );
  });

  it('connects to the address resolved first, once, whatever the name resolves to later', async () => {
    const first = await serve((_req, res) => res.end('first'), '127.0.0.2');
    const later = await serve((_req, res) => res.end('later'), '127.0.0.1', first.port);
    const answers = [['127.0.0.2', '127.0.0.1'], ['127.0.0.1']];
    let lookups = 0;
    const resolve: Resolve = () =>
      Promise.resolve((answers[lookups++] ?? ['127.0.0.1']).map((address) => ({ address })));
    const response = await guardedGet(`http://pinned.test:${first.port}/`, {
      policy: allowing('127.0.0.0/8'),
      maxBytes: MAX,
      resolve,
    });
    assert.deepEqual([response.body.toString(), response.address, lookups], ['first', '127.0.0.2', 1]);
    assert.deepEqual(first.hosts, [`pinned.test:${first.port}`]);
    assert.equal(later.connections, 0);
  });

  it('refuses a name that resolves to any refused address, even beside allowed ones', async () => {
    const target = await serve((_req, res) => res.end('x'));
    const resolve: Resolve = () => Promise.resolve([{ address: '127.0.0.1' }, { address: '10.0.0.1' }]);
    await assert.rejects(
      guardedGet(`http://mixed.test:${target.port}/`, { policy: allowing('127.0.0.0/8'), maxBytes: MAX, resolve }),
      (err: unknown) =>
        err instanceof EgressRefused &&
        /mixed\.test resolves to 10\.0\.0\.1; 10\.0\.0\.1 is in 10\.0\.0\.0\/8/.test(err.message),
    );
    assert.equal(target.connections, 0);
  });
});
