import type { Scenario, TimelinePoint } from '../scenario';
import { allRunningOn, arrivals, fleetWithSurvivor, startWorld } from '../vigil';

/** The testkit's services ask for this AMQP heartbeat (AMQP_HEARTBEAT_S). */
const AMQP_HEARTBEAT_S = 1;

/**
 * A frozen service (SIGSTOP) keeps its TCP connection open: only the AMQP heartbeat tells the
 * broker it is gone. Target: observers running elsewhere within the heartbeat timeout + 1 s.
 */
export const failoverFrozen: Scenario = {
  name: 'failover-frozen',
  title: 'Failover: frozen (SIGSTOP)',
  description:
    `N tickers run on one service; it is frozen with SIGSTOP (AMQP heartbeat ${AMQP_HEARTBEAT_S} s, so the broker ` +
    'drops it after two missed beats). Time until every observer has published from the survivor.',
  params: [{ flag: 'failover-n', description: 'observers on the stopped service', default: 1000, quick: 100 }],
  figures: [
    {
      name: 'all running elsewhere ms',
      unit: 'ms',
      target: { op: '<=', value: 2 * AMQP_HEARTBEAT_S * 1000 + 1000, text: '<= heartbeat timeout + 1 s' },
    },
  ],

  async run(ctx) {
    const n = ctx.params['failover-n'] ?? 1000;
    const world = await startWorld(ctx);
    try {
      const { victim, survivor, ids } = await fleetWithSurvivor(ctx, world, n);
      const frozenAt = Date.now();
      victim.process.signal('SIGSTOP');
      try {
        await allRunningOn(world, ids, survivor);
      } finally {
        victim.process.signal('SIGCONT');
      }
      const times = arrivals(world, ids, survivor, frozenAt);
      ctx.timeline(
        'observers running on the survivor',
        times.map((ms, i): TimelinePoint => [ms, i + 1]),
      );
      return { 'all running elsewhere ms': times.at(-1) ?? NaN };
    } finally {
      await world.close();
    }
  },
};
