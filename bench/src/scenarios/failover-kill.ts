import { World, waitFor } from '@vigil/testkit';
import type { Scenario, TimelinePoint } from '../scenario';

/**
 * SPEC §7's first target: a service running N observers is killed with SIGKILL; how long until
 * every one of them runs on the survivor, judged from the observations stream (a ticker
 * publishes as soon as it starts), and separately until the manager's view agrees.
 */
export const failoverKill: Scenario = {
  name: 'failover-kill',
  title: 'Failover: kill -9',
  description:
    'N tickers run on one service (capacity N); a second service starts, the first is killed with SIGKILL. Time ' +
    'until every observer has published from the survivor, until the manager shows them all there, and the ratio ' +
    'of the first to the floor measured in the same run.',
  params: [{ flag: 'failover-n', description: 'observers on the killed service', default: 1000, quick: 100 }],
  needs: ['floor'],
  figures: [
    { name: 'all running elsewhere ms', unit: 'ms', target: { op: '<=', value: 1000, text: '<= 1 s' } },
    { name: 'ratio to floor', unit: 'ratio', target: { op: '<=', value: 1.5, text: '<= 1.5 x floor' } },
    { name: 'manager agrees ms', unit: 'ms' },
  ],

  async run(ctx) {
    const n = ctx.params['failover-n'] ?? 1000;
    const world = await World.create({ amqpUrl: ctx.env.amqpUrl, postgresUrl: ctx.env.databaseUrl });
    ctx.resource('amqp-prefix', world.prefix);
    try {
      await world.startManager();
      const victim = await world.startService('bench-victim', { CAPACITY: String(n) });
      ctx.progress(`creating ${n} observers`);
      const ids: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          for (let i = next++; i < n; i = next++) ids.push(await world.createTicker(`bench-${i}`, 1000));
        }),
      );
      await waitFor(
        'every observer running on the victim',
        () => ids.every((id) => world.watch.firstSeen(id, victim.id)),
        {
          timeoutMs: 120_000,
        },
      );
      const survivor = await world.startService('bench-survivor', { CAPACITY: String(n) });

      const killedAt = Date.now();
      victim.process.signal('SIGKILL');
      await waitFor(
        'every observer running on the survivor',
        () => ids.every((id) => world.watch.firstSeen(id, survivor.id)),
        {
          timeoutMs: 120_000,
          intervalMs: 10,
        },
      );
      const arrivals = ids
        .map((id) => (world.watch.firstSeen(id, survivor.id) ?? NaN) - killedAt)
        .sort((a, b) => a - b);
      const allRunning = arrivals.at(-1) ?? NaN;
      await waitFor(
        'the manager to show every observer on the survivor',
        async () =>
          (
            await world.api<{ items: unknown[] }>(
              'GET',
              `/observers?serviceId=${survivor.id}&status=Processing&limit=1000`,
            )
          ).body.items.length === Math.min(n, 1000),
        { timeoutMs: 120_000, intervalMs: 20 },
      );
      const managerAgrees = Date.now() - killedAt;
      ctx.timeline(
        'observers running on the survivor',
        arrivals.map((ms, i): TimelinePoint => [ms, i + 1]),
      );
      const floorMs = ctx.needs.floor?.['requeue ms'] ?? NaN;
      return {
        'all running elsewhere ms': allRunning,
        'ratio to floor': allRunning / floorMs,
        'manager agrees ms': managerAgrees,
      };
    } finally {
      await world.close();
    }
  },
};
