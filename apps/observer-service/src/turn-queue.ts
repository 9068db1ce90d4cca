/**
 * Hands items on a slice per turn of the event loop. A burst of messages (a takeover or a move
 * brings a thousand jobs, then a thousand releases) comes in a few socket reads; handling them
 * all in one go holds back every timer in the process, so observers already running here publish
 * hundreds of ms late. Between slices, timers and I/O have their turn.
 */
export class TurnQueue<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly perTurn: number,
    /** Must not throw: a throw is reported to `onError` and the next item is handled. */
    private readonly handle: (item: T) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  push(item: T): void {
    this.items.push(item);
    if (this.items.length === 1) setImmediate(() => this.handSlice());
  }

  private handSlice(): void {
    for (const item of this.items.splice(0, this.perTurn)) {
      try {
        this.handle(item);
      } catch (err) {
        this.onError(err);
      }
    }
    if (this.items.length > 0) setImmediate(() => this.handSlice());
  }
}
