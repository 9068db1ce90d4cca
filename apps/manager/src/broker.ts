import { randomUUID } from 'node:crypto';
import {
  ConfirmedPublisher,
  UnroutableError,
  connectWithRecovery,
  declareJobsQueue,
  declareSharedTopology,
  declareStateQueue,
  stateQueueArguments,
  type Channel,
  type ChannelModel,
  type ConsumeMessage,
  type QueueType,
  type RecoveringChannelModel,
  type StateQueueShape,
} from '@vigil/broker';
import {
  brokerNames,
  encodeMessage,
  type BrokerNames,
  type CancelMessage,
  type JobMessage,
  type DrainAcceptedMessage,
  type ServiceDrainMessage,
  type ServiceListMessage,
  type ServiceShedMessage,
  type ReleaseMessage,
  type StateEvent,
} from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { Release } from './state/placement-rules';

/** How many state events may be in flight to the manager at once. */
const STATE_PREFETCH = 1000;
/**
 * Longest wait for the broker to confirm a message, ms. A create answers within 5 s whatever the
 * broker does; the rest of its budget goes to the database.
 */
export const PUBLISH_TIMEOUT_MS = 3_000;

export interface StateDelivery {
  readonly message: ConsumeMessage;
  ack(): void;
  /** Dead-letters it (it goes to `<prefix>.dead-letter`). */
  reject(): void;
}

/** Observations waiting for this manager at most; older ones are dropped. */
const OBSERVATION_TAP_LENGTH = 10_000;

export interface ManagerBrokerOptions {
  url: string;
  prefix: string;
  queueType: QueueType;
  heartbeatS: number;
  log: Logger;
  /** Called for every state message, in queue order, while this manager consumes the state queue. */
  onStateMessage: (delivery: StateDelivery) => void;
  /** Every observation published, as it comes (a bounded queue of this manager's own: under load the oldest are dropped). */
  onObservation: (routingKey: string, body: Buffer) => void;
  /** The broker blocked publishing (`reason`: which alarm), or unblocked it (`undefined`). */
  onBlocked: (reason: string | undefined) => void;
}

interface Publishing {
  readonly connection: ChannelModel;
  readonly publisher: ConfirmedPublisher;
  /** Pools whose jobs queue was declared on this connection. */
  readonly declaredPools: Set<string>;
}

interface Consuming {
  readonly connection: ChannelModel;
  /** Passive looks at queues; a refused look closes a channel, so they have one of their own. */
  inspect: Channel | undefined;
  /** The state queue's consumer, while this manager is the active one. */
  state: { channel: Channel; consumerTag: string } | undefined;
  stateShape: StateQueueShape;
}

/**
 * The manager's side of the broker. It publishes (jobs, cancels, releases, barriers) on one
 * connection and consumes the state queue on another: in a memory or disk alarm RabbitMQ blocks
 * publishing connections, and state must keep flowing meanwhile. Only the active manager consumes
 * the state queue.
 */
export class ManagerBroker {
  readonly names: BrokerNames;
  private publishModel: RecoveringChannelModel | undefined;
  private consumeModel: RecoveringChannelModel | undefined;
  private publishing: Publishing | undefined;
  private consuming: Consuming | undefined;
  /** Whether this manager should consume the state queue (it is the active one). */
  private wantState = false;

  constructor(private readonly options: ManagerBrokerOptions) {
    this.names = brokerNames(options.prefix);
  }

  get connected(): boolean {
    return this.publishing !== undefined && this.consuming !== undefined;
  }

  /** Why the broker blocks publishing (a memory or disk alarm), while it does. */
  get blocked(): string | undefined {
    return this.publishing?.publisher.blocked;
  }

  /** The state queue was declared by a version before single-active-consumer. */
  get stateQueueLegacy(): boolean {
    return this.consuming?.stateShape === 'legacy';
  }

