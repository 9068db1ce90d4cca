import type { DataSource } from 'typeorm';
import type { KindDescription } from '@vigil/contracts';
import type { ObserverStatus, ServiceStatus, ServiceViewStatus } from './db/statuses';
import { nameMatch, sql, type NameFilter } from './db/sql';
import { recordServiceEvent } from './state/timeline';
import type { KindView, ServiceDetail, ServiceView } from './views';

/** How the manager tells one service to drain or undrain. */
export interface DrainSender {
  sendServiceDrain(serviceId: string, draining: boolean): Promise<void>;
}

export type DrainResult =
  { type: 'ok'; service: ServiceDetail } | { type: 'not-found' } | { type: 'dead'; service: ServiceDetail };

export type { KindView, ServiceDetail, ServiceView } from './views';

interface ServiceRecord {
  id: string;
  name: string;
  status: ServiceStatus;
  capacity: number;
  running: number;
  free_slots: number;
  pools: string[];
  kinds: KindDescription[];
  version: string;
  host: string;
  pid: number;
  started_at: Date | null;
  last_seen_at: Date;
  died_at: Date | null;
  death_reason: string | null;
  draining_since: Date | null;
  /** bigint columns: pg returns them as strings. */
  heap_used_bytes: string | null;
  rss_bytes: string | null;
}

/** Reading the services the manager knows of. */
export class Services {
  constructor(
    private readonly db: DataSource,
    private readonly broker: DrainSender,
  ) {}

  async list(filter: { status?: ServiceViewStatus; name?: NameFilter; limit: number; cursor?: string }) {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status === 'Dead') where.push(`status = 'Dead'`);
    if (filter.status === 'Alive') where.push(`status = 'Alive' AND draining_since IS NULL`);
    if (filter.status === 'Draining') where.push(`status = 'Alive' AND draining_since IS NOT NULL`);
    if (filter.name) {
      const { op, value } = nameMatch(filter.name);
      where.push(`name ${op} $${params.push(value)}`);
    }
    if (filter.cursor) where.push(`id > $${params.push(filter.cursor)}`);
    const rows = await sql<ServiceRecord>(
      this.db,
      `SELECT * FROM services ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT $${params.push(filter.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, filter.limit);
    return {
      items: page.map(toView),
      nextCursor: rows.length > filter.limit ? (page.at(-1)?.id ?? null) : null,
    };
  }

  async get(id: string): Promise<ServiceDetail | undefined> {
    const rows = await sql<ServiceRecord>(this.db, `SELECT * FROM services WHERE id = $1`, [id]);
    const row = rows[0];
    if (!row) return undefined;
    const observers = await sql<{ id: string; name: string; kind: string; status: ObserverStatus }>(
      this.db,
      `SELECT id, name, kind, status FROM observers WHERE service_id = $1 ORDER BY created_at, id`,
      [id],
    );
    return { ...toView(row), observers };
  }

  /**
   * The kinds the live services host: each with its params schema (as the first service to
   * announce it has it; a fleet mid-upgrade may announce two, and a create is checked against
   * its pool's), whether its copies may overlap, its pools, and the services hosting it.
   */
  async kinds(): Promise<KindView[]> {
    const rows = await sql<{ id: string; name: string; pools: string[]; kinds: KindDescription[] }>(
      this.db,
      `SELECT id, name, pools, kinds FROM services WHERE status = 'Alive' ORDER BY started_at, id`,
    );
    const byName = new Map<string, KindView>();
    for (const service of rows) {
      for (const kind of service.kinds) {
        let view = byName.get(kind.name);
        if (!view) {
          view = {
            name: kind.name,
            paramsSchema: kind.paramsSchema,
            overlap: kind.overlap ?? 'allowed',
            pools: [],
            services: [],
          };
          byName.set(kind.name, view);
        }
        view.pools = [...new Set([...view.pools, ...service.pools])].sort();
        view.services.push({ id: service.id, name: service.name });
      }
    }
    return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * An operator drains a live service (it stops taking jobs and its observers are moved away,
   * and it stays up) or undrains it. The service is told at once; a service that missed it is
   * told again when its next heartbeat disagrees.
   */
  async setDraining(id: string, draining: boolean): Promise<DrainResult> {
    const updated = await sql<{ id: string }>(
      this.db,
      `UPDATE services SET draining_since = CASE WHEN $2 THEN coalesce(draining_since, now()) END
       WHERE id = $1 AND status = 'Alive' RETURNING id`,
      [id, draining],
    );
    const service = await this.get(id);
    if (!service) return { type: 'not-found' };
    if (updated.length === 0) return { type: 'dead', service };
    await recordServiceEvent(
      this.db,
      id,
      draining ? 'draining' : 'undrained',
      draining ? 'drained by an operator' : null,
    );
    await this.broker.sendServiceDrain(id, draining);
    return { type: 'ok', service };
  }
}

function toView(row: ServiceRecord): ServiceView {
  return {
    id: row.id,
    name: row.name,
    status: row.status === 'Alive' && row.draining_since !== null ? 'Draining' : row.status,
    capacity: row.capacity,
    running: row.running,
    freeSlots: row.free_slots,
    load: row.capacity > 0 ? row.running / row.capacity : 0,
    pools: row.pools,
    kinds: row.kinds.map((k) => k.name),
    version: row.version,
    host: row.host,
    pid: row.pid,
    startedAt: row.started_at?.toISOString() ?? null,
    lastHeartbeatAt: row.last_seen_at.toISOString(),
    diedAt: row.died_at?.toISOString() ?? null,
    deathReason: row.death_reason,
    drainingSince: row.draining_since?.toISOString() ?? null,
    memory:
      row.heap_used_bytes === null || row.rss_bytes === null
        ? null
        : { heapUsedBytes: Number(row.heap_used_bytes), rssBytes: Number(row.rss_bytes) },
  };
}
