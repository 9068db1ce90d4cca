import * as amqp from 'amqplib';
import type { ChannelModel, RecoveringChannelModel } from 'amqplib';

export interface BrokerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RecoveringConnectionOptions {
  url: string;
  /** AMQP heartbeat in seconds: a peer silent for two of these is considered dead. */
  heartbeatS: number;
  /** Shown in the broker's management UI and `rabbitmqctl list_connections`. */
  connectionName: string;
  log: BrokerLogger;
  /** Runs on every successful (re)connect, before the connection counts as up; a throw retries. */
  setup: (connection: ChannelModel) => Promise<void>;
  /** Runs as soon as the connection is lost, before any reconnect attempt. */
  onDisconnect: (error: Error) => void;
  /** Reconnect backoff, ms. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * A connection that reconnects with capped exponential backoff (amqplib's recovery) and
 * re-runs `setup` every time, so topology and consumers are re-declared after each loss.
 * Resolves once the first connection is up; never gives up.
 */
export async function connectWithRecovery(options: RecoveringConnectionOptions): Promise<RecoveringChannelModel> {
  const { log } = options;
  const url = new URL(options.url);
  url.searchParams.set('heartbeat', String(options.heartbeatS));
  const connection = await amqp.connect(url.toString(), {
    noDelay: true,
    clientProperties: { connection_name: options.connectionName },
    recovery: {
      initialDelay: options.initialDelayMs ?? 200,
      maxDelay: options.maxDelayMs ?? 5_000,
      waitForConnect: false,
      setup: options.setup,
    },
  });
  connection.on('disconnect', (err: Error) => {
    log.warn({ err }, 'broker connection lost');
    options.onDisconnect(err);
  });
  connection.on('connect-failed', (err: Error) => log.warn({ err }, 'broker connection attempt failed'));
  connection.on('reconnect-scheduled', (info: { attempt: number; delay: number }) =>
    log.info({ attempt: info.attempt, delayMs: info.delay }, 'reconnecting to the broker'),
  );
  connection.on('connect', () => log.info({}, 'connected to the broker'));
  connection.on('error', (err: Error) => log.warn({ err }, 'broker connection error'));
  connection.on('handler-error', (err: Error, event: string) =>
    log.error({ err, event }, 'a broker event handler threw'),
  );
  await connection.waitForConnect();
  return connection;
}

/**
 * True when the broker closed a channel because a delivery stayed unacked longer than its
 * acknowledgement timeout (`consumer_timeout`).
 */
export function isDeliveryTimeout(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /delivery acknowledgement .*timed out/i.test(message);
}
