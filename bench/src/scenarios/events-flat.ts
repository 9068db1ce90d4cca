import { randomUUID } from 'node:crypto';
import { connect } from '@vigil/broker';
import type { StateEvent } from '@vigil/contracts';
import { staged, type World } from '@vigil/testkit';
import type { Scenario, ScenarioContext } from '../scenario';
import { catchUpFromBacklog, startWorld } from '../vigil';

/** Observers per `observers.started` message, as a service batches them. */
const PER_MESSAGE = 1000;
/** Timeline rows per observer of the history: a created, a few starts and moves, a delete. */
const HISTORY_EVENTS_PER_OBSERVER = 10;
/** The staged services' heartbeat interval, ms: they send none, and must not be found silent meanwhile. */
const STAGED_HEARTBEAT_MS = 3_600_000;

/** `count` observers as a create writes them (row and first timeline row), with `status`; their ids. */
async function insertObservers(world: World, count: number, prefix: string, status: string): Promise<string[]> {
  const rows = await world.sql<{ id: string }>(
    `WITH created AS (
       INSERT INTO observers (id, name, kind, pool, params, secret_params, status, job_published)
       SELECT gen_random_uuid(), $2 || i, 'ticker', 'default', '{"intervalMs": 60000}', '[]', $3, true
       FROM generate_series(1, $1::int) AS i
       RETURNING id)
     INSERT INTO observer_events (observer_id, event, status, generation)
     SELECT id, 'created', 'Created', 1 FROM created RETURNING observer_id AS id`,
    [count, prefix, status],
  );
  return rows.map((row) => row.id);
}

/** A history the retention period still keeps: deleted observers, each with its timeline. */
async function insertHistory(world: World, count: number): Promise<void> {
  const ids = await insertObservers(world, count, 'history-', 'Deleted');
  await world.sql(
    `INSERT INTO observer_events (observer_id, event, status, generation)
     SELECT id, CASE WHEN n = $2 THEN 'deleted' WHEN n % 2 = 0 THEN 'moved' ELSE 'started' END,
            CASE WHEN n = $2 THEN 'Deleted' ELSE 'Processing' END, n
     FROM unnest($1::uuid[]) AS id, generate_series(2, $2::int) AS n`,
    [ids, HISTORY_EVENTS_PER_OBSERVER],
  );
}

/**
 * The state queue as a fleet moving `active` observers back and forth between two services
 * would fill it: each round, every observer starts on the other service at the next generation
 * (a move: its row changes, two timeline rows, a release). Returns the events queued.
 */
async function queueMoves(ctx: ScenarioContext, world: World, active: string[], events: number): Promise<number> {
  const services = [randomUUID(), randomUUID()] as const;
  const connection = await connect(ctx.env.amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    const send = (event: StateEvent) =>
      channel.sendToQueue(world.names.stateQueue, Buffer.from(JSON.stringify(event)), { persistent: true });
    for (const [i, serviceId] of services.entries()) {
      send({ ...staged.born(serviceId, `bench-staged-${i}`), heartbeatIntervalMs: STAGED_HEARTBEAT_MS });
    }
    let queued = 0;
    for (let generation = 1; queued < events; generation += 1) {
      const serviceId = services[generation % 2]!;
      for (let from = 0; from < active.length && queued < events; from += PER_MESSAGE) {
        const batch = active.slice(from, Math.min(from + PER_MESSAGE, from + events - queued));
        send({
          type: 'observers.started',
          serviceId,
          at: new Date().toISOString(),
          observers: batch.map((observerId, i) => ({
            observerId,
            name: `active-${from + i}`,
            kind: 'ticker',
            pool: 'default',
            redelivered: false,
            generation,
          })),
        });
        queued += batch.length;
      }
      await channel.waitForConfirms();
    }
    return queued + services.length;
  } finally {
    await connection.close();
  }
}

/** Applies `events` state events with `history` observers already in the database; µs per event. */
async function perEvent(ctx: ScenarioContext, history: number, active: number, events: number): Promise<number> {
  const world = await startWorld(ctx);
  try {
    await world.manager!.kill();
    const ids = await insertObservers(world, active, 'active-', 'Created');
    if (history > 0) {
      ctx.progress(`inserting a history of ${history} observers`);
      await insertHistory(world, history);
    }
    await world.sql('ANALYZE observers, observer_events');
    const queued = await queueMoves(ctx, world, ids, events);
    const messages = (await world.queueCounts(world.names.stateQueue)).messageCount;
    ctx.progress(`history ${history}: ${queued} events in ${messages} messages queued; starting the manager`);
    const { appliedMs } = await catchUpFromBacklog(world, messages, 1_800_000);
    // Each start after the first round moved its observer: a figure of no-ops would be no figure.
    const [moves] = await world.sql<{ count: string }>(
      `SELECT count(*) FROM observer_events WHERE event = 'moved' AND observer_id = ANY($1::uuid[])`,
      [ids],
    );
    if (Number(moves?.count) < events - active) {
      throw new Error(`only ${moves?.count} of the ${events - active} moves were applied as moves`);
    }
    return (appliedMs * 1000) / queued;
  } finally {
    await world.close();
  }
}

/**
 * Nothing in the manager grows with history: a million state events cost as much each on top of
 * a history of 100,000 observers (and their timelines) as on an empty database.
 */
export const eventsFlat: Scenario = {
  name: 'events-flat',
  title: 'State events on a long history',
  description:
    'The manager is stopped; the state queue is filled with E events of two staged services moving A observers ' +
    'back and forth (each start a move: the row, two timeline rows, a release). Then it starts and applies them: µs ' +
    `per event, once on a database holding only the A observers, once on one that also holds H deleted observers ` +
    `with ${HISTORY_EVENTS_PER_OBSERVER} timeline rows each; and the ratio of the two.`,
  params: [
    { flag: 'events-flat-n', description: 'state events applied', default: 1_000_000, quick: 20_000 },
    { flag: 'events-flat-history', description: 'observers of history', default: 100_000, quick: 2_000 },
    { flag: 'events-flat-active', description: 'observers the events move', default: 10_000, quick: 1_000 },
  ],
  quick: false,
  figures: [
    { name: 'µs per event, empty', unit: 'µs' },
    { name: 'µs per event, on the history', unit: 'µs' },
    { name: 'ratio', unit: 'ratio', target: { op: '<=', value: 1.2, text: '<= 1.2 (flat, ± 20 %)' } },
  ],

  async run(ctx) {
    const events = ctx.params['events-flat-n'] ?? 1_000_000;
    const history = ctx.params['events-flat-history'] ?? 100_000;
    const active = ctx.params['events-flat-active'] ?? 10_000;
    const empty = await perEvent(ctx, 0, active, events);
    const loaded = await perEvent(ctx, history, active, events);
    return { 'µs per event, empty': empty, 'µs per event, on the history': loaded, ratio: loaded / empty };
  },
};