  async start(): Promise<void> {
    const { options } = this;
    const common = { url: options.url, heartbeatS: options.heartbeatS, log: options.log };
    this.publishModel = await connectWithRecovery({
      ...common,
      connectionName: `vigil manager ${process.pid} (publish)`,
      setup: (connection) => this.openPublishing(connection),
      onDisconnect: () => {
        this.publishing = undefined;
      },
      onBlocked: (reason) => {
        this.publishing?.publisher.setBlocked(reason);
        options.onBlocked(reason);
      },
    });
    this.consumeModel = await connectWithRecovery({
      ...common,
      connectionName: `vigil manager ${process.pid}`,
      setup: (connection) => this.openConsuming(connection),
      onDisconnect: () => {
        this.consuming = undefined;
      },
    });
  }

  async close(): Promise<void> {
    this.publishing = undefined;
    this.consuming = undefined;
    await Promise.allSettled([this.consumeModel?.close(), this.publishModel?.close()]);
  }

  /** Starts consuming the state queue (this manager became the active one). */
  async consumeState(): Promise<void> {
    this.wantState = true;
    const consuming = this.consuming;
    if (consuming && !consuming.state) await this.startStateConsumer(consuming);
    this.refreshListings();
  }

  /**
   * A manager that has just become active, or whose publishing connection was lost (and with it,
   * perhaps, releases and cancels it meant to send), learns afresh what every service holds.
   */
  private refreshListings(): void {
    if (!this.wantState || !this.publishing) return;
    this.askForListings().catch((err: unknown) =>
      this.options.log.warn({ err: coerceError(err) }, 'could not ask the services for their listings'),
    );
  }

  /**
   * Stops consuming the state queue: its channel closes, and the broker requeues what was
   * delivered and not yet acked, in order, for the next active manager.
   */
  async stopConsumingState(): Promise<void> {
    this.wantState = false;
    const state = this.consuming?.state;
    if (!state || !this.consuming) return;
    this.consuming.state = undefined;
    await state.channel.close().catch(() => undefined);
  }

  async publishJob(job: JobMessage): Promise<void> {
    const publishing = this.requirePublishing();
    await this.declarePools(publishing, [job]);
    await this.sendJob(publishing, job);
  }

  /**
   * A move: the next generation of each copy, then the answer that names them
   * (`service.drain-accepted`), written to one channel in that order without a wait between. The
   * broker takes a channel's messages in order, so a service that got the answer knows the jobs
   * are queued, whenever this manager dies. (Answered after the jobs' confirms, a manager killed in
   * between would leave the service without an answer: it would hand its copies back while their
   * next generations ran elsewhere, two copies until a manager came back.) A job the broker then
   * refuses is lost to the move; the service drops its copy as moved, and the observer runs again
   * once the lost-job audit publishes it. Resolves with each job's outcome once the answer is sent.
   */
  async publishMove(
    serviceId: string,
    jobs: readonly JobMessage[],
    requestId: string | undefined,
  ): Promise<PromiseSettledResult<void>[]> {
    const publishing = this.requirePublishing();
    await this.declarePools(publishing, jobs);
    const confirms = jobs.map((job) => this.sendJob(publishing, job));
    const answered = this.sendDrainAccepted(
      serviceId,
      jobs.map((job) => job.observerId),
      requestId,
    );
    // Both awaited at once: an answer refused while the confirms are still out is not left unhandled.
    const [outcomes] = await Promise.all([Promise.allSettled(confirms), answered]);
    return outcomes;
  }

  /** A message published to a queue that does not exist yet would be dropped silently. */
  private async declarePools(publishing: Publishing, jobs: readonly JobMessage[]): Promise<void> {
    for (const pool of new Set(jobs.map((job) => job.pool))) {
      if (!publishing.declaredPools.has(pool)) await this.declarePool(publishing, pool);
    }
  }

