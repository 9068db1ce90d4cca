import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@vigil/broker';
import { waitFor, World, type ServiceHandle } from '@vigil/testkit';

interface Seen {
  serviceId: string;
  data: { status?: number; body?: string; seq?: number };
}

/** Collects the observations matching `bindingKey`, in arrival order. */
async function collect(world: World, bindingKey: string) {
  const connection = await connect(world.amqpUrl);
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, world.names.observationsExchange, bindingKey);
  const seen: Seen[] = [];
  await channel.consume(queue, (msg) => msg && seen.push(JSON.parse(msg.content.toString()) as Seen), { noAck: true });
  return { seen, close: () => connection.close() };
}

describe('built-in kinds and the service health file', () => {
  let world: World;
  let service: ServiceHandle;
  let server: Server;
  let body = 'first';
  let requests = 0;
  const healthFile = path.join(tmpdir(), `vigil-health-${process.pid}`);

  before(async () => {
    server = createServer((_req, res) => {
      requests++;
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // The endpoint is on loopback, which http-poll refuses unless allowed (see http-poll-egress.test.ts).
    world = await World.create({ env: { HTTP_POLL_ALLOW_CIDRS: '127.0.0.0/8,::1/128' } });
    await world.startManager();
    service = await world.startService('kinds-1', { HEALTH_FILE: healthFile });
  });
  after(async () => {
    await world.close();
    server.close();
  });

  it('http-poll publishes what the endpoint answers, and again only when it changes', async () => {
    const { seen, close } = await collect(world, 'http-poll.#');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/price`;
      const created = await world.api('POST', '/observers', {
        name: 'watch',
        kind: 'http-poll',
        params: { url, intervalMs: 1_000 },
      });
      assert.equal(created.status, 201);
      await waitFor('the first body', () => seen.length === 1);
      assert.deepEqual([seen[0]?.data.status, seen[0]?.data.body, seen[0]?.serviceId], [200, 'first', service.id]);
      // Several polls of the same body publish nothing new.
      await waitFor('two more polls', () => requests >= 3);
      assert.equal(seen.length, 1);
      body = 'second';
      await waitFor('the changed body', () => seen.length === 2);
      assert.equal(seen[1]?.data.body, 'second');
      await world.api('DELETE', `/observers/${String(created.body.id)}`);
      await world.waitForStatus(String(created.body.id), 'Deleted');
    } finally {
      await close();
    }
  });

  it('ticker publishes {seq} at once and then every interval', async () => {
    const { seen, close } = await collect(world, 'ticker.#');
    try {
      const id = await world.createTicker('counts', 50);
      await waitFor('four ticks', () => seen.length >= 4);
      assert.deepEqual(
        seen.slice(0, 4).map((o) => o.data.seq),
        [0, 1, 2, 3],
      );
      await world.api('DELETE', `/observers/${id}`);
      await world.waitForStatus(id, 'Deleted');
    } finally {
      await close();
    }
  });

  it('touches HEALTH_FILE after every heartbeat the broker confirmed', async () => {
    const first = await waitFor('the health file', () => stat(healthFile).then((s) => s.mtimeMs));
    await waitFor('the health file to be touched again', async () => (await stat(healthFile)).mtimeMs > first);
  });
});
