/**
 * A BullMQ worker whose jobs never end: each processor prints `started <jobId>` and then waits
 * until the worker closes. Prints `ready` once connected. The harness kills it with SIGKILL.
 * Usage: node bullmq-worker.js '<json: {redisUrl, queue, prefix, concurrency, lockDuration?, stalledInterval?, maxStalledCount?}>'
 */
import { Worker, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';

interface Settings {
  redisUrl: string;
  queue: string;
  prefix: string;
  concurrency: number;
  lockDuration?: number;
  stalledInterval?: number;
  maxStalledCount?: number;
}

async function main(): Promise<void> {
  const settings = JSON.parse(process.argv[2] ?? '{}') as Settings;
  const connection = new Redis(settings.redisUrl, { maxRetriesPerRequest: null });
  const closing: Array<() => void> = [];
  const options: WorkerOptions = {
    connection,
    prefix: settings.prefix,
    concurrency: settings.concurrency,
    ...(settings.lockDuration === undefined ? {} : { lockDuration: settings.lockDuration }),
    ...(settings.stalledInterval === undefined ? {} : { stalledInterval: settings.stalledInterval }),
    ...(settings.maxStalledCount === undefined ? {} : { maxStalledCount: settings.maxStalledCount }),
  };
  const worker = new Worker(
    settings.queue,
    async (job) => {
      process.stdout.write(`started ${job.id}\n`);
      // Never-ending: runs until the worker closes (or the process is killed).
      await new Promise<void>((resolve) => closing.push(resolve));
    },
    options,
  );
  worker.on('error', (error) => process.stderr.write(`worker error: ${error.message}\n`));
  worker.on('failed', (job, error) => process.stdout.write(`failed ${job?.id} ${error.message}\n`));
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    for (const resolve of closing) resolve();
    void worker.close().then(() => connection.quit().then(() => process.exit(0)));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
