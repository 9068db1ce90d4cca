import { Backoff, pause } from '@vigil/backoff';
import { StateEvent, decodeMessage, type StateEventOf } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { StateDelivery } from '../broker';
import { isDatabaseUnavailable } from '../db/errors';
import { NotActiveError } from '../leadership';
import type { Metrics } from '../metrics';
import { supersededHeartbeats } from './event-batches';
import type { Effects } from './placement';
import type { StateProjector } from './projector';

export interface StateConsumerOptions {
  projector: StateProjector;
  /** Carries out what an applied event asks of the broker (cancels, releases). */
  onEffects: (effects: Effects) => Promise<void>;
  metrics: Metrics;
  log: Logger;
  /** A barrier of the manager's came back: everything queued before it is applied. */
  onBarrier: (barrierId: string) => void;
  /** A service's birth was applied (its kinds are usable for creates). Must not block. */
  onBorn?: (event: StateEventOf<'service.born'>) => void;
}

const RETRY_BACKOFF = { initialDelayMs: 200, maxDelayMs: 5_000 };
/** Failures other than a database outage: likely the event itself, so it may not block the queue. */
const MAX_OTHER_FAILURES = 5;
/** Events applied in one transaction at most (the broker's prefetch bounds it too). */
const MAX_BATCH = 1000;

/** How many events a message holds: an observers.started carries up to a thousand. */
function weight(event: StateEvent): number {
  return event.type === 'observers.started' ? event.observers.length : 1;
}

/**
 * Consecutive runs of messages holding at most MAX_BATCH events between them: a backlog of
 * batched starts would otherwise make one transaction of tens of thousands of events.
 */
