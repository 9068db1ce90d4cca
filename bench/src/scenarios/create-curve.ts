import { performance } from 'node:perf_hooks';
import { createCurveFigure, createCurveFigures, createCurveSizes } from '../curves';
import type { Scenario } from '../scenario';
import { CLIENTS, allRunningOn, createTickers, percentile, startWorld } from '../vigil';

/**
 * `existing` observers as the manager's create writes them (observers row and its `created`
 * timeline entry, the same columns and values), but `Paused`: a paused observer runs nowhere, so
 * no service must hold them and no part of the manager works on them beyond what a big table
 * costs, yet it is live in every sense the create path checks: its name holds a place in the
 * unique index of live names, the quota counts it, and it lies in every index a create writes.
 * (`Deleted` ones would be left out of the name index and the quota count, and pruned.)
 */
const INSERT_EXISTING = `
  WITH created AS (
    INSERT INTO observers (id, name, kind, pool, params, secret_params, status, job_published)
    SELECT gen_random_uuid(), 'existing-' || i, 'ticker', 'default', '{"intervalMs": 60000}', '[]', 'Paused', true
    FROM generate_series(1, $1::int) AS i
    RETURNING id)
  INSERT INTO observer_events (observer_id, event, status, generation)
  SELECT id, 'created', 'Created', 1 FROM created`;

/**
 * Whether creating slows down as the system holds more observers: the same batch of creates
 * through the API after the database already holds 0, 10,000, … 100,000 observers. Those are
 * written straight into Postgres (a minute or more through the API at 100,000, and the service
 * would have to run them); each size gets a world of its own.
 */
export const createCurve: Scenario = {
  name: 'create-curve',
  title: 'Create throughput vs. existing observers',
  description:
    `With 0 and then each 1-2-5 size from --create-curve-from to --create-curve-to of Paused observers already in ` +
    `the database (inserted in SQL as the create writes them, then ANALYZEd), --create-curve-n POSTs from ` +
    `${CLIENTS} concurrent clients onto one service: POSTs answered per second and their p99. A fresh world per ` +
    'size; draws create-curve.svg.',
  params: [
    {
      flag: 'create-curve-n',
      description: 'observers created at each point of the create curve',
      default: 2000,
      quick: 200,
    },
    {
      flag: 'create-curve-from',
      description: 'smallest count of observers already there, after 0',
      default: 10_000,
      quick: 200,
    },
    { flag: 'create-curve-to', description: 'largest count of observers already there', default: 100_000, quick: 500 },
  ],
  quick: false,
  figures: createCurveFigures,

  async run(ctx) {
    const batch = ctx.params['create-curve-n'] ?? 2000;
    const values: Record<string, number> = {};
    for (const existing of createCurveSizes(ctx.params)) {
      const world = await startWorld(ctx);
      try {
        const service = await world.startService('bench-create-curve', { CAPACITY: String(batch) });
        if (existing > 0) {
          ctx.progress(`inserting ${existing} existing observers`);
          await world.sql(INSERT_EXISTING, [existing]);
          // Fresh statistics, as a table that grew over time would have: the planner must not
          // take 100,000 rows for an empty table.
          await world.sql('ANALYZE observers, observer_events');
        }
        ctx.progress(`${existing} existing: creating ${batch}`);
        const started = performance.now();
        const { ids, latencies } = await createTickers(world, batch, 60_000);
        const seconds = (performance.now() - started) / 1000;
        // Not timed: only that every create made an observer that runs.
        await allRunningOn(world, ids, service, 600_000);
        values[createCurveFigure.perSecond(existing)] = batch / seconds;
        values[createCurveFigure.p99(existing)] = percentile(
          [...latencies].sort((a, b) => a - b),
          99,
        );
      } finally {
        await world.close();
      }
    }
    return values;
  },
};
