import type { Scenario } from '../scenario';
import { sleep } from '../scenario';
import { TickLog, allRunningOn, arrivals, fleetWithSurvivor, percentile, startWorld } from '../vigil';

/** The tickers' interval: every observer publishes this often, so a silence shows within one. */
const TICK_MS = 100;
/** A silence longer than the interval by this much is a gap: an observer that ran nowhere. */
const GAP_SLACK_MS = 50;
/** The quiet window before the stop, measured the same way: what the machine's own jitter costs. */
const CONTROL_MS = 3_000;
/** How long the survivor keeps ticking inside the measured window after the old service exits. */
const AFTER_MS = 1_000;
/** Observations still on their way when the window closes; none is older than this. */
const IN_FLIGHT_MS = 1_000;

/**
 * A graceful stop (SIGTERM, a deploy): the stopping service asks for its observers to be moved and
 * each runs on until its next generation runs on the survivor (make-before-break); kinds that must
 * never overlap are stopped and handed back first (break-before-make).
 */
function handoffScenario(kind: 'ticker' | 'exclusive-ticker'): Scenario {
  const exclusive = kind === 'exclusive-ticker';
  const threshold = TICK_MS + GAP_SLACK_MS;
  return {
    name: exclusive ? 'handoff-exclusive' : 'handoff',
    title: exclusive ? 'Handoff: SIGTERM, never-overlap kind' : 'Handoff: SIGTERM',
    description:
      `N ${kind}s (${exclusive ? "overlap: 'never', so moved break-before-make" : 'a kind that may overlap, so moved make-before-break'}) ` +
      `tick every ${TICK_MS} ms on one service; it is stopped with SIGTERM beside an idle survivor. Judged from the ` +
      `observations stream, by each observation's publish time: per observer, its longest silence (time between two ` +
      `ticks from any service) from the stop until ${AFTER_MS / 1000} s after the old service exited; how many were ` +
      `silent longer than interval + ${GAP_SLACK_MS} ms; the same count over the ${CONTROL_MS / 1000} s before the ` +
      `stop (the machine's own timer jitter); how long two copies ticked at once; the time until every observer ` +
      `ticked on the survivor, and until the last old copy ticked. The services' log lines would time a copy's ` +
      `start and stop, not whether it published: a copy can be started and still silent, so the stream is what an ` +
      `observer's consumers see.`,
    params: [{ flag: 'failover-n', description: 'observers on the stopped service', default: 1000, quick: 100 }],
    figures: exclusive
      ? [
          { name: 'longest silence ms', unit: 'ms' },
          { name: 'silence p50 ms', unit: 'ms' },
          { name: `observers silent > interval + ${GAP_SLACK_MS} ms`, unit: 'observers' },
          { name: 'silent before the stop (control)', unit: 'observers' },
          { name: 'double-run ms', unit: 'ms', target: { op: '<=', value: 0, text: '0 (never two copies)' } },
          { name: 'all running elsewhere ms', unit: 'ms' },
          { name: 'last old tick ms', unit: 'ms' },
        ]
      : [
          {
            name: 'longest silence ms',
            unit: 'ms',
            target: { op: '<=', value: threshold, text: `<= interval + ${GAP_SLACK_MS} ms (gap 0)` },
          },
          { name: 'silence p50 ms', unit: 'ms' },
          {
            name: `observers silent > interval + ${GAP_SLACK_MS} ms`,
            unit: 'observers',
            target: { op: '<=', value: 0, text: '0' },
          },
          { name: 'silent before the stop (control)', unit: 'observers' },
          { name: 'overlap p99 ms', unit: 'ms', target: { op: '<=', value: 500, text: '<= 500 ms' } },
          { name: 'all running elsewhere ms', unit: 'ms', target: { op: '<=', value: 2000, text: '<= 2 s' } },
          { name: 'last old tick ms', unit: 'ms' },
        ],

    async run(ctx) {
      const n = ctx.params['failover-n'] ?? 1000;
      const world = await startWorld(ctx);
      const ticks = new TickLog(world);
      try {
        const { victim, survivor, ids } = await fleetWithSurvivor(ctx, world, n, { intervalMs: TICK_MS, kind });
        const controlFrom = Date.now();
        await sleep(CONTROL_MS);
        const stoppedAt = Date.now();
        victim.process.signal('SIGTERM');
        await allRunningOn(world, ids, survivor);
        const allRunning = arrivals(world, ids, survivor, stoppedAt).at(-1) ?? NaN;
        await victim.process.exited;
        const to = Date.now() + AFTER_MS;
        await sleep(AFTER_MS + IN_FLIGHT_MS);

        const silences = ids.map((id) => ticks.longestSilence(id, stoppedAt, to)).sort((a, b) => a - b);
        const control = ids.filter((id) => ticks.longestSilence(id, controlFrom, stoppedAt) > threshold).length;
        const overlaps = ids.map((id) => ticks.overlap(id, stoppedAt)).sort((a, b) => a - b);
        const lastOld = Math.max(...ids.map((id) => ticks.lastFrom(id, victim.id) ?? stoppedAt)) - stoppedAt;
        ctx.progress(
          `silences p50 ${percentile(silences, 50)} ms, p99 ${percentile(silences, 99)} ms, max ${silences.at(-1)} ms; ` +
            `overlaps p50 ${percentile(overlaps, 50)} ms, max ${overlaps.at(-1)} ms`,
        );
        return {
          'longest silence ms': silences.at(-1) ?? NaN,
          'silence p50 ms': percentile(silences, 50),
          [`observers silent > interval + ${GAP_SLACK_MS} ms`]: silences.filter((ms) => ms > threshold).length,
          'silent before the stop (control)': control,
          ...(exclusive ? { 'double-run ms': overlaps.at(-1) ?? NaN } : { 'overlap p99 ms': percentile(overlaps, 99) }),
          'all running elsewhere ms': allRunning,
          'last old tick ms': lastOld,
        };
      } finally {
        ticks.close();
        await world.close();
      }
    },
  };
}

export const handoff = handoffScenario('ticker');
export const handoffExclusive = handoffScenario('exclusive-ticker');
