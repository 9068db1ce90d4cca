import { waitFor, type ServiceHandle, type World } from '@vigil/testkit';
import { localRabbitmqctl, sampleQueues } from '../broker-stats';
import { cpuSeconds } from '../machine';
import type { Scenario, ScenarioContext } from '../scenario';
import { sleep } from '../scenario';
import { catchUpFromBacklog, createTickers, metricTotal, percentile, startWorld } from '../vigil';

/** The fleet's tickers publish once a minute, as a watcher of a slow feed would. */
const TICK_MS = 60_000;
/** Production's heartbeat: at 10,000 observers a heartbeat lists them all, so the suite's 300 ms would flood the state queue. */
const HEARTBEAT_MS = 5_000;
/** Requests per list query, one after another, for its p99. */
const LIST_SAMPLES = 100;
/** A list page as the dashboard asks for one. */
const PAGE = 100;
/**
 * How long the manager's CPU is read with the fleet at rest: a minute, the services' default
 * interval between listings they send while nothing changes (`HEARTBEAT_LISTING_EVERY` 12).
 */
const AT_REST_MS = 12 * HEARTBEAT_MS;

/** Distinct observers heard from since `since` (epoch ms), from any service but `except`. */
function heardFrom(world: World, except?: string) {
  const seen = new Map<string, number>();
  const stop = world.watch.listen(({ observerId, serviceId }) => {
    if (serviceId !== except && !seen.has(observerId)) seen.set(observerId, Date.now());
  });
  return { seen, stop };
}

/** The largest of many times (a spread into Math.max overflows the stack past about 150,000). */
function latest(times: Iterable<number>): number {
  let max = -Infinity;
  for (const time of times) max = Math.max(max, time);
  return max;
}

async function p99(world: World, path: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < LIST_SAMPLES; i += 1) {
    const started = performance.now();
    const response = await world.api('GET', path);
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    times.push(performance.now() - started);
  }
  return percentile(
    times.sort((a, b) => a - b),
    99,
  );
}

