import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TIMER_MS, sleep } from '@vigil/observer-sdk';

describe('observer SDK: sleep', () => {
  it('waits past the longest timer Node takes instead of firing after 1 ms', async () => {
    const controller = new AbortController();
    let ended: boolean | undefined;
    void sleep(MAX_TIMER_MS + 1_000, controller.signal).then((value) => (ended = value));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(ended, undefined, 'still asleep after 100 ms');
    controller.abort();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ended, false, 'an abort ends it');
  });

  it('resolves true after a short wait', async () => {
    assert.equal(await sleep(5, new AbortController().signal), true);
  });
});
