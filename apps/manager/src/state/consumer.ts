import { StateEvent, decodeMessage } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import type { StateDelivery } from '../broker';
import { isDatabaseUnavailable } from '../db/errors';
import type { Metrics } from '../metrics';
import type { Effects, StateProjector } from './projector';

export interface StateConsumerOptions {
  projector: StateProjector;
  /** Carries out what an applied event asks of the broker (cancels). */
  onEffects: (effects: Effects) => Promise<void>;
  metrics: Metrics;
  log: Logger;
}

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;
/** Failures other than a database outage: likely the event itself, so it may not block the queue. */
const MAX_OTHER_FAILURES = 5;

/**
 * Applies state messages one at a time, in queue order, acking each once applied. A message
 * that fails validation is dead-lettered; one that cannot be applied because the database is
 * away is retried until it can, holding the queue behind it so nothing is applied out of order.
 * One that keeps failing otherwise is dead-lettered after a few tries, so it cannot stall the
 * manager.
 */
export class StateConsumer {
  private readonly pending: StateDelivery[] = [];
  private draining = false;
  private stopped = false;

  constructor(private readonly options: StateConsumerOptions) {}

  /** True when every delivered message has been applied. */
  get idle(): boolean {
    return this.pending.length === 0 && !this.draining;
  }

  push(delivery: StateDelivery): void {
    this.pending.push(delivery);
    if (!this.draining) void this.drain();
  }

  stop(): void {
    this.stopped = true;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let delivery = this.pending.shift(); delivery && !this.stopped; delivery = this.pending.shift()) {
        await this.handle(delivery);
      }
    } finally {
      this.draining = false;
    }
  }

  private async handle(delivery: StateDelivery): Promise<void> {
    const { log, metrics } = this.options;
    const decoded = decodeMessage(StateEvent, delivery.message.content);
    if (!decoded.ok) {
      metrics.invalidMessages.inc();
      log.error(
        { error: decoded.error, body: delivery.message.content.toString('utf8', 0, 500) },
        'invalid state message; dead-lettering it',
      );
      settle(() => delivery.reject(), log);
      return;
    }
    const event = decoded.value;
    let otherFailures = 0;
    for (let delayMs = RETRY_MIN_MS; !this.stopped; delayMs = Math.min(delayMs * 2, RETRY_MAX_MS)) {
      try {
        const effects = await this.options.projector.apply(event);
        metrics.stateEvents.inc({ type: event.type });
        await this.options
          .onEffects(effects)
          .catch((err: unknown) =>
            log.warn(
              { err: coerceError(err), cancel: effects.cancel.length },
              'could not send cancels; they will be retried',
            ),
          );
        settle(() => delivery.ack(), log);
        return;
      } catch (err) {
        if (!isDatabaseUnavailable(err) && ++otherFailures >= MAX_OTHER_FAILURES) {
          log.error({ err: coerceError(err), event }, 'a state event keeps failing to apply; dead-lettering it');
          settle(() => delivery.reject(), log);
          return;
        }
        log.error(
          { err: coerceError(err), type: event.type, retryInMs: delayMs },
          'could not apply a state event; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }
}

/** The channel a message came on may be gone; the broker then redelivers it, which is fine. */
function settle(action: () => void, log: Logger): void {
  try {
    action();
  } catch (err) {
    log.warn({ err: coerceError(err) }, 'could not settle a state message; the broker will redeliver it');
  }
}
