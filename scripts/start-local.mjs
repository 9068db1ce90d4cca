// `npm start`: the whole system on this machine, without Docker. A manager and three observer
// services against the local RabbitMQ and Postgres; Ctrl-C stops them gracefully.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { AMQP_URL, POSTGRES_URL, requireLocalServices } from './local-services.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const port = process.env.PORT ?? '3000';
const services = Number(process.env.SERVICES ?? 3);

await requireLocalServices();

// The manager's own database, created on first start.
const databaseUrl = process.env.DATABASE_URL ?? Object.assign(new URL(POSTGRES_URL), { pathname: '/vigil' }).toString();
const database = new URL(databaseUrl).pathname.slice(1);
const admin = new pg.Client({ connectionString: POSTGRES_URL });
await admin.connect();
const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
if (rowCount === 0) await admin.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
await admin.end();

// The API wants a token. Without one given, this run makes its own and shows it once.
const givenToken = process.env.VIGIL_ADMIN_TOKEN;
const adminToken = givenToken || randomBytes(32).toString('hex');

const children = [];
function run(label, main, env) {
  const child = spawn(process.execPath, [path.join(root, main)], {
    cwd: root,
    env: { ...process.env, AMQP_URL, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
    // A group of its own: Ctrl-C reaches this launcher only, which stops each app once. Were the
    // apps in the terminal's group too, each would get the signal twice and exit at once.
    detached: true,
  });
  child.on('exit', (code, signal) => {
    console.error(`[vigil] ${label} exited (${signal ?? code})`);
    if (!stopping) stop('SIGTERM', 1);
  });
  children.push(child);
}

let stopping = false;
let exitCode = 0;
function stop(signal, code = 0) {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  for (const child of children) if (child.exitCode === null) child.kill(signal);
}
process.on('SIGINT', () => stop('SIGTERM'));
process.on('SIGTERM', () => stop('SIGTERM'));

run('manager', 'apps/manager/dist/main.js', { DATABASE_URL: databaseUrl, PORT: port, VIGIL_ADMIN_TOKEN: adminToken });
for (let i = 1; i <= services; i++) {
  run(`observer-service-${i}`, 'apps/observer-service/dist/main.js', {
    SERVICE_NAME: `local-${i}`,
    CAPACITY: process.env.CAPACITY ?? '1000',
  });
}
console.error(
  `[vigil] manager and ${services} observer services starting; REST API at http://127.0.0.1:${port}/api/v1 ` +
    `(OpenAPI: /api/v1/openapi.json), dashboard at http://127.0.0.1:${port}/ (sign in with a token). ` +
    `Ctrl-C stops everything.`,
);
if (!givenToken) {
  console.error(
    `[vigil] admin token for this run (shown once; set VIGIL_ADMIN_TOKEN to choose your own):\n` +
      `  export VIGIL_TOKEN=${adminToken}\n` +
      `  curl -H "Authorization: Bearer $VIGIL_TOKEN" http://127.0.0.1:${port}/api/v1/observers`,
  );
}
await Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve))));
process.exit(exitCode);
