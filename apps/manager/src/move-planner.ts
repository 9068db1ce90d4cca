import type { DataSource } from 'typeorm';
import { coerceError, type Logger } from '@vigil/logging';
import type { ManagerBroker } from './broker';
import type { Metrics } from './metrics';
import { sql } from './db/sql';

export interface RebalancePolicy {
  enabled: boolean;
  /** Moves started per second at most, across the fleet. */
  maxMovesPerS: number;
  /** An observer moved this recently is not moved again to rebalance, ms. */
  cooldownMs: number;
  /** A service counts as uneven once its share is off by more than this fraction of its even share. */
  tolerance: number;
}

export interface RotationPolicy {
  /** A job held this long is rotated; 0: never, ms. */
  afterMs: number;
  /** Rotations started per second at most, across the fleet. */
  maxPerS: number;
}

export interface MovePlannerOptions {
  db: DataSource;
  broker: Pick<ManagerBroker, 'sendShed' | 'connected' | 'blocked'>;
  metrics: Metrics;
  log: Logger;
  intervalMs: number;
  rebalance: RebalancePolicy;
  rotation: RotationPolicy;
}

/** One service of a pool, as the rebalancer sees it. */
export interface PoolMember {
  serviceId: string;
  capacity: number;
  /** Observers of the pool it runs now. */
  running: number;
}

/**
 * How many observers each service of one pool should shed so that every one holds its even share
 * (by capacity), once any is off by more than `tolerance`. Shares are made whole first: each
 * service's share rounded down, and the observers left over go one each to the services with the
 * largest remainder (those running the most first, so fewer move). A service sheds only what is
 * above its whole share, so a service at its share never sheds: rebalancing cannot oscillate.
 * Shedding against the fractional share instead would leave every service just above it keeping
 * its extra observer, and a joiner short by one per service. `budget` caps the total.
 */
export function planRebalance(
  members: readonly PoolMember[],
  tolerance: number,
  budget: number,
): { serviceId: string; count: number }[] {
  const capacity = members.reduce((sum, m) => sum + m.capacity, 0);
  const running = members.reduce((sum, m) => sum + m.running, 0);
  if (members.length < 2 || capacity === 0 || running === 0) return [];
  const share = (m: PoolMember) => (running * m.capacity) / capacity;
  const uneven = members.some((m) => Math.abs(m.running - share(m)) > Math.max(1, tolerance * share(m)));
  if (!uneven) return [];
  const target = wholeShares(members, running, share);
  const over = members
    .map((m) => ({ serviceId: m.serviceId, count: m.running - target.get(m.serviceId)! }))
    .filter((e) => e.count > 0);
  // The whole shares add up to what runs, so what the services over theirs shed, those under take.
  const wanted = over.reduce((sum, e) => sum + e.count, 0);
  const total = Math.min(wanted, Math.max(0, Math.floor(budget)));
  if (total === 0) return [];
  // Each over-full service sheds its part of the total, in proportion to its excess.
  let left = total;
  const plan = over.map((e) => {
    const count = Math.min(left, Math.floor((e.count * total) / wanted));
    left -= count;
    return { serviceId: e.serviceId, count };
  });
  for (const p of plan) {
    const extra = Math.min(left, over.find((e) => e.serviceId === p.serviceId)!.count - p.count);
    p.count += extra;
    left -= extra;
  }
  return plan.filter((p) => p.count > 0);
}

/** Each member's share as a whole number of observers; they add up to `running`, what the pool runs. */
function wholeShares(
  members: readonly PoolMember[],
  running: number,
  share: (m: PoolMember) => number,
): Map<string, number> {
  const shares = members.map((m) => ({ m, whole: Math.floor(share(m)), remainder: share(m) % 1 }));
  const leftOver = running - shares.reduce((sum, s) => sum + s.whole, 0);
  shares.sort((a, b) => b.remainder - a.remainder || b.m.running - a.m.running);
  for (const s of shares.slice(0, Math.max(0, leftOver))) s.whole += 1;
  return new Map(shares.map((s) => [s.m.serviceId, s.whole]));
}

/**
 * Plans the moves nobody asked for: rebalancing a pool whose services are uneven (a service that
 * joins a busy fleet takes its share), and rotating jobs held longer than ROTATE_AFTER_MS (a
 * quorum queue's log cannot be truncated past its oldest unacked message). Either is a request to
 * the holding service (`service.shed`), which answers as a draining service does; the move itself
 * is the same make-before-break move. Runs on the active manager only.
 */
