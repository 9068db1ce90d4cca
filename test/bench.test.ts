/**
 * Smoke test of the benchmark harness (bench/): a --quick run of the floors, failover-kill and the
 * tuned BullMQ scenario writes both reports with their rows and leaves no queue, exchange or Redis
 * key behind.
 * No timing is asserted. Needs RabbitMQ and Redis on their local ports.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@vigil/broker';
import { Redis } from 'ioredis';
import { ROOT, runScript } from '@vigil/testkit';

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BENCH_MAIN = path.join(ROOT, 'bench/dist/main.js');

interface ReportJson {
  machine: { cores: number; node: string; rabbitmq: string; redis: string; postgres: string };
  scenarios: {
    name: string;
    figures: { name: string; runs: number[]; median: number | null }[];
    runs: {
      run: number;
      error?: string;
      timelines: Record<string, [number, number][]>;
      resources: { kind: string; name: string }[];
    }[];
  }[];
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe('benchmark harness (--quick)', () => {
  let out: string;

  before(async () => {
    assert.ok(existsSync(BENCH_MAIN), `${BENCH_MAIN} is missing: run npm run build first`);
    assert.ok(await answers(6379), 'Redis does not answer on 127.0.0.1:6379 (the BullMQ scenario needs it)');
    out = await mkdtemp(path.join(os.tmpdir(), 'vigil-bench-'));
  });
  after(() => rm(out, { recursive: true, force: true }));

  it('runs the floors, failover-kill and bullmq-tuned, writes latest.json and latest.md, and cleans up after itself', async () => {
    // --out keeps the smoke run from overwriting bench/results/latest.*.
    const result = await runScript('bench/dist/main.js', [
      '--quick',
      '--only',
      'floor,failover-kill,bullmq-tuned',
      '--out',
      out,
    ]);
    assert.equal(result.code, 0, `bench exited ${result.code}:\n${result.stderr.slice(-3000)}`);
    assert.match(result.stderr, /floor run 1\/3: starting/, 'progress lines go to stderr');

    const report = JSON.parse(await readFile(path.join(out, 'latest.json'), 'utf8')) as ReportJson;
    assert.ok(report.machine.cores > 0);
    assert.match(report.machine.rabbitmq, /RabbitMQ \d/);
    assert.match(report.machine.redis, /Redis \d/);
    // failover-kill needs the observed floor, which --only adds.
    assert.deepEqual(
      report.scenarios.map((s) => s.name),
      ['floor', 'floor-observed', 'failover-kill', 'bullmq-tuned'],
    );
    const expected: Record<string, string[]> = {
      floor: ['requeue ms'],
      'floor-observed': ['observed ms', 'published ms'],
      'failover-kill': ['ratio to floor', 'ratio to observed floor'],
      'bullmq-tuned': ['failover ms (tuned)'],
    };
    for (const scenario of report.scenarios) {
      for (const name of expected[scenario.name] ?? []) {
        const figure = scenario.figures.find((f) => f.name === name);
        assert.ok(figure, `${scenario.name} reports ${name}`);
        assert.equal(figure.runs.length, 3, `${scenario.name}: three runs`);
        assert.equal(typeof figure.median, 'number');
      }
      for (const run of scenario.runs) {
        assert.equal(run.error, undefined);
        const [timeline] = Object.values(run.timelines);
        assert.ok(timeline && timeline.length > 1, `${scenario.name} run ${run.run} recorded a timeline`);
      }
    }

    const md = await readFile(path.join(out, 'latest.md'), 'utf8');
    assert.match(md, /\| scenario \| figure \| median \| min \| max \| runs \| target \| met\? \|/);
    assert.match(md, /\| Floor: bare amqplib \| requeue ms \| [\d.]+ \|/);
    assert.match(md, /\| Floor: amqplib, observed \| published ms \| [\d.]+ \|/);
    assert.match(md, /\| Peer: BullMQ \(tuned\) \| failover ms \(tuned\) \| [\d.]+ \|/);

    // Nothing left behind: every queue, exchange and Redis prefix the runs created is gone.
    const resources = report.scenarios.flatMap((s) => s.runs.flatMap((r) => r.resources));
    const queues = resources.filter((r) => r.kind === 'amqp-queue').map((r) => r.name);
    const exchanges = resources.filter((r) => r.kind === 'amqp-exchange').map((r) => r.name);
    const prefixes = resources.filter((r) => r.kind === 'redis-prefix').map((r) => r.name);
    assert.equal(queues.length, 6, 'a queue per run of each floor');
    assert.equal(exchanges.length, 3, "an exchange per run of the observed floor's");
    assert.equal(prefixes.length, 3);
    const connection = await connect(AMQP_URL);
    try {
      for (const queue of queues) {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        await assert.rejects(channel.checkQueue(queue), /404/, `queue ${queue} was deleted`);
      }
      for (const exchange of exchanges) {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        await assert.rejects(channel.checkExchange(exchange), /404/, `exchange ${exchange} was deleted`);
      }
    } finally {
      await connection.close();
    }
    const redis = new Redis(REDIS_URL);
    try {
      for (const prefix of prefixes) {
        const keys: string[] = [];
        let cursor = '0';
        do {
          const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          keys.push(...batch);
        } while (cursor !== '0');
        assert.deepEqual(keys, [], `no Redis keys left under ${prefix}`);
      }
    } finally {
      await redis.quit();
    }
  });
});
