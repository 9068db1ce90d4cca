/**
 * The container deployment's broker users, on a real broker: a private node imports at boot, with
 * deploy/rabbitmq/definitions.conf, the definitions deploy/rabbitmq/definitions.mjs renders, as
 * the compose broker does. The manager and
 * an observer service run as their own users and an observer runs; each user is then refused
 * what belongs to another prefix, and the default guest user does not exist.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { connect, type ChannelModel } from '@vigil/broker';
import { brokerNames } from '@vigil/contracts';
import { startPrivateRabbit, World, type PrivateRabbit } from '@vigil/testkit';

const SCRIPT = path.join(__dirname, '..', 'deploy', 'rabbitmq', 'definitions.mjs');

interface Definitions {
  users: { name: string; password_hash: string; hashing_algorithm: string; tags: string[] }[];
  permissions: { user: string; configure: string; write: string; read: string }[];
}

describe('broker users of the container deployment', { timeout: 180_000 }, () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const secret = () => randomBytes(16).toString('hex');
  const users = {
    admin: { name: `${prefix}-admin`, password: secret() },
    manager: { name: `${prefix}-manager`, password: secret() },
    service: { name: `${prefix}-service`, password: secret() },
  };
  let dir: string;
  let definitions: Definitions;
  let rabbit: PrivateRabbit;
  let world: World;
  const urlOf = (user: { name: string; password: string }) =>
    `amqp://${user.name}:${user.password}@127.0.0.1:${rabbit.port}`;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-broker-users-'));
    // The private node runs as the rabbitmq user: it must reach the file.
    await chmod(dir, 0o755);
    const file = path.join(dir, 'definitions.json');
    await promisify(execFile)(process.execPath, [SCRIPT, file], {
      env: {
        PATH: process.env.PATH,
        VIGIL_PREFIX: prefix,
        RABBITMQ_ADMIN_USER: users.admin.name,
        RABBITMQ_ADMIN_PASSWORD: users.admin.password,
        VIGIL_MANAGER_AMQP_USER: users.manager.name,
        VIGIL_MANAGER_AMQP_PASSWORD: users.manager.password,
        VIGIL_SERVICE_AMQP_USER: users.service.name,
        VIGIL_SERVICE_AMQP_PASSWORD: users.service.password,
      },
    });
    definitions = JSON.parse(await readFile(file, 'utf8')) as Definitions;
    // The shipped definitions.conf, pointed at this file.
    const conf = (await readFile(path.join(__dirname, '..', 'deploy', 'rabbitmq', 'definitions.conf'), 'utf8'))
      .split('\n')
      .filter((line) => /^\s*[a-z]/.test(line))
      .map((line) => (line.startsWith('definitions.local.path') ? `definitions.local.path = ${file}` : line));
    assert.ok(conf.some((line) => line.startsWith('definitions.local.path')));
    rabbit = await startPrivateRabbit({ extraConfig: conf });
    world = await World.create({ amqpUrl: urlOf(users.admin), prefix });
  });
  after(async () => {
    await world?.close();
    await rabbit?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('holds password hashes only, never a password', () => {
    const text = JSON.stringify(definitions);
    for (const user of Object.values(users)) assert.ok(!text.includes(user.password));
    for (const user of definitions.users) {
      assert.equal(user.hashing_algorithm, 'rabbit_password_hashing_sha256');
      assert.equal(Buffer.from(user.password_hash, 'base64').length, 4 + 32, 'a 4-byte salt and a SHA-256');
    }
  });

  it('replaces the default user: guest is refused', async () => {
    await assert.rejects(connect(`amqp://guest:guest@127.0.0.1:${rabbit.port}`), /ACCESS.REFUSED|403/);
  });

  it('lets the manager and a service do their work under their own users', async () => {
    await world.startManager({ AMQP_URL: urlOf(users.manager) });
    await world.startService('restricted', { AMQP_URL: urlOf(users.service) });
    const id = await world.createTicker('restricted-ticker', 100);
    const observer = await world.waitForStatus(id, 'Processing');
    assert.ok(observer.serviceId, 'the observer runs on the service');
    assert.ok((await world.api('DELETE', `/observers/${id}`)).status < 300);
    await world.waitForStatus(id, 'Deleted');
  });

  describe('refuses what belongs to another prefix', () => {
    const other = brokerNames('other');
    const nested = brokerNames(`${prefix}.other`);
    let connections: ChannelModel[] = [];

    before(async () => {
      // The admin declares another prefix's topology, as another deployment would.
      const admin = await connect(urlOf(users.admin));
      const channel = await admin.createChannel();
      for (const names of [other, nested]) {
        await channel.assertQueue(names.jobsQueue('default'), { durable: false, autoDelete: true });
        await channel.assertQueue(names.stateQueue, { durable: false, autoDelete: true });
        await channel.assertExchange(names.observationsExchange, 'topic', { durable: false, autoDelete: true });
      }
      connections.push(admin);
    });
    after(async () => {
      await Promise.allSettled(connections.map((connection) => connection.close()));
      connections = [];
    });

    /** Runs `operation` on a fresh channel of `user`; the broker must refuse it. */
    async function refused(
      user: { name: string; password: string },
      what: string,
      operation: (channel: Awaited<ReturnType<ChannelModel['createConfirmChannel']>>) => Promise<unknown>,
    ): Promise<void> {
      const connection = await connect(urlOf(user));
      connection.on('error', () => undefined);
      connections.push(connection);
      const channel = await connection.createConfirmChannel();
      // A refused publish closes the channel: the reason comes with the channel's error.
      let closedFor = '';
      channel.on('error', (err: Error) => (closedFor = err.message));
      const failure = await operation(channel).then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
      );
      assert.ok(failure !== undefined, `${user.name}: ${what} should be refused`);
      assert.match(`${failure.message} ${closedFor}`, /ACCESS.REFUSED|403/, `${user.name}: ${what}`);
    }

    for (const [label, names] of [
      ['other', other],
      ['nested', nested],
    ] as const) {
      it(`the service may not consume, declare or publish to prefix ${label}'s names`, async () => {
        await refused(users.service, 'consume jobs', (ch) => ch.consume(names.jobsQueue('default'), () => undefined));
        await refused(users.service, 'consume the state queue', (ch) => ch.consume(names.stateQueue, () => undefined));
        await refused(users.service, 'declare a jobs queue', (ch) => ch.assertQueue(names.jobsQueue('blue')));
        await refused(users.service, 'publish an observation', async (ch) => {
          ch.publish(names.observationsExchange, 'k.1', Buffer.from('{}'));
          await ch.waitForConfirms();
        });
      });

      it(`the manager may not consume or declare prefix ${label}'s names`, async () => {
        await refused(users.manager, 'consume the state queue', (ch) => ch.consume(names.stateQueue, () => undefined));
        await refused(users.manager, 'consume jobs', (ch) => ch.consume(names.jobsQueue('default'), () => undefined));
        await refused(users.manager, 'declare the state queue', (ch) => ch.assertQueue(names.stateQueue));
      });
    }

    it('a service may not broadcast cancels on its own prefix', async () => {
      await refused(users.service, 'publish on the control exchange', async (ch) => {
        ch.publish(brokerNames(prefix).controlExchange, '', Buffer.from('{}'));
        await ch.waitForConfirms();
      });
    });
  });
});