  /** Writes the job to the channel at once (before its first wait), then waits for its confirm. */
  private async sendJob(publishing: Publishing, job: JobMessage): Promise<void> {
    const send = () =>
      publishing.publisher.publish('', this.names.jobsQueue(job.pool), encodeMessage(job), {
        messageId: job.observerId,
        mandatory: true,
        timeoutMs: PUBLISH_TIMEOUT_MS,
      });
    try {
      await send();
    } catch (err) {
      // The queue was deleted under us: declare it again and send once more.
      if (!(err instanceof UnroutableError)) throw err;
      await this.declarePool(publishing, job.pool);
      await send();
    }
  }

  /** `deadLetter`: the holder dead-letters the job instead of dropping it (a crash loop). */
  async broadcastCancels(observerIds: readonly string[], { deadLetter = false } = {}): Promise<void> {
    if (observerIds.length === 0) return;
    const { publisher } = this.requirePublishing();
    const requestedAt = new Date().toISOString();
    await Promise.all(
      observerIds.map((observerId) => {
        const cancel: CancelMessage = { type: 'observer.cancel', observerId, requestedAt, deadLetter };
        return publisher.publish(this.names.controlExchange, '', encodeMessage(cancel), {
          persistent: false,
          timeoutMs: PUBLISH_TIMEOUT_MS,
        });
      }),
    );
  }

  /**
   * Pauses: every service stops its copy of each observer if it is of that generation or older,
   * and drops jobs of those generations that reach it later; a later generation (once resumed)
   * runs as usual.
   */
  async broadcastPauses(copies: readonly { observerId: string; generation: number }[]): Promise<void> {
    if (copies.length === 0) return;
    const { publisher } = this.requirePublishing();
    const requestedAt = new Date().toISOString();
    await Promise.all(
      copies.map(({ observerId, generation }) => {
        const cancel: CancelMessage = {
          type: 'observer.cancel',
          observerId,
          requestedAt,
          deadLetter: false,
          upTo: generation,
        };
        return publisher.publish(this.names.controlExchange, '', encodeMessage(cancel), {
          persistent: false,
          timeoutMs: PUBLISH_TIMEOUT_MS,
        });
      }),
    );
  }

  /**
   * Each release goes to its service's own control queue only. A service that is gone has no
   * queue, and its release is dropped by the broker: the copy went with it.
   */
  async sendReleases(releases: readonly Release[]): Promise<void> {
    if (releases.length === 0) return;
    const { publisher } = this.requirePublishing();
    const requestedAt = new Date().toISOString();
    await Promise.all(
      releases.map((release) => {
        const message: ReleaseMessage = {
          type: 'observer.release',
          observerId: release.observerId,
          generation: release.generation,
          serviceId: release.serviceId,
          reason: release.reason,
          requestedAt,
        };
        return publisher.publish('', this.names.controlQueue(release.serviceId), encodeMessage(message), {
          persistent: false,
          timeoutMs: PUBLISH_TIMEOUT_MS,
        });
      }),
    );
  }

  /** Tells a draining service which of its observers the manager is moving (see `DrainAcceptedMessage`). */
  private sendDrainAccepted(
    serviceId: string,
    moving: readonly string[],
    requestId: string | undefined,
  ): Promise<void> {
    return this.sendToService({
      type: 'service.drain-accepted',
      serviceId,
      moving: [...moving],
      ...(requestId === undefined ? {} : { requestId }),
      requestedAt: new Date().toISOString(),
    });
  }

  /** Drains or undrains one service (see `ServiceDrainMessage`). */
  sendServiceDrain(serviceId: string, draining: boolean): Promise<void> {
    return this.sendToService({ type: 'service.drain', serviceId, draining, requestedAt: new Date().toISOString() });
  }

  /** Asks one service to have these copies moved (see `ServiceShedMessage`). */
  sendShed(serviceId: string, purpose: ServiceShedMessage['purpose'], observerIds: readonly string[]): Promise<void> {
    return this.sendToService({
      type: 'service.shed',
      serviceId,
      purpose,
      observerIds: [...observerIds],
      requestedAt: new Date().toISOString(),
    });
  }

