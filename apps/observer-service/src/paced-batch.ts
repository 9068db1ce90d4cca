/**
 * Gathers items and hands them on together, at the end of the turn they came in. Items that may
 * wait are paced: they go then only if nothing was handed on for `spacingMs`, else once that long
 * has passed since the last hand-off. So a stream of creates' starts (one every few ms, one per
 * turn) is reported a few at a time, and the starts of a takeover or a move, which may not wait,
 * as they are handled.
 */
export class PacedBatch<T> {
  private items: T[] = [];
  /** Set while the items go at the end of this turn. */
  private immediate: NodeJS.Immediate | undefined;
  /** Set while paced items wait for the spacing to pass. */
  private timer: NodeJS.Timeout | undefined;
  private handedOnAt = -Infinity;

  constructor(
    private readonly spacingMs: number,
    private readonly handOn: (items: T[]) => void,
  ) {}

  /** Adds an item; returns how many are waiting now. `mayWait`: it is paced. */
  push(item: T, mayWait: boolean): number {
    this.items.push(item);
    if (this.immediate) return this.items.length;
    if (!mayWait || performance.now() - this.handedOnAt >= this.spacingMs) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.immediate = setImmediate(() => this.flush());
    } else {
      this.timer ??= setTimeout(() => this.flush(), this.handedOnAt + this.spacingMs - performance.now());
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
    clearImmediate(this.immediate);
    clearTimeout(this.timer);
    this.immediate = undefined;
    this.timer = undefined;
    const items = this.items;
    this.items = [];
    return items;
  }
}
