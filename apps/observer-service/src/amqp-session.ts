import {
  ConfirmedPublisher,
  UnroutableError,
  ackTag,
  connectWithRecovery,
  declareControlQueue,
  declareJobsQueue,
  declareSharedTopology,
  declareStateQueue,
  isDeliveryTimeout,
  jobConsumerArguments,
  nackTag,
  type Channel,
  type ChannelModel,
  type ConsumeMessage,
  type QueueType,
  type RecoveringChannelModel,
} from '@vigil/broker';
import {
  ControlMessage,
  brokerNames,
  decodeMessage,
  encodeMessage,
  type BrokerNames,
  type ReleaseReason,
  type StateEvent,
} from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { JobTransport, Settlement } from './observer-host';
import type { CancelHow } from './observer-notes';
import { TurnQueue } from './turn-queue';

/** Longest wait for the broker to confirm a state event, ms: a publish never hangs. */
const STATE_PUBLISH_TIMEOUT_MS = 5_000;
/** How often the stall watch looks at the clock, ms. */
const STALL_TICK_MS = 250;
/** How long jobs, or control messages, are handled per turn of the event loop in a burst, ms (see TurnQueue). */
const TURN_BUDGET_MS = 10;
/** A consume connection waits this long for the publish connection before it retries, ms. */
const PUBLISH_CONNECTION_WAIT_MS = 10_000;

/** The jobs channel of one consume connection; a new one starts with every reconnect. */
class JobsSession {
  alive = true;
  /** Job consumer tags by queue, while consuming. */
  readonly consumers = new Map<string, string>();

  constructor(
    readonly connection: ChannelModel,
    readonly jobs: Channel,
  ) {}
}

/** A job delivered and not settled yet: the session it came on and its tag (not the message: see ackTag). */
export class JobDelivery {
  constructor(
    readonly session: JobsSession,
    readonly tag: number,
    readonly redelivered: boolean,
  ) {}
}

/** What the session hands on to the rest of the service. */
export interface SessionEvents {
  job(delivery: JobDelivery, content: Buffer): void;
  cancel(observerId: string, how: CancelHow, receivedAt: number): void;
  release(observerId: string, generation: number, reason: ReleaseReason): void;
  /** The manager answered this service's `service.draining`: these observers are being moved. */
  drainAccepted(moving: readonly string[], requestId: string | undefined): void;
  /** An operator drains the service (or lets it take jobs again). */
  drain(draining: boolean): void;
  /** The manager asks for these copies to be moved (`service.shed`). */
  shed(purpose: 'rebalance' | 'rotate', observerIds: readonly string[]): void;
  /** The manager asks for a full listing of what the service holds (`service.list`). */
  listingWanted(): void;
  /** A consume connection is up and its control queue bound; resolves once announced (born). */
  opened(): Promise<void>;
  /** The consume connection is lost: the broker has requeued every job delivered on it. */
  lost(): void;
  /** The publish connection is back after a loss: what was reported meanwhile may be missing. */
  republish(): void;
  /** The observations channel has room again (or the broker unblocked publishing). */
  observationsDrained(): void;
}

export interface AmqpSessionOptions {
  serviceId: string;
  serviceName: string;
  amqpUrl: string;
  prefix: string;
  queueType: QueueType;
  amqpHeartbeatS: number;
  pools: readonly string[];
  capacity: number;
  events: SessionEvents;
  log: Logger;
}

/**
 * The service's side of the broker. Jobs and control messages come on one connection, state
 * events and observations leave on another: in a memory or disk alarm RabbitMQ blocks connections
 * that publish, and acks, cancels and releases must keep flowing meanwhile. Each connection
 * reconnects by itself; losing the consume connection aborts every observer delivered on it.
 */
export class AmqpSession implements JobTransport<JobDelivery> {
  private readonly names: BrokerNames;
  private consume: RecoveringChannelModel | undefined;
  private produce: RecoveringChannelModel | undefined;
  private jobsSession: JobsSession | undefined;
  private publisher: ConfirmedPublisher | undefined;
  private observations: Channel | undefined;
  private publishConnection: ChannelModel | undefined;
  private stallWatch: NodeJS.Timeout | undefined;
  private lastTick = 0;
  private closing = false;
  /** An operator drain holds the job consumers back (see setDrained). */
  private drained = false;
  private readonly jobs = new TurnQueue<{ session: JobsSession; queue: string; msg: ConsumeMessage }>(
    TURN_BUDGET_MS,
    ({ session, queue, msg }) => this.handJob(session, queue, msg),
    (err) => this.options.log.error({ err: coerceError(err) }, 'could not handle a job message'),
  );
  private readonly controls = new TurnQueue<{ msg: ConsumeMessage; receivedAt: number }>(
    TURN_BUDGET_MS,
    ({ msg, receivedAt }) => this.handControl(msg, receivedAt),
    (err) => this.options.log.error({ err: coerceError(err) }, 'could not handle a control message'),
  );
  /** Resolves when the publish connection is (next) up. */
  private publishReady: { promise: Promise<void>; resolve: () => void };

