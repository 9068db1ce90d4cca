/**
 * The observed floor's survivor: consumes a queue with manual ack and prefetch N, never acks, and
 * for every message it is delivered publishes one observation to a topic exchange, as a Vigil
 * service publishes an observer's first observation when it starts it: on a channel of its own,
 * not persistent, unconfirmed, routing key `<kind>.<observerId>`, a body shaped like Vigil's with
 * `at` the publish time (this machine's clock). Prints `consuming` once its consumer is
 * registered. The least a consumer can do to show, outside itself, that it took a job.
 * Usage: node amqp-observer.js <amqpUrl> <queue> <prefetch> <exchange>
 */
import { randomUUID } from 'node:crypto';
import { connect } from '@vigil/broker';

async function main(): Promise<void> {
  const [url, queue, prefetchArg, exchange] = process.argv.slice(2);
  const prefetch = Number(prefetchArg);
  if (!url || !queue || !exchange || !Number.isInteger(prefetch) || prefetch < 1) {
    throw new Error('usage: amqp-observer <amqpUrl> <queue> <prefetch> <exchange>');
  }
  const connection = await connect(url, {
    noDelay: true,
    clientProperties: { connection_name: 'vigil-bench observer' },
  });
  const jobs = await connection.createChannel();
  const observations = await connection.createChannel();
  await jobs.prefetch(prefetch);
  const serviceId = randomUUID();
  await jobs.consume(
    queue,
    (message) => {
      if (!message) return;
      const job = JSON.parse(message.content.toString('utf8')) as { observerId: string; name: string; kind: string };
      const observation = {
        observerId: job.observerId,
        name: job.name,
        kind: job.kind,
        serviceId,
        serviceName: 'bench-observer',
        at: new Date().toISOString(),
        data: { seq: 0 },
      };
      observations.publish(exchange, `${job.kind}.${job.observerId}`, Buffer.from(JSON.stringify(observation)), {
        contentType: 'application/json',
      });
    },
    { noAck: false },
  );
  process.stdout.write('consuming\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
