import { World, waitFor, type ServiceHandle } from '@vigil/testkit';
import type { ScenarioContext } from './scenario';

/** How many POSTs are in flight at once when a scenario creates observers. */
export const CLIENTS = 50;

/** An isolated Vigil on the bench's broker and Postgres, with the manager running. */
export async function startWorld(ctx: ScenarioContext): Promise<World> {
  // The benchmark measures the system, not the test suite's check of its answers.
  const world = await World.create({ amqpUrl: ctx.env.amqpUrl, postgresUrl: ctx.env.databaseUrl, checkAnswers: false });
  ctx.resource('amqp-prefix', world.prefix);
  await world.startManager();
  return world;
}

/**
 * Creates `n` tickers from `CLIENTS` concurrent clients; returns their ids and each POST's
 * latency in ms.
 */
export async function createTickers(world: World, n: number, intervalMs: number) {
  const ids: string[] = [];
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < n; i = next++) {
        const started = performance.now();
        ids.push(await world.createTicker(`bench-${i}`, intervalMs));
        latencies.push(performance.now() - started);
      }
    }),
  );
  return { ids, latencies };
}

/** Waits until every observer has published from `service` (a ticker publishes as it starts). */
export function allRunningOn(world: World, ids: readonly string[], service: ServiceHandle, timeoutMs = 120_000) {
  return waitFor(
    `all ${ids.length} observers running on ${service.name}`,
    () => ids.every((id) => world.watch.firstSeen(id, service.id)),
    {
      timeoutMs,
      intervalMs: 10,
    },
  );
}

/** `n` tickers running on one service (capacity n), and a second, idle service beside it. */
export async function fleetWithSurvivor(ctx: ScenarioContext, world: World, n: number) {
  const victim = await world.startService('bench-victim', { CAPACITY: String(n) });
  ctx.progress(`creating ${n} observers`);
  const { ids } = await createTickers(world, n, 60_000);
  await allRunningOn(world, ids, victim);
  const survivor = await world.startService('bench-survivor', { CAPACITY: String(n) });
  return { victim, survivor, ids };
}

/**
 * Milliseconds from `since` (epoch ms) until each observer ran on `service`, sorted: when its
 * first observation there was published, by the service's clock (the same machine's). On two
 * cores the watch's own delay in receiving 1,000 observations would otherwise count too.
 */
export function arrivals(world: World, ids: readonly string[], service: ServiceHandle, since: number): number[] {
  return ids.map((id) => (world.watch.publishedFirst(id, service.id) ?? NaN) - since).sort((a, b) => a - b);
}

/** The same as `arrivals`, by the time the observations reached the watch. */
export function seenByWatch(world: World, ids: readonly string[], service: ServiceHandle, since: number): number[] {
  return ids.map((id) => (world.watch.firstSeen(id, service.id) ?? NaN) - since).sort((a, b) => a - b);
}

/** When the service logged `message` for each observer (epoch ms), from its JSON log lines. */
export function loggedAt(service: ServiceHandle, message: string): Map<string, number> {
  const at = new Map<string, number>();
  for (const entry of service.process.logged(message)) {
    if (typeof entry.observerId === 'string' && typeof entry.time === 'string')
      at.set(entry.observerId, Date.parse(entry.time));
  }
  return at;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}
