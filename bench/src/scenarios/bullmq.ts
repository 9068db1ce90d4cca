import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Child } from '../child';
import { Series, type Scenario, type ScenarioContext } from '../scenario';

interface Variant {
  name: string;
  label: string;
  /** Worker options beyond concurrency; undefined keeps BullMQ's default. */
  lockDuration?: number;
  stalledInterval?: number;
  /** How long to wait for the failover before giving up. */
  timeoutMs: number;
  quick: boolean;
}

const QUEUE = 'observers';
/** High enough that a job moved back by the stalled checker is never failed instead. */
const MAX_STALLED_COUNT = 1000;

const params = [{ flag: 'bullmq-n', description: 'never-ending BullMQ jobs', default: 1000, quick: 100 }];

/**
 * The same failover on BullMQ, the closest peer: N never-ending jobs run on one worker process
 * (concurrency N); a second worker starts, the first is killed with SIGKILL, and we time until every
 * job has started again on the second. BullMQ learns of the death only from expired locks: a job
 * moves back to wait once the stalled checker has seen it active in two passes without a lock.
 */
function bullmqScenario(variant: Variant): Scenario {
  const figure = `failover ms (${variant.label})`;
  return {
    name: variant.name,
    title: `Peer: BullMQ (${variant.label})`,
    description:
      `N never-ending jobs on one worker (concurrency N, maxStalledCount ${MAX_STALLED_COUNT}` +
      (variant.lockDuration === undefined
        ? ', lockDuration and stalledInterval at their defaults'
        : `, lockDuration ${variant.lockDuration} ms, stalledInterval ${variant.stalledInterval} ms`) +
      '); a second worker starts, kill -9 the first; time until all N started again on the second.',
    params,
    quick: variant.quick,
    figures: [{ name: figure, unit: 'ms' }],
    async run(ctx) {
      return { [figure]: await failover(ctx, variant) };
    },
  };
}

async function failover(ctx: ScenarioContext, variant: Variant): Promise<number> {
  const n = ctx.params['bullmq-n'] ?? 1000;
  const prefix = ctx.uniqueName('bullmq');
  ctx.resource('redis-prefix', prefix);
  const settings = JSON.stringify({
    redisUrl: ctx.env.redisUrl,
    queue: QUEUE,
    prefix,
    concurrency: n,
    lockDuration: variant.lockDuration,
    stalledInterval: variant.stalledInterval,
    maxStalledCount: MAX_STALLED_COUNT,
  });
  const connection = new Redis(ctx.env.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE, { connection, prefix });
  const workers: Child[] = [];
  const startWorker = async (label: string) => {
    const worker = new Child(label, 'bullmq-worker.js', [settings]);
    workers.push(worker);
    const started = new Set<string>();
    const failed: string[] = [];
    worker.onLine((line) => {
      if (line.startsWith('started ')) started.add(line.slice('started '.length));
      else if (line.startsWith('failed ')) failed.push(line);
    });
    await worker.waitForLine((line) => line === 'ready', 30_000, 'ready');
    return { worker, started, failed };
  };
  try {
    const first = await startWorker('bullmq worker 1');
    await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'observe', data: { i } })));
    await waitUntil(
      () => first.started.size === n,
      60_000,
      () => `${first.started.size}/${n} jobs running on worker 1`,
    );

    const second = await startWorker('bullmq worker 2');
    const series = new Series();
    let lastCount = 0;
    second.worker.onLine(() => {
      if (second.started.size !== lastCount) {
        lastCount = second.started.size;
        series.record(lastCount);
      }
    });
    series.start(0);
    first.worker.signal('SIGKILL');
    let nextProgress = 10_000;
    await waitUntil(
      () => {
        if (second.failed.length > 0) throw new Error(`BullMQ failed jobs: ${second.failed.slice(0, 3).join('; ')}`);
        if (series.elapsed() >= nextProgress) {
          ctx.progress(
            `${second.started.size}/${n} jobs running on worker 2, ${Math.round(series.elapsed() / 1000)} s after the kill`,
          );
          nextProgress += 10_000;
        }
        return second.started.size === n;
      },
      variant.timeoutMs,
      () => `${second.started.size}/${n} jobs running on worker 2 after the kill`,
    );
    ctx.timeline('jobs running on worker 2', series.points);
    const allAt = series.points[series.points.length - 1]?.[0];
    if (allAt === undefined) throw new Error('no timeline point');
    return allAt;
  } finally {
    for (const worker of workers) await worker.kill();
    await queue.obliterate({ force: true });
    await queue.close();
    await removeLeftovers(connection, prefix, ctx);
    await connection.quit();
  }
}

/** BullMQ's obliterate leaves a few bookkeeping keys; removes whatever is left under the prefix. */
async function removeLeftovers(redis: Redis, prefix: string, ctx: ScenarioContext): Promise<void> {
  let cursor = '0';
  const keys: string[] = [];
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length > 0) {
    ctx.progress(`removing ${keys.length} keys left after obliterate: ${keys.slice(0, 5).join(', ')}`);
    await redis.del(...keys);
  }
}

/** Polls `done` every 5 ms (it may throw to abort). */
async function waitUntil(done: () => boolean, timeoutMs: number, state: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${state()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const bullmq: Scenario[] = [
  // Defaults: lockDuration 30 s, stalledInterval 30 s (the check is throttled queue-wide to one per interval).
  bullmqScenario({ name: 'bullmq-defaults', label: 'defaults', timeoutMs: 180_000, quick: false }),
  bullmqScenario({
    name: 'bullmq-tuned',
    label: 'tuned',
    lockDuration: 2000,
    stalledInterval: 1000,
    timeoutMs: 30_000,
    quick: true,
  }),
];
