import type { DataSource, EntityManager } from 'typeorm';

/**
 * Runs one SQL statement and returns its rows. TypeORM's `query()` answers UPDATE and DELETE
 * with `[rows, count]` but SELECT with the rows alone; this always returns the rows.
 */
export async function sql<T>(
  db: DataSource | EntityManager,
  text: string,
  params: readonly unknown[] = [],
): Promise<T[]> {
  const manager = 'manager' in db ? db.manager : db;
  const runner = manager.queryRunner ?? manager.connection.createQueryRunner();
  try {
    const result = await runner.query(text, [...params], true);
    return result.records as T[];
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}

/** An observers row as the job message its services get (`RETURNING ${JOB_COLUMNS}`). */
export const JOB_COLUMNS = `id AS "observerId", name, kind, pool, params, generation, stale_after_ms AS "staleAfterMs"`;

/** Names equal to `exact`, or starting with `prefix`. */
export type NameFilter = { exact: string } | { prefix: string };

/** The comparison and its value for a name filter: `name <op> $n`. */
export function nameMatch(filter: NameFilter): { op: '=' | 'LIKE'; value: string } {
  if ('exact' in filter) return { op: '=', value: filter.exact };
  // %, _ and \ in the prefix are taken literally.
  return { op: 'LIKE', value: `${filter.prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%` };
}
