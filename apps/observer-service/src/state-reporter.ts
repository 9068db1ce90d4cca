import { utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import {
  MAX_STARTS_PER_EVENT,
  type JobMessage,
  type KindDescription,
  type MovePurpose,
  type StateEvent,
  type StateEventOf,
} from '@vigil/contracts';
import { BrokerBlockedError } from '@vigil/broker';
import { coerceError, type Logger } from '@vigil/logging';
import type { HostReports, StopReason } from './observer-host';
import { PacedBatch } from './paced-batch';

type StartReport = StateEventOf<'observers.started'>['observers'][number];

/**
 * The first starts of new observers go to the manager at most this often: it learns of one in a
 * stream of creates that much later at worst (its observations are not held back), and nothing
 * waits on it. Other starts (a takeover, a move, whose old copy is released once the manager knows)
 * go at the end of their turn.
 */
export const START_REPORT_SPACING_MS = 50;

/** A new observer's first start, reported when a paced batch goes (see `START_REPORT_SPACING_MS`). */
export function firstStart(job: JobMessage, redelivered: boolean): boolean {
  return job.generation === 1 && !redelivered;
}

/** What the service holds, as its births and heartbeats tell it. */
export interface Holdings {
  running: { ids: string[]; generations: number[] };
  parked: { observerId: string; generation: number; reason: string }[];
  /** Jobs held: running, parked or waiting. */
  held: number;
  /** Observations dropped since the service started. */
  observationsDropped: number;
  /** It takes no new jobs and moves its observers away. */
  draining: boolean;
}

export interface StateReporterOptions {
  serviceId: string;
  name: string;
  capacity: number;
  pools: readonly string[];
  kinds: KindDescription[];
  version: string;
  startedAt: string;
  heartbeatIntervalMs: number;
  /**
   * Once the manager reads heartbeats without a listing, every this many beats lists the holdings
   * even though nothing changed: a safety net for a divergence nothing else would show.
   */
  listingEveryBeats: number;
  /** Touched after every heartbeat the broker confirmed (or refused only for a resource alarm), if set. */
  healthFile: string | undefined;
  /** Publishes one event on the state queue; resolves once the broker confirmed it. */
  send: (event: StateEvent) => Promise<void>;
  holdings: () => Holdings;
  log: Logger;
}

/**
 * Everything a service tells the manager, on the state queue: its birth, heartbeats, death, and
 * what happens to each observer. Starts go together in one `observers.started` (see
 * `PacedBatch`): a takeover of a thousand observers, or a stream of creates, costs the broker a
 * few persistent messages, not one per start. Any other event sends the starts gathered
 * before it first, so the manager sees them in order.
 */
export class StateReporter implements HostReports {
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly starts = new PacedBatch<StartReport>(START_REPORT_SPACING_MS, (starts) => this.sendStarts(starts));
  /** The manager reads heartbeats without a listing (it has sent a `service.list`). */
  private listingsOnChange = false;
  /** Asked for a listing that the broker has not confirmed yet. */
  private listingDue = false;
  /** The holdings as the last listing the broker confirmed gave them. */
  private lastListed: Holdings | undefined;
  private beatsSinceListing = 0;

  constructor(private readonly options: StateReporterOptions) {}

  startHeartbeats(): void {
    this.heartbeatTimer ??= setInterval(() => this.heartbeat(), this.options.heartbeatIntervalMs);
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /**
   * The manager asks for a listing (`service.list`): a heartbeat with one goes at once, and from
   * now on heartbeats list the holdings only when needed.
   */
  listingWanted(): void {
    this.listingsOnChange = true;
    this.listingDue = true;
    // Not once heartbeats have stopped: after its `service.died`, a heartbeat would make a
    // stopping service look alive again.
    if (this.heartbeatTimer) this.heartbeat();
  }

  /** `service.born`: sent on every (re)connect, saying what the service holds at that moment. */
  async announce(): Promise<void> {
    const { options } = this;
    const holdings = options.holdings();
    await this.publish({
      type: 'service.born',
      ...this.base(),
      name: options.name,
      capacity: options.capacity,
      pools: [...options.pools],
      kinds: options.kinds,
      version: options.version,
      host: os.hostname(),
      pid: process.pid,
      startedAt: options.startedAt,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      running: holdings.running.ids,
      generations: holdings.running.generations,
      waiting: holdings.parked,
    });
    this.listed(holdings);
  }

  /** `service.draining`: asks the manager to move these copies (parallel arrays) before they stop. */
  draining(request: {
    copies: { ids: string[]; generations: number[] };
    answerWithinMs: number;
    purpose: MovePurpose;
    requestId: string;
  }): Promise<void> {
    const { copies, ...rest } = request;
    return this.publish({
      type: 'service.draining',
      ...this.base(),
      running: copies.ids,
      generations: copies.generations,
      ...rest,
    });
  }

  died(reason: string): Promise<void> {
    return this.publish({ type: 'service.died', ...this.base(), name: this.options.name, reason });
  }

  started(job: JobMessage, redelivered: boolean): void {
    const start: StartReport = {
      observerId: job.observerId,
      name: job.name,
      kind: job.kind,
      pool: job.pool,
      redelivered,
      generation: job.generation,
    };
    if (this.starts.push(start, firstStart(job, redelivered)) >= MAX_STARTS_PER_EVENT) this.starts.flush();
  }

  stopped(stop: Parameters<HostReports['stopped']>[0]): void {
    const { generation, abortLatencyMs, ...rest } = stop;
    this.fireAndForget({
      type: 'observer.stopped',
      ...this.base(),
      ...rest,
      reason: rest.reason satisfies StopReason,
      ...(generation === undefined ? {} : { generation }),
      ...(abortLatencyMs === undefined ? {} : { abortLatencyMs }),
    });
  }

  stale(job: JobMessage, stale: boolean, lastPublishedAt: number | undefined, restart: boolean): void {
    this.fireAndForget({
      type: 'observer.stale',
      ...this.base(),
      observerId: job.observerId,
      generation: job.generation,
      stale,
      lastPublishedAt: lastPublishedAt === undefined ? null : new Date(lastPublishedAt).toISOString(),
      restart,
    });
  }

  failed(job: JobMessage, error: string, attempts: number): void {
    this.fireAndForget({
      type: 'observer.failed',
      ...this.base(),
      observerId: job.observerId,
      generation: job.generation,
      error,
      attempts,
    });
  }

  /** The connection the starts happened on is lost: the next birth says what runs. */
  discardStarts(): void {
    this.starts.discard();
  }

  private heartbeat(): void {
    const { options } = this;
    const holdings = options.holdings();
    const { heapUsed, rss } = process.memoryUsage();
    const listing = this.needsListing(holdings);
    if (!listing) this.beatsSinceListing++;
    this.publish({
      type: 'service.heartbeat',
      ...this.base(),
      name: options.name,
      capacity: options.capacity,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      ...(listing
        ? { running: holdings.running.ids, generations: holdings.running.generations }
        : { runningCount: holdings.running.ids.length }),
      // Every heartbeat: the manager would otherwise judge a job parked here for long as lost.
      waiting: holdings.parked,
      freeSlots: Math.max(0, options.capacity - holdings.held),
      memory: { heapUsedBytes: heapUsed, rssBytes: rss },
      observationsDropped: holdings.observationsDropped,
      draining: holdings.draining,
    })
      .then(
        () => {
          if (listing) this.listed(holdings);
          return this.touchHealthFile();
        },
        (err: unknown) => {
          // Blocked by a broker alarm, the service is as healthy as ever: a health check that
          // restarted it would only move its observers.
          if (err instanceof BrokerBlockedError) return this.touchHealthFile();
          this.warn(err, 'send a heartbeat');
        },
      )
      .catch((err: unknown) => this.warn(err, 'touch the health file'));
  }

  private needsListing(holdings: Holdings): boolean {
    return (
      !this.listingsOnChange ||
      this.listingDue ||
      this.beatsSinceListing + 1 >= this.options.listingEveryBeats ||
      this.lastListed === undefined ||
      !sameHoldings(this.lastListed, holdings)
    );
  }

  /** The broker confirmed a listing of these holdings: the manager will read it. */
  private listed(holdings: Holdings): void {
    this.lastListed = holdings;
    this.listingDue = false;
    this.beatsSinceListing = 0;
  }

  private sendStarts(starts: StartReport[]): void {
    const event: StateEvent =
      starts.length === 1
        ? { type: 'observer.started', ...this.base(), ...starts[0]! }
        : { type: 'observers.started', ...this.base(), observers: starts };
    this.options.send(event).catch((err: unknown) => this.warn(err, `report ${event.type}`));
  }

  private publish(event: StateEvent): Promise<void> {
    this.starts.flush();
    return this.options.send(event);
  }

  private fireAndForget(event: StateEvent): void {
    this.publish(event).catch((err: unknown) => this.warn(err, `report ${event.type}`));
  }

  private async touchHealthFile(): Promise<void> {
    const file = this.options.healthFile;
    if (!file) return;
    const now = new Date();
    await utimes(file, now, now).catch(() => writeFile(file, ''));
  }

  private base() {
    return { serviceId: this.options.serviceId, at: new Date().toISOString() };
  }

  private warn(err: unknown, what: string): void {
    this.options.log.warn({ err: coerceError(err) }, `could not ${what}`);
  }
}

/** The same copies, in the same order (nothing changed keeps it). */
function sameHoldings(a: Holdings, b: Holdings): boolean {
  const [x, y] = [a.running, b.running];
  if (x.ids.length !== y.ids.length) return false;
  for (let i = 0; i < x.ids.length; i++) {
    if (x.ids[i] !== y.ids[i] || x.generations[i] !== y.generations[i]) return false;
  }
  return true;
}
