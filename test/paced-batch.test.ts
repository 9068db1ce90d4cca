import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { PacedBatch } from '../apps/observer-service/src/paced-batch';

const SPACING_MS = 50;

function batches() {
  const handed: { items: number[]; at: number }[] = [];
  const started = performance.now();
  const batch = new PacedBatch<number>(SPACING_MS, (items) => handed.push({ items, at: performance.now() - started }));
  return { batch, handed };
}

describe('PacedBatch: items handed on together, paced ones at most once per spacing', () => {
  it('hands a lone item on at the end of its turn, not in it', async () => {
    const { batch, handed } = batches();
    batch.push(1, true);
    assert.equal(handed.length, 0);
    await nextTurn();
    assert.deepEqual(
      handed.map((h) => h.items),
      [[1]],
    );
  });

  it('gathers a stream of items, one per turn, into one hand-off per spacing', async () => {
    const { batch, handed } = batches();
    // 30 items 5 ms apart: 150 ms of them, longer on a busy machine.
    const began = performance.now();
    for (let n = 0; n < 30; n += 1) {
      batch.push(n, true);
      await sleep(5);
    }
    const streamMs = performance.now() - began;
    await sleep(SPACING_MS * 2);
    assert.deepEqual(
      handed.flatMap((h) => h.items),
      Array.from({ length: 30 }, (_, n) => n),
      'every item once, in order',
    );
    // One at once, then one per 50 ms of the stream and one for what was left at its end.
    const most = 2 + Math.floor(streamMs / SPACING_MS);
    assert.ok(handed.length >= 3 && handed.length <= most, `${handed.length} hand-offs, at most ${most}`);
    assert.deepEqual(handed[0]?.items, [0], 'the first item was not held back');
    for (let i = 1; i < handed.length; i += 1) {
      const gap = handed[i]!.at - handed[i - 1]!.at;
      assert.ok(gap >= SPACING_MS - 2, `hand-off ${i} came ${gap.toFixed(1)} ms after the one before`);
    }
  });

  it('hands on at once after a quiet spacing', async () => {
    const { batch, handed } = batches();
    batch.push(1, true);
    await nextTurn();
    await sleep(SPACING_MS + 10);
    batch.push(2, true);
    await nextTurn();
    assert.deepEqual(
      handed.map((h) => h.items),
      [[1], [2]],
    );
  });

  it('an item that may not wait goes at the end of its turn, with the paced ones waiting', async () => {
    const { batch, handed } = batches();
    batch.push(0, true);
    await nextTurn();
    for (let n = 1; n <= 3; n += 1) batch.push(n, true);
    await nextTurn();
    assert.equal(handed.length, 1, 'paced items wait for the spacing');
    batch.push(4, false);
    assert.equal(handed.length, 1, 'not in the turn it came in');
    await nextTurn();
    assert.deepEqual(
      handed.map((h) => h.items),
      [[0], [1, 2, 3, 4]],
    );
    assert.ok(handed[1]!.at - handed[0]!.at < SPACING_MS, 'it was not held back');
  });

  it('flush hands on what waits now; discard drops it', async () => {
    const { batch, handed } = batches();
    batch.push(1, true);
    await nextTurn();
    batch.push(2, true);
    batch.push(3, true);
    assert.equal(handed.length, 1, 'held back: the last hand-off was just now');
    batch.flush();
    batch.push(4, true);
    assert.deepEqual(batch.discard(), [4]);
    await sleep(SPACING_MS + 10);
    assert.deepEqual(
      handed.map((h) => h.items),
      [[1], [2, 3]],
    );
  });
});
