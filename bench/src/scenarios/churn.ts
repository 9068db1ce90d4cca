import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ConfirmedPublisher, connect, type ChannelModel, type ConsumeMessage } from '@vigil/broker';
import type { JobMessage } from '@vigil/contracts';
import { World, waitFor } from '@vigil/testkit';
import { checkRabbitmqctl, sampleBroker, sampleQueues, type BrokerSample } from '../broker-stats';
import { elapsedMs, sleep, type Scenario, type ScenarioContext, type TimelinePoint } from '../scenario';
import { allRunningOn, createTickers } from '../vigil';

/** Tickers that tick once an hour: the held observers do nothing but hold their job. */
const IDLE_INTERVAL_MS = 3_600_000;
/** Jobs published before waiting for their confirms. */
const WINDOW = 500;
/**
 * Churned jobs the consumer holds at once: each is acked once this many newer ones have arrived,
 * so that, like an observer that ran a while, it was written to disk before its ack.
 */
const LIVE = 1000;
/** Broker samples while the churn runs, for the timelines (a sample takes about 2 s of rabbitmqctl). */
const SAMPLE_EVERY_MS = 5_000;

/** The holder's heartbeat: the production default (the testkit's 300 ms would write 40 KB of ids 3 times a second). */
const HEARTBEAT_MS = 5_000;

type QueueType = 'classic' | 'quorum';

