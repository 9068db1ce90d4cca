import type { Channel } from 'amqplib';
import type { BrokerNames } from '@vigil/contracts';

export type QueueType = 'classic' | 'quorum';

/**
 * Per-consumer delivery-acknowledgement timeout for job consumers, in ms (≈ 49.7 days, the
 * largest value every broker version and timer implementation accepts). A job stays unacked
 * for as long as its observer runs, so the broker's default of 30 minutes would move every
 * observer. Brokers before 3.12 ignore the argument: there `consumer_timeout` in the broker's
 * config must be raised (see deploy/rabbitmq/). Where it takes effect it overrides that
 * setting, and a delivery older than this is handled like a lost channel.
 */
export const JOB_CONSUMER_TIMEOUT_MS = 2 ** 32 - 1;

export const JOB_CONSUMER_ARGUMENTS = { 'x-consumer-timeout': JOB_CONSUMER_TIMEOUT_MS };

/**
 * Quorum queues count every redelivery, and brokers 4.x dead-letter a message after 20 by
 * default. An observer that merely moved between services must never be dropped, so the
 * limit is set far above any plausible number of moves.
 */
export const QUORUM_DELIVERY_LIMIT = 1_000_000;

export function jobsQueueArguments(names: BrokerNames, queueType: QueueType): Record<string, unknown> {
  const args: Record<string, unknown> = { 'x-dead-letter-exchange': names.deadLetterExchange };
  if (queueType === 'quorum') {
    args['x-queue-type'] = 'quorum';
    args['x-delivery-limit'] = QUORUM_DELIVERY_LIMIT;
  }
  return args;
}

/** Exchanges and queues shared by every app. Idempotent: run on every (re)connect. */
export async function declareSharedTopology(channel: Channel, names: BrokerNames): Promise<void> {
  await channel.assertExchange(names.deadLetterExchange, 'fanout', { durable: true });
  await channel.assertQueue(names.deadLetterQueue, { durable: true });
  await channel.bindQueue(names.deadLetterQueue, names.deadLetterExchange, '');
  await channel.assertExchange(names.controlExchange, 'fanout', { durable: true });
  await channel.assertExchange(names.observationsExchange, 'topic', { durable: true });
  await channel.assertQueue(names.stateQueue, {
    durable: true,
    arguments: { 'x-dead-letter-exchange': names.deadLetterExchange },
  });
}

export async function declareJobsQueue(
  channel: Channel,
  names: BrokerNames,
  pool: string,
  queueType: QueueType,
): Promise<string> {
  const queue = names.jobsQueue(pool);
  await channel.assertQueue(queue, { durable: true, arguments: jobsQueueArguments(names, queueType) });
  return queue;
}

/** A service's private cancel inbox: exclusive, so it disappears with the service's connection. */
export async function declareControlQueue(channel: Channel, names: BrokerNames, serviceId: string): Promise<string> {
  const queue = names.controlQueue(serviceId);
  await channel.assertQueue(queue, { exclusive: true, durable: false, autoDelete: true });
  await channel.bindQueue(queue, names.controlExchange, '');
  return queue;
}
