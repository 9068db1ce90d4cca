/** What to do with the job of a cancelled observer. */
export interface Cancel {
  /** Dead-letter the job (a crash loop) instead of acking and dropping it. */
  deadLetter: boolean;
}

/**
 * Observer ids cancelled recently. A cancel can reach services before the job does (delete of
 * a `Created` observer, or one moving between services); a job delivered for a remembered id
 * is settled as the cancel said instead of started.
 */
export class CancelMemory {
  private readonly entries = new Map<string, Cancel & { until: number }>();

  constructor(private readonly ttlMs: number) {}

  remember(observerId: string, cancel: Cancel, now = Date.now()): void {
    this.entries.delete(observerId);
    this.entries.set(observerId, { ...cancel, until: now + this.ttlMs });
    this.evictExpired(now);
  }

  get(observerId: string, now = Date.now()): Cancel | undefined {
    const entry = this.entries.get(observerId);
    return entry && entry.until > now ? { deadLetter: entry.deadLetter } : undefined;
  }

  /** Map iteration follows insertion order, so expired entries are always at the front. */
  private evictExpired(now: number): void {
    for (const [id, entry] of this.entries) {
      if (entry.until > now) break;
      this.entries.delete(id);
    }
  }
}