  constructor(private readonly options: AmqpSessionOptions) {
    this.names = brokerNames(options.prefix);
    this.publishReady = deferred();
  }

  /** Resolves once both connections are up and jobs are being consumed. */
  async start(): Promise<void> {
    const { options } = this;
    const common = {
      url: options.amqpUrl,
      heartbeatS: options.amqpHeartbeatS,
      log: options.log,
    };
    this.produce = await connectWithRecovery({
      ...common,
      connectionName: `vigil observer-service ${options.serviceName} ${options.serviceId} (publish)`,
      setup: (connection) => this.openPublishing(connection),
      onDisconnect: () => this.publishLost(),
      onBlocked: (reason) => {
        this.publisher?.setBlocked(reason);
        if (reason === undefined) options.events.observationsDrained();
      },
    });
    this.consume = await connectWithRecovery({
      ...common,
      connectionName: `vigil observer-service ${options.serviceName} ${options.serviceId}`,
      setup: (connection) => this.openConsuming(connection),
      onDisconnect: () => this.consumeLost(),
    });
    this.watchForStalls();
  }

  /** The broker blocks publishing (a resource alarm): observations are held back, then dropped. */
  get blocked(): boolean {
    return this.publisher?.blocked !== undefined;
  }

  /**
   * Drained by an operator: no consumers (held jobs stay held) until undrained, also across
   * reconnects. Undrained, a single pool's consumer comes back with the slots left as its
   * prefetch, since the jobs still held count against the old consumer, not the new one.
   */
  async setDrained(drained: boolean, held: number): Promise<void> {
    if (this.drained === drained) return;
    this.drained = drained;
    const session = this.jobsSession;
    if (!session?.alive || this.closing) return;
    if (drained) {
      await this.pauseConsuming(session);
      return;
    }
    const { capacity, pools } = this.options;
    await session.jobs.prefetch(pools.length > 1 ? capacity : Math.max(1, capacity - held), false);
    await this.resumeConsuming(session);
  }

