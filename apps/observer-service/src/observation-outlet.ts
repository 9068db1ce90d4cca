/**
 * Where observations leave. `sent`: on its way, with room for more; `full`: on its way, but the
 * channel's buffer is full (wait for its `drain`); `closed`: not sent, no channel takes it now
 * (no connection, or the broker blocks publishing).
 */
export type SendObservation = (routingKey: string, body: Buffer) => 'sent' | 'full' | 'closed';

export interface OutletLimits {
  /** Observations one observer may have waiting while the channel is congested. */
  perObserver: number;
  /** Bytes all observers together may have waiting. */
  totalBytes: number;
}

/** A burst of a few dozen fits each observer; the bytes bound holds whatever their number. */
export const DEFAULT_OUTLET_LIMITS: OutletLimits = { perObserver: 32, totalBytes: 32 * 1024 * 1024 };

interface Waiting {
  routingKey: string;
  bodies: Buffer[];
}

/**
 * Observations on their way to the broker, with backpressure that is fair between observers. While
 * the channel takes them, they go straight out. Once it reports its buffer full, each observer may
 * have a few waiting; the channel's `drain` sends them one observer at a time in turn, so one
 * observer publishing as fast as it can gets its share and no more. What does not fit is dropped
 * and counted: memory stays bounded whatever an observer does.
 */
export class ObservationOutlet {
  private congested = false;
  /** By observer id; a Map keeps insertion order, which the round robin follows. */
  private readonly waiting = new Map<string, Waiting>();
  private waitingBytes = 0;
  private droppedTotal = 0;
  private readonly droppedSince = new Map<string, number>();

  constructor(
    private readonly send: SendObservation,
    private readonly limits: OutletLimits = DEFAULT_OUTLET_LIMITS,
  ) {}

  /** Observations dropped since the service started. */
  get dropped(): number {
    return this.droppedTotal;
  }

  /** Bytes of observations waiting for the channel to take them. */
  get waitingBytesNow(): number {
    return this.waitingBytes;
  }

  /** Returns false when the observation was dropped. */
  publish(observerId: string, routingKey: string, body: Buffer): boolean {
    if (!this.congested) {
      const sent = this.send(routingKey, body);
      this.congested = sent !== 'sent';
      if (sent !== 'closed') return true;
    }
    let queue = this.waiting.get(observerId);
    if (
      (queue?.bodies.length ?? 0) >= this.limits.perObserver ||
      this.waitingBytes + body.length > this.limits.totalBytes
    ) {
      this.droppedTotal++;
      this.droppedSince.set(observerId, (this.droppedSince.get(observerId) ?? 0) + 1);
      return false;
    }
    if (!queue) this.waiting.set(observerId, (queue = { routingKey, bodies: [] }));
    queue.bodies.push(body);
    this.waitingBytes += body.length;
    return true;
  }

  /**
   * The channel has room again (drained, unblocked, reconnected): send what waits, one observer
   * at a time, until it is full again.
   */
  drain(): void {
    this.congested = false;
    while (this.waiting.size > 0) {
      for (const [observerId, queue] of this.waiting) {
        const sent = this.send(queue.routingKey, queue.bodies[0]!);
        if (sent === 'closed') {
          this.congested = true;
          return;
        }
        const body = queue.bodies.shift()!;
        this.waitingBytes -= body.length;
        if (queue.bodies.length === 0) this.waiting.delete(observerId);
        if (sent === 'full') {
          this.congested = true;
          return;
        }
      }
    }
  }

  /** Drops counted per observer since the last call, for a log line; resets them. */
  takeDrops(): Map<string, number> {
    const drops = new Map(this.droppedSince);
    this.droppedSince.clear();
    return drops;
  }

  /** An observer stopped here: what it said and could not send yet is not sent after it. */
  forget(observerId: string): void {
    const queue = this.waiting.get(observerId);
    if (!queue) return;
    for (const body of queue.bodies) this.waitingBytes -= body.length;
    this.waiting.delete(observerId);
  }
}
