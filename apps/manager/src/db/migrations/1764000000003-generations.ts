import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ownership generations, the lost-job audit and the active manager's lease.
 * - `generation`: the observer's latest placement; only the manager increments it.
 * - `running_generation`: the generation of the copy on `service_id`.
 * - `contender_service_id`, `contender_since`: a second live service reported the same generation;
 *   the copy there is released once the first holder proves it still runs its own.
 * - `unplaced_since`: since when no live service reports it (the audit's clock); `wait_reason`:
 *   why a service holds its job without running it.
 */
export class Generations1764000000003 implements MigrationInterface {
  name = 'Generations1764000000003';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      ALTER TABLE observers
        ADD COLUMN generation int NOT NULL DEFAULT 1,
        ADD COLUMN running_generation int,
        ADD COLUMN contender_service_id uuid,
        ADD COLUMN contender_since timestamptz,
        ADD COLUMN unplaced_since timestamptz,
        ADD COLUMN wait_reason text`);
    await db.query(`UPDATE observers SET running_generation = 1 WHERE service_id IS NOT NULL`);
    await db.query(
      `UPDATE observers SET unplaced_since = updated_at WHERE service_id IS NULL AND status IN ('Created', 'OnDeleting')`,
    );
    await db.query(`
      CREATE INDEX observers_unplaced ON observers (pool, unplaced_since)
      WHERE service_id IS NULL AND status IN ('Created', 'OnDeleting')`);
    await db.query(
      `CREATE INDEX observers_contender ON observers (contender_service_id) WHERE contender_service_id IS NOT NULL`,
    );
    await db.query(`ALTER TABLE observer_events ADD COLUMN generation int`);
    await db.query(`
      CREATE TABLE manager_lease (
        id int PRIMARY KEY CHECK (id = 1),
        holder text,
        epoch bigint NOT NULL,
        expires_at timestamptz NOT NULL
      )`);
    await db.query(`INSERT INTO manager_lease (id, holder, epoch, expires_at) VALUES (1, NULL, 0, now())`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE manager_lease');
    await db.query('ALTER TABLE observer_events DROP COLUMN generation');
    await db.query(`
      ALTER TABLE observers
        DROP COLUMN generation, DROP COLUMN running_generation, DROP COLUMN contender_service_id,
        DROP COLUMN contender_since, DROP COLUMN unplaced_since, DROP COLUMN wait_reason`);
  }
}
