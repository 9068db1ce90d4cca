import { defineKind, MAX_TIMER_MS, untilAborted, z } from '@vigil/observer-sdk';

/** The smallest observer: publishes `{seq}` at once and then every interval. */
export const ticker = defineKind({
  name: 'ticker',
  description: 'Publishes {seq} as soon as it starts, then every intervalMs.',
  params: z.object({
    intervalMs: z.int().min(10).max(MAX_TIMER_MS).describe('Milliseconds between ticks'),
  }),
  async run({ params, signal, publish }) {
    let seq = 0;
    publish({ seq });
    const timer = setInterval(() => publish({ seq: ++seq }), params.intervalMs);
    try {
      await untilAborted(signal);
    } finally {
      clearInterval(timer);
    }
  },
});
