/**
 * Gathers items and hands them on together, at the end of the turn they came in. Items that may
 * wait are paced: they go then only if nothing was handed on for `spacingMs`, else once that long
 * has passed since the last hand-off. So a stream of creates' starts (one every few ms, one per
 * turn) is reported a few at a time, and the starts of a takeover or a move, which may not wait,
 * as they are handled.
 */
export class PacedBatch<T> {
  private items: T[] = [];
  private scheduled: { atTurnEnd: boolean; cancel(): void } | undefined;
  private handedOnAt = -Infinity;

  constructor(
    private readonly spacingMs: number,
    private readonly handOn: (items: T[]) => void,
  ) {}

  /** Adds an item; returns how many are waiting now. `mayWait`: it is paced. */
  push(item: T, mayWait: boolean): number {
    this.items.push(item);
    const due = !mayWait || performance.now() - this.handedOnAt >= this.spacingMs;
    if (!this.scheduled) this.schedule(due);
    else if (due && !this.scheduled.atTurnEnd) {
      this.scheduled.cancel();
      this.schedule(true);
    }
    return this.items.length;
  }

  /** Hands on what is waiting now, if anything. */
  flush(): void {
    const items = this.discard();
    if (items.length === 0) return;
    this.handedOnAt = performance.now();
    this.handOn(items);
  }

  /** Drops what is waiting, unhanded; returns it. */
  discard(): T[] {
    this.scheduled?.cancel();
    this.scheduled = undefined;
    const items = this.items;
    this.items = [];
    return items;
  }

  private schedule(atTurnEnd: boolean): void {
    if (atTurnEnd) {
      const immediate = setImmediate(() => this.flush());
      this.scheduled = { atTurnEnd, cancel: () => clearImmediate(immediate) };
      return;
    }
    const timer = setTimeout(() => this.flush(), this.handedOnAt + this.spacingMs - performance.now());
    this.scheduled = { atTurnEnd, cancel: () => clearTimeout(timer) };
  }
}
