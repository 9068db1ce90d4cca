/**
 * Self-test of the private RabbitMQ / PostgreSQL helpers in test/support: start, connect,
 * stop and kill -9, restart on the same data, connect again, clean up. It also checks that
 * the shared services on 5672 / 5432 are still up afterwards.
 */
import assert from 'node:assert/strict';
import { connect as connectTcp } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect, type ConfirmChannel } from '@vigil/broker';
import { Client } from 'pg';
import { startPrivatePostgres, type PrivatePostgres, startPrivateRabbit, type PrivateRabbit } from '@vigil/testkit';

function isPortOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ port, host: '127.0.0.1' });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function withChannel<T>(url: string, use: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
  const connection = await connect(url);
  try {
    return await use(await connection.createConfirmChannel());
  } finally {
    await connection.close();
  }
}

async function query(url: string, sql: string, params: unknown[] = []): Promise<unknown[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('private RabbitMQ', () => {
  let rabbit: PrivateRabbit | undefined;
  let sharedWasUp = false;
  const queue = 'private-services-selftest';

  before(
    async () => {
      sharedWasUp = await isPortOpen(5672);
      rabbit = await startPrivateRabbit({ consumerTimeoutMs: 1000 });
    },
    { timeout: 90_000 },
  );

  after(
    async () => {
      await rabbit?.destroy();
      await rabbit?.destroy(); // idempotent
      if (rabbit) assert.equal(await isPortOpen(rabbit.port), false);
      if (sharedWasUp) assert.equal(await isPortOpen(5672), true, 'the shared broker on 5672 must still be up');
    },
    { timeout: 90_000 },
  );

  it('runs on its own node name and port', () => {
    assert.ok(rabbit);
    assert.match(rabbit.nodeName, /^vigil-test-[0-9a-f]+@localhost$/);
    assert.notEqual(rabbit.port, 5672);
    assert.equal(rabbit.url, `amqp://guest:guest@127.0.0.1:${rabbit.port}`);
  });

  it(
    'keeps a durable queue and persistent message across stop/start and kill -9/start',
    { timeout: 120_000 },
    async () => {
      assert.ok(rabbit);
      const { url } = rabbit;
      await withChannel(url, async (channel) => {
        await channel.assertQueue(queue, { durable: true });
        channel.sendToQueue(queue, Buffer.from('survivor'), { persistent: true });
        await channel.waitForConfirms(); // confirmed => on disk, so kill -9 cannot lose it
      });

      await rabbit.stop();
      assert.equal(await isPortOpen(rabbit.port), false);
      await rabbit.start();
      await withChannel(url, async (channel) => {
        assert.equal((await channel.checkQueue(queue)).messageCount, 1);
      });

      await rabbit.kill();
      await assert.rejects(connect(url));
      await rabbit.start();
      await withChannel(url, async (channel) => {
        const message = await channel.get(queue, { noAck: true });
        assert.ok(message, 'the persistent message survived kill -9');
        assert.equal(message.content.toString(), 'survivor');
      });
    },
  );

  it('applies consumerTimeoutMs (channel closed when a delivery is not acked)', { timeout: 30_000 }, async () => {
    assert.ok(rabbit);
    const connection = await connect(rabbit.url);
    try {
      const channel = await connection.createChannel();
      await channel.assertQueue(queue, { durable: true });
      channel.sendToQueue(queue, Buffer.from('never acked'), { persistent: true });
      const closed = new Promise<Error>((resolve) => channel.once('error', resolve));
      const started = Date.now();
      await channel.consume(queue, () => undefined, { noAck: false });
      const error = await closed;
      assert.match(error.message, /PRECONDITION_FAILED.*(timeout|acknowledg)/i);
      assert.ok(Date.now() - started < 10_000, `consumer timeout took ${Date.now() - started} ms`);
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
});

describe('private PostgreSQL', () => {
  let postgres: PrivatePostgres | undefined;
  let sharedWasUp = false;

  before(
    async () => {
      sharedWasUp = await isPortOpen(5432);
      postgres = await startPrivatePostgres();
    },
    { timeout: 60_000 },
  );

  after(
    async () => {
      await postgres?.destroy();
      if (sharedWasUp) assert.equal(await isPortOpen(5432), true, 'the shared Postgres on 5432 must still be up');
    },
    { timeout: 60_000 },
  );

  it('keeps a committed row across stop/start and kill -9/start', { timeout: 60_000 }, async () => {
    assert.ok(postgres);
    const { url } = postgres;
    assert.notEqual(postgres.port, 5432);
    await query(url, 'CREATE TABLE survivors (name text PRIMARY KEY)');
    await query(url, 'INSERT INTO survivors VALUES ($1)', ['before-stop']);

    await postgres.stop();
    assert.equal(await isPortOpen(postgres.port), false);
    await postgres.start();
    await query(url, 'INSERT INTO survivors VALUES ($1)', ['before-kill']);

    await postgres.kill();
    await assert.rejects(query(url, 'SELECT 1'));
    await postgres.start();
    const rows = await query(url, 'SELECT name FROM survivors ORDER BY name');
    assert.deepEqual(rows, [{ name: 'before-kill' }, { name: 'before-stop' }]);
  });
});

describe('destroy()', () => {
  it('is idempotent and leaves the port closed', { timeout: 60_000 }, async () => {
    const postgres = await startPrivatePostgres();
    await Promise.all([postgres.destroy(), postgres.destroy()]);
    await postgres.destroy();
    assert.equal(await isPortOpen(postgres.port), false);
    await assert.rejects(postgres.start(), /destroyed/);
  });
});
