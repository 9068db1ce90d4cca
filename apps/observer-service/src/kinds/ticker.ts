import { defineKind, MAX_TIMER_MS, untilAborted, z } from '@vigil/observer-sdk';

/** Runs of the ticker by their context, so that `onParams` reaches the run's timer. */
const timers = new WeakMap<object, { restart(intervalMs: number): void }>();

/**
 * The smallest observer: publishes `{seq}` at once and then every interval. A new interval is
 * taken live: the count goes on at the new pace, without a restart.
 */
export const ticker = defineKind({
  name: 'ticker',
  description: 'Publishes {seq} as soon as it starts, then every intervalMs.',
  params: z.object({
    intervalMs: z.int().min(10).max(MAX_TIMER_MS).describe('Milliseconds between ticks'),
  }),
  async run(ctx) {
    const { signal, publish } = ctx;
    let seq = 0;
    publish({ seq });
    let timer = setInterval(() => publish({ seq: ++seq }), ctx.params.intervalMs);
    timers.set(ctx, {
      restart(intervalMs) {
        clearInterval(timer);
        timer = setInterval(() => publish({ seq: ++seq }), intervalMs);
      },
    });
    try {
      await untilAborted(signal);
    } finally {
      clearInterval(timer);
    }
  },
  onParams(params, ctx) {
    timers.get(ctx)?.restart(params.intervalMs);
  },
});
