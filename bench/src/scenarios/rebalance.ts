import { waitFor, type World } from '@vigil/testkit';
import type { Scenario } from '../scenario';
import { sleep } from '../scenario';
import { TickLog, createTickers, startWorld } from '../vigil';

/**
 * Two services hold 1,000 observers each at 1 s intervals. 2,000 tickers at 100 ms would be 20,000
 * observations a second on the two cores the broker, Postgres, the manager and three services
 * share: timer lag alone would make silences. The gap threshold stays interval + 50 ms.
 */
const TICK_MS = 1_000;
const GAP_SLACK_MS = 50;
const CAPACITY = 2_000;
/**
 * The planner moves at most this many per second, and plans a pool again only once its
 * previous round's copies all run elsewhere; each round takes a few hundred ms here, so at the
 * default 100/s (10 per 100 ms pass) rounds, not the rate, set the pace. 1,000/s lets one pass
 * ask for up to 100 moves, which the joining service starts within a round's time.
 */
const MOVES_PER_S = 1_000;
const TOLERANCE = 0.1;
/** Nothing moved for this long: the rebalance is over. */
const QUIET_MS = 3_000;
/** The control window before the join, the same measure over a time nothing moves. */
const CONTROL_MS = 3_000;

async function generations(world: World): Promise<Map<string, number>> {
  const rows = await world.sql<{ id: string; generation: number }>('SELECT id, generation FROM observers');
  return new Map(rows.map((r) => [r.id, r.generation]));
}

async function movesPublished(world: World): Promise<number> {
  const match = /vigil_moves_published_total\{purpose="rebalance"\} (\d+)/.exec(await world.metrics());
  return match ? Number(match[1]) : 0;
}

export const rebalance: Scenario = {
  name: 'rebalance',
  title: 'Rebalance: an empty service joins',
  description:
    `Two services (capacity ${CAPACITY} each) hold N tickers (${TICK_MS} ms) between them, about half each; a third, ` +
    `empty one joins (manager REBALANCE=on, REBALANCE_MAX_MOVES_PER_S=${MOVES_PER_S}: at the default 100 the ` +
    `planner's rounds, each waiting until its moves ran, make it slower than the rate). From when the manager knows ` +
    `the third service: the time until the manager shows each service within ±${TOLERANCE * 100} % of an even ` +
    `share. Until nothing moved for ${QUIET_MS / 1000} s: each observer's longest silence from the observations ` +
    `stream (publish times), how many were silent longer than interval + ${GAP_SLACK_MS} ms (and the same over ` +
    `${CONTROL_MS / 1000} s before the join, the control), the moves the manager published, observers moved ` +
    `twice, and, over the quiet time, observers that ticked from two services.`,
  params: [{ flag: 'rebalance-n', description: 'observers on the two services together', default: 2000, quick: 200 }],
  figures: [
    { name: 'even ±10 % ms', unit: 'ms', target: { op: '<=', value: 10_000, text: '<= 10 s' } },
    { name: 'last move ms', unit: 'ms' },
    { name: 'longest silence ms', unit: 'ms' },
    {
      name: `observers silent > interval + ${GAP_SLACK_MS} ms`,
      unit: 'observers',
      target: { op: '<=', value: 0, text: '0' },
    },
    { name: 'silent before the join (control)', unit: 'observers' },
    { name: 'double runs once quiet', unit: 'observers', target: { op: '<=', value: 0, text: '0' } },
    { name: 'moves', unit: 'moves' },
    { name: 'moved twice', unit: 'observers', target: { op: '<=', value: 0, text: '0' } },
  ],

  async run(ctx) {
    const n = ctx.params['rebalance-n'] ?? 2000;
    const threshold = TICK_MS + GAP_SLACK_MS;
    const world = await startWorld(ctx, { REBALANCE: 'on', REBALANCE_MAX_MOVES_PER_S: String(MOVES_PER_S) });
    const ticks = new TickLog(world);
    try {
      const env = { CAPACITY: String(CAPACITY) };
      const services = [await world.startService('bench-a', env), await world.startService('bench-b', env)];
      ctx.progress(`creating ${n} observers`);
      const { ids } = await createTickers(world, n, TICK_MS);
      const counts = async () => Promise.all(services.map(async (s) => (await world.service(s.id)).running));
      await waitFor(`all ${n} running`, async () => (await counts()).reduce((a, b) => a + b, 0) === n, {
        timeoutMs: 120_000,
        intervalMs: 200,
      });
      // Moves while the two filled up (counts of a few apart early on) are over before the join.
      let moves = await movesPublished(world);
      for (let still = 0; still < QUIET_MS; still += 500) {
        await sleep(500);
        const now = await movesPublished(world);
        if (now !== moves) still = 0;
        moves = now;
      }
      ctx.progress(`before the join: ${(await counts()).join(' + ')}, ${moves} moves while filling`);
      const before = await generations(world);

      const controlFrom = Date.now();
      await sleep(CONTROL_MS);
      services.push(await world.startService('bench-c', env));
      const joinedAt = Date.now();
      const share = n / services.length;
      let evenMs = NaN;
      let lastMoveAt = joinedAt;
      let lastMoves = moves;
      await waitFor(
        'the moves to end',
        async () => {
          const now = Date.now();
          const running = await counts();
          if (Number.isNaN(evenMs) && running.every((r) => Math.abs(r - share) <= TOLERANCE * share))
            evenMs = now - joinedAt;
          const published = await movesPublished(world);
          if (published !== lastMoves) {
            lastMoves = published;
            lastMoveAt = now;
          }
          return !Number.isNaN(evenMs) && now - lastMoveAt >= QUIET_MS;
        },
        { timeoutMs: 120_000, intervalMs: 100 },
      ).catch(async (error: Error) => {
        throw new Error(
          `${error.message}; services hold ${(await counts()).join(' + ')}, ${lastMoves - moves} moves, ` +
            `even after ${evenMs} ms, the last move ${lastMoveAt - joinedAt} ms after the join`,
        );
      });
      const quietFrom = Date.now() - QUIET_MS + 1_000;
      const to = Date.now();
      await sleep(1_000);

      const after = await generations(world);
      const movedTwice = ids.filter((id) => (after.get(id) ?? 0) - (before.get(id) ?? 0) >= 2).length;
      const silences = ids.map((id) => ticks.longestSilence(id, joinedAt, to)).sort((a, b) => a - b);
      const control = ids.filter((id) => ticks.longestSilence(id, controlFrom, joinedAt) > threshold).length;
      const doubles = ids.filter((id) => ticks.servicesSince(id, quietFrom).length > 1).length;
      ctx.progress(`after: ${(await counts()).join(' + ')}`);
      return {
        'even ±10 % ms': evenMs,
        'last move ms': lastMoveAt - joinedAt,
        'longest silence ms': silences.at(-1) ?? NaN,
        [`observers silent > interval + ${GAP_SLACK_MS} ms`]: silences.filter((ms) => ms > threshold).length,
        'silent before the join (control)': control,
        'double runs once quiet': doubles,
        moves: lastMoves - moves,
        'moved twice': movedTwice,
      };
    } finally {
      ticks.close();
      await world.close();
    }
  },
};
