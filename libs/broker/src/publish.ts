import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message, Options } from 'amqplib';

/** The broker did not confirm in time: it may be blocked, overloaded or gone. The message may still arrive. */
export class PublishTimeoutError extends Error {
  override readonly name = 'PublishTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`the broker did not confirm the message within ${timeoutMs} ms`);
  }
}

/**
 * The broker blocks publishing connections while a resource alarm (memory or disk) is raised; a
 * message published now would wait in the socket until the alarm clears. Nothing was sent.
 */
export class BrokerBlockedError extends Error {
  override readonly name = 'BrokerBlockedError';
  constructor(readonly reason: string) {
    super(`the broker blocks publishing: ${reason}`);
  }
}

/** A mandatory message reached no queue (the queue was deleted, or is being re-declared). */
export class UnroutableError extends Error {
  override readonly name = 'UnroutableError';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(`no queue took the message (exchange "${exchange}", routing key "${routingKey}")`);
  }
}

const PUBLISH_ID_HEADER = 'x-vigil-publish-id';

export interface PublishOptions extends Options.Publish {
  /** Longest wait for the broker's confirm, ms. */
  timeoutMs: number;
}

/**
 * Confirmed publishing on one channel, where every publish ends: confirmed, refused, returned
 * unroutable (for `mandatory` messages), timed out, or refused at once while the connection is
 * blocked. A publish never hangs, so neither does whoever awaits it.
 */
export class ConfirmedPublisher {
  /** Mandatory messages in flight, by publish id: set when the broker returns one. */
  private readonly returned = new Map<string, boolean>();
  private blockedReason: string | undefined;
  private current: ConfirmChannel;
  private replacing: Promise<void> | undefined;

  /**
   * `openChannel` makes a replacement channel after a nack: RabbitMQ 3.10 goes on nacking every
   * message a channel sends to a quorum queue once one was nacked while the queue's leader was
   * down, when a fresh channel is accepted (seen in a private cluster, leader node killed).
   */
  constructor(
    channel: ConfirmChannel,
    private readonly openChannel?: () => Promise<ConfirmChannel>,
  ) {
    this.current = channel;
    this.watchReturns(channel);
  }

  get channel(): ConfirmChannel {
    return this.current;
  }

  /** Called by the connection's owner on `blocked` and `unblocked`. */
  setBlocked(reason: string | undefined): void {
    this.blockedReason = reason;
  }

  get blocked(): string | undefined {
    return this.blockedReason;
  }

  publish(exchange: string, routingKey: string, body: Buffer, options: PublishOptions): Promise<void> {
    if (this.blockedReason !== undefined) return Promise.reject(new BrokerBlockedError(this.blockedReason));
    const { timeoutMs, ...publishOptions } = options;
    // A returned message is matched to its publish by an id of its own, in a header: the
    // message id is the caller's (a job's observer id) and need not be unique.
    const id = publishOptions.mandatory ? randomUUID() : undefined;
    if (id) this.returned.set(id, false);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new PublishTimeoutError(timeoutMs)), timeoutMs);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        const wasReturned = id !== undefined && this.returned.get(id) === true;
        if (id) this.returned.delete(id);
        if (err) reject(err);
        else if (wasReturned) reject(new UnroutableError(exchange, routingKey));
        else resolve();
      };
      try {
        this.current.publish(
          exchange,
          routingKey,
          body,
          {
            contentType: 'application/json',
            persistent: true,
            ...publishOptions,
            ...(id
              ? { headers: { ...(publishOptions.headers as Record<string, unknown>), [PUBLISH_ID_HEADER]: id } }
              : {}),
          },
          (err: unknown) => {
            if (err) this.replaceChannel();
            finish(err ? (err instanceof Error ? err : new Error('the broker refused the message')) : undefined);
          },
        );
      } catch (err) {
        finish(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private watchReturns(channel: ConfirmChannel): void {
    channel.on('return', (message: Message) => {
      const id: unknown = message.properties.headers?.[PUBLISH_ID_HEADER];
      if (typeof id === 'string' && this.returned.has(id)) this.returned.set(id, true);
    });
  }

  private replaceChannel(): void {
    const open = this.openChannel;
    if (!open || this.replacing) return;
    const old = this.current;
    this.replacing = open()
      .then((channel) => {
        this.watchReturns(channel);
        this.current = channel;
        return old.close();
      })
      .catch(() => undefined)
      .finally(() => {
        this.replacing = undefined;
      });
  }
}
