/**
 * Consumes a queue with manual ack and prefetch N and never acks: prints `holding <N>` once it
 * holds N unacked messages. The harness kills it with SIGKILL.
 * Usage: node amqp-holder.js <amqpUrl> <queue> <prefetch>
 */
import { connect } from '@vigil/broker';

async function main(): Promise<void> {
  const [url, queue, prefetchArg] = process.argv.slice(2);
  const prefetch = Number(prefetchArg);
  if (!url || !queue || !Number.isInteger(prefetch) || prefetch < 1) {
    throw new Error('usage: amqp-holder <amqpUrl> <queue> <prefetch>');
  }
  const connection = await connect(url, { noDelay: true, clientProperties: { connection_name: 'vigil-bench holder' } });
  const channel = await connection.createChannel();
  await channel.prefetch(prefetch);
  let held = 0;
  await channel.consume(
    queue,
    () => {
      held += 1;
      if (held === prefetch) process.stdout.write(`holding ${held}\n`);
    },
    { noAck: false },
  );
  process.stdout.write('consuming\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
