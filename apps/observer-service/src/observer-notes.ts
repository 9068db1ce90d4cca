/**
 * How a cancel stops an observer: dead-lettering its job (a crash loop) or acking it, and only
 * its copies up to generation `upTo` (a pause), or every copy (a delete).
 */
export interface CancelHow {
  deadLetter: boolean;
  upTo?: number;
}

/** Whether a cancel applies to a copy of `generation`. */
export function cancels(how: CancelHow | undefined, generation: number): how is CancelHow {
  return how !== undefined && (how.upTo === undefined || generation <= how.upTo);
}

/** What a service remembers about one observer, for a while. */
export interface ObserverNote {
  /** Cancelled; `deadLetter`: its job goes to the dead-letter queue (a crash loop), not away. */
  cancel?: CancelHow;
  /** Jobs of a lower generation are stale: this service was told to release them. */
  floor?: number;
  /** This service stopped the observer for its cancel and acked its job. */
  stoppedHere?: boolean;
  /** Times this service parked a job of it for want of its kind: each pause is longer. */
  parks?: number;
}

/**
 * Cancels and releases, remembered for `ttlMs`. Either can reach a service before the job it
 * concerns (a delete of an observer still queued, a copy released while its job is redelivered),
 * and a job delivered later for a remembered observer is settled as told instead of started.
 */
export class ObserverNotes {
  private readonly entries = new Map<string, ObserverNote & { until: number }>();

  constructor(private readonly ttlMs: number) {}

  get(observerId: string, now = Date.now()): ObserverNote | undefined {
    const entry = this.entries.get(observerId);
    return entry && entry.until > now ? entry : undefined;
  }

  cancel(observerId: string, how: CancelHow, now = Date.now()): void {
    this.update(observerId, { cancel: how }, now);
  }

  /** Every generation up to `generation` is released: only later ones may run here. */
  release(observerId: string, generation: number, now = Date.now()): void {
    const floor = Math.max(this.get(observerId, now)?.floor ?? 0, generation + 1);
    this.update(observerId, { floor }, now);
  }

  stoppedHere(observerId: string, now = Date.now()): void {
    this.update(observerId, { stoppedHere: true }, now);
  }

  /** Counts one more parking of the observer's job; returns how many came before it. */
  parked(observerId: string, now = Date.now()): number {
    const before = this.get(observerId, now)?.parks ?? 0;
    this.update(observerId, { parks: before + 1 }, now);
    return before;
  }

  private update(observerId: string, change: ObserverNote, now: number): void {
    const previous = this.get(observerId, now);
    // Re-inserted, so that the map stays ordered by expiry.
    this.entries.delete(observerId);
    this.entries.set(observerId, { ...previous, ...change, until: now + this.ttlMs });
    this.evictExpired(now);
  }

  /** Map iteration follows insertion order, so expired entries are always at the front. */
  private evictExpired(now: number): void {
    for (const [id, entry] of this.entries) {
      if (entry.until > now) break;
      this.entries.delete(id);
    }
  }
}