export class MovePlanner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: MovePlannerOptions) {}

  start(): void {
    const { rebalance, rotation, intervalMs } = this.options;
    if (!rebalance.enabled && rotation.afterMs === 0) return;
    this.timer ??= setInterval(() => {
      this.running ??= this.tick().finally(() => (this.running = undefined));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  async tick(): Promise<void> {
    const { broker, log } = this.options;
    if (!broker.connected || broker.blocked !== undefined) return;
    try {
      if (this.options.rebalance.enabled) await this.rebalance();
      if (this.options.rotation.afterMs > 0) await this.rotate();
    } catch (err) {
      log.warn({ err: coerceError(err) }, 'move planning failed; next pass');
    }
  }

  private async rebalance(): Promise<void> {
    const { db, rebalance, intervalMs } = this.options;
    // Live services taking jobs, what each runs per pool, and whether a move of theirs is under way
    // (a move's next generation not running yet).
    const rows = await sql<{ id: string; pool: string; capacity: number; running: number; moving: boolean }>(
      db,
      `SELECT s.id, p.pool, s.capacity,
              (SELECT count(*) FROM observers o WHERE o.service_id = s.id AND o.pool = p.pool
                 AND o.status = 'Processing')::int AS running,
              EXISTS (SELECT 1 FROM observers m WHERE m.moved_from = s.id AND m.status = 'Processing'
                        AND m.generation <> coalesce(m.running_generation, 0)) AS moving
       FROM services s CROSS JOIN LATERAL jsonb_array_elements_text(s.pools) AS p(pool)
       WHERE s.status = 'Alive' AND s.draining_since IS NULL
         AND s.last_seen_at > now() - make_interval(secs => 2.5 * s.heartbeat_interval_ms / 1000.0)`,
    );
    const pools = groupBy(rows, (row) => row.pool);
    let budget = (rebalance.maxMovesPerS * intervalMs) / 1000;
    for (const [pool, members] of pools) {
      // The pool waits until its moves ran. Leaving out only the service moving would compute the
      // others' shares without it and send them too many, and its jobs in flight could land on a
      // service over its share that is no longer shedding (it refuses jobs only while it sheds).
      if (members.some((m) => m.moving)) continue;
      const plan = planRebalance(
        members.map((m) => ({ serviceId: m.id, capacity: m.capacity, running: m.running })),
        rebalance.tolerance,
        budget,
      );
      for (const { serviceId, count } of plan) {
        const picked = await sql<{ id: string }>(
          db,
          `SELECT o.id FROM observers o JOIN services s ON s.id = o.service_id
           WHERE o.service_id = $1 AND o.pool = $2 AND o.status = 'Processing'
             AND o.generation = o.running_generation AND o.contender_service_id IS NULL
             AND (o.moved_at IS NULL OR o.moved_at < now() - make_interval(secs => $3 / 1000.0))
             AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(s.kinds) k
                             WHERE k->>'name' = o.kind AND k->>'overlap' = 'never')
           ORDER BY o.id LIMIT $4`,
          [serviceId, pool, rebalance.cooldownMs, count],
        );
        budget -= picked.length;
        await this.shed(serviceId, 'rebalance', picked);
      }
    }
  }

  private async rotate(): Promise<void> {
    const { db, rotation, intervalMs } = this.options;
    const budget = Math.max(1, Math.floor((rotation.maxPerS * intervalMs) / 1000));
    // The jobs held longest first, on live services taking jobs; never-overlap kinds are left
    // alone (their move would stop them for a moment).
    const due = await sql<{ id: string; service_id: string }>(
      db,
      `SELECT o.id, o.service_id FROM observers o JOIN services s ON s.id = o.service_id
       WHERE o.status = 'Processing' AND coalesce(o.moved_at, o.created_at) < now() - make_interval(secs => $1 / 1000.0)
         AND o.generation = o.running_generation AND o.contender_service_id IS NULL
         AND s.status = 'Alive' AND s.draining_since IS NULL
         AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(s.kinds) k
                         WHERE k->>'name' = o.kind AND k->>'overlap' = 'never')
       ORDER BY coalesce(o.moved_at, o.created_at) LIMIT $2`,
      [rotation.afterMs, budget],
    );
    for (const [serviceId, picked] of groupBy(due, (row) => row.service_id)) {
      await this.shed(serviceId, 'rotate', picked);
    }
  }

  private async shed(serviceId: string, purpose: 'rebalance' | 'rotate', picked: { id: string }[]): Promise<void> {
    if (picked.length === 0) return;
    const { broker, metrics, log } = this.options;
    await broker.sendShed(
      serviceId,
      purpose,
      picked.map((p) => p.id),
    );
    metrics.shedRequests.inc({ purpose }, picked.length);
    log.info({ serviceId, purpose, observers: picked.length }, `asked a service to shed observers (${purpose})`);
  }
}

/** Map.groupBy, which Node 20 lacks. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
