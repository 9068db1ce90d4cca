/**
 * A service reports the first starts of new observers to the manager together, at most every
 * START_REPORT_SPACING_MS while they keep coming: a stream of creates costs a few state messages,
 * not one per start. Other starts (a takeover, a move) are not held back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { JobMessage, StateEvent } from '@vigil/contracts';
import { createLogger } from '@vigil/logging';
import { START_REPORT_SPACING_MS, StateReporter } from '../apps/observer-service/src/state-reporter';

function newReporter() {
  const sent: StateEvent[] = [];
  const reporter = new StateReporter({
    serviceId: '00000000-0000-4000-8000-000000000001',
    name: 'reporter',
    capacity: 100,
    pools: ['default'],
    kinds: [],
    version: '0',
    startedAt: new Date().toISOString(),
    heartbeatIntervalMs: 60_000,
    listingEveryBeats: 12,
    healthFile: undefined,
    send: (event) => {
      sent.push(event);
      return Promise.resolve();
    },
    holdings: () => ({
      running: { ids: [], generations: [] },
      parked: [],
      held: 0,
      observationsDropped: 0,
      draining: false,
    }),
    log: createLogger({ level: 'silent', base: {} }),
  });
  return { reporter, sent };
}

function job(n: number, generation = 1): JobMessage {
  const id = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  return { observerId: id, name: `o-${n}`, kind: 'ticker', pool: 'default', params: {}, generation };
}

/** The observers each start report names, one array per message. */
function reported(events: StateEvent[]): string[][] {
  return events.flatMap((event) => {
    if (event.type === 'observer.started') return [[event.name]];
    if (event.type === 'observers.started') return [event.observers.map((o) => o.name)];
    return [];
  });
}

describe('start reports', () => {
  it('a lone start is reported at the end of its turn, on its own', async () => {
    const { reporter, sent } = newReporter();
    reporter.started(job(1), false);
    assert.equal(sent.length, 0);
    await nextTurn();
    assert.deepEqual(
      sent.map((e) => e.type),
      ['observer.started'],
    );
  });

  it("a takeover's or a move's start is not held back by the pace of creates", async () => {
    const { reporter, sent } = newReporter();
    reporter.started(job(1), false);
    await nextTurn();
    reporter.started(job(2), false);
    await nextTurn();
    assert.deepEqual(reported(sent), [['o-1']], 'a create within the spacing waits');
    reporter.started(job(3), true);
    reporter.started(job(4, 2), false);
    await nextTurn();
    assert.deepEqual(reported(sent), [['o-1'], ['o-2', 'o-3', 'o-4']], 'the waiting create went with them');
  });

  it('first starts in a stream go together, at most one message per spacing, every start once and in order', async () => {
    const { reporter, sent } = newReporter();
    const count = 40;
    const began = performance.now();
    for (let n = 0; n < count; n += 1) {
      reporter.started(job(n), false);
      await sleep(5);
    }
    const streamMs = performance.now() - began;
    await sleep(START_REPORT_SPACING_MS * 2);
    const messages = reported(sent);
    assert.deepEqual(
      messages.flat(),
      Array.from({ length: count }, (_, n) => `o-${n}`),
    );
    // 200 ms of starts (longer on a busy machine): one at once, then one per 50 ms of the stream
    // and one for what was left at its end; fewer than the 40 starts.
    const most = Math.min(count - 1, 2 + Math.floor(streamMs / START_REPORT_SPACING_MS));
    assert.ok(messages.length <= most, `${messages.length} messages for ${count} starts, at most ${most}`);
  });

  it('another event sends the starts gathered before it first', async () => {
    const { reporter, sent } = newReporter();
    reporter.started(job(1), false);
    await nextTurn();
    reporter.started(job(2), false);
    reporter.started(job(3), false);
    await reporter.died('test');
    assert.deepEqual(
      sent.map((e) => e.type),
      ['observer.started', 'observers.started', 'service.died'],
    );
    assert.deepEqual(reported(sent), [['o-1'], ['o-2', 'o-3']]);
  });
});
