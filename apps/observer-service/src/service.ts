import { randomUUID } from 'node:crypto';
import type { QueueType } from '@vigil/broker';
import {
  encodeMessage,
  observationRoutingKey,
  type JobMessage,
  type MovePurpose,
  type Observation,
} from '@vigil/contracts';
import { pause } from '@vigil/backoff';
import { coerceError, type Logger } from '@vigil/logging';
import type { RestartPolicy } from '@vigil/observer-sdk';
import { AmqpSession, type JobDelivery } from './amqp-session';
import type { KindRegistry } from './kind-registry';
import { ObservationOutlet } from './observation-outlet';
import { createServiceMetrics, type ServiceMetrics } from './metrics';
import { ObserverHost } from './observer-host';
import { StateReporter } from './state-reporter';

export interface ObserverServiceOptions {
  amqpUrl: string;
  prefix: string;
  queueType: QueueType;
  amqpHeartbeatS: number;
  name: string;
  capacity: number;
  pools: readonly string[];
  heartbeatIntervalMs: number;
  /** Every this many heartbeats lists the holdings even if nothing changed (see `StateReporter`). */
  listingEveryBeats: number;
  /** Touched after every confirmed heartbeat, if set. */
  healthFile: string | undefined;
  stopTimeoutMs: number;
  /** How long a stop waits for the observers to be moved before stopping the rest; 0: no moves. */
  drainTimeoutMs: number;
  restartPolicy: RestartPolicy;
  cancelMemoryMs: number;
  kinds: KindRegistry;
  version: string;
  log: Logger;
}

/** A job parked for want of its kind goes back to the queue after 1 s, then up to 30 s. */
const PARK_BACKOFF = { initialDelayMs: 1_000, maxDelayMs: 30_000 };
/** A draining service that hears nothing from a manager this long stops its observers itself, ms. */
const DRAIN_ANSWER_TIMEOUT_MS = 3_000;
/** How often a round of moves looks whether every moving observer has been released, ms. */
const MOVE_POLL_MS = 20;
/** How often observers whose observations were dropped are named in the log, ms. */
const DROP_REPORT_INTERVAL_MS = 60_000;

/**
 * An observer service: takes jobs from its pools' queues (prefetch = capacity), runs each as an
 * observer while its job stays unacked, obeys cancels and releases, and reports everything on the
 * state queue. The parts: `ObserverHost` (what runs, apart from the broker), `AmqpSession` (the
 * broker), `StateReporter` (what the manager hears) and `ObservationOutlet` (what observers say).
 */
export class ObserverService {
  readonly id = randomUUID();
  private readonly log: Logger;
  private readonly host: ObserverHost<JobDelivery>;
  private readonly session: AmqpSession;
  private readonly reporter: StateReporter;
  private readonly outlet: ObservationOutlet;
  readonly metrics: ServiceMetrics;
  private dropReportTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** Set while a request to move observers waits for the manager's answer. */
  private drainAnswer: { requestId: string; resolve: (moving: readonly string[]) => void } | undefined;
  /** A round of moves under way (one at a time): a drain, a rebalance or a rotation. */
  private round: Promise<void> | undefined;
  /** Drained by an operator. */
  private drained = false;
  private drainRetry: NodeJS.Timeout | undefined;

  constructor(private readonly options: ObserverServiceOptions) {
    this.log = options.log.child({ serviceId: this.id, serviceName: options.name });
    const log = this.log;
    this.session = new AmqpSession({
      serviceId: this.id,
      serviceName: options.name,
      amqpUrl: options.amqpUrl,
      prefix: options.prefix,
      queueType: options.queueType,
      amqpHeartbeatS: options.amqpHeartbeatS,
      pools: options.pools,
      capacity: options.capacity,
      log,
      events: {
        job: (delivery, content) => this.host.deliver(delivery, content),
        cancel: (observerId, how, receivedAt) => this.host.cancel(observerId, how, receivedAt),
        release: (observerId, generation, reason) => this.host.release(observerId, generation, reason),
        drainAccepted: (moving, requestId) => {
          // An answer without an id comes from a manager that predates them.
          if (requestId === undefined || requestId === this.drainAnswer?.requestId) this.drainAnswer?.resolve(moving);
        },
        drain: (drained) => this.setDrained(drained),
        shed: (purpose, observerIds) => this.shed(purpose, observerIds),
        listingWanted: () => this.reporter.listingWanted(),
        opened: () => this.reporter.announce(),
        lost: () => this.connectionLost(),
        republish: () => this.reannounce(),
        observationsDrained: () => this.outlet.drain(),
      },
    });
    this.outlet = new ObservationOutlet((routingKey, body) => this.session.sendObservation(routingKey, body));
    this.metrics = createServiceMetrics({
      held: () => this.host.held,
      running: () => this.host.running().ids.length,
      draining: () => this.drained || this.stopping !== undefined,
      observationsWaitingBytes: () => this.outlet.waitingBytesNow,
      capacity: options.capacity,
    });
    this.reporter = new StateReporter({
      serviceId: this.id,
      name: options.name,
      capacity: options.capacity,
      pools: options.pools,
      kinds: options.kinds.describe(),
      version: options.version,
      startedAt: new Date().toISOString(),
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      listingEveryBeats: options.listingEveryBeats,
      healthFile: options.healthFile,
      send: (event) => this.session.sendState(event),
      holdings: () => ({
        running: this.host.running(),
        parked: this.host.parked(),
        held: this.host.held,
        observationsDropped: this.outlet.dropped,
        draining: this.drained || this.stopping !== undefined,
      }),
      log,
    });
    this.host = new ObserverHost<JobDelivery>({
      kinds: options.kinds,
      restartPolicy: options.restartPolicy,
      stopTimeoutMs: options.stopTimeoutMs,
      noteMemoryMs: options.cancelMemoryMs,
      fullAt: options.pools.length > 1 ? options.capacity : undefined,
      parkBackoff: PARK_BACKOFF,
      transport: this.session,
      reports: this.reporter,
      publish: (job, data) => this.publishObservation(job, data),
      ended: (job) => this.outlet.forget(job.observerId),
      restarting: () => this.metrics.restarts.inc(),
      log,
    });
  }

