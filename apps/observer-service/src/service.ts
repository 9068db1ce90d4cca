import { utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import {
  ackReceipt,
  connectWithRecovery,
  declareControlQueue,
  declareJobsQueue,
  declareSharedTopology,
  isDeliveryTimeout,
  jobConsumerArguments,
  nackReceipt,
  publishConfirmed,
  receiptOf,
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type Receipt,
  type RecoveringChannelModel,
} from '@vigil/broker';
import {
  ControlMessage,
  JobMessage,
  MAX_STARTS_PER_EVENT,
  brokerNames,
  decodeMessage,
  encodeMessage,
  observationRoutingKey,
  type BrokerNames,
  type Observation,
  type StateEvent,
  type StateEventOf,
} from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { ObserverKind, RestartPolicy } from '@vigil/observer-sdk';
import { CancelMemory } from './cancel-memory';
import type { KindRegistry } from './kind-registry';
import { ObserverRun, observerBindings, type RunOutcome } from './observer-run';

export interface ObserverServiceOptions {
  amqpUrl: string;
  prefix: string;
  queueType: 'classic' | 'quorum';
  amqpHeartbeatS: number;
  name: string;
  capacity: number;
  pools: readonly string[];
  heartbeatIntervalMs: number;
  /** Touched after every confirmed heartbeat, if set. */
  healthFile: string | undefined;
  stopTimeoutMs: number;
  restartPolicy: RestartPolicy;
  cancelMemoryMs: number;
  kinds: KindRegistry;
  version: string;
  log: Logger;
}

/** The channels of one broker connection. A new session starts with every reconnect. */
interface Session {
  readonly connection: ChannelModel;
  readonly jobs: Channel;
  readonly state: ConfirmChannel;
  readonly observations: Channel;
  /** Job consumer tags by queue, while consuming. */
  readonly jobConsumers: Map<string, string>;
  alive: boolean;
}

type StartReport = StateEventOf<'observers.started'>['observers'][number];

/** A running observer and the delivery of its job, which stays unacked while it runs. */
interface Hold {
  readonly run: ObserverRun;
  readonly session: Session;
  readonly receipt: Receipt;
  /** Time from the cancel's arrival to the AbortSignal firing, reported with `observer.stopped`. */
  abortLatencyMs?: number;
}

/**
 * An observer service: takes jobs from its pools' queues (prefetch = capacity), runs each as an
 * observer while its job stays unacked, obeys cancels, and reports everything on the state queue.
 */
export class ObserverService {
  readonly id = randomUUID();
  private readonly names: BrokerNames;
  private readonly log: Logger;
  private readonly startedAt = new Date().toISOString();
  private readonly holds = new Map<string, Hold>();
  private readonly cancels: CancelMemory;
  /** The service's restart policy with each kind's overrides, made once per kind. */
  private readonly policies = new Map<ObserverKind, RestartPolicy>();
  private connection: RecoveringChannelModel | undefined;
  private session: Session | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stallWatch: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** Starts not yet reported, and the session they happened on. */
  private pendingStarts: { session: Session; starts: StartReport[] } | undefined;

  constructor(private readonly options: ObserverServiceOptions) {
    this.names = brokerNames(options.prefix);
    this.log = options.log.child({ serviceId: this.id, serviceName: options.name });
    this.cancels = new CancelMemory(options.cancelMemoryMs);
  }

  /** Resolves once connected and consuming; from then on reconnects by itself. */
  async start(): Promise<void> {
    this.log.info(
      { capacity: this.options.capacity, pools: this.options.pools, prefix: this.options.prefix },
      'observer service starting',
    );
    this.connection = await connectWithRecovery({
      url: this.options.amqpUrl,
      heartbeatS: this.options.amqpHeartbeatS,
      connectionName: `vigil observer-service ${this.options.name} ${this.id}`,
      log: this.log,
      setup: (connection) => this.openSession(connection),
      onDisconnect: () => this.onConnectionLost(),
    });
    this.heartbeatTimer = setInterval(() => this.sendHeartbeat(), this.options.heartbeatIntervalMs);
    this.watchForStalls();
  }

  /**
   * Graceful stop: take no more jobs, stop every observer, requeue their jobs so other services
   * take them at once, announce `service.died`, close. Safe to call twice.
   */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  /** Observer ids running here now. */
  running(): string[] {
    return [...this.holds.values()]
      .filter((hold) => hold.session.alive && !hold.run.stopCause)
      .map((h) => h.run.job.observerId);
  }

  private async shutdown(reason: string): Promise<void> {
    this.log.info({ reason, running: this.holds.size }, 'observer service stopping');
    clearInterval(this.heartbeatTimer);
    clearInterval(this.stallWatch);
    const session = this.session;
    if (session?.alive)
      await this.pauseConsuming(session).catch((err: unknown) => this.warnBroker(err, 'cancel job consumers'));
    const holds = [...this.holds.values()];
    for (const hold of holds) hold.run.stop('shutdown');
    await Promise.allSettled(holds.map((hold) => hold.run.outcome));
    if (session?.alive) {
      await this.publishState({ type: 'service.died', ...this.eventBase(), name: this.options.name, reason }).catch(
        (err: unknown) => this.warnBroker(err, 'announce service.died'),
      );
    }
    await this.connection?.close().catch((err: unknown) => this.warnBroker(err, 'close the connection'));
    this.log.info({}, 'observer service stopped');
  }

  private async openSession(connection: ChannelModel): Promise<void> {
    const state = await connection.createConfirmChannel();
    const observations = await connection.createChannel();
    const jobs = await connection.createChannel();
    const control = await connection.createChannel();
    const session: Session = { connection, jobs, state, observations, jobConsumers: new Map(), alive: true };

    for (const channel of [state, observations, jobs, control]) {
      channel.on('error', (err: Error) => this.onChannelLost(session, err));
      channel.on('close', () => this.onChannelLost(session, new Error('channel closed')));
    }

    await declareSharedTopology(state, this.names, this.options.queueType);
    for (const pool of this.options.pools) await declareJobsQueue(state, this.names, pool, this.options.queueType);
    const controlQueue = await declareControlQueue(control, this.names, this.id);
    await control.consume(controlQueue, (msg) => this.onControlMessage(session, msg), { noAck: true });

    this.session = session;
    // Announced before consuming, so the manager learns of a restart before its new placements.
    await this.publishState({
      type: 'service.born',
      ...this.eventBase(),
      name: this.options.name,
      capacity: this.options.capacity,
      pools: [...this.options.pools],
      kinds: this.options.kinds.describe(),
      version: this.options.version,
      host: os.hostname(),
      pid: process.pid,
      startedAt: this.startedAt,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      running: this.running(),
    });
    if (this.stopping) return;
    // Per-consumer prefetch (global QoS is deprecated and refused by brokers 4.3+).
    await jobs.prefetch(this.options.capacity, false);
    await this.resumeConsuming(session);
  }

  private async resumeConsuming(session: Session): Promise<void> {
    for (const pool of this.options.pools) {
      const queue = this.names.jobsQueue(pool);
      if (session.jobConsumers.has(queue)) continue;
      session.jobConsumers.set(queue, '');
      const { consumerTag } = await session.jobs.consume(queue, (msg) => this.onJobMessage(session, queue, msg), {
        noAck: false,
        arguments: jobConsumerArguments(this.options.queueType),
      });
      session.jobConsumers.set(queue, consumerTag);
    }
  }

  private async pauseConsuming(session: Session): Promise<void> {
    const tags = [...session.jobConsumers.values()];
    session.jobConsumers.clear();
    for (const tag of tags) if (tag) await session.jobs.cancel(tag);
  }

  /**
   * Prefetch bounds each pool's consumer; with several pools the sum could exceed capacity, so
   * a full service stops consuming until a slot frees.
   */
  private adjustConsuming(session: Session): void {
    if (this.options.pools.length < 2 || !session.alive || this.stopping) return;
    const full = this.load(session) >= this.options.capacity;
    const consuming = session.jobConsumers.size > 0;
    const change =
      full && consuming
        ? this.pauseConsuming(session)
        : !full && !consuming
          ? this.resumeConsuming(session)
          : undefined;
    change?.catch((err: unknown) => this.warnBroker(err, full ? 'pause consuming' : 'resume consuming'));
  }

  private load(session: Session): number {
    let count = 0;
    for (const hold of this.holds.values()) if (hold.session === session) count++;
    return count;
  }

  private onJobMessage(session: Session, queue: string, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled our consumer: the queue was deleted, or (brokers 4.3+ on quorum
      // queues) a delivery outlived its acknowledgement timeout and was taken back.
      this.log.error(
        { queue },
        'the broker cancelled the job consumer; if deliveries timed out, raise consumer_timeout ' +
          '(broker config) or x-consumer-timeout; reconnecting',
      );
      this.forceReconnect(session);
      return;
    }
    if (!session.alive) return;
    try {
      this.acceptJob(session, msg);
    } catch (err) {
      this.log.error({ err, queue }, 'could not handle a job message; requeueing it');
      this.settle(session, msg, 'requeue');
    }
  }

  private acceptJob(session: Session, msg: ConsumeMessage): void {
    const decoded = decodeMessage(JobMessage, msg.content);
    if (!decoded.ok) {
      this.log.error({ error: decoded.error, queue: msg.fields.routingKey }, 'invalid job message; dead-lettering it');
      this.settle(session, msg, 'dead-letter');
      return;
    }
    const job = decoded.value;
    if (this.stopping) {
      // Delivered before the consumer was cancelled: hand it straight to another service.
      this.settle(session, msg, 'requeue');
      return;
    }
    // Made only on these rare paths: a child logger costs heap for as long as it is referenced.
    const log = () => this.log.child(observerBindings(job));

    const cancel = this.cancels.get(job.observerId);
    if (cancel) {
      log().info({ deadLetter: cancel.deadLetter }, 'job of a cancelled observer; not starting it');
      this.settle(session, msg, cancel.deadLetter ? 'dead-letter' : 'ack');
      this.reportStopped(job.observerId, cancel.deadLetter ? 'crash-loop' : 'cancelled', true, undefined);
      return;
    }
    const existing = this.holds.get(job.observerId);
    if (existing?.session === session) {
      log().warn({}, 'second job message for an observer already running here; dropping the duplicate');
      this.settle(session, msg, 'ack');
      return;
    }
    if (this.options.pools.length > 1 && this.load(session) >= this.options.capacity) {
      this.settle(session, msg, 'requeue');
      this.adjustConsuming(session);
      return;
    }
    const kind = this.options.kinds.get(job.kind);
    if (!kind) {
      // Another service of the pool may know the kind; hand the job back after a pause so the
      // broker does not bounce it straight back here.
      log().error({ pools: this.options.pools }, 'unknown kind; requeueing the job for another service in 1 s');
      setTimeout(() => this.settle(session, msg, 'requeue'), 1_000).unref();
      return;
    }
    const params = kind.params.safeParse(job.params);
    if (!params.success) {
      log().error({ error: params.error.message }, 'params fail the kind schema; the observer failed');
      void this.publishState({
        type: 'observer.failed',
        ...this.eventBase(),
        observerId: job.observerId,
        error: `invalid params: ${params.error.message}`,
        attempts: 0,
      }).catch((err: unknown) => this.warnBroker(err, 'report observer.failed'));
      this.settle(session, msg, 'dead-letter');
      return;
    }
    // The same observer can still be stopping from a lost connection: start after it ended.
    const previous = existing?.run.outcome ?? Promise.resolve();
    void previous.then(() => this.startObserver(session, msg, job, kind, params.data));
  }

  private startObserver(
    session: Session,
    msg: ConsumeMessage,
    job: JobMessage,
    kind: ObserverKind,
    params: unknown,
  ): void {
    if (!session.alive) return;
    const run = new ObserverRun({
      job,
      kind,
      params,
      policy: this.policyOf(kind),
      stopTimeoutMs: this.options.stopTimeoutMs,
      publish: (data) => this.publishObservation(job, data),
      log: this.log,
    });
    const hold: Hold = { run, session, receipt: receiptOf(msg) };
    this.holds.set(job.observerId, hold);
    this.adjustConsuming(session);
    this.log.info({ ...observerBindings(job), redelivered: msg.fields.redelivered }, 'observer started');
    this.reportStarted(session, {
      observerId: job.observerId,
      name: job.name,
      kind: job.kind,
      pool: job.pool,
      redelivered: msg.fields.redelivered,
    });
    void run.start().then((outcome) => this.onObserverEnded(hold, outcome));
  }

  private policyOf(kind: ObserverKind): RestartPolicy {
    let policy = this.policies.get(kind);
    if (!policy) this.policies.set(kind, (policy = { ...this.options.restartPolicy, ...kind.restartPolicy }));
    return policy;
  }

  private onObserverEnded(hold: Hold, outcome: RunOutcome): void {
    const { log } = hold.run;
    const { observerId } = hold.run.job;
    if (this.holds.get(observerId) === hold) this.holds.delete(observerId);
    const { session, receipt } = hold;
    if (outcome.type === 'failed') {
      log.error({ err: outcome.error, attempts: outcome.attempts }, 'observer failed past its restart policy');
      if (!session.alive) return; // the broker already requeued the job; another run will retry
      void this.publishState({
        type: 'observer.failed',
        ...this.eventBase(),
        observerId,
        error: outcome.error.message,
        attempts: outcome.attempts,
      }).catch((err: unknown) => this.warnBroker(err, 'report observer.failed'));
      this.settle(session, receipt, 'dead-letter');
    } else {
      if (!outcome.graceful)
        log.error({ stopTimeoutMs: this.options.stopTimeoutMs }, 'observer ignored its AbortSignal; giving up on it');
      log.info({ cause: outcome.cause }, 'observer stopped');
      switch (outcome.cause) {
        case 'cancelled':
          this.settle(session, receipt, 'ack');
          if (session.alive) this.reportStopped(observerId, 'cancelled', outcome.graceful, hold.abortLatencyMs);
          break;
        case 'quarantined':
          this.settle(session, receipt, 'dead-letter');
          if (session.alive) this.reportStopped(observerId, 'crash-loop', outcome.graceful, hold.abortLatencyMs);
          break;
        case 'shutdown':
          this.settle(session, receipt, 'requeue');
          break;
        case 'connection-lost':
          break;
      }
    }
    this.adjustConsuming(session);
  }

  private onControlMessage(session: Session, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.log.error({}, 'the broker cancelled the control consumer; reconnecting');
      this.forceReconnect(session);
      return;
    }
    const receivedAt = performance.now();
    const decoded = decodeMessage(ControlMessage, msg.content);
    if (!decoded.ok) {
      this.log.warn({ error: decoded.error }, 'invalid control message; dropped');
      return;
    }
    const { observerId, deadLetter } = decoded.value;
    this.cancels.remember(observerId, { deadLetter });
    const hold = this.holds.get(observerId);
    if (!hold || hold.run.stopCause) return;
    hold.run.stop(deadLetter ? 'quarantined' : 'cancelled');
    hold.abortLatencyMs = performance.now() - receivedAt;
  }

  private reportStopped(
    observerId: string,
    reason: 'cancelled' | 'crash-loop',
    graceful: boolean,
    abortLatencyMs: number | undefined,
  ): void {
    void this.publishState({
      type: 'observer.stopped',
      ...this.eventBase(),
      observerId,
      reason,
      graceful,
      ...(abortLatencyMs === undefined ? {} : { abortLatencyMs }),
    }).catch((err: unknown) => this.warnBroker(err, 'report observer.stopped'));
  }

  /** Acks, requeues or dead-letters a job on the channel it came from, if that is still open. */
  private settle(session: Session, delivery: Receipt, how: 'ack' | 'requeue' | 'dead-letter'): void {
    if (!session.alive) return;
    try {
      if (how === 'ack') ackReceipt(session.jobs, delivery);
      else nackReceipt(session.jobs, delivery, how === 'requeue');
    } catch (err) {
      this.warnBroker(err, `settle a job (${how})`);
    }
  }

  /**
   * The broker requeues every job delivered on a lost connection, and another service may
   * already run them: abort all of them at once.
   */
  private onConnectionLost(): void {
    const session = this.session;
    if (!session?.alive) return;
    session.alive = false;
    let aborted = 0;
    for (const hold of this.holds.values()) {
      if (hold.session !== session || hold.run.stopCause) continue;
      hold.run.stop('connection-lost');
      aborted++;
    }
    if (aborted > 0) this.log.warn({ aborted }, 'broker connection lost; aborted every observer delivered on it');
  }

  private onChannelLost(session: Session, err: Error): void {
    if (!session.alive || this.stopping) return;
    if (isDeliveryTimeout(err)) {
      this.log.error(
        { err },
        'the broker timed out an unacked job delivery and closed the channel; observers hold their job for as long ' +
          'as they run, so raise the broker setting consumer_timeout (rabbitmq.conf, see deploy/rabbitmq/); ' +
          'aborting the observers and consuming again',
      );
    } else {
      this.log.error({ err }, 'a broker channel closed unexpectedly; aborting observers and reconnecting');
    }
    this.forceReconnect(session);
  }

  /** One path for every loss: close the whole connection, and recovery builds a new session. */
  private forceReconnect(session: Session): void {
    if (!session.alive) return;
    this.onConnectionLost();
    session.connection.close().catch(() => undefined);
  }

  /**
   * A process frozen (SIGSTOP, a VM pause) longer than the AMQP heartbeat timeout has lost its
   * jobs to other services; once it runs again it must stop them before doing anything else.
   */
  private watchForStalls(): void {
    const tickMs = 250;
    const limitMs = Math.max(2 * this.options.amqpHeartbeatS * 1000, 2 * tickMs);
    let last = performance.now();
    this.stallWatch = setInterval(() => {
      const now = performance.now();
      const stalledMs = now - last - tickMs;
      last = now;
      if (stalledMs > limitMs && this.session?.alive) {
        this.log.error(
          { stalledMs: Math.round(stalledMs) },
          'process was frozen past the broker heartbeat timeout; reconnecting',
        );
        this.forceReconnect(this.session);
      }
    }, tickMs);
    this.stallWatch.unref();
  }

  private sendHeartbeat(): void {
    const session = this.session;
    if (!session?.alive) return;
    const running = this.running();
    const { heapUsed, rss } = process.memoryUsage();
    void this.publishState({
      type: 'service.heartbeat',
      ...this.eventBase(),
      name: this.options.name,
      capacity: this.options.capacity,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      running,
      freeSlots: Math.max(0, this.options.capacity - running.length),
      memory: { heapUsedBytes: heapUsed, rssBytes: rss },
    })
      .then(() => this.touchHealthFile())
      .catch((err: unknown) => this.warnBroker(err, 'send a heartbeat'));
  }

  private async touchHealthFile(): Promise<void> {
    const file = this.options.healthFile;
    if (!file) return;
    const now = new Date();
    await utimes(file, now, now).catch(() => writeFile(file, ''));
  }

  /**
   * Starts are reported together at the end of the tick (`observers.started`, or
   * `observer.started` for a lone one): taking over a thousand observers then costs the broker
   * a few persistent messages instead of a thousand.
   */
  private reportStarted(session: Session, start: StartReport): void {
    if (this.pendingStarts?.session !== session) {
      this.flushStarts();
      this.pendingStarts = { session, starts: [] };
      setImmediate(() => this.flushStarts());
    }
    const { starts } = this.pendingStarts;
    starts.push(start);
    if (starts.length >= MAX_STARTS_PER_EVENT) this.flushStarts();
  }

  private flushStarts(): void {
    const pending = this.pendingStarts;
    this.pendingStarts = undefined;
    // Starts on a lost session are not reported: the next service.born says what runs.
    if (!pending || pending.session !== this.session || !pending.session.alive) return;
    const { starts } = pending;
    const event: StateEvent =
      starts.length === 1
        ? { type: 'observer.started', ...this.eventBase(), ...starts[0]! }
        : { type: 'observers.started', ...this.eventBase(), observers: starts };
    void this.sendState(event).catch((err: unknown) => this.warnBroker(err, `report ${event.type}`));
  }

  /** Every other event follows the starts before it, so the manager sees them in order. */
  private publishState(event: StateEvent): Promise<void> {
    this.flushStarts();
    return this.sendState(event);
  }

  private sendState(event: StateEvent): Promise<void> {
    const session = this.session;
    if (!session?.alive) return Promise.reject(new Error('not connected to the broker'));
    return publishConfirmed(session.state, '', this.names.stateQueue, encodeMessage(event), { type: event.type });
  }

  private publishObservation(job: JobMessage, data: unknown): void {
    const session = this.session;
    const hold = this.holds.get(job.observerId);
    // Only the current owner speaks for an observer; a stopping run from a lost session is silent.
    if (!session?.alive || hold?.session !== session || hold.run.stopCause) return;
    const observation: Observation = {
      observerId: job.observerId,
      name: job.name,
      kind: job.kind,
      serviceId: this.id,
      serviceName: this.options.name,
      at: new Date().toISOString(),
      data,
    };
    try {
      session.observations.publish(
        this.names.observationsExchange,
        observationRoutingKey(job.kind, job.observerId),
        encodeMessage(observation),
        { contentType: 'application/json' },
      );
    } catch (err) {
      this.warnBroker(err, 'publish an observation');
    }
  }

  private eventBase() {
    return { serviceId: this.id, at: new Date().toISOString() };
  }

  private warnBroker(err: unknown, what: string): void {
    this.log.warn({ err: coerceError(err) }, `could not ${what}`);
  }
}
