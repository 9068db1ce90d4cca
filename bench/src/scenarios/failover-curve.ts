import { failoverCurveFigure, failoverCurveFigures, failoverCurveSizes } from '../curves';
import type { Scenario } from '../scenario';
import { measureFailoverKill } from './failover-kill';
import { measureObservedFloor } from './floor-observed';

/**
 * What a failover costs per observer as N grows: failover-kill's measurement for each N of a 1-2-5
 * series, each beside the observed floor for the same N (the floor's own cost grows with N too,
 * so the ratio, not the time, says whether Vigil keeps up). A flat µs per observer is a linear
 * cost; a rising one is work that grows faster than the observers, such as a scan per observer.
 */
export const failoverCurve: Scenario = {
  name: 'failover-curve',
  title: 'Failover cost curve',
  description:
    "For each N of the 1-2-5 series from --failover-curve-from to --failover-curve-to, failover-kill's measurement " +
    '(a world of its own; N tickers on one service beside an idle one, kill -9, until all published from the ' +
    'survivor) and the observed floor for the same N (its published ms). Reports per N the total, µs per observer ' +
    '(total / N), the observed floor and the ratio to it; draws failover-curve.svg.',
  params: [
    { flag: 'failover-curve-from', description: 'smallest N of the failover curve', default: 1000, quick: 50 },
    { flag: 'failover-curve-to', description: 'largest N of the failover curve', default: 20_000, quick: 200 },
  ],
  quick: false,
  figures: failoverCurveFigures,

  async run(ctx) {
    const sizes = failoverCurveSizes(ctx.params);
    if (sizes.length === 0) throw new Error('no 1-2-5 size between --failover-curve-from and --failover-curve-to');
    const values: Record<string, number> = {};
    for (const n of sizes) {
      ctx.progress(`N = ${n}: observed floor`);
      const floor = await measureObservedFloor(ctx, n);
      ctx.progress(`N = ${n}: kill -9`);
      const failover = await measureFailoverKill(ctx, n);
      values[failoverCurveFigure.allRunning(n)] = failover.allRunningMs;
      values[failoverCurveFigure.perObserver(n)] = (failover.allRunningMs * 1000) / n;
      values[failoverCurveFigure.observedFloor(n)] = floor.publishedMs;
      values[failoverCurveFigure.ratio(n)] = failover.allRunningMs / floor.publishedMs;
    }
    return values;
  },
};