  /** Resolves once connected and consuming; from then on reconnects by itself. */
  async start(): Promise<void> {
    this.log.info(
      { capacity: this.options.capacity, pools: this.options.pools, prefix: this.options.prefix },
      'observer service starting',
    );
    await this.session.start();
    this.reporter.startHeartbeats();
    this.dropReportTimer = setInterval(() => this.reportDrops(), DROP_REPORT_INTERVAL_MS);
    this.dropReportTimer.unref();
  }

  /**
   * Graceful stop: take no more jobs, have the observers moved (make-before-break: each runs on
   * here until its new copy runs elsewhere and the manager releases this one), then stop what is
   * left and hand its jobs back, announce `service.died`, close. Safe to call twice.
   */
  stop(reason = 'shutdown'): Promise<void> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  private async shutdown(reason: string): Promise<void> {
    this.log.info({ reason, running: this.host.held }, 'observer service stopping');
    clearInterval(this.dropReportTimer);
    clearInterval(this.drainRetry);
    this.host.refuseNew();
    await this.session.stopConsuming();
    // A move already under way (a rebalance, say) ends first: one request at a time.
    await this.round;
    const moving = this.options.drainTimeoutMs === 0 ? new Set<string>() : await this.moveAway('stop');
    this.reporter.stopHeartbeats();
    await this.host.stop(moving);
    await this.reporter.died(reason).catch((err: unknown) => this.warn(err, 'announce service.died'));
    await this.session.close();
    this.log.info({}, 'observer service stopped');
  }

  /**
   * An operator drains the service, or lets it take jobs again. Drained, it takes no new jobs,
   * hands back the jobs of kinds that must never overlap, and has the rest moved; what could not
   * move yet (no room elsewhere) is asked for again at every heartbeat. It stays up either way.
   */
  private setDrained(drained: boolean): void {
    if (this.stopping || this.drained === drained) return;
    this.drained = drained;
    this.host.refuse(drained);
    this.log.info({ running: this.host.held }, drained ? 'drained by an operator' : 'undrained: taking jobs again');
    this.session
      .setDrained(drained, this.host.held)
      .catch((err: unknown) => this.warn(err, drained ? 'stop consuming' : 'consume again'));
    clearInterval(this.drainRetry);
    if (!drained) return;
    this.drainSome();
    this.drainRetry = setInterval(() => this.drainSome(), this.options.heartbeatIntervalMs);
    this.drainRetry.unref();
  }

  /** One round of moves for a drained service, unless one is under way or nothing is left to move. */
  private drainSome(): void {
    if (!this.drained || this.stopping || this.round) return;
    const unmovable = this.host.handBackUnmovable();
    if (unmovable > 0)
      this.log.info({ unmovable }, 'drained: handed back the observers whose kinds must never overlap');
    if (this.host.running({ movable: true }).ids.length === 0) return;
    this.startRound(() => this.moveAway('drain'));
  }

  /**
   * The manager asks for these copies to be moved: to even the load out (this service takes no
   * new jobs meanwhile, so their next generations go elsewhere) or to ack jobs held too long (the
   * next generation may come back here, and is adopted in place). Copies of kinds that must
   * never overlap are not moved for either.
   */
  private shed(purpose: 'rebalance' | 'rotate', observerIds: readonly string[]): void {
    if (this.stopping || this.drained || this.round) {
      this.log.info(
        { purpose, asked: observerIds.length },
        'asked to shed observers while busy moving others; ignored',
      );
      return;
    }
    const refuse = purpose === 'rebalance';
    this.startRound(async () => {
      if (refuse) this.host.refuse(true);
      try {
        await this.moveAway(purpose, new Set(observerIds));
      } finally {
        if (refuse && !this.drained && !this.stopping) this.host.refuse(false);
      }
    });
  }