function inBatches(items: Decoded[]): Decoded[][] {
  const batches: Decoded[][] = [];
  let current: Decoded[] = [];
  let events = 0;
  for (const item of items) {
    if (current.length > 0 && events + weight(item.event) > MAX_BATCH) {
      batches.push(current);
      [current, events] = [[], 0];
    }
    current.push(item);
    events += weight(item.event);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Applies state messages one at a time, in queue order, acking each once applied. A message
 * that fails validation is dead-lettered; one that cannot be applied because the database is
 * away is retried until it can, holding the queue behind it so nothing is applied out of order.
 * One that keeps failing otherwise is dead-lettered after a few tries, so it cannot stall the
 * manager.
 */
export class StateConsumer {
  private pending: StateDelivery[] = [];
  private draining: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: StateConsumerOptions) {}

  /** True when every delivered message has been applied. */
  get idle(): boolean {
    return this.pending.length === 0 && !this.draining;
  }

  push(delivery: StateDelivery): void {
    this.pending.push(delivery);
    // Deliveries read from the socket together arrive in one tick: let them form one batch.
    this.draining ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain());
  }

  /** Resolves once everything delivered so far has been applied (or set aside). */
  async whenIdle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  stop(): void {
    this.stopped = true;
  }

  /**
   * This manager is no longer the active one: what was delivered and not applied is left to the
   * broker, which hands it to the next active manager once this one's channel closes.
   */
  forget(): void {
    this.pending = [];
  }

  /**
   * Everything delivered so far is applied in one transaction, in order; a batch that fails is
   * applied again one event at a time, so one bad event cannot hold the others back.
   */
  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.stopped) {
        const decoded = this.decodeOrReject(this.pending.splice(0, MAX_BATCH));
        for (const batch of inBatches(this.withoutSupersededHeartbeats(decoded))) {
          if (batch.length > 1 && (await this.applyTogether(batch))) continue;
          for (const item of batch) await this.applyAlone(item);
        }
      }
    } catch (err) {
      // Not the active manager any more: the next one gets these from the broker.
      if (err instanceof NotActiveError) this.forget();
      else
        this.options.log.error(
          { err: coerceError(err) },
          'the state consumer failed; it resumes with the next message',
        );
    } finally {
      this.draining = undefined;
    }
  }

  private decodeOrReject(deliveries: StateDelivery[]): Decoded[] {
    const { log, metrics } = this.options;
    const decoded: Decoded[] = [];
    for (const delivery of deliveries) {
      const result = decodeMessage(StateEvent, delivery.message.content);
      if (result.ok) {
        decoded.push({ delivery, event: result.value });
        continue;
      }
      metrics.invalidMessages.inc();
      log.error(
        { error: result.error, body: delivery.message.content.toString('utf8', 0, 500) },
        'invalid state message; dead-lettering it',
      );
      settle(() => delivery.reject(), this.options.log);
    }
    return decoded;
  }

  /**
   * Superseded heartbeats (see `supersededHeartbeats`) are acked without being applied: a manager
   * catching up on a backlog would otherwise apply every heartbeat of every minute it was away.
   */
  private withoutSupersededHeartbeats(items: Decoded[]): Decoded[] {
    const superseded = supersededHeartbeats(items, (item) => item.event);
    if (superseded.size === 0) return items;
    this.acknowledge([...superseded]);
    return items.filter((item) => !superseded.has(item));
  }

  private async applyTogether(batch: Decoded[]): Promise<boolean> {
    try {
      const effects = await this.options.projector.apply(batch.map((item) => item.event));
      await this.applied(batch, effects);
      return true;
    } catch (err) {
      if (err instanceof NotActiveError) throw err;
      this.options.log.warn(
        { err: coerceError(err), events: batch.length },
        'a batch of state events failed; applying them one by one',
      );
      return false;
    }
  }

  private async applyAlone(item: Decoded): Promise<void> {
    const { log } = this.options;
    let otherFailures = 0;
    const backoff = new Backoff(RETRY_BACKOFF);
    while (!this.stopped) {
      try {
        await this.applied([item], await this.options.projector.apply([item.event]));
        return;
      } catch (err) {
        if (err instanceof NotActiveError) throw err;
        if (!isDatabaseUnavailable(err) && ++otherFailures >= MAX_OTHER_FAILURES) {
          log.error(
            { err: coerceError(err), event: item.event },
            'a state event keeps failing to apply; dead-lettering it',
          );
          settle(() => item.delivery.reject(), log);
          return;
        }
        const delayMs = backoff.next();
        log.error(
          { err: coerceError(err), type: item.event.type, retryInMs: delayMs },
          'could not apply a state event; retrying',
        );
        await pause(delayMs);
      }
    }
  }

  /** Committed: send what the events asked of the broker, then ack them. */
  private async applied(items: Decoded[], effects: Effects): Promise<void> {
    const { log } = this.options;
    await this.options
      .onEffects(effects)
      .catch((err: unknown) =>
        log.warn(
          { err: coerceError(err), cancel: effects.cancel.length, release: effects.release.length },
          'could not send cancels or releases; they will be sent again',
        ),
      );
    this.acknowledge(items);
  }

  /** Counts the messages as handled and acks them; a barrier's or a birth's listener is told. */
  private acknowledge(items: readonly Decoded[]): void {
    const { log, metrics } = this.options;
    for (const { delivery, event } of items) {
      metrics.stateMessages.inc();
      const type = event.type === 'observers.started' ? 'observer.started' : event.type;
      metrics.stateEvents.inc({ type }, weight(event));
      if (event.type === 'service.born' || (event.type === 'service.heartbeat' && event.running))
        metrics.listings.inc();
      settle(() => delivery.ack(), log);
      if (event.type === 'manager.barrier') this.options.onBarrier(event.barrierId);
      if (event.type === 'service.born') this.options.onBorn?.(event);
    }
  }
}

interface Decoded {
  delivery: StateDelivery;
  event: StateEvent;
}

/** The channel a message came on may be gone; the broker then redelivers it, which is fine. */
function settle(action: () => void, log: Logger): void {
  try {
    action();
  } catch (err) {
    log.warn({ err: coerceError(err) }, 'could not settle a state message; the broker will redeliver it');
  }
}
