import { waitFor } from '@vigil/testkit';
import type { Scenario } from '../scenario';
import { allRunningOn, arrivals, fleetWithSurvivor, loggedAt, startWorld } from '../vigil';

/**
 * A graceful stop (SIGTERM, a deploy): the service stops its observers and requeues each job as
 * soon as its observer ended. The gap is per observer, from the services' own logs: when the
 * old one logged it stopped to when the new one logged it started.
 */
export const handoff: Scenario = {
  name: 'handoff',
  title: 'Handoff: SIGTERM',
  description:
    'N tickers run on one service; it is stopped with SIGTERM. The longest time any observer ran nowhere (from ' +
    "'observer stopped' on the old service to 'observer started' on the new one, in their logs; negative when " +
    'every new copy started before its old one stopped, as a drain does), and the time until every observer has ' +
    'published from the survivor.',
  params: [{ flag: 'failover-n', description: 'observers on the stopped service', default: 1000, quick: 100 }],
  figures: [
    { name: 'longest gap ms', unit: 'ms' },
    { name: 'all running elsewhere ms', unit: 'ms' },
  ],

  async run(ctx) {
    const n = ctx.params['failover-n'] ?? 1000;
    const world = await startWorld(ctx);
    try {
      const { victim, survivor, ids } = await fleetWithSurvivor(ctx, world, n);
      const stoppedAt = Date.now();
      victim.process.signal('SIGTERM');
      await allRunningOn(world, ids, survivor);
      await victim.process.exited;
      // Observations travel faster than the services' stdout: wait for every log line.
      const logged = await waitFor('both services to have logged every observer', () => {
        const stopped = loggedAt(victim, 'observer stopped');
        const started = loggedAt(survivor, 'observer started');
        return ids.every((id) => stopped.has(id) && started.has(id)) && { stopped, started };
      });
      const { stopped, started } = logged;
      const gaps = ids.map((id) => (started.get(id) ?? NaN) - (stopped.get(id) ?? NaN));
      return {
        'longest gap ms': Math.max(...gaps),
        'all running elsewhere ms': arrivals(world, ids, survivor, stoppedAt).at(-1) ?? NaN,
      };
    } finally {
      await world.close();
    }
  },
};
