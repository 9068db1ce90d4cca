import { World, waitFor, type SeenObservation, type ServiceHandle } from '@vigil/testkit';
import type { ScenarioContext } from './scenario';

/** How many POSTs are in flight at once when a scenario creates observers. */
export const CLIENTS = 50;

/** An isolated Vigil on the bench's broker and Postgres, with the manager running (with `managerEnv`). */
export async function startWorld(ctx: ScenarioContext, managerEnv: Record<string, string> = {}): Promise<World> {
  // The benchmark measures the system, not the test suite's check of its answers.
  const world = await World.create({ amqpUrl: ctx.env.amqpUrl, postgresUrl: ctx.env.databaseUrl, checkAnswers: false });
  ctx.resource('amqp-prefix', world.prefix);
  await world.startManager(managerEnv);
  return world;
}

/**
 * Creates `n` tickers from `CLIENTS` concurrent clients; returns their ids and each POST's
 * latency in ms. `kind` may be any kind whose only param is `intervalMs` (`exclusive-ticker`).
 */
export async function createTickers(world: World, n: number, intervalMs: number, kind = 'ticker') {
  const ids: string[] = [];
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < n; i = next++) {
        const started = performance.now();
        const response = await world.api('POST', '/observers', { name: `bench-${i}`, kind, params: { intervalMs } });
        if (response.status !== 201)
          throw new Error(`create bench-${i}: ${response.status} ${JSON.stringify(response.body)}`);
        ids.push(String(response.body.id));
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
export async function fleetWithSurvivor(
  ctx: ScenarioContext,
  world: World,
  n: number,
  { intervalMs = 60_000, kind = 'ticker' }: { intervalMs?: number; kind?: string } = {},
) {
  const victim = await world.startService('bench-victim', { CAPACITY: String(n) });
  ctx.progress(`creating ${n} observers`);
  const { ids } = await createTickers(world, n, intervalMs, kind);
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

/**
 * Every tick of every observer, by when its service published it (the observation's `at`):
 * silences and overlaps judged from what observers did, not from when the watch, on the same two
 * busy cores, got round to reading it.
 */
export class TickLog {
  /** observerId → serviceId → publish times (ms), in arrival order (per service that is publish order). */
  private readonly ticks = new Map<string, Map<string, number[]>>();
  private readonly stop: () => void;

  constructor(world: World) {
    this.stop = world.watch.listen((o: SeenObservation) => this.add(o));
  }

  private add({ observerId, serviceId, at }: SeenObservation): void {
    let byService = this.ticks.get(observerId);
    if (!byService) this.ticks.set(observerId, (byService = new Map<string, number[]>()));
    const times = byService.get(serviceId);
    if (times) times.push(at);
    else byService.set(serviceId, [at]);
  }

  close(): void {
    this.stop();
  }

  /**
   * The observer's longest silence within [from, to] (epoch ms): the longest time between two of
   * its ticks from any service, the window's ends counting as ticks.
   */
  longestSilence(observerId: string, from: number, to: number): number {
    const times = [from, to];
    for (const list of this.ticks.get(observerId)?.values() ?? [])
      for (const at of list) if (at > from && at < to) times.push(at);
    times.sort((a, b) => a - b);
    let longest = 0;
    for (let i = 1; i < times.length; i += 1) longest = Math.max(longest, times[i]! - times[i - 1]!);
    return longest;
  }

  /**
   * How long two services both ticked for the observer since `from`: for each pair, from the later
   * first tick to the earlier last one; 0 if they never did at once.
   */
  overlap(observerId: string, from: number): number {
    const spans = [...(this.ticks.get(observerId)?.values() ?? [])]
      .map((list) => list.filter((at) => at >= from))
      .filter((list) => list.length > 0)
      .map((list) => ({ first: Math.min(...list), last: Math.max(...list) }));
    let longest = 0;
    for (const [i, a] of spans.entries())
      for (const b of spans.slice(i + 1))
        longest = Math.max(longest, Math.min(a.last, b.last) - Math.max(a.first, b.first));
    return longest;
  }

  /** Services that ticked for the observer at or after `from`. */
  servicesSince(observerId: string, from: number): string[] {
    return [...(this.ticks.get(observerId) ?? new Map<string, number[]>())]
      .filter(([, list]) => list.some((at) => at >= from))
      .map(([serviceId]) => serviceId);
  }

  /** The last tick from `serviceId` for the observer, if any. */
  lastFrom(observerId: string, serviceId: string): number | undefined {
    return this.ticks.get(observerId)?.get(serviceId)?.at(-1);
  }
}

/** A counter or gauge of a /metrics text, summed over its labels. */
export function metricTotal(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.split(' ').at(-1));
  }
  return total;
}

/**
 * Starts the manager on a backlog of `messages` state messages and waits until it has applied
 * them: ms from ready until then, and the state events it counted, both from one reading of its
 * metrics (so that events sent after the backlog are not counted in it); `readyAt` is when it was
 * ready (`performance.now()`).
 */
export async function catchUpFromBacklog(
  world: World,
  messages: number,
  timeoutMs: number,
): Promise<{ readyAt: number; appliedMs: number; events: number }> {
  await world.startManager();
  const readyAt = performance.now();
  return waitFor(
    `the manager to apply ${messages} state messages`,
    async () => {
      const text = await world.metrics();
      if (metricTotal(text, 'vigil_state_messages_total') < messages) return undefined;
      return { readyAt, appliedMs: performance.now() - readyAt, events: metricTotal(text, 'vigil_state_events_total') };
    },
    { timeoutMs, intervalMs: 20 },
  );
}
