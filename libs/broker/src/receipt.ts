import type { Channel, ConsumeMessage } from 'amqplib';

/**
 * Settling a delivery by its tag alone. A service holds each job for as long as its observer runs,
 * and holding the whole message would keep its properties, its body and the socket read it was
 * sliced from (up to 64 KB, shared with its neighbours) alive all that time. amqplib settles by
 * `fields.deliveryTag` only.
 */
export function ackTag(channel: Channel, deliveryTag: number): void {
  channel.ack({ fields: { deliveryTag } } as ConsumeMessage);
}

export function nackTag(channel: Channel, deliveryTag: number, requeue: boolean): void {
  channel.nack({ fields: { deliveryTag } } as ConsumeMessage, false, requeue);
}
