import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, backoffDelay, pause } from '@vigil/backoff';

const policy = { initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0.2 };

describe('backoff: capped exponential delays with jitter', () => {
  it('doubles from the initial delay (no jitter drawn: random 0.5)', () => {
    const delays = [0, 1, 2, 3].map((attempt) => backoffDelay(policy, attempt, () => 0.5));
    assert.deepEqual(delays, [100, 200, 400, 800]);
  });

  it('never exceeds the cap, jitter included, and stays spread at the cap', () => {
    const high = backoffDelay(policy, 30, () => 0.999_999);
    const low = backoffDelay(policy, 30, () => 0);
    assert.ok(high <= 1_000, `at most the cap: ${high}`);
    assert.ok(low < high * 0.7, `spread below the cap, not piled on it: ${low}..${high}`);
  });

  it('spreads retries of the same attempt: a thousand clients do not retry in lockstep', () => {
    const delays = new Set(Array.from({ length: 1_000 }, () => backoffDelay(policy, 3)));
    assert.ok(delays.size > 100, `${delays.size} distinct delays`);
    for (const delay of delays) assert.ok(delay >= 640 && delay <= 960, `within ±20 % of 800: ${delay}`);
  });

  it('jitter 0 gives the plain schedule', () => {
    assert.equal(
      backoffDelay({ ...policy, jitter: 0 }, 2, () => 0),
      400,
    );
  });

  it('a Backoff counts failures and starts over on reset', () => {
    const backoff = new Backoff({ ...policy, jitter: 0 });
    assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [100, 200, 400]);
    assert.equal(backoff.failures, 3);
    backoff.reset();
    assert.equal(backoff.next(), 100);
  });

  it('pause resolves true after the delay, false at once when aborted', async () => {
    assert.equal(await pause(5), true);
    const controller = new AbortController();
    const paused = pause(60_000, controller.signal);
    controller.abort();
    assert.equal(await paused, false);
  });
});
