import { waitFor } from './wait';
import type { World } from './world';

/** Creates `count` tickers and waits until the manager shows each running; returns ids by service. */
export async function createRunningTickers(world: World, prefix: string, count: number, intervalMs = 100) {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await world.createTicker(`${prefix}-${i}`, intervalMs));
  const byService = new Map<string, string[]>();
  for (const id of ids) {
    const observer = await world.waitForStatus(id, 'Processing');
    const serviceId = observer.serviceId ?? '';
    byService.set(serviceId, [...(byService.get(serviceId) ?? []), id]);
  }
  return { ids, byService };
}

/**
 * Waits until, seen from outside, every observer runs on exactly one service and that service
 * is `expected(id)`; returns how long it took.
 */
export async function waitUntilRunningOn(
  world: World,
  ids: readonly string[],
  expected: (id: string) => string,
  { windowMs = 350, timeoutMs = 20_000 } = {},
): Promise<number> {
  const started = Date.now();
  await waitFor(
    'every observer to run exactly once, where expected',
    () => {
      const wrong = ids.filter((id) => {
        const on = world.watch.runningOn(id, windowMs);
        return on.length !== 1 || on[0] !== expected(id);
      });
      return wrong.length === 0 ? true : false;
    },
    { timeoutMs, intervalMs: 20 },
  );
  return Date.now() - started;
}

/**
 * Waits until, for each observer, the manager shows it `Processing` on the one service that runs
 * it as seen from outside: the manager's view matches reality.
 */
export async function waitUntilManagerAgrees(world: World, ids: readonly string[], timeoutMs = 20_000): Promise<void> {
  for (const id of ids) {
    await waitFor(
      `observer ${id} shown where it runs`,
      async () => {
        const observer = await world.observer(id);
        const on = world.watch.runningOn(id, 350);
        return observer.status === 'Processing' && on.length === 1 && observer.serviceId === on[0];
      },
      { timeoutMs },
    );
  }
}

/**
 * Watches for `durationMs` and fails if any ticker ran on two services at once for longer than
 * `toleranceMs` (judged from its runs' observations). Returns the longest double run seen.
 */
export async function assertNoDuplicates(
  world: World,
  ids: readonly string[],
  durationMs: number,
  { toleranceMs = 0 } = {},
): Promise<number> {
  const until = Date.now() + durationMs;
  let longest = 0;
  for (;;) {
    for (const id of ids) {
      const doubleRunMs = world.watch.doubleRunMs(id);
      if (doubleRunMs > toleranceMs) {
        throw new Error(`observer ${id} ran on two services at once for ${doubleRunMs} ms`);
      }
      longest = Math.max(longest, doubleRunMs);
    }
    if (Date.now() >= until) return longest;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Milliseconds from `since` until the last of `ids` was first seen on `serviceId`. */
export function slowestArrival(world: World, ids: readonly string[], serviceId: string, since: number): number {
  return Math.max(...ids.map((id) => (world.watch.firstSeen(id, serviceId) ?? Infinity) - since));
}