/** A job exactly as the manager publishes it for `POST {name, kind: 'ticker', params: {intervalMs}}`. */
function job(i: number): { body: Buffer; messageId: string } {
  const message: JobMessage = {
    observerId: randomUUID(),
    name: `churn-${i}`,
    kind: 'ticker',
    pool: 'default',
    params: { intervalMs: IDLE_INTERVAL_MS },
    generation: 1,
  };
  return { body: Buffer.from(JSON.stringify(message)), messageId: message.observerId };
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function churnScenario(queueType: QueueType): Scenario {
  const quorum = queueType === 'quorum';
  return {
    name: quorum ? 'churn-quorum' : 'churn',
    title: quorum ? 'Broker under churn: quorum queue' : 'Broker under churn',
    description:
      `N idle tickers (created through the API) are held unacked by one Vigil service on a ${queueType} jobs ` +
      `queue while M other jobs pass through it, as creating and deleting M observers would (through the API ` +
      `that takes minutes): the harness publishes the real job message (${job(99_999).body.length} bytes) as the ` +
      `manager does (persistent, confirmed, ${WINDOW} in flight) and a consumer beside the full service takes ` +
      `each and acks it once ${LIVE} newer ones have arrived. Before, after M/2 and after M, once the queue shows ` +
      `only the N held: rabbitmqctl force_gc, then the node's memory (as its memory alarm counts it), the jobs ` +
      `queue's memory, and du -sb of the node's data directory (other users of the broker count too). ` +
      `"2nd half": after M minus after M/2.` +
      (quorum ? ' A quorum queue truncates its log only up to its oldest unacked message.' : ''),
    params: [
      { flag: 'churn-held', description: 'observers held unacked during the churn', default: 1000, quick: 1000 },
      { flag: 'churn-n', description: 'jobs passed through the queue around them', default: 100_000, quick: 10_000 },
    ],
    figures: [
      { name: 'jobs per s', unit: 'per s' },
      { name: 'broker memory before', unit: 'bytes' },
      { name: 'broker memory after', unit: 'bytes' },
      { name: 'broker memory growth, 2nd half', unit: 'bytes' },
      { name: 'queue memory before', unit: 'bytes' },
      { name: 'queue memory after', unit: 'bytes' },
      { name: 'data dir before', unit: 'bytes' },
      { name: 'data dir after', unit: 'bytes' },
      { name: 'data dir growth, 2nd half', unit: 'bytes' },
    ],
    quick: !quorum,

    async run(ctx: ScenarioContext) {
      const held = ctx.params['churn-held'] ?? 1000;
      const n = ctx.params['churn-n'] ?? 100_000;
      await checkRabbitmqctl();
      const world = await World.create({
        amqpUrl: ctx.env.amqpUrl,
        postgresUrl: ctx.env.databaseUrl,
        env: { QUEUE_TYPE: queueType },
      });
      ctx.resource('amqp-prefix', world.prefix);
      const queue = world.names.jobsQueue('default');
      let connection: ChannelModel | undefined;
      let sampling = false;
      let sampler: Promise<void> | undefined;
      try {
        await world.startManager();
        // The production heartbeat: each carries every held id to the state queue, which shares the data directory.
        const holder = await world.startService('bench-held', {
          CAPACITY: String(held),
          HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        });
        ctx.progress(`holding ${held} observers`);
        const { ids } = await createTickers(world, held, IDLE_INTERVAL_MS);
        await allRunningOn(world, ids, holder, 300_000);

        // The churn: a consumer that takes and acks, and a publisher; the service is full and takes none.
        connection = await connect(ctx.env.amqpUrl);
        const consumer = await connection.createChannel();
        await consumer.prefetch(LIVE + WINDOW);
        const live: ConsumeMessage[] = [];
        let acked = 0;
        const ackOldest = () => {
          consumer.ack(live.shift()!);
          acked += 1;
        };
        await consumer.consume(
          queue,
          (message) => {
            if (!message) return;
            live.push(message);
            while (live.length > LIVE) ackOldest();
          },
          { noAck: false },
        );
        const publisher = new ConfirmedPublisher(await connection.createConfirmChannel());
        let published = 0;

        // Timelines: ms since the churn began (the sample before it at 0).
        let startedAt: number | undefined = undefined;
        const series: Record<string, TimelinePoint[]> = {
          'broker memory bytes': [],
          'broker Erlang memory bytes': [],
          'jobs queue memory bytes': [],
          'data dir bytes': [],
          'jobs acked': [],
        };
        const record = (sample: BrokerSample) => {
          const at = startedAt === undefined ? 0 : elapsedMs(startedAt);
          series['broker memory bytes']!.push([at, sample.memoryBytes]);
          series['broker Erlang memory bytes']!.push([at, sample.erlangBytes]);
          series['jobs queue memory bytes']!.push([at, sample.queues[queue]!.memoryBytes]);
          series['data dir bytes']!.push([at, sample.dataDirBytes]);
          series['jobs acked']!.push([at, acked]);
        };
        const checkpoint = async (label: string) => {
          // The broker's counts lag by a few seconds: wait until they show the held jobs, and only them.
          let counts = { unacked: NaN, ready: NaN };
          await waitFor(
            `the jobs queue to show ${held} unacked and none ready`,
            async () => {
              counts = (await sampleQueues([queue]))[queue]!;
              return counts.unacked === held && counts.ready === 0;
            },
            { timeoutMs: 30_000, intervalMs: 500 },
          ).catch((error: Error) => {
            throw new Error(`${label}: ${error.message}; it shows ${counts.unacked} unacked, ${counts.ready} ready`);
          });
          const sample = await sampleBroker([queue], { gc: true });
          const jobs = sample.queues[queue]!;
          record(sample);
          ctx.progress(
            `${label}: broker ${mb(sample.memoryBytes)}, jobs queue ${mb(jobs.memoryBytes)}, ` +
              `data dir ${mb(sample.dataDirBytes)}`,
          );
          return sample;
        };
        let churnMs = 0;
        /** Passes jobs through the queue until `to` have been published and acked. */
        const churnUntil = async (to: number) => {
          const halfStartedAt = performance.now();
          let samplerError: Error | undefined;
          sampling = true;
          sampler = (async () => {
            while (sampling) {
              await sleep(SAMPLE_EVERY_MS);
              if (sampling) record(await sampleBroker([queue], { gc: true }));
            }
          })().catch((error: unknown) => {
            samplerError = error instanceof Error ? error : new Error(String(error));
          });
          let lastReport = performance.now();
          while (published < to) {
            const batch: Promise<void>[] = [];
            for (; published < to && batch.length < WINDOW; published += 1) {
              const { body, messageId } = job(published);
              batch.push(publisher.publish('', queue, body, { messageId, timeoutMs: 60_000 }));
            }
            await Promise.all(batch);
            if (performance.now() - lastReport > 10_000) {
              lastReport = performance.now();
              ctx.progress(`${acked} of ${n} jobs passed through`);
            }
          }
          // The last ones end too.
          await waitFor(`all ${to} jobs delivered`, () => acked + live.length === to, {
            timeoutMs: 60_000,
            intervalMs: 10,
          }).catch((error: Error) => {
            throw new Error(`${error.message}; ${acked + live.length} are`);
          });
          while (live.length > 0) ackOldest();
          churnMs += performance.now() - halfStartedAt;
          sampling = false;
          await sampler;
          if (samplerError) throw samplerError;
        };

        const before = await checkpoint('before');
        startedAt = performance.now();
        await churnUntil(Math.floor(n / 2));
        const middle = await checkpoint(`after ${Math.floor(n / 2)}`);
        await churnUntil(n);
        const after = await checkpoint(`after ${n}`);
        for (const [name, points] of Object.entries(series)) ctx.timeline(name, points);

        return {
          'jobs per s': n / (churnMs / 1000),
          'broker memory before': before.memoryBytes,
          'broker memory after': after.memoryBytes,
          'broker memory growth, 2nd half': after.memoryBytes - middle.memoryBytes,
          'queue memory before': before.queues[queue]!.memoryBytes,
          'queue memory after': after.queues[queue]!.memoryBytes,
          'data dir before': before.dataDirBytes,
          'data dir after': after.dataDirBytes,
          'data dir growth, 2nd half': after.dataDirBytes - middle.dataDirBytes,
        };
      } finally {
        sampling = false;
        await sampler;
        await connection?.close().catch(() => undefined);
        await world.close();
      }
    },
  };
}

/**
 * Jobs held unacked for weeks must not make the broker's memory or disk grow while other
 * observers are created and deleted around them (docs/design.md, The mechanism). Classic queues
 * (the default) hold flat; the quorum variant measures the growth that quorum queues are known for.
 */
export const churnScenarios: Scenario[] = [churnScenario('classic'), churnScenario('quorum')];
