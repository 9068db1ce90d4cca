import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from '@vigil/broker';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import type { BenchEnv } from './scenario';

export interface Machine {
  host: string;
  os: string;
  cpu: string;
  cores: number;
  memoryBytes: number;
  node: string;
  rabbitmq: string;
  postgres: string;
  redis: string;
  /** `git describe --always --dirty` of the work tree, if any. */
  commit: string;
}

const unavailable = (error: unknown) => `unavailable (${error instanceof Error ? error.message : String(error)})`;

async function rabbitmqVersion(url: string): Promise<string> {
  const connection = await connect(url);
  try {
    const { product, version } = connection.connection.serverProperties;
    return `${product} ${version}`;
  } finally {
    await connection.close();
  }
}

async function postgresVersion(url: string): Promise<string> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const result = await client.query<{ server_version: string }>('SHOW server_version');
    return `PostgreSQL ${result.rows[0]?.server_version ?? '?'}`;
  } finally {
    await client.end();
  }
}

async function redisVersion(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  try {
    await redis.connect();
    const info = await redis.info('server');
    return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'}`;
  } finally {
    redis.disconnect();
  }
}

async function gitCommit(): Promise<string> {
  const { stdout } = await promisify(execFile)('git', ['describe', '--always', '--dirty'], {
    cwd: path.resolve(__dirname, '..', '..'),
  });
  return stdout.trim();
}

/** What the figures were measured on; a service that does not answer is reported, not fatal. */
export async function describeMachine(env: BenchEnv): Promise<Machine> {
  const cpus = os.cpus();
  const [rabbitmq, postgres, redis, commit] = await Promise.all([
    rabbitmqVersion(env.amqpUrl).catch(unavailable),
    postgresVersion(env.databaseUrl).catch(unavailable),
    redisVersion(env.redisUrl).catch(unavailable),
    gitCommit().catch(() => 'unknown'),
  ]);
  return {
    host: os.hostname(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    rabbitmq,
    postgres,
    redis,
    commit,
  };
}

/** CPU seconds a local process has used, from /proc (user + system). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
}
