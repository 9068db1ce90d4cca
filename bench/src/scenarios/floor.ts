import { randomUUID } from 'node:crypto';
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from '@vigil/broker';
import { Child, withTimeout } from '../child';
import { Series, sleep, type Param, type Scenario } from '../scenario';

/** N for both floors, so that the bare and the observed floor of one run hold as many jobs. */
export const FLOOR_N: Param = { flag: 'floor-n', description: 'messages held unacked', default: 1000, quick: 1000 };

/** Publishes `n` persistent messages about the size of a Vigil job to `queue`, confirmed. */
export async function publishJobs(confirm: ConfirmChannel, queue: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1) {
    const job = { observerId: randomUUID(), name: `bench-${i}`, kind: 'ticker', pool: 'default', params: {} };
    confirm.sendToQueue(queue, Buffer.from(JSON.stringify(job)), { persistent: true });
  }
  await confirm.waitForConfirms();
}

/**
 * The broker's own requeue time, the physical floor for any failover built on unacked deliveries:
 * a child process holds N unacked messages (prefetch N), a second consumer waits on the same queue
 * with prefetch N, the child is killed with SIGKILL, and we time until the second consumer has been
 * delivered all N.
 */
export const floor: Scenario = {
  name: 'floor',
  title: 'Floor: bare amqplib',
  description:
    'A child process holds N unacked persistent messages (prefetch N, manual ack); a second consumer with prefetch N ' +
    'waits on the same queue. kill -9 the child; time until the second consumer has received all N.',
  params: [FLOOR_N],
  figures: [{ name: 'requeue ms', unit: 'ms' }],

  async run(ctx) {
    const n = ctx.params['floor-n'] ?? 1000;
    const queue = ctx.uniqueName('floor');
    ctx.resource('amqp-queue', queue);
    const setup = await connect(ctx.env.amqpUrl);
    let survivor: ChannelModel | undefined;
    let holder: Child | undefined;
    try {
      const confirm = await setup.createConfirmChannel();
      await confirm.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
      await publishJobs(confirm, queue, n);

      holder = new Child('amqp holder', 'amqp-holder.js', [ctx.env.amqpUrl, queue, String(n)]);
      await holder.waitForLine((line) => line === `holding ${n}`, 30_000, `holding all ${n} messages`);

      survivor = await connect(ctx.env.amqpUrl, { noDelay: true });
      const channel: Channel = await survivor.createChannel();
      await channel.prefetch(n);
      const series = new Series();
      let received = 0;
      let allAt: number | undefined;
      let resolveAll!: () => void;
      const all = new Promise<void>((resolve) => (resolveAll = resolve));
      await channel.consume(
        queue,
        () => {
          received += 1;
          series.record(received);
          if (received === n) {
            allAt = series.elapsed();
            resolveAll();
          }
        },
        { noAck: false },
      );
      // Nothing may reach the second consumer while the holder is alive.
      await sleep(100);
      if (received !== 0) throw new Error(`the second consumer got ${received} messages before the kill`);

      series.start(0);
      holder.signal('SIGKILL');
      await withTimeout(all, 30_000, `all ${n} messages at the second consumer`).catch((error: Error) => {
        throw new Error(`${error.message}; it has ${received}`);
      });
      ctx.timeline('messages held by the second consumer', series.points);
      return { 'requeue ms': allAt ?? NaN };
    } finally {
      await holder?.kill();
      await survivor?.close().catch(() => undefined);
      const cleanup = await setup.createChannel();
      await cleanup.deleteQueue(queue);
      await setup.close();
    }
  },
};
