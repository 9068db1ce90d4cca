import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TurnQueue } from '../apps/observer-service/src/turn-queue';

/** Busy-waits `ms`: an item that costs CPU, as starting an observer does. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** No item of these tests throws. */
function unexpected(err: unknown): never {
  throw err;
}

async function drained(queue: { pending: number }): Promise<void> {
  while (queue.pending > 0) await nextTurn();
}

describe('TurnQueue: a burst handled a slice per turn of the event loop', () => {
  it('hands every item on, in order, never in the turn it was pushed', async () => {
    const handled: number[] = [];
    const queue = new TurnQueue<number>(10, (n) => handled.push(n), unexpected);
    for (let n = 0; n < 1000; n += 1) queue.push(n);
    assert.deepEqual(handled, []);
    await drained(queue);
    assert.deepEqual(
      handled,
      Array.from({ length: 1000 }, (_, n) => n),
    );
  });

  it('lets a timer due meanwhile fire between slices of a long burst', async () => {
    const order: string[] = [];
    const queue = new TurnQueue<number>(
      10,
      (n) => {
        // Due 1 ms after the burst began: handled in one go, it would wait for all 100 ms of it.
        if (n === 0) setTimeout(() => order.push('timer'), 1);
        spin(1);
        order.push('item');
      },
      unexpected,
    );
    for (let n = 0; n < 100; n += 1) queue.push(n);
    await drained(queue);
    const timerAt = order.indexOf('timer');
    // 100 items of 1 ms in slices of about 10 ms: the timer fires after the first slice.
    assert.ok(timerAt > 0 && timerAt < 30, `the timer fired after ${timerAt} of 100 items`);
  });

  it('an item that throws is reported and the rest are handled', async () => {
    const handled: number[] = [];
    const errors: unknown[] = [];
    const queue = new TurnQueue<number>(
      10,
      (n) => {
        if (n === 1) throw new Error('bad item');
        handled.push(n);
      },
      (err) => errors.push(err),
    );
    for (const n of [0, 1, 2]) queue.push(n);
    await drained(queue);
    assert.deepEqual(handled, [0, 2]);
    assert.equal(errors.length, 1);
  });
});