  private startRound(work: () => Promise<unknown>): void {
    this.round = work()
      .catch((err: unknown) => this.warn(err, 'move observers'))
      .finally(() => (this.round = undefined))
      .then(() => undefined);
  }

  /**
   * Asks the manager to move the copies running here (those in `only`, if given), and waits
   * until it has released each, or DRAIN_TIMEOUT_MS passed. Returns the observers the manager is
   * moving: their next generation is queued, so their jobs here are acked rather than handed
   * back. With no answer from a manager it returns at once, with none: the manager may be down.
   */
  private async moveAway(purpose: MovePurpose, only?: ReadonlySet<string>): Promise<ReadonlySet<string>> {
    const { drainTimeoutMs } = this.options;
    if (purpose === 'stop') {
      const unmovable = this.host.handBackUnmovable();
      if (unmovable > 0) this.log.info({ unmovable }, 'stopped the observers whose kinds must never overlap');
    }
    const copies = this.host.running({ movable: true });
    if (only) {
      const kept = copies.ids.flatMap((id, i) => (only.has(id) ? [i] : []));
      copies.ids = kept.map((i) => copies.ids[i]!);
      copies.generations = kept.map((i) => copies.generations[i]!);
    }
    if (copies.ids.length === 0) return new Set();
    const requestId = randomUUID();
    const answerWithinMs = Math.min(DRAIN_ANSWER_TIMEOUT_MS, drainTimeoutMs);
    const answer = new Promise<readonly string[] | undefined>((resolve) => {
      this.drainAnswer = { requestId, resolve };
      setTimeout(() => resolve(undefined), answerWithinMs).unref();
    });
    try {
      await this.reporter.draining({ copies, answerWithinMs, purpose, requestId });
      const moving = await answer;
      if (!moving) {
        this.log.warn({ purpose, running: copies.ids.length }, 'no manager answered the request to move observers');
        return new Set();
      }
      this.log.info({ purpose, asked: copies.ids.length, moving: moving.length }, 'observers are being moved');
      this.metrics.moves.inc({ purpose }, moving.length);
      const generationOf = new Map(copies.ids.map((id, i) => [id, copies.generations[i]!]));
      const here = (id: string) => this.host.holds(id, generationOf.get(id));
      const deadline = Date.now() + drainTimeoutMs;
      while (moving.some(here) && Date.now() < deadline) await pause(MOVE_POLL_MS);
      const left = moving.filter(here).length;
      if (left > 0) this.log.warn({ purpose, left, drainTimeoutMs }, 'not every observer moved in time');
      return new Set(moving);
    } catch (err) {
      this.warn(err, 'ask for observers to be moved');
      return new Set();
    } finally {
      this.drainAnswer = undefined;
    }
  }

  /**
   * The broker requeues every job delivered on a lost connection, and another service may
   * already run them: abort all of them at once.
   */
  private connectionLost(): void {
    const aborted = this.host.connectionLost();
    this.reporter.discardStarts();
    if (aborted > 0) this.log.warn({ aborted }, 'broker connection lost; aborted every observer delivered on it');
  }

  private reannounce(): void {
    this.reporter.announce().catch((err: unknown) => this.warn(err, 'announce the service again'));
  }

  private publishObservation(job: JobMessage, data: unknown): boolean {
    const observation: Observation = {
      observerId: job.observerId,
      name: job.name,
      kind: job.kind,
      serviceId: this.id,
      serviceName: this.options.name,
      at: new Date().toISOString(),
      data,
    };
    let body: Buffer;
    try {
      body = encodeMessage(observation);
    } catch (err) {
      this.log.warn({ err: coerceError(err), observerId: job.observerId }, 'an observation is not JSON; dropped');
      return false;
    }
    const sent = this.outlet.publish(job.observerId, observationRoutingKey(job.kind, job.observerId), body);
    this.metrics.observations.inc({ result: sent ? 'sent' : 'dropped' });
    return sent;
  }

  private reportDrops(): void {
    const drops = this.outlet.takeDrops();
    if (drops.size === 0) return;
    const worst = [...drops].sort((a, b) => b[1] - a[1]).slice(0, 10);
    this.log.warn(
      { observers: drops.size, dropped: Object.fromEntries(worst), droppedTotal: this.outlet.dropped },
      'observations dropped: observers published faster than the broker took them',
    );
  }

  private warn(err: unknown, what: string): void {
    this.log.warn({ err: coerceError(err) }, `could not ${what}`);
  }
}