  /** Stops taking jobs (consumers cancelled); held jobs stay held until settled. */
  async stopConsuming(): Promise<void> {
    this.closing = true;
    clearInterval(this.stallWatch);
    const session = this.jobsSession;
    if (session?.alive) await this.pauseConsuming(session).catch((err: unknown) => this.warn(err, 'cancel consumers'));
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.stallWatch);
    await Promise.allSettled([this.consume?.close(), this.produce?.close()]);
  }

  /** Publishes a state event; a deleted or re-declared state queue is declared again and the event resent. */
  async sendState(event: StateEvent): Promise<void> {
    if (this.checkStall()) throw new Error('the process was frozen; what it held is gone');
    try {
      await this.publishState(event);
    } catch (err) {
      if (!(err instanceof UnroutableError) || !this.publishConnection) throw err;
      await declareStateQueue(this.publishConnection, this.names, this.options.queueType);
      await this.publishState(event);
    }
  }

  /** Sends an observation (see SendObservation). */
  sendObservation(routingKey: string, body: Buffer): 'sent' | 'full' | 'closed' {
    const channel = this.observations;
    if (!channel || this.blocked) return 'closed';
    try {
      const room = channel.publish(this.names.observationsExchange, routingKey, body, {
        contentType: 'application/json',
      });
      return room ? 'sent' : 'full';
    } catch (err) {
      this.warn(err, 'publish an observation');
      return 'closed';
    }
  }

  isLive(delivery: JobDelivery): boolean {
    return delivery.session.alive;
  }

  wasRedelivered(delivery: JobDelivery): boolean {
    return delivery.redelivered;
  }

  /** Acks, requeues or dead-letters a job on the channel it came from, if that is still open. */
  settle(delivery: JobDelivery, how: Settlement): void {
    const { session } = delivery;
    if (!session.alive) return;
    try {
      if (how === 'ack') ackTag(session.jobs, delivery.tag);
      else nackTag(session.jobs, delivery.tag, how === 'requeue');
    } catch (err) {
      this.warn(err, `settle a job (${how})`);
    }
  }

  /**
   * Prefetch bounds each pool's consumer; with several pools the sum could exceed capacity, so
   * a full service stops consuming until a slot frees.
   */
  heldChanged(held: number): void {
    const session = this.jobsSession;
    if (this.options.pools.length < 2 || !session?.alive || this.closing || this.drained) return;
    const full = held >= this.options.capacity;
    const consuming = session.consumers.size > 0;
    if (full === !consuming) return;
    const change = full ? this.pauseConsuming(session) : this.resumeConsuming(session);
    change.catch((err: unknown) => this.warn(err, full ? 'pause consuming' : 'resume consuming'));
  }

  private async openPublishing(connection: ChannelModel): Promise<void> {
    const failed = (err: Error) => {
      this.options.log.error({ err }, 'a publishing channel failed; reconnecting');
      connection.close().catch(() => undefined);
    };
    const openState = async () => {
      const channel = await connection.createConfirmChannel();
      channel.on('error', failed);
      return channel;
    };
    const state = await openState();
    const observations = await connection.createChannel();
    observations.on('error', failed);
    observations.on('drain', () => this.options.events.observationsDrained());
    await declareSharedTopology(connection, this.names, this.options.queueType);
    this.publisher = new ConfirmedPublisher(state, openState);
    this.observations = observations;
    this.publishConnection = connection;
    this.publishReady.resolve();
    this.options.events.observationsDrained();
    // Back after a loss while jobs kept running: what was reported meanwhile may be missing.
    if (this.jobsSession?.alive) this.options.events.republish();
  }

  private publishLost(): void {
    this.publisher = undefined;
    this.observations = undefined;
    this.publishConnection = undefined;
    this.publishReady = deferred();
  }

  private publishState(event: StateEvent): Promise<void> {
    const publisher = this.publisher;
    if (!publisher) return Promise.reject(new Error('not connected to the broker'));
    return publisher.publish('', this.names.stateQueue, encodeMessage(event), {
      type: event.type,
      mandatory: true,
      timeoutMs: STATE_PUBLISH_TIMEOUT_MS,
    });
  }

  private async openConsuming(connection: ChannelModel): Promise<void> {
    const jobs = await connection.createChannel();
    const control = await connection.createChannel();
    const session = new JobsSession(connection, jobs);
    for (const channel of [jobs, control]) {
      channel.on('error', (err: Error) => this.channelLost(session, err));
      channel.on('close', () => this.channelLost(session, new Error('channel closed')));
    }
    await declareSharedTopology(connection, this.names, this.options.queueType);
    for (const pool of this.options.pools) await declareJobsQueue(jobs, this.names, pool, this.options.queueType);
    const controlQueue = await declareControlQueue(control, this.names, this.options.serviceId);
    await control.consume(controlQueue, (msg) => this.onControl(session, msg), { noAck: true });
    this.jobsSession = session;
    // Announced before consuming, so the manager learns of a restart before its new placements.
    await withTimeout(this.publishReady.promise, PUBLISH_CONNECTION_WAIT_MS, 'the publish connection is down');
    await this.options.events.opened();
    if (this.closing || this.drained) return;
    // Per-consumer prefetch (global QoS is deprecated and refused by brokers 4.3+).
    await jobs.prefetch(this.options.capacity, false);
    await this.resumeConsuming(session);
  }

  private async resumeConsuming(session: JobsSession): Promise<void> {
    for (const pool of this.options.pools) {
      const queue = this.names.jobsQueue(pool);
      if (session.consumers.has(queue)) continue;
      session.consumers.set(queue, '');
      const { consumerTag } = await session.jobs.consume(queue, (msg) => this.onJob(session, queue, msg), {
        noAck: false,
        arguments: jobConsumerArguments(this.options.queueType),
      });
      session.consumers.set(queue, consumerTag);
    }
  }

  private async pauseConsuming(session: JobsSession): Promise<void> {
    const tags = [...session.consumers.values()];
    session.consumers.clear();
    for (const tag of tags) if (tag) await session.jobs.cancel(tag);
  }

  private onJob(session: JobsSession, queue: string, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled our consumer: the queue was deleted, or (brokers 4.3+ on quorum
      // queues) a delivery outlived its acknowledgement timeout and was taken back.
      this.options.log.error(
        { queue },
        'the broker cancelled the job consumer; if deliveries timed out, raise consumer_timeout ' +
          '(broker config) or x-consumer-timeout; reconnecting',
      );
      this.forceReconnect(session);
      return;
    }
    this.jobs.push({ session, queue, msg });
  }

  private handJob(session: JobsSession, queue: string, msg: ConsumeMessage): void {
    // Delivered on a connection since lost: the broker has requeued it.
    if (!session.alive) return;
    const delivery = new JobDelivery(session, msg.fields.deliveryTag, msg.fields.redelivered);
    try {
      this.options.events.job(delivery, msg.content);
    } catch (err) {
      this.options.log.error({ err: coerceError(err), queue }, 'could not handle a job message; requeueing it');
      this.settle(delivery, 'requeue');
    }
  }

  private onControl(session: JobsSession, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.options.log.error({}, 'the broker cancelled the control consumer; reconnecting');
      this.forceReconnect(session);
      return;
    }
    this.controls.push({ msg, receivedAt: performance.now() });
  }

  private handControl(msg: ConsumeMessage, receivedAt: number): void {
    const decoded = decodeMessage(ControlMessage, msg.content);
    if (!decoded.ok) {
      this.options.log.warn({ error: decoded.error }, 'invalid control message; dropped');
      return;
    }
    const message = decoded.value;
    switch (message.type) {
      case 'observer.cancel':
        this.options.events.cancel(
          message.observerId,
          { deadLetter: message.deadLetter, ...(message.upTo === undefined ? {} : { upTo: message.upTo }) },
          receivedAt,
        );
        return;
      case 'observer.release':
        if (message.serviceId !== this.options.serviceId) {
          this.options.log.warn({ addressee: message.serviceId }, 'a release for another service; ignored');
          return;
        }
        this.options.events.release(message.observerId, message.generation, message.reason);
        return;
      case 'service.drain-accepted':
        if (message.serviceId !== this.options.serviceId) return;
        this.options.events.drainAccepted(message.moving, message.requestId);
        return;
      case 'service.drain':
        if (message.serviceId !== this.options.serviceId) return;
        this.options.events.drain(message.draining);
        return;
      case 'service.shed':
        if (message.serviceId !== this.options.serviceId) return;
        this.options.events.shed(message.purpose, message.observerIds);
        return;
      case 'service.list':
        if (message.serviceId !== undefined && message.serviceId !== this.options.serviceId) return;
        this.options.events.listingWanted();
        return;
    }
  }

  private consumeLost(): void {
    const session = this.jobsSession;
    if (!session?.alive) return;
    session.alive = false;
    this.options.events.lost();
  }

  private channelLost(session: JobsSession, err: Error): void {
    if (!session.alive || this.closing) return;
    if (isDeliveryTimeout(err)) {
      this.options.log.error(
        { err },
        'the broker timed out an unacked job delivery and closed the channel; observers hold their job for as long ' +
          'as they run, so raise the broker setting consumer_timeout (rabbitmq.conf, see deploy/rabbitmq/); ' +
          'aborting the observers and consuming again',
      );
    } else {
      this.options.log.error({ err }, 'a broker channel closed unexpectedly; aborting observers and reconnecting');
    }
    this.forceReconnect(session);
  }

  /** One path for every loss: close the whole connection, and recovery builds a new session. */
  private forceReconnect(session: JobsSession): void {
    if (!session.alive) return;
    this.consumeLost();
    session.connection.close().catch(() => undefined);
  }

  /**
   * A process frozen (SIGSTOP, a VM pause) longer than the AMQP heartbeat timeout has lost its
   * jobs to other services; once it runs again it must stop them before doing anything else.
   */
  private watchForStalls(): void {
    this.lastTick = performance.now();
    this.stallWatch = setInterval(() => this.checkStall(), STALL_TICK_MS);
    this.stallWatch.unref();
  }

  /**
   * True (and the connections are dropped) when the process has not run for longer than the
   * broker waits for a heartbeat. Checked before every state event as well: after a freeze, the
   * timers that fire first may be a heartbeat's, and a heartbeat sent over a publish connection
   * the broker has not dropped yet would claim jobs it has already handed to others.
   */
  private checkStall(): boolean {
    const now = performance.now();
    const stalledMs = now - this.lastTick - STALL_TICK_MS;
    this.lastTick = now;
    const limitMs = Math.max(2 * this.options.amqpHeartbeatS * 1000, 2 * STALL_TICK_MS);
    const session = this.jobsSession;
    if (stalledMs <= limitMs || !session?.alive) return false;
    this.options.log.error(
      { stalledMs: Math.round(stalledMs) },
      'process was frozen past the broker heartbeat timeout; reconnecting',
    );
    this.forceReconnect(session);
    this.publishConnection?.close().catch(() => undefined);
    return true;
  }

  private warn(err: unknown, what: string): void {
    this.options.log.warn({ err: coerceError(err) }, `could not ${what}`);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} (waited ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
