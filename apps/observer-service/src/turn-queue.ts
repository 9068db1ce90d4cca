/**
 * Hands items on for at most `budgetMs` per turn of the event loop. A burst of messages (a
 * takeover or a move brings a thousand jobs, then a thousand releases) comes in a few socket
 * reads; handling them all in one go holds back every timer in the process, so observers already
 * running here publish hundreds of ms late. Between slices, timers and I/O have their turn; a
 * slice long enough to handle many items keeps the turns, and what each costs, few.
 */
export class TurnQueue<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly budgetMs: number,
    /** Should not throw; if it does, `onError` hears of it and the next item is handled all the same. */
    private readonly handle: (item: T) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Items waiting for their turn. */
  get pending(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.items.length === 1) setImmediate(() => this.handSlice());
  }

  private handSlice(): void {
    const until = performance.now() + this.budgetMs;
    let handled = 0;
    while (handled < this.items.length && (handled === 0 || performance.now() < until)) {
      try {
        this.handle(this.items[handled]!);
      } catch (err) {
        this.onError(err);
      }
      handled += 1;
    }
    this.items.splice(0, handled);
    if (this.items.length > 0) setImmediate(() => this.handSlice());
  }
}
