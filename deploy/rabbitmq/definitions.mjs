// Renders the broker's users and their permissions as a RabbitMQ definitions file, which the
// broker imports on every boot (see rabbitmq.conf). docker-compose.yml runs it in the one-shot
// rabbitmq-init container, with the names and passwords from .env:
//
//   node definitions.mjs <output.json>
//
// Environment: VIGIL_PREFIX, RABBITMQ_ADMIN_USER / _PASSWORD, VIGIL_MANAGER_AMQP_USER / _PASSWORD,
// VIGIL_SERVICE_AMQP_USER / _PASSWORD.
//
// The file holds salted password hashes, never a password. Why a file rendered at each start
// rather than users created once: a boot-time import updates existing users, so a password
// changed in .env takes effect when the broker next boots, and a data volume created by an
// older version gets the users too. rabbitmq.conf cannot do either (its default_users are
// created on an empty database only), and rabbitmqctl from another container would need the
// node's Erlang cookie.
import { createHash, randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';

/** The names the apps use, as libs/contracts builds them (PoolName, ServiceId). */
const POOL_QUEUE = String.raw`jobs\.[a-z0-9][a-z0-9_-]*`;
const CONTROL_QUEUE = String.raw`control\.[0-9a-fA-F-]{36}`;
const TAP_QUEUE = String.raw`observations-tap\.[0-9a-fA-F-]{36}`;

/**
 * The narrowest grants under which each app does what it does; RabbitMQ checks, per AMQP
 * operation (access-control guide):
 *   exchange.declare, queue.declare, queue.delete: configure on the exchange or queue;
 *   queue.declare with x-dead-letter-exchange: also write on that exchange and read on the queue;
 *   queue.bind: write on the queue, read on the exchange;
 *   basic.publish: write on the exchange, `amq.default` for the default exchange;
 *   basic.consume: read on the queue.
 * Both apps declare the shared topology (the dead-letter exchange and queue, bound; the control
 * and observations exchanges; the state queue, which dead-letters), and every jobs queue they
 * use (which dead-letters too). Publishing to a queue by name goes through the default exchange:
 * RabbitMQ checks write on `amq.default`, not on the queue, so only a virtual host of its own
 * would keep an app from publishing into another prefix's queues. Reading them is refused.
 */
function permissions(prefix) {
  const p = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    // Publishes jobs, releases and barriers by queue name and cancels on the control exchange;
    // consumes the state queue, and replaces a state queue declared by an older version; taps
    // the observations through an exclusive queue of its own (the latest ones it serves).
    manager: {
      configure: `^${p}\\.(dead-letter|control|observations|state|${POOL_QUEUE}|${TAP_QUEUE})$`,
      write: `^(amq\\.default|${p}\\.(dead-letter|control|${TAP_QUEUE}))$`,
      read: `^${p}\\.(dead-letter|state|observations|${POOL_QUEUE}|${TAP_QUEUE})$`,
    },
    // Consumes its pools' jobs and its own control queue (exclusive, bound to the control
    // exchange); publishes state events by queue name and observations on their exchange.
    service: {
      configure: `^${p}\\.(dead-letter|control|observations|state|${POOL_QUEUE}|${CONTROL_QUEUE})$`,
      write: `^(amq\\.default|${p}\\.(dead-letter|observations|${CONTROL_QUEUE}))$`,
      read: `^${p}\\.(dead-letter|state|control|${POOL_QUEUE}|${CONTROL_QUEUE})$`,
    },
  };
}

/** rabbit_password_hashing_sha256: base64(salt ++ sha256(salt ++ password)), a 4-byte salt. */
function passwordHash(password, salt = randomBytes(4)) {
  const digest = createHash('sha256').update(salt).update(password, 'utf8').digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

function required(env, name) {
  const value = env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

function renderDefinitions(env) {
  const prefix = required(env, 'VIGIL_PREFIX');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(prefix)) throw new Error(`VIGIL_PREFIX ${prefix} is not a valid prefix`);
  const granted = permissions(prefix);
  const all = { configure: '.*', write: '.*', read: '.*' };
  const users = [
    { role: 'admin', user: 'RABBITMQ_ADMIN_USER', password: 'RABBITMQ_ADMIN_PASSWORD', tags: ['administrator'] },
    { role: 'manager', user: 'VIGIL_MANAGER_AMQP_USER', password: 'VIGIL_MANAGER_AMQP_PASSWORD', tags: [] },
    { role: 'service', user: 'VIGIL_SERVICE_AMQP_USER', password: 'VIGIL_SERVICE_AMQP_PASSWORD', tags: [] },
  ].map((spec) => ({ ...spec, name: required(env, spec.user), secret: required(env, spec.password) }));

  const names = new Set(users.map((user) => user.name));
  if (names.size !== users.length)
    throw new Error('the admin, manager and service users must be three different users');
  // The broker lets guest in from its own host only (definitions.conf): the apps would be refused.
  if (names.has('guest')) throw new Error('guest cannot be used: it may only connect from inside the broker container');

  return {
    vhosts: [{ name: '/' }],
    users: users.map((user) => ({
      name: user.name,
      password_hash: passwordHash(user.secret),
      hashing_algorithm: 'rabbit_password_hashing_sha256',
      tags: user.tags,
    })),
    permissions: users.map((user) => ({
      user: user.name,
      vhost: '/',
      ...(user.role === 'admin' ? all : granted[user.role]),
    })),
  };
}

function main() {
  const output = process.argv[2];
  if (!output) throw new Error('usage: node definitions.mjs <output.json>');
  const definitions = renderDefinitions(process.env);
  // Written whole, then renamed: the broker never reads half a file. Readable by the broker's user.
  writeFileSync(`${output}.tmp`, `${JSON.stringify(definitions, null, 2)}\n`, { mode: 0o644 });
  renameSync(`${output}.tmp`, output);
  console.log(`wrote ${output}: users ${definitions.users.map((user) => user.name).join(', ')}`);
}

try {
  main();
} catch (err) {
  console.error(`rabbitmq-init: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
