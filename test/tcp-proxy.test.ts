import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import { connect } from '@vigil/broker';
import { TcpProxy } from '../chaos/src/tcp-proxy';

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

interface Echo {
  server: net.Server;
  port: number;
  /** The echo server's side of every connection still open. */
  sockets: Set<net.Socket>;
}

async function startEcho(): Promise<Echo> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}

interface Client {
  socket: net.Socket;
  received(): Buffer;
  /** 'end', 'close' and 'error: …' in the order they happened. */
  events: string[];
}

async function dial(port: number): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  const events: string[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('end', () => events.push('end'));
  socket.on('close', () => events.push('close'));
  socket.on('error', (err) => events.push(`error: ${err.message}`));
  await once(socket, 'connect');
  return { socket, events, received: () => Buffer.concat(chunks) };
}

async function until(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`no ${what} within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Writes `payload` and waits for the same bytes to come back. */
async function roundTrip(client: Client, payload: Buffer): Promise<void> {
  const before = client.received().length;
  client.socket.write(payload);
  await until(() => client.received().length >= before + payload.length, `echo of ${payload.length} bytes`);
  assert.ok(client.received().subarray(before).equals(payload), 'the echo differs from what was sent');
}

/** A port nothing listens on (for a moment). */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('TcpProxy', () => {
  let echo: Echo;
  const proxies: TcpProxy[] = [];
  const clients: Client[] = [];

  async function proxyTo(port: number, listenPort?: number): Promise<TcpProxy> {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port }, { listenPort });
    proxies.push(proxy);
    return proxy;
  }

  async function client(port: number): Promise<Client> {
    const c = await dial(port);
    clients.push(c);
    return c;
  }

  before(async () => {
    echo = await startEcho();
  });

  // Each test starts with no connection left over from the one before.
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    await until(() => echo.sockets.size === 0, 'leftover connections closed');
  });

  after(async () => {
    for (const socket of echo.sockets) socket.destroy();
    await new Promise((resolve) => echo.server.close(resolve));
  });

  it('forwards both ways, a megabyte intact, on the port asked for', async () => {
    const listenPort = await freePort();
    const proxy = await proxyTo(echo.port, listenPort);
    assert.equal(proxy.port, listenPort);
    assert.equal(proxy.state, 'open');

    const c = await client(proxy.port);
    await roundTrip(c, Buffer.from('hello'));
    await roundTrip(c, randomBytes(1 << 20));
    assert.equal(proxy.connections, 1);
    assert.equal(echo.sockets.size, 1);

    c.socket.end();
    await until(() => proxy.connections === 0 && echo.sockets.size === 0, 'close on both sides');
  });

  it('cut() ends every connection on both sides; new connections still work', async () => {
    const proxy = await proxyTo(echo.port);
    const [a, b] = [await client(proxy.port), await client(proxy.port)];
    await roundTrip(a, Buffer.from('a'));
    await roundTrip(b, Buffer.from('b'));
    assert.equal(proxy.connections, 2);

    proxy.cut();
    await until(() => a.events.includes('close') && b.events.includes('close'), 'close seen by the clients');
    assert.deepEqual(a.events, ['end', 'close'], 'a clean end (FIN), not a reset');
    assert.deepEqual(b.events, ['end', 'close'], 'a clean end (FIN), not a reset');
    await until(() => echo.sockets.size === 0, 'close seen by the target');
    await until(() => proxy.connections === 0, 'the connections forgotten');
    assert.equal(proxy.state, 'open');

    const c = await client(proxy.port);
    await roundTrip(c, Buffer.from('after the cut'));
    assert.equal(proxy.connections, 1);
  });

  it('blackhole() carries nothing and closes nothing; heal() closes those and forwards again', async () => {
    const proxy = await proxyTo(echo.port);
    const a = await client(proxy.port);
    await roundTrip(a, Buffer.from('before'));
    await until(() => echo.sockets.size === 1, 'the connection at the target');
    const [targetSide] = [...echo.sockets];
    assert.ok(targetSide);
    const targetEvents: string[] = [];
    targetSide.on('end', () => targetEvents.push('end'));
    targetSide.on('close', () => targetEvents.push('close'));

    proxy.blackhole();
    assert.equal(proxy.state, 'blackholed');
    a.socket.write('lost on the way there');
    targetSide.write('lost on the way back');
    const b = await client(proxy.port); // accepted while black-holed: black-holed too
    b.socket.write('lost as well');
    await sleep(300);

    assert.equal(a.received().toString(), 'before', 'nothing more may arrive through a black hole');
    assert.equal(b.received().length, 0);
    assert.deepEqual(a.events, [], 'the client connection must stay open');
    assert.deepEqual(b.events, [], 'a connection made during the black hole must stay open');
    assert.deepEqual(targetEvents, [], 'the target connection must stay open');
    assert.equal(echo.sockets.size, 1, 'a connection made during the black hole must not reach the target');
    assert.equal(proxy.connections, 2);

    // Read and dropped, not left unread: the sender keeps writing as into a lossy network, without
    // TCP back-pressure (64 MB is more than the socket buffers of both sides can hold).
    const megabyte = randomBytes(1 << 20);
    for (let i = 0; i < 64; i++) a.socket.write(megabyte);
    await until(() => a.socket.writableLength === 0, '64 MB written into the black hole without back-pressure');
    assert.equal(a.received().toString(), 'before');
    assert.deepEqual(a.events, []);

    proxy.heal();
    assert.equal(proxy.state, 'open');
    await until(() => a.events.includes('close') && b.events.includes('close'), 'black-holed connections closed');
    await until(() => echo.sockets.size === 0, 'close seen by the target');
    await until(() => proxy.connections === 0, 'the connections forgotten');

    const c = await client(proxy.port);
    await roundTrip(c, Buffer.from('after healing'));
  });

  it('closes the client connection when the target refuses', async () => {
    const proxy = await proxyTo(await freePort());
    const c = await client(proxy.port);
    c.socket.write('anyone there?');
    await until(() => c.events.includes('close'), 'close of the client connection');
    assert.equal(c.received().length, 0);
    await until(() => proxy.connections === 0, 'the connection forgotten');
  });

  it('with several targets, new connections take turns and skip a target that refuses', async () => {
    const second = await startEcho();
    try {
      const refusing = await freePort();
      const proxy = await TcpProxy.start([
        { host: '127.0.0.1', port: echo.port },
        { host: '127.0.0.1', port: refusing },
        { host: '127.0.0.1', port: second.port },
      ]);
      proxies.push(proxy);
      // In turn: the first echo; the refusing target, so the second echo; the second echo.
      const expected = [
        [1, 0],
        [1, 1],
        [1, 2],
      ];
      for (const [i, [first, last]] of expected.entries()) {
        await roundTrip(await client(proxy.port), Buffer.from(`connection ${i}`));
        assert.deepEqual([echo.sockets.size, second.sockets.size], [first, last], `after connection ${i}`);
      }

      // A target that dies breaks its connections only; the next connection lands on a live one.
      for (const socket of second.sockets) socket.destroy();
      await until(() => clients.filter((c) => c.events.includes('close')).length === 2, 'two connections broken');
      await roundTrip(await client(proxy.port), Buffer.from('after'));
      assert.deepEqual([echo.sockets.size, second.sockets.size], [2, 0]);
    } finally {
      for (const c of clients.splice(0)) c.socket.destroy();
      await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
      await until(() => second.sockets.size === 0, 'leftover connections closed');
      await new Promise((resolve) => second.server.close(resolve));
    }
  });

  it('an AMQP connection through a black hole dies of its own heartbeat timeout', async () => {
    const broker = new URL(AMQP_URL);
    const proxy = await TcpProxy.start({ host: broker.hostname, port: Number(broker.port || 5672) });
    proxies.push(proxy);
    const url = new URL(AMQP_URL);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    url.searchParams.set('heartbeat', '1');

    const connection = await connect(url.toString());
    const events: string[] = [];
    const died = new Promise<void>((resolve) => {
      connection.on('error', (err: Error) => {
        events.push(`error: ${err.message}`);
        resolve();
      });
      connection.on('close', () => {
        events.push('close');
        resolve();
      });
    });
    const channel = await connection.createChannel();
    await channel.checkExchange('amq.direct'); // the link works through the proxy

    const blackholedAt = Date.now();
    proxy.blackhole();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 4000)));
    const outcome = await Promise.race([died.then(() => 'died' as const), timeout]);
    clearTimeout(timer);
    const elapsed = Date.now() - blackholedAt;

    assert.equal(outcome, 'died', 'the connection must notice the black hole within 4 s');
    assert.equal(events[0], 'error: Heartbeat timeout', `died of something else: ${events.join(', ')}`);
    // A closed socket would have shown as 'Unexpected close'; a heartbeat check needs 2 intervals.
    assert.ok(elapsed >= 1000, `died after ${elapsed} ms: sooner than a heartbeat check can tell`);
  });
});
