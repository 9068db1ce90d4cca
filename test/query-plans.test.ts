/**
 * Nothing the manager does in the background scans the observers or their timeline: with a
 * history of tens of thousands of rows, every query the reconciler, the move planner and the
 * pruner run, and those a heartbeat's listing costs, is served by an index. Postgres itself says so: a private server with auto_explain
 * logs the plan of every statement the manager runs, and no plan may hold a sequential scan of
 * `observers` or `observer_events`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { staged, startPrivatePostgres, World, type PrivatePostgres } from '@vigil/testkit';

const OBSERVERS = 60_000;
const SERVICES = 10;

describe('query plans of the background work', { timeout: 180_000 }, () => {
  let postgres: PrivatePostgres;
  let world: World;

  before(async () => {
    postgres = await startPrivatePostgres();
    world = await World.create({ postgresUrl: postgres.url });
  });
  after(async () => {
    await world?.close();
    await postgres?.destroy();
  });

  it('holds no sequential scan of observers or observer_events', async () => {
    const database = new URL(world.databaseUrl).pathname.slice(1);
    // Every session to the world's database logs the plan of each statement it runs.
    for (const setting of [
      `session_preload_libraries = 'auto_explain'`,
      `auto_explain.log_min_duration = 0`,
      `auto_explain.log_nested_statements = on`,
    ]) {
      await world.sql(`ALTER DATABASE "${database}" SET ${setting}`);
    }
    const settings = {
      RECONCILE_INTERVAL_MS: '100',
      PRUNE_INTERVAL_MS: '200',
      REBALANCE: 'on',
      ROTATE_AFTER_MS: '3600000',
      LOST_AFTER_MS: '500',
    };
    await world.startManager(settings);
    // A fleet with a history: services alive and dead, observers running, waiting, deleted.
    await world.sql(
      `INSERT INTO services (id, name, status, capacity, pools, kinds, heartbeat_interval_ms, running, free_slots, last_seen_at)
       SELECT gen_random_uuid(), 'svc-' || i, CASE WHEN i <= $1 THEN 'Alive' ELSE 'Dead' END, 10000, '["default"]',
              '[{"name":"ticker","paramsSchema":{}}]', 3600000, 0, 1000, now()
       FROM generate_series(1, $1 * 3) AS i`,
      [SERVICES],
    );
    await world.sql(
      `WITH alive AS (SELECT array_agg(id) AS ids FROM services WHERE status = 'Alive')
       INSERT INTO observers (id, name, kind, pool, params, status, service_id, generation, running_generation,
                              created_at, updated_at, unplaced_since)
       SELECT gen_random_uuid(), 'obs-' || i, 'ticker', 'default', '{"intervalMs":60000}',
              CASE WHEN i % 10 = 0 THEN 'Deleted' WHEN i % 97 = 0 THEN 'Created' ELSE 'Processing' END,
              CASE WHEN i % 10 = 0 OR i % 97 = 0 THEN NULL ELSE alive.ids[1 + i % $2] END,
              1, CASE WHEN i % 10 = 0 OR i % 97 = 0 THEN NULL ELSE 1 END,
              now() - make_interval(secs => i), now() - make_interval(secs => i),
              CASE WHEN i % 97 = 0 THEN now() ELSE NULL END
       FROM generate_series(1, $1) AS i, alive`,
      [OBSERVERS, SERVICES],
    );
    await world.sql(
      `INSERT INTO observer_events (observer_id, at, event, status, generation)
       SELECT id, created_at + make_interval(secs => n), 'started', status, 1
       FROM observers, generate_series(1, 3) AS n`,
    );
    await world.sql(`ANALYZE`);

    // Plans are logged from here on: a few seconds of reconciling, planning and pruning, and a
    // service's heartbeat listing its observers (but one) with a generation raised on another.
    const [service] = await world.sql<{ id: string; name: string }>(
      `SELECT id, name FROM services WHERE id = (SELECT service_id FROM observers WHERE service_id IS NOT NULL LIMIT 1)`,
    );
    const held = await world.sql<{ id: string }>(`SELECT id FROM observers WHERE service_id = $1 ORDER BY id`, [
      service!.id,
    ]);
    const listed = held.slice(1).map((row) => row.id);
    const from = (await postgres.log()).length;
    await world.publishRaw(
      world.names.stateQueue,
      JSON.stringify({
        ...staged.heartbeat(service!.id, service!.name, listed, [2, ...listed.slice(1).map(() => 1)]),
        capacity: 10_000,
        freeSlots: 10_000 - listed.length,
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const [released] = await world.sql<{ service_id: string | null }>(
      `SELECT service_id FROM observers WHERE id = $1`,
      [held[0]!.id],
    );
    assert.equal(released?.service_id, null, 'the heartbeat was applied: the observer it left out is released');
    const plans = (await postgres.log()).slice(from).split(/\n(?=\S[^\n]*LOG: {2}duration: )/);
    const explained = plans.filter((entry) => entry.includes('Query Text:'));
    assert.ok(explained.length > 20, `auto_explain logged ${explained.length} plans`);
    const scans = explained.filter((entry) => /Seq Scan on (observers|observer_events)\b/.test(entry));
    // One line per offending statement: its text up to the plan.
    const offenders = new Set(
      scans.map((entry) => {
        const text = entry.slice(entry.indexOf('Query Text:') + 'Query Text:'.length);
        return text
          .slice(0, text.search(/\n\t\S/) === -1 ? 300 : text.search(/\n\t[A-Z]/))
          .replace(/\s+/g, ' ')
          .trim();
      }),
    );
    assert.deepEqual([...offenders], []);
  });
});
