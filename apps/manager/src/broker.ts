import {
  connectWithRecovery,
  declareJobsQueue,
  declareSharedTopology,
  publishConfirmed,
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type QueueType,
  type RecoveringChannelModel,
} from '@vigil/broker';
import {
  brokerNames,
  encodeMessage,
  type BrokerNames,
  type CancelMessage,
  type JobMessage,
  type StateEvent,
} from '@vigil/contracts';
import type { Logger } from '@vigil/logging';

/** How many state events may be in flight to the manager at once. */
const STATE_PREFETCH = 1000;

export interface StateDelivery {
  readonly message: ConsumeMessage;
  ack(): void;
  /** Dead-letters it (it goes to `<prefix>.dead-letter`). */
  reject(): void;
}

export interface ManagerBrokerOptions {
  url: string;
  prefix: string;
  queueType: QueueType;
  heartbeatS: number;
  log: Logger;
  /** Called for every state message, in queue order. */
  onStateMessage: (delivery: StateDelivery) => void;
}

interface Session {
  readonly publish: ConfirmChannel;
  readonly consume: Channel;
  /** Pools whose jobs queue was declared on this connection. */
  readonly declaredPools: Set<string>;
}

/** The manager's side of the broker: publishes jobs and cancels, consumes the state queue. */
export class ManagerBroker {
  readonly names: BrokerNames;
  private connection: RecoveringChannelModel | undefined;
  private session: Session | undefined;

  constructor(private readonly options: ManagerBrokerOptions) {
    this.names = brokerNames(options.prefix);
  }

  get connected(): boolean {
    return this.session !== undefined;
  }

  async start(): Promise<void> {
    this.connection = await connectWithRecovery({
      url: this.options.url,
      heartbeatS: this.options.heartbeatS,
      connectionName: `vigil manager ${process.pid}`,
      log: this.options.log,
      setup: (connection) => this.openSession(connection),
      onDisconnect: () => {
        this.session = undefined;
      },
    });
  }

  async close(): Promise<void> {
    this.session = undefined;
    await this.connection?.close();
  }

  async publishJob(job: JobMessage): Promise<void> {
    const session = this.requireSession();
    if (!session.declaredPools.has(job.pool)) {
      // A message published to a queue that does not exist yet would be dropped silently.
      await declareJobsQueue(session.publish, this.names, job.pool, this.options.queueType);
      session.declaredPools.add(job.pool);
    }
    await publishConfirmed(session.publish, '', this.names.jobsQueue(job.pool), encodeMessage(job), {
      messageId: job.observerId,
    });
  }

  /** `deadLetter`: the holder dead-letters the job instead of dropping it (a crash loop). */
  async broadcastCancels(observerIds: readonly string[], { deadLetter = false } = {}): Promise<void> {
    if (observerIds.length === 0) return;
    const session = this.requireSession();
    const requestedAt = new Date().toISOString();
    await Promise.all(
      observerIds.map((observerId) => {
        const cancel: CancelMessage = { type: 'observer.cancel', observerId, requestedAt, deadLetter };
        return publishConfirmed(session.publish, this.names.controlExchange, '', encodeMessage(cancel), {
          persistent: false,
        });
      }),
    );
  }

  /** Puts a barrier at the end of the state queue (see `ManagerBarrier`). */
  async publishBarrier(barrierId: string): Promise<void> {
    const barrier: StateEvent = { type: 'manager.barrier', barrierId, at: new Date().toISOString() };
    await publishConfirmed(this.requireSession().publish, '', this.names.stateQueue, encodeMessage(barrier), {
      persistent: false,
    });
  }

  /** Messages ready in the state queue (not counting those already delivered to us). */
  async stateBacklog(): Promise<number> {
    const { messageCount } = await this.requireSession().publish.checkQueue(this.names.stateQueue);
    return messageCount;
  }

  private requireSession(): Session {
    if (!this.session) throw new BrokerUnavailableError();
    return this.session;
  }

  private async openSession(connection: ChannelModel): Promise<void> {
    const publish = await connection.createConfirmChannel();
    const consume = await connection.createChannel();
    for (const channel of [publish, consume]) {
      channel.on('error', (err: Error) => {
        this.options.log.error({ err }, 'a broker channel failed; reconnecting');
        connection.close().catch(() => undefined);
      });
    }
    await declareSharedTopology(publish, this.names, this.options.queueType);
    await consume.prefetch(STATE_PREFETCH);
    const session: Session = { publish, consume, declaredPools: new Set() };
    await consume.consume(
      this.names.stateQueue,
      (message) => {
        if (message === null) {
          this.options.log.error({}, 'the broker cancelled the state consumer; reconnecting');
          connection.close().catch(() => undefined);
          return;
        }
        this.options.onStateMessage({
          message,
          ack: () => consume.ack(message),
          reject: () => consume.nack(message, false, false),
        });
      },
      { noAck: false },
    );
    this.session = session;
  }
}

export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
  constructor() {
    super('not connected to the broker');
  }
}
