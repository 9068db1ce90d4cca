import { connect, type ChannelModel } from '@vigil/broker';
import { Child, withTimeout } from '../child';
import { Series, sleep, type Scenario, type ScenarioContext, type TimelinePoint } from '../scenario';
import { FLOOR_N, publishJobs } from './floor';

/** One measurement of the observed floor. */
export interface ObservedFloor {
  /** From the kill until the watcher has received an observation of every job. */
  observedMs: number;
  /** From the kill until the survivor published the last of them, by the time it wrote in it. */
  publishedMs: number;
  /** `[ms since the kill, observations published by then]`, by the times in them. */
  published: TimelinePoint[];
  /** `[ms since the kill, observations the watcher has]`. */
  seen: TimelinePoint[];
}

/**
 * The floor with the least work that shows a job running again: as `floor`, a child process holds
 * N unacked jobs and is killed with SIGKILL, but the survivor is a process of its own that
 * publishes an observation for every job it is delivered (`processes/amqp-observer.ts`), and a
 * watcher in the harness counts them. Placed as in `failover-kill`: there the survivor is a
 * service process and the watch is in the harness. Used by `floor-observed` and `failover-curve`.
 */
export async function measureObservedFloor(ctx: ScenarioContext, n: number): Promise<ObservedFloor> {
  const queue = ctx.uniqueName('floor-observed');
  const exchange = ctx.uniqueName('floor-observations');
  ctx.resource('amqp-queue', queue);
  ctx.resource('amqp-exchange', exchange);
  const setup = await connect(ctx.env.amqpUrl);
  let watcher: ChannelModel | undefined;
  let holder: Child | undefined;
  let survivor: Child | undefined;
  try {
    const confirm = await setup.createConfirmChannel();
    await confirm.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    await confirm.assertExchange(exchange, 'topic', { durable: true });
    await publishJobs(confirm, queue, n);

    holder = new Child('amqp holder', 'amqp-holder.js', [ctx.env.amqpUrl, queue, String(n)]);
    await holder.waitForLine((line) => line === `holding ${n}`, 60_000, `holding all ${n} messages`);

    // Like the testkit's observation watch: an exclusive queue bound to every key, no acks.
    watcher = await connect(ctx.env.amqpUrl, { noDelay: true });
    const channel = await watcher.createChannel();
    const { queue: watched } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
    await channel.bindQueue(watched, exchange, '#');
    const series = new Series();
    const publishedAt = new Map<string, number>();
    let allAt: number | undefined;
    let resolveAll!: () => void;
    const all = new Promise<void>((resolve) => (resolveAll = resolve));
    await channel.consume(
      watched,
      (message) => {
        if (!message) return;
        const { observerId, at } = JSON.parse(message.content.toString('utf8')) as { observerId: string; at: string };
        if (publishedAt.has(observerId)) return;
        publishedAt.set(observerId, Date.parse(at));
        series.record(publishedAt.size);
        if (publishedAt.size === n) {
          allAt = series.elapsed();
          resolveAll();
        }
      },
      { noAck: true },
    );

    survivor = new Child('amqp observer', 'amqp-observer.js', [ctx.env.amqpUrl, queue, String(n), exchange]);
    await survivor.waitForLine((line) => line === 'consuming', 30_000, 'its consumer');
    // Nothing may reach the survivor while the holder is alive.
    await sleep(100);
    if (publishedAt.size !== 0) throw new Error(`the survivor observed ${publishedAt.size} jobs before the kill`);

    // Epoch ms for the times the survivor writes, as failover-kill judges Vigil's observations.
    const killedAt = Date.now();
    series.start(0);
    holder.signal('SIGKILL');
    await withTimeout(all, 120_000, `observations of all ${n} jobs at the watcher`).catch((error: Error) => {
      throw new Error(`${error.message}; it has ${publishedAt.size}`);
    });
    const times = [...publishedAt.values()].map((at) => at - killedAt).sort((a, b) => a - b);
    return {
      observedMs: allAt ?? NaN,
      publishedMs: times.at(-1) ?? NaN,
      published: times.map((ms, i): TimelinePoint => [ms, i + 1]),
      seen: series.points,
    };
  } finally {
    await survivor?.kill();
    await holder?.kill();
    await watcher?.close().catch(() => undefined);
    const cleanup = await setup.createChannel();
    await cleanup.deleteQueue(queue);
    await cleanup.deleteExchange(exchange);
    await setup.close();
  }
}

/**
 * The yardstick for failover-kill (docs/design.md, Targets): the bare floor plus the least work
 * that shows a job running again, which is what Vigil's failover figure waits for.
 */
export const floorObserved: Scenario = {
  name: 'floor-observed',
  title: 'Floor: amqplib, observed',
  description:
    'As the floor, but the survivor is a process of its own that publishes one observation per job it is delivered ' +
    '(topic exchange, unconfirmed, as a Vigil service does), and a watcher in the harness counts them. Time from ' +
    'the kill until the watcher has seen all N, and until the survivor published the last (by the time in it, ' +
    "as failover-kill's all running elsewhere is judged).",
  params: [FLOOR_N],
  figures: [
    { name: 'observed ms', unit: 'ms' },
    { name: 'published ms', unit: 'ms' },
  ],

  async run(ctx) {
    const n = ctx.params['floor-n'] ?? FLOOR_N.default;
    const floor = await measureObservedFloor(ctx, n);
    ctx.timeline('observations published by the survivor', floor.published);
    ctx.timeline('observations seen by the watcher', floor.seen);
    return { 'observed ms': floor.observedMs, 'published ms': floor.publishedMs };
  },
};
