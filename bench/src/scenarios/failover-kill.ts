import { waitFor } from '@vigil/testkit';
import type { Scenario, TimelinePoint } from '../scenario';
import { allRunningOn, arrivals, fleetWithSurvivor, seenByWatch, startWorld } from '../vigil';

/**
 * The first target in docs/design.md, Targets: a service running N observers is killed with
 * SIGKILL; how long until every one of them runs on the survivor, judged from the observations
 * stream (a ticker publishes as soon as it starts), and separately until the manager's view
 * agrees.
 */
export const failoverKill: Scenario = {
  name: 'failover-kill',
  title: 'Failover: kill -9',
  description:
    'N tickers run on one service (capacity N); a second service starts, the first is killed with SIGKILL. Time ' +
    'until every observer has published from the survivor (by the time in its first observation there), until the ' +
    'manager shows them all there, the ratio of the first to the floor measured in the same run, and the time ' +
    'until the observations all reached the watch.',
  params: [{ flag: 'failover-n', description: 'observers on the stopped service', default: 1000, quick: 100 }],
  needs: ['floor'],
  figures: [
    { name: 'all running elsewhere ms', unit: 'ms', target: { op: '<=', value: 1000, text: '<= 1 s' } },
    { name: 'ratio to floor', unit: 'ratio', target: { op: '<=', value: 1.5, text: '<= 1.5 x floor' } },
    { name: 'manager agrees ms', unit: 'ms' },
    { name: 'all seen by the watch ms', unit: 'ms' },
  ],

  async run(ctx) {
    const n = ctx.params['failover-n'] ?? 1000;
    const world = await startWorld(ctx);
    try {
      const { victim, survivor, ids } = await fleetWithSurvivor(ctx, world, n);
      const killedAt = Date.now();
      victim.process.signal('SIGKILL');
      await allRunningOn(world, ids, survivor);
      const times = arrivals(world, ids, survivor, killedAt);
      const allRunning = times.at(-1) ?? NaN;
      const allSeen = seenByWatch(world, ids, survivor, killedAt).at(-1) ?? NaN;
      await waitFor(
        'the manager to show every observer on the survivor',
        async () => (await world.service(survivor.id)).observers.length === n,
        { timeoutMs: 120_000, intervalMs: 20 },
      );
      const managerAgrees = Date.now() - killedAt;
      ctx.timeline(
        'observers running on the survivor',
        times.map((ms, i): TimelinePoint => [ms, i + 1]),
      );
      return {
        'all running elsewhere ms': allRunning,
        'ratio to floor': allRunning / (ctx.needs.floor?.['requeue ms'] ?? NaN),
        'manager agrees ms': managerAgrees,
        'all seen by the watch ms': allSeen,
      };
    } finally {
      await world.close();
    }
  },
};
