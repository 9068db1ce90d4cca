import { waitFor } from '@vigil/testkit';
import type { Scenario, ScenarioContext, TimelinePoint } from '../scenario';
import { allRunningOn, arrivals, fleetWithSurvivor, seenByWatch, startWorld } from '../vigil';

/** One kill -9 of a service running N observers, in ms since the kill. */
export interface FailoverKill {
  /** Until every observer published from the survivor, by the time in its first observation there. */
  allRunningMs: number;
  /** The same by when those observations reached the watch. */
  allSeenMs: number;
  managerAgreesMs: number;
  /** When each observer ran on the survivor, sorted. */
  arrivals: number[];
}

/**
 * N tickers on one service (capacity N) beside an idle second one, in a world of their own; the
 * first is killed with SIGKILL. Used by `failover-kill` and, for each N, `failover-curve`.
 */
export async function measureFailoverKill(ctx: ScenarioContext, n: number): Promise<FailoverKill> {
  const world = await startWorld(ctx);
  try {
    const { victim, survivor, ids } = await fleetWithSurvivor(ctx, world, n);
    const killedAt = Date.now();
    victim.process.signal('SIGKILL');
    await allRunningOn(world, ids, survivor);
    const times = arrivals(world, ids, survivor, killedAt);
    const allSeen = seenByWatch(world, ids, survivor, killedAt).at(-1) ?? NaN;
    await waitFor(
      'the manager to show every observer on the survivor',
      async () => (await world.service(survivor.id)).observers.length === n,
      { timeoutMs: 120_000, intervalMs: 20 },
    );
    return {
      allRunningMs: times.at(-1) ?? NaN,
      allSeenMs: allSeen,
      managerAgreesMs: Date.now() - killedAt,
      arrivals: times,
    };
  } finally {
    await world.close();
  }
}

/**
 * The first target in docs/design.md, Targets: a service running N observers is killed with
 * SIGKILL; how long until every one of them runs on the survivor, judged from the observations
 * stream (a ticker publishes as soon as it starts), and separately until the manager's view
 * agrees. Judged against the observed floor of the same run, which waits for the same thing (an
 * observation per job, by the time in it) with nothing but amqplib; the bare floor's ratio is kept
 * to show what the observations cost the floor itself.
 */
export const failoverKill: Scenario = {
  name: 'failover-kill',
  title: 'Failover: kill -9',
  description:
    'N tickers run on one service (capacity N); a second service starts, the first is killed with SIGKILL. Time ' +
    'until every observer has published from the survivor (by the time in its first observation there), until the ' +
    'manager shows them all there, the ratio of the first to the bare floor and to the observed floor (its ' +
    '`published ms`) measured in the same run, and the time until the observations all reached the watch. The ' +
    'ratios compare like with like when --floor-n equals --failover-n.',
  params: [{ flag: 'failover-n', description: 'observers on the stopped service', default: 1000, quick: 100 }],
  needs: ['floor', 'floor-observed'],
  figures: [
    { name: 'all running elsewhere ms', unit: 'ms', target: { op: '<=', value: 1000, text: '<= 1 s' } },
    { name: 'ratio to floor', unit: 'ratio' },
    {
      name: 'ratio to observed floor',
      unit: 'ratio',
      target: { op: '<=', value: 1.5, text: '<= 1.5 x observed floor' },
    },
    { name: 'manager agrees ms', unit: 'ms' },
    { name: 'all seen by the watch ms', unit: 'ms' },
  ],

  async run(ctx) {
    const n = ctx.params['failover-n'] ?? 1000;
    const failover = await measureFailoverKill(ctx, n);
    ctx.timeline(
      'observers running on the survivor',
      failover.arrivals.map((ms, i): TimelinePoint => [ms, i + 1]),
    );
    return {
      'all running elsewhere ms': failover.allRunningMs,
      'ratio to floor': failover.allRunningMs / (ctx.needs.floor?.['requeue ms'] ?? NaN),
      'ratio to observed floor': failover.allRunningMs / (ctx.needs['floor-observed']?.['published ms'] ?? NaN),
      'manager agrees ms': failover.managerAgreesMs,
      'all seen by the watch ms': failover.allSeenMs,
    };
  },
};