/** A cursor halfway down the list of every observer, reached the way a client would: page by page. */
async function deepCursor(world: World, n: number): Promise<string> {
  const step = Math.max(1, Math.min(1000, Math.floor(n / 10)));
  let cursor: string | undefined;
  for (let skipped = 0; skipped < n / 2; skipped += step) {
    const response = await world.api<{ nextCursor: string | null }>(
      'GET',
      `/observers?limit=${step}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    if (!response.body.nextCursor) break;
    cursor = response.body.nextCursor;
  }
  if (!cursor) throw new Error('no cursor halfway down the list');
  return cursor;
}

async function listQueries(world: World, n: number, service: ServiceHandle): Promise<Record<string, number>> {
  const deep = await deepCursor(world, n);
  const queries: Record<string, string> = {
    'first page': `/observers?limit=${PAGE}`,
    'deep cursor': `/observers?limit=${PAGE}&cursor=${deep}`,
    status: `/observers?status=Processing&limit=${PAGE}`,
    kind: `/observers?kind=ticker&limit=${PAGE}`,
    pool: `/observers?pool=default&limit=${PAGE}`,
    service: `/observers?serviceId=${service.id}&limit=${PAGE}`,
    'name prefix': `/observers?name=bench-4*&limit=${PAGE}`,
    'name exact': `/observers?name=bench-${Math.floor(n / 2)}&limit=${PAGE}`,
  };
  const figures: Record<string, number> = {};
  for (const [label, path] of Object.entries(queries)) figures[`list p99 ms: ${label}`] = await p99(world, path);
  figures['list p99 ms: worst'] = Math.max(...Object.values(figures));
  return figures;
}

/** SIGKILL a service: ms until every observer it ran has published from another. */
async function failover(world: World, victim: ServiceHandle): Promise<{ ms: number; moved: number }> {
  const rows = await world.sql<{ id: string }>(`SELECT id FROM observers WHERE service_id = $1`, [victim.id]);
  const { seen, stop } = heardFrom(world, victim.id);
  const killedAt = Date.now();
  await victim.process.kill();
  try {
    await waitFor(
      `${rows.length} observers of ${victim.name} running elsewhere`,
      () => rows.every((row) => (seen.get(row.id) ?? 0) >= killedAt),
      { timeoutMs: 120_000, intervalMs: 20 },
    );
  } finally {
    stop();
  }
  return { ms: latest(rows.map((row) => seen.get(row.id)!)) - killedAt, moved: rows.length };
}

/**
 * The manager is killed; while it is down a second service is killed (its observers move) and
 * heartbeats queue up. Then it restarts: state events applied per second.
 */
async function catchUp(ctx: ScenarioContext, world: World, victim: ServiceHandle, downMs: number) {
  await world.manager!.kill();
  const downAt = Date.now();
  await victim.process.kill();
  await sleep(Math.max(0, downMs - (Date.now() - downAt)));
  const messages = (await world.queueCounts(world.names.stateQueue)).messageCount;
  ctx.progress(`manager down ${Date.now() - downAt} ms; ${messages} state messages waiting`);
  const { appliedMs, events } = await catchUpFromBacklog(world, messages, 300_000);
  return { events, perS: events / (appliedMs / 1000) };
}

/**
 * The scale target (docs/design.md, Targets): S services × N tickers (once a minute), created
 * through the API, on this one machine.
 */
export const fleet: Scenario = {
  name: 'fleet',
  title: 'Fleet: 100,000 observers',
  description:
    `S services hold N tickers each (one tick a minute, heartbeats every ${HEARTBEAT_MS / 1000} s), created by ` +
    '50 concurrent clients through the API: creates per second over the POSTs, time from the first POST until ' +
    `every observer has published; p99 of ${LIST_SAMPLES} requests of each list query (first page, a cursor ` +
    "halfway down, each filter); the manager's heap and the database size; the manager's CPU over " +
    `${AT_REST_MS / 1000} s at rest (per observer and second) with the listings it received meanwhile, and the jobs queue's memory, as ` +
    '`rabbitmqctl list_queues` reports it; a service killed with SIGKILL until ' +
    'its observers all published elsewhere; then the manager killed, a second service killed while it is down, ' +
    'and state events applied per second once it is back.',
  params: [
    { flag: 'fleet-services', description: 'services in the fleet', default: 10, quick: 3 },
    { flag: 'fleet-per-service', description: 'observers per service', default: 10_000, quick: 100 },
    { flag: 'fleet-down-s', description: 'seconds the manager is down before its catch-up', default: 60, quick: 5 },
  ],
  quick: false,
  figures: [
    { name: 'creates per s', unit: 'per s', target: { op: '>=', value: 2000, text: '>= 2,000/s' } },
    { name: 'all running s', unit: 's', target: { op: '<=', value: 60, text: '<= 60 s' } },
    { name: 'list p99 ms: worst', unit: 'ms', target: { op: '<=', value: 50, text: '<= 50 ms' } },
    ...['first page', 'deep cursor', 'status', 'kind', 'pool', 'service', 'name prefix', 'name exact'].map((label) => ({
      name: `list p99 ms: ${label}`,
      unit: 'ms',
    })),
    { name: 'manager heap MB', unit: 'MB' },
    { name: 'database MB', unit: 'MB' },
    { name: 'manager CPU at rest %', unit: '%' },
    { name: 'manager CPU µs per observer per s', unit: 'µs' },
    { name: 'listings at rest', unit: 'listings' },
    { name: 'jobs queue memory MB', unit: 'MB' },
    { name: 'failover ms', unit: 'ms', target: { op: '<=', value: 1500, text: '<= 1.5 s' } },
    { name: 'observers moved', unit: 'observers' },
    { name: 'catch-up events', unit: 'events' },
    { name: 'catch-up events per s', unit: 'per s', target: { op: '>=', value: 10_000, text: '>= 10,000/s' } },
  ],

  async run(ctx) {
    const services = ctx.params['fleet-services'] ?? 10;
    const perService = ctx.params['fleet-per-service'] ?? 10_000;
    const downMs = (ctx.params['fleet-down-s'] ?? 60) * 1000;
    if (services < 3) throw new Error('--fleet-services must be at least 3: two are killed');
    const n = services * perService;
    const world = await startWorld(ctx);
    try {
      // Room for everything on the services left after two are killed.
      const capacity = String(Math.ceil(n / (services - 2)));
      const fleet: ServiceHandle[] = [];
      for (let i = 0; i < services; i += 1) {
        fleet.push(
          await world.startService(`bench-fleet-${i}`, {
            CAPACITY: capacity,
            HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
          }),
        );
      }
      const { seen, stop } = heardFrom(world);
      ctx.progress(`creating ${n} observers on ${services} services`);
      const startedAt = Date.now();
      await createTickers(world, n, TICK_MS);
      const postsS = (Date.now() - startedAt) / 1000;
      await waitFor(`all ${n} observers running`, () => seen.size >= n, { timeoutMs: 600_000, intervalMs: 50 });
      const allRunningS = (latest(seen.values()) - startedAt) / 1000;
      stop();
      ctx.progress(`${n} created in ${postsS.toFixed(1)} s, all running after ${allRunningS.toFixed(1)} s`);

      // At rest services beat without listing their observers, and list them once a minute.
      const listingsBefore = metricTotal(await world.metrics(), 'vigil_state_listings_total');
      const cpuBefore = cpuSeconds(world.manager!.pid);
      await sleep(AT_REST_MS);
      const restCpuS = cpuSeconds(world.manager!.pid) - cpuBefore;
      const listings = metricTotal(await world.metrics(), 'vigil_state_listings_total') - listingsBefore;
      const queue = world.names.jobsQueue('default');
      const jobsQueue = (await sampleQueues(localRabbitmqctl, [queue]))[queue]!;

      const lists = await listQueries(world, n, fleet[0]!);
      const heap = metricTotal(await world.metrics(), 'vigil_manager_nodejs_heap_size_used_bytes');
      const [size] = await world.sql<{ bytes: string }>(`SELECT pg_database_size(current_database()) AS bytes`);
      const moved = await failover(world, fleet[0]!);
      ctx.progress(`failover of ${moved.moved} observers: ${moved.ms} ms`);
      const caughtUp = await catchUp(ctx, world, fleet[1]!, downMs);
      return {
        'creates per s': n / postsS,
        'all running s': allRunningS,
        ...lists,
        'manager heap MB': heap / 1e6,
        'database MB': Number(size?.bytes ?? NaN) / 1e6,
        'manager CPU at rest %': (restCpuS / (AT_REST_MS / 1000)) * 100,
        'manager CPU µs per observer per s': (restCpuS * 1e6) / (n * (AT_REST_MS / 1000)),
        'listings at rest': listings,
        'jobs queue memory MB': jobsQueue.memoryBytes / 1e6,
        'failover ms': moved.ms,
        'observers moved': moved.moved,
        'catch-up events': caughtUp.events,
        'catch-up events per s': caughtUp.perS,
      };
    } finally {
      await world.close();
    }
  },
};