  /**
   * Asks services for their full listing (see `ServiceListMessage`): these ones, or every service
   * when none is named.
   */
  async askForListings(serviceIds?: readonly string[]): Promise<void> {
    const requestedAt = new Date().toISOString();
    if (serviceIds === undefined) {
      const message: ServiceListMessage = { type: 'service.list', requestedAt };
      await this.requirePublishing().publisher.publish(this.names.controlExchange, '', encodeMessage(message), {
        persistent: false,
        timeoutMs: PUBLISH_TIMEOUT_MS,
      });
      return;
    }
    await Promise.all(
      serviceIds.map((serviceId) => this.sendToService({ type: 'service.list', serviceId, requestedAt })),
    );
  }

  /** Through the default exchange to the service's own control queue: no other service sees it. */
  private async sendToService(
    message:
      DrainAcceptedMessage | ServiceDrainMessage | ServiceShedMessage | (ServiceListMessage & { serviceId: string }),
  ): Promise<void> {
    const queue = this.names.controlQueue(message.serviceId);
    await this.requirePublishing().publisher.publish('', queue, encodeMessage(message), {
      persistent: false,
      timeoutMs: PUBLISH_TIMEOUT_MS,
    });
  }

  /** Puts a barrier at the end of the state queue (see `ManagerBarrier`). */
  async publishBarrier(barrierId: string): Promise<void> {
    const barrier: StateEvent = { type: 'manager.barrier', barrierId, at: new Date().toISOString() };
    await this.requirePublishing().publisher.publish('', this.names.stateQueue, encodeMessage(barrier), {
      persistent: false,
      timeoutMs: PUBLISH_TIMEOUT_MS,
    });
  }

  /** Messages ready in the state queue (not counting those already delivered to us). */
  async stateBacklog(): Promise<number> {
    return (await this.inspect((channel) => channel.checkQueue(this.names.stateQueue))).messageCount;
  }

  /** Jobs ready (waiting for a free slot) in a pool's queue. */
  async readyJobs(pool: string): Promise<number> {
    const reply = await this.inspect((channel) => declareJobsQueue(channel, this.names, pool, this.options.queueType));
    return reply.messageCount;
  }

  /**
   * Replaces a state queue declared by a version before single-active-consumer, once it is
   * empty: the state consumer is paused, the queue deleted only if nothing is in it, declared
   * again with the argument, and consumed again. Services publish state events as mandatory
   * messages: one that finds no queue meanwhile comes back to its service, which declares the
   * queue again and resends it. Returns whether the queue was replaced.
   */
  async replaceLegacyStateQueue(whenApplied: () => Promise<void>): Promise<boolean> {
    const consuming = this.consuming;
    const state = consuming?.state;
    if (!consuming || !state || consuming.stateShape !== 'legacy') return false;
    // Cancelled, not closed: what was delivered is applied and acked on this channel first.
    await state.channel.cancel(state.consumerTag);
    try {
      await whenApplied();
      const scratch = await consuming.connection.createChannel();
      scratch.on('error', () => undefined);
      try {
        await scratch.deleteQueue(this.names.stateQueue, { ifEmpty: true });
        await scratch.close().catch(() => undefined);
      } catch (err) {
        this.options.log.info({ err: coerceError(err) }, 'the legacy state queue is not empty yet; trying later');
        return false;
      }
      consuming.stateShape = await declareStateQueue(consuming.connection, this.names, this.options.queueType);
      this.options.log.warn(
        { queue: this.names.stateQueue, arguments: stateQueueArguments(this.names, this.options.queueType) },
        'replaced the legacy state queue with one that has single-active-consumer',
      );
      return consuming.stateShape === 'current';
    } finally {
      if (consuming.state === state) {
        consuming.state = undefined;
        await state.channel.close().catch(() => undefined);
      }
      if (this.wantState && this.consuming === consuming) await this.startStateConsumer(consuming);
    }
  }

  private requirePublishing(): Publishing {
    if (!this.publishing) throw new BrokerUnavailableError();
    return this.publishing;
  }

  private async declarePool(publishing: Publishing, pool: string): Promise<void> {
    await this.inspect((channel) => declareJobsQueue(channel, this.names, pool, this.options.queueType));
    publishing.declaredPools.add(pool);
  }

