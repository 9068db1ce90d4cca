import type { Channel, ChannelModel, Replies } from 'amqplib';
import type { BrokerNames } from '@vigil/contracts';

export type QueueType = 'classic' | 'quorum';

/**
 * A job stays unacked for as long as its observer runs, so the broker's delivery-acknowledgement
 * timeout (30 minutes by default) would move every observer. Where brokers honour it, a
 * per-consumer `x-consumer-timeout` lifts it: quorum queues on RabbitMQ 4.3+. Classic queues
 * take no such argument (4.3+ never time them out; 3.x to 4.2 apply only the broker-wide
 * `consumer_timeout`, which deploy/rabbitmq/rabbitmq.conf raises), so none is sent for them.
 * ≈ 49.7 days: the largest value every timer implementation accepts; past it a delivery is
 * handled like a lost channel and the observer moves once.
 */
export const JOB_CONSUMER_TIMEOUT_MS = 2 ** 32 - 1;

export function jobConsumerArguments(queueType: QueueType): Record<string, unknown> {
  return queueType === 'quorum' ? { 'x-consumer-timeout': JOB_CONSUMER_TIMEOUT_MS } : {};
}

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

/**
 * Exchanges and queues shared by every app. Idempotent: run on every (re)connect. Returns how
 * the state queue was found (see `declareStateQueue`).
 *
 * The state and dead-letter queues take the jobs' queue type. A classic queue lives on the one
 * node it was declared on: in a cluster, while that node is down every app's declaration of it
 * fails (home node down), so no app could (re)connect and no state event could be sent.
 */
export async function declareSharedTopology(
  connection: ChannelModel,
  names: BrokerNames,
  queueType: QueueType,
): Promise<StateQueueShape> {
  const channel = await connection.createChannel();
  try {
    await channel.assertExchange(names.deadLetterExchange, 'fanout', { durable: true });
    await channel.assertQueue(names.deadLetterQueue, { durable: true, arguments: typedArguments(queueType) });
    await channel.bindQueue(names.deadLetterQueue, names.deadLetterExchange, '');
    await channel.assertExchange(names.controlExchange, 'fanout', { durable: true });
    await channel.assertExchange(names.observationsExchange, 'topic', { durable: true });
  } finally {
    await channel.close().catch(() => undefined);
  }
  return declareStateQueue(connection, names, queueType);
}

/**
 * A state event is requeued each time the manager loses its connection; brokers 4.x would
 * dead-letter it after 20 (the manager sets poison events aside itself, see StateConsumer).
 */
function typedArguments(queueType: QueueType): Record<string, unknown> {
  return queueType === 'quorum' ? { 'x-queue-type': 'quorum', 'x-delivery-limit': QUORUM_DELIVERY_LIMIT } : {};
}

export function stateQueueArguments(names: BrokerNames, queueType: QueueType): Record<string, unknown> {
  return {
    ...typedArguments(queueType),
    'x-dead-letter-exchange': names.deadLetterExchange,
    // The broker delivers to one manager at a time, in queue order, whatever number consume:
    // a manager taking over gets nothing until the previous one's consumer is gone.
    'x-single-active-consumer': true,
  };
}

/**
 * `current`: the state queue has single-active-consumer. `legacy`: a version before it declared
 * the queue, and RabbitMQ cannot add an argument to an existing queue; the queue is used as it
 * is until the active manager replaces it (see the manager's StateQueueMigration).
 */
export type StateQueueShape = 'current' | 'legacy';

export async function declareStateQueue(
  connection: ChannelModel,
  names: BrokerNames,
  queueType: QueueType,
): Promise<StateQueueShape> {
  // A refused declaration closes its channel, so it gets one of its own.
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.assertQueue(names.stateQueue, { durable: true, arguments: stateQueueArguments(names, queueType) });
    await channel.close().catch(() => undefined);
    return 'current';
  } catch (err) {
    if (!isLegacyStateQueue(err)) throw err;
    return 'legacy';
  }
}

/** The broker's answer to declaring, with single-active-consumer, a queue declared without it. */
function isLegacyStateQueue(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /PRECONDITION.FAILED.*inequivalent arg 'x-single-active-consumer'/i.test(message);
}

/** Declares a pool's jobs queue; the answer carries its ready messages and consumers. */
export async function declareJobsQueue(
  channel: Channel,
  names: BrokerNames,
  pool: string,
  queueType: QueueType,
): Promise<Replies.AssertQueue> {
  return channel.assertQueue(names.jobsQueue(pool), { durable: true, arguments: jobsQueueArguments(names, queueType) });
}

/** A service's private cancel inbox: exclusive, so it disappears with the service's connection. */
export async function declareControlQueue(channel: Channel, names: BrokerNames, serviceId: string): Promise<string> {
  const queue = names.controlQueue(serviceId);
  await channel.assertQueue(queue, { exclusive: true, durable: false, autoDelete: true });
  await channel.bindQueue(queue, names.controlExchange, '');
  return queue;
}
