import type { Channel, ConsumeMessage } from 'amqplib';

/**
 * What settling a delivery needs: its tag. A service holds each job for as long as its observer
 * runs, and holding the whole message would keep its properties, its body and the socket read
 * it was sliced from (up to 64 KB, shared with its neighbours) alive all that time.
 */
export interface Receipt {
  readonly fields: { readonly deliveryTag: number };
}

export function receiptOf(message: ConsumeMessage): Receipt {
  return { fields: { deliveryTag: message.fields.deliveryTag } };
}

/** amqplib settles by `fields.deliveryTag` alone. */
export function ackReceipt(channel: Channel, receipt: Receipt): void {
  channel.ack(receipt as ConsumeMessage);
}

export function nackReceipt(channel: Channel, receipt: Receipt, requeue: boolean): void {
  channel.nack(receipt as ConsumeMessage, false, requeue);
}