  /** Runs `look` on the inspection channel, opening a new one if the last was closed. */
  private async inspect<T>(look: (channel: Channel) => Promise<T>): Promise<T> {
    const consuming = this.consuming;
    if (!consuming) throw new BrokerUnavailableError();
    if (!consuming.inspect) {
      const channel = await consuming.connection.createChannel();
      channel.on('error', (err: Error) => this.options.log.warn({ err }, 'a queue inspection failed'));
      channel.on('close', () => {
        if (consuming.inspect === channel) consuming.inspect = undefined;
      });
      consuming.inspect = channel;
    }
    return look(consuming.inspect);
  }

  private async openPublishing(connection: ChannelModel): Promise<void> {
    const open = async () => {
      const channel = await connection.createConfirmChannel();
      channel.on('error', (err: Error) => {
        this.options.log.error({ err }, 'the publishing channel failed; reconnecting');
        connection.close().catch(() => undefined);
      });
      return channel;
    };
    const channel = await open();
    await declareSharedTopology(connection, this.names, this.options.queueType);
    this.publishing = { connection, publisher: new ConfirmedPublisher(channel, open), declaredPools: new Set() };
    this.refreshListings();
  }

  private async openConsuming(connection: ChannelModel): Promise<void> {
    const stateShape = await declareSharedTopology(connection, this.names, this.options.queueType);
    if (stateShape === 'legacy') {
      this.options.log.warn(
        { queue: this.names.stateQueue },
        'the state queue was declared by an older version, without single-active-consumer; ' +
          'the active manager replaces it once it is empty',
      );
    }
    const consuming: Consuming = { connection, inspect: undefined, state: undefined, stateShape };
    if (this.wantState) await this.startStateConsumer(consuming);
    // Watching observations is a convenience: without it (a broker user not allowed the tap,
    // say) the manager does everything else.
    await this.tapObservations(connection).catch((err: unknown) =>
      this.options.log.warn({ err: coerceError(err) }, 'cannot tap the observations; they are not kept for watchers'),
    );
    this.consuming = consuming;
  }

  /**
   * A queue of this manager's own on the observations exchange, gone with its connection. It
   * holds OBSERVATION_TAP_LENGTH at most and drops the oldest beyond: a manager that falls behind
   * loses old observations, never the broker's memory.
   */
  private async tapObservations(connection: ChannelModel): Promise<void> {
    const channel = await connection.createChannel();
    channel.on('error', (err: Error) => this.options.log.warn({ err }, 'the observations tap failed'));
    const { queue } = await channel.assertQueue(this.names.observationsTap(randomUUID()), {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { 'x-queue-type': 'classic', 'x-max-length': OBSERVATION_TAP_LENGTH, 'x-overflow': 'drop-head' },
    });
    await channel.bindQueue(queue, this.names.observationsExchange, '#');
    await channel.consume(
      queue,
      (message) => message && this.options.onObservation(message.fields.routingKey, message.content),
      { noAck: true },
    );
  }

  private async startStateConsumer(consuming: Consuming): Promise<void> {
    const { connection } = consuming;
    const channel = await connection.createChannel();
    channel.on('error', (err: Error) => {
      this.options.log.error({ err }, 'the state channel failed; reconnecting');
      connection.close().catch(() => undefined);
    });
    await channel.prefetch(STATE_PREFETCH);
    const { consumerTag } = await channel.consume(
      this.names.stateQueue,
      (message) => {
        if (message === null) {
          this.options.log.error({}, 'the broker cancelled the state consumer; reconnecting');
          connection.close().catch(() => undefined);
          return;
        }
        this.options.onStateMessage({
          message,
          ack: () => channel.ack(message),
          reject: () => channel.nack(message, false, false),
        });
      },
      { noAck: false },
    );
    consuming.state = { channel, consumerTag };
  }
}

export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  constructor() {
    super('not connected to the broker');
  }
}
