// Where the local RabbitMQ and Postgres are, and a clear answer when they are not there.
import { connect } from 'node:net';

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** Only the benchmark's BullMQ peer uses Redis. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function reachable(url, defaultPort) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || defaultPort), timeout: 2_000 });
    socket.once('connect', () => socket.end(() => resolve(true)));
    socket.once('timeout', () => socket.destroy() || resolve(false));
    socket.once('error', () => resolve(false));
  });
}

/** Exits with a message naming what is missing and how to start it. */
export async function requireLocalServices({ redis = false } = {}) {
  const missing = [];
  if (!(await reachable(AMQP_URL, 5672))) {
    missing.push(`RabbitMQ is not reachable at ${new URL(AMQP_URL).host} (start it: rabbitmq-server -detached)`);
  }
  if (!(await reachable(POSTGRES_URL, 5432))) {
    missing.push(
      `PostgreSQL is not reachable at ${new URL(POSTGRES_URL).host} ` +
        '(start it: pg_ctlcluster --skip-systemctl-redirect 15 main start)',
    );
  }
  if (redis && !(await reachable(REDIS_URL, 6379))) {
    missing.push(`Redis is not reachable at ${new URL(REDIS_URL).host} (the benchmark's BullMQ peer needs it)`);
  }
  if (missing.length > 0) {
    console.error(`Missing local services:\n${missing.map((m) => `  - ${m}`).join('\n')}`);
    process.exit(1);
  }
}
