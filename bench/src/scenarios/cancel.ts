import { waitFor } from '@vigil/testkit';
import type { Scenario } from '../scenario';
import { allRunningOn, createTickers, loggedAt, percentile, startWorld } from '../vigil';

/**
 * docs/design.md, Targets: DELETE → the observer's AbortSignal fired, p99 ≤ 100 ms. From the
 * bench's clock when the request left to the service's own log of the observer stopping (same
 * machine clock).
 */
export const cancel: Scenario = {
  name: 'cancel',
  title: 'Cancel: DELETE to AbortSignal',
  description:
    'N tickers run on one service; each is deleted (50 concurrent clients). Per observer: from the DELETE leaving ' +
    "the client to the service logging 'observer stopped' (the ticker ends as its signal fires).",
  params: [{ flag: 'cancel-n', description: 'observers deleted', default: 1000, quick: 100 }],
  figures: [
    { name: 'p50 ms', unit: 'ms' },
    { name: 'p99 ms', unit: 'ms', target: { op: '<=', value: 100, text: 'p99 <= 100 ms' } },
    { name: 'max ms', unit: 'ms' },
  ],

  async run(ctx) {
    const n = ctx.params['cancel-n'] ?? 1000;
    const world = await startWorld(ctx);
    try {
      const service = await world.startService('bench-cancel', { CAPACITY: String(n) });
      const { ids } = await createTickers(world, n, 60_000);
      await allRunningOn(world, ids, service);
      const requestedAt = new Map<string, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          for (let i = next++; i < n; i = next++) {
            const id = ids[i] ?? '';
            requestedAt.set(id, Date.now());
            await world.api('DELETE', `/observers/${id}`);
          }
        }),
      );
      for (const id of ids) await world.waitForStatus(id, 'Deleted', undefined, 60_000);
      const stopped = await waitFor('the service to have logged every observer stopping', () => {
        const logged = loggedAt(service, 'observer stopped');
        return ids.every((id) => logged.has(id)) && logged;
      });
      const latencies = ids.map((id) => (stopped.get(id) ?? NaN) - (requestedAt.get(id) ?? NaN)).sort((a, b) => a - b);
      return {
        'p50 ms': percentile(latencies, 50),
        'p99 ms': percentile(latencies, 99),
        'max ms': latencies.at(-1) ?? NaN,
      };
    } finally {
      await world.close();
    }
  },
};
