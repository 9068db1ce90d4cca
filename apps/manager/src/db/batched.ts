import { isDatabaseUnavailable } from './errors';

/** More items wait for the database than the manager takes on; nothing was written. */
export class OverloadedError extends Error {
  override readonly name = 'OverloadedError';
  constructor(readonly waiting: number) {
    super(`${waiting} writes are already waiting for the database; retry shortly`);
  }
}

/** Items that may wait for the next statement at most: beyond it, `add` refuses at once. */
export const MAX_WAITING = 10_000;

/**
 * Turns many concurrent one-row writes into one statement: the items added in the same tick,
 * and those added while the previous statement runs, go together. Each round trip costs the
 * manager a system call and Postgres a commit; under a burst of requests that was most of the
 * manager's time. The queue is bounded, and a batch that fails because the database is away
 * fails every item at once: each waits at most one connection attempt, not one per item ahead.
 */
export class Batched<T, R> {
  private waiting: { item: T; resolve: (result: R) => void; reject: (err: unknown) => void }[] = [];
  private writing = false;

  /** `write` returns one result per item, in order. */
  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly maxWaiting = MAX_WAITING,
  ) {}

  add(item: T): Promise<R> {
    if (this.waiting.length >= this.maxWaiting) return Promise.reject(new OverloadedError(this.waiting.length));
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.writing) return;
      this.writing = true;
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0);
      try {
        const results = await this.write(batch.map((entry) => entry.item));
        batch.forEach((entry, i) => entry.resolve(results[i]!));
      } catch (err) {
        if (batch.length === 1 || isDatabaseUnavailable(err)) for (const entry of batch) entry.reject(err);
        // One item may have failed them all: each alone, so the others are not refused for it.
        else for (const entry of batch) await this.writeAlone(entry);
      }
    }
    this.writing = false;
  }

  private async writeAlone(entry: (typeof this.waiting)[number]): Promise<void> {
    try {
      const [result] = await this.write([entry.item]);
      entry.resolve(result!);
    } catch (err) {
      entry.reject(err);
    }
  }
}
