import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ConfirmedPublisher, connect, type ChannelModel, type ConsumeMessage } from '@vigil/broker';
import type { JobMessage } from '@vigil/contracts';
import { World, startPrivateRabbit, waitFor, type PrivateRabbit } from '@vigil/testkit';
import { sampleBroker, sampleQueues, type BrokerSample, type Rabbitmqctl } from '../broker-stats';
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

/**
 * On the quorum queue, held jobs are rotated this long after they were last published (the
 * production default is an hour): a run lasts 30-60 s, so each is rotated several times in it.
 */
const ROTATE_AFTER_MS = 5_000;
/**
 * The classic queue's second-half growth is noise around 0 (its message store compacts files as it
 * goes; runs give -2 to +3 MB): the ratio divides by at least this, or a shrinking classic data
 * directory would make any quorum growth look small, or negative.
 */
const CLASSIC_FLOOR_BYTES = 1024 * 1024;
/** All held jobs rotate in one round (the default 50/s would spread 1,000 over 20 s). */
const ROTATE_MAX_PER_S = 10_000;
/**
 * The churn consumer stands for the other services. It has priority over the holder, so the
 * churned jobs go to it (the holder has room for its rotated jobs, and would take them too).
 */
const CHURN_PRIORITY = 10;

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
    title: quorum ? 'Broker under churn: quorum queue, rotation' : 'Broker under churn',
    description:
      `A private RabbitMQ node per run (nothing else writes to its data directory). N idle tickers (created ` +
      `through the API) are held unacked by one Vigil service (capacity 2 N) on a ${queueType} jobs ` +
      `queue while M other jobs pass through it, as creating and deleting M observers would (through the API ` +
      `that takes minutes): the harness publishes the real job message (${job(99_999).body.length} bytes) as the ` +
      `manager does (persistent, confirmed, ${WINDOW} in flight) and a consumer beside the full service (consumer ` +
      `priority over it) takes each and acks it once ${LIVE} newer ones have arrived. Before, after M/2 and after ` +
      `M, once the queue shows only the N held: rabbitmqctl force_gc, then the node's memory (as its memory ` +
      `alarm counts it), the jobs queue's memory, du -sb of the node's data directory, and of that the Raft ` +
      `write-ahead log (*.wal, emptied when it reaches raft.wal_max_size_bytes, --churn-wal-mb) and the other Raft ` +
      `files (segments, snapshots). "2nd half": after M minus after M/2.` +
      (quorum
        ? ` The manager rotates held jobs (ROTATE_AFTER_MS=${ROTATE_AFTER_MS}, ROTATE_MAX_PER_S=${ROTATE_MAX_PER_S}): ` +
          `each is acked and its next generation adopted in place by the holder, so the queue's log can be ` +
          `truncated past it. A rotated job the churn consumer takes meanwhile it hands back when the half ends ` +
          `(another service would have started it), and each sample waits until every held job was rotated since ` +
          `the churn stopped. The ratio is to the classic queue's growth in the same run, or 1 MiB if that ` +
          `is less (the classic figure is noise around 0).`
        : ''),
    params: [
      { flag: 'churn-held', description: 'observers held unacked during the churn', default: 1000, quick: 1000 },
      { flag: 'churn-n', description: 'jobs passed through the queue around them', default: 100_000, quick: 10_000 },
      // RabbitMQ's default; the WAL is emptied only when it reaches this size.
      { flag: 'churn-wal-mb', description: "the node's raft.wal_max_size_bytes, MiB", default: 512, quick: 512 },
    ],
    ...(quorum ? { needs: ['churn'] } : {}),
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
      { name: 'WAL after', unit: 'bytes' },
      { name: 'WAL growth, 2nd half', unit: 'bytes' },
      { name: 'Raft segments growth, 2nd half', unit: 'bytes' },
      ...(quorum
        ? [
            {
              name: 'data dir growth / classic',
              unit: 'ratio',
              target: { op: '<=' as const, value: 2, text: '<= 2 x classic' },
            },
            { name: 'rotations', unit: 'moves' },
          ]
        : []),
    ],
    quick: !quorum,

    async run(ctx: ScenarioContext) {
      const held = ctx.params['churn-held'] ?? 1000;
      const n = ctx.params['churn-n'] ?? 100_000;
      let rabbit: PrivateRabbit | undefined;
      let world: World | undefined;
      let connection: ChannelModel | undefined;
      let sampling = false;
      let sampler: Promise<void> | undefined;
      try {
        const walMb = ctx.params['churn-wal-mb'] ?? 512;
        rabbit = await startPrivateRabbit({ extraConfig: [`raft.wal_max_size_bytes = ${walMb * 1024 * 1024}`] });
        const node = rabbit;
        const ctl: Rabbitmqctl = (args) => node.ctl(args, 60_000);
        world = await World.create({
          amqpUrl: rabbit.url,
          postgresUrl: ctx.env.databaseUrl,
          env: { QUEUE_TYPE: queueType },
        });
        ctx.resource('amqp-prefix', world.prefix);
        const queue = world.names.jobsQueue('default');
        await world.startManager(
          quorum ? { ROTATE_AFTER_MS: String(ROTATE_AFTER_MS), ROTATE_MAX_PER_S: String(ROTATE_MAX_PER_S) } : {},
        );
        // The production heartbeat: each carries every held id to the state queue, which shares the data directory.
        // Room for as many again: a rotated job is adopted in place, delivered while the old one is still held.
        const holder = await world.startService('bench-held', {
          CAPACITY: String(2 * held),
          HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        });
        ctx.progress(`holding ${held} observers`);
        const { ids } = await createTickers(world, held, IDLE_INTERVAL_MS);
        const heldIds = new Set(ids);
        await allRunningOn(world, ids, holder, 300_000);

        // The churn: a consumer that takes and acks, and a publisher; the service takes none.
        connection = await connect(rabbit.url);
        const consumer = await connection.createChannel();
        // Room for the rotated jobs it sets aside too: a rotation every ROTATE_AFTER_MS while a half lasts.
        await consumer.prefetch(LIVE + WINDOW + 3 * held);
        const live: ConsumeMessage[] = [];
        /** Rotated jobs of held observers, handed back when the half ends. */
        let aside: ConsumeMessage[] = [];
        let acked = 0;
        const ackOldest = () => {
          consumer.ack(live.shift()!);
          acked += 1;
        };
        let consumerTag: string | undefined;
        const consume = async () => {
          ({ consumerTag } = await consumer.consume(
            queue,
            (message) => {
              if (!message) return;
              const { observerId } = JSON.parse(message.content.toString()) as { observerId: string };
              if (heldIds.has(observerId)) {
                aside.push(message);
                return;
              }
              live.push(message);
              while (live.length > LIVE) ackOldest();
            },
            { noAck: false, priority: CHURN_PRIORITY },
          ));
        };
        const handBack = async () => {
          if (consumerTag) await consumer.cancel(consumerTag);
          consumerTag = undefined;
          for (const message of aside) consumer.nack(message, false, true);
          aside = [];
        };
        const publisher = new ConfirmedPublisher(await connection.createConfirmChannel());
        let published = 0;

        // Timelines: ms since the churn began (the sample before it at 0).
        let startedAt: number | undefined = undefined;
        const series: Record<string, TimelinePoint[]> = {
          'broker memory bytes': [],
          'broker Erlang memory bytes': [],
          'jobs queue memory bytes': [],
          'data dir bytes': [],
          'WAL bytes': [],
          'jobs acked': [],
        };
        const record = (sample: BrokerSample) => {
          const at = startedAt === undefined ? 0 : elapsedMs(startedAt);
          series['broker memory bytes']!.push([at, sample.memoryBytes]);
          series['broker Erlang memory bytes']!.push([at, sample.erlangBytes]);
          series['jobs queue memory bytes']!.push([at, sample.queues[queue]!.memoryBytes]);
          series['data dir bytes']!.push([at, sample.dataDirBytes]);
          series['WAL bytes']!.push([at, sample.walBytes]);
          series['jobs acked']!.push([at, acked]);
        };
        const checkpoint = async (label: string) => {
          if (quorum) {
            // Rotation is what lets the log go: sample once every held job was rotated since the churn stopped.
            const since = new Date();
            await waitFor(
              `every held job rotated since the churn stopped`,
              async () =>
                (
                  await world!.sql<{ left: number }>(
                    `SELECT count(*)::int AS left FROM observers WHERE coalesce(moved_at, created_at) < $1`,
                    [since],
                  )
                )[0]!.left === 0,
              { timeoutMs: 4 * ROTATE_AFTER_MS + 30_000, intervalMs: 500 },
            );
          }
          // The broker's counts lag by a few seconds: wait until they show the held jobs, and only them.
          let counts = { unacked: NaN, ready: NaN };
          await waitFor(
            `the jobs queue to show ${held} unacked and none ready`,
            async () => {
              counts = (await sampleQueues(ctl, [queue]))[queue]!;
              return counts.unacked === held && counts.ready === 0;
            },
            { timeoutMs: 30_000, intervalMs: 500 },
          ).catch((error: Error) => {
            throw new Error(`${label}: ${error.message}; it shows ${counts.unacked} unacked, ${counts.ready} ready`);
          });
          const sample = await sampleBroker(ctl, [queue], { gc: true });
          const jobs = sample.queues[queue]!;
          record(sample);
          ctx.progress(
            `${label}: broker ${mb(sample.memoryBytes)}, jobs queue ${mb(jobs.memoryBytes)}, ` +
              `data dir ${mb(sample.dataDirBytes)} (WAL ${mb(sample.walBytes)}, other Raft ${mb(sample.segmentBytes)})`,
          );
          return sample;
        };
        let churnMs = 0;
        /** Passes jobs through the queue until `to` have been published and acked. */
        const churnUntil = async (to: number) => {
          await consume();
          const halfStartedAt = performance.now();
          let samplerError: Error | undefined;
          sampling = true;
          sampler = (async () => {
            while (sampling) {
              await sleep(SAMPLE_EVERY_MS);
              if (sampling) record(await sampleBroker(ctl, [queue], { gc: true }));
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
          // The last ones end too. The holder takes a few when the broker finds the churn consumer busy
          // (its priority is not absolute); it starts each, and the manager has it cancelled, as for any
          // deleted observer's job. The watch sees them start.
          const strays = () => world!.watch.observerIds().filter((id) => !heldIds.has(id)).length;
          await waitFor(`all ${to} jobs delivered`, () => acked + live.length + strays() === to, {
            timeoutMs: 60_000,
            intervalMs: 10,
          }).catch((error: Error) => {
            throw new Error(`${error.message}; ${acked + live.length} are, and ${strays()} went to the holder`);
          });
          ctx.progress(`${strays()} of ${to} churned jobs went to the holder`);
          while (live.length > 0) ackOldest();
          churnMs += performance.now() - halfStartedAt;
          await handBack();
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
        const rotations = /vigil_moves_published_total\{purpose="rotate"\} (\d+)/.exec(await world.metrics());
        const growth = after.dataDirBytes - middle.dataDirBytes;

        return {
          'jobs per s': n / (churnMs / 1000),
          'broker memory before': before.memoryBytes,
          'broker memory after': after.memoryBytes,
          'broker memory growth, 2nd half': after.memoryBytes - middle.memoryBytes,
          'queue memory before': before.queues[queue]!.memoryBytes,
          'queue memory after': after.queues[queue]!.memoryBytes,
          'data dir before': before.dataDirBytes,
          'data dir after': after.dataDirBytes,
          'data dir growth, 2nd half': growth,
          'WAL after': after.walBytes,
          'WAL growth, 2nd half': after.walBytes - middle.walBytes,
          'Raft segments growth, 2nd half': after.segmentBytes - middle.segmentBytes,
          ...(quorum
            ? {
                'data dir growth / classic':
                  growth / Math.max(CLASSIC_FLOOR_BYTES, ctx.needs.churn?.['data dir growth, 2nd half'] ?? NaN),
                rotations: rotations ? Number(rotations[1]) : 0,
              }
            : {}),
        };
      } finally {
        sampling = false;
        await sampler;
        await connection?.close().catch(() => undefined);
        await world?.close();
        await rabbit?.destroy();
      }
    },
  };
}

/**
 * Jobs held unacked for weeks must not make the broker's memory or disk grow while other
 * observers are created and deleted around them (docs/design.md, The mechanism). Classic queues
 * (the default) hold flat; on a quorum queue, whose log cannot be truncated past its oldest
 * unacked message, rotation acks held jobs so that it can be.
 */
export const churnScenarios: Scenario[] = [churnScenario('classic'), churnScenario('quorum')];
