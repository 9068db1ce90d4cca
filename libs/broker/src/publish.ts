import type { ConfirmChannel, Options } from 'amqplib';

/** Publishes and resolves once the broker has confirmed the message (publisher confirms). */
export function publishConfirmed(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Buffer,
  options: Options.Publish = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(
      exchange,
      routingKey,
      body,
      { contentType: 'application/json', persistent: true, ...options },
      (err: unknown) =>
        err ? reject(err instanceof Error ? err : new Error('the broker refused the message')) : resolve(),
    );
  });
}
