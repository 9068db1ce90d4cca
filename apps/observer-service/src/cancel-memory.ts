/**
 * Observer ids cancelled recently. A cancel can reach services before the job does (delete of
 * a `Created` observer, or one moving between services); a job delivered for a remembered id
 * is acked and dropped instead of started.
 */
export class CancelMemory {
  private readonly until = new Map<string, number>();

  constructor(private readonly ttlMs: number) {}

  remember(observerId: string, now = Date.now()): void {
    this.until.delete(observerId);
    this.until.set(observerId, now + this.ttlMs);
    this.evictExpired(now);
  }

  has(observerId: string, now = Date.now()): boolean {
    const until = this.until.get(observerId);
    return until !== undefined && until > now;
  }

  /** Map iteration follows insertion order, so expired entries are always at the front. */
  private evictExpired(now: number): void {
    for (const [id, until] of this.until) {
      if (until > now) break;
      this.until.delete(id);
    }
  }
}
