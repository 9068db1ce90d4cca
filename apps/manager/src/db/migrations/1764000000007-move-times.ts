import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When each observer's current job was published by a move (a drain, a rebalance, a rotation):
 * a rebalance leaves an observer moved recently where it is, and a rotation picks the jobs held
 * longest (created_at for one never moved), through the index; a service with a move under way
 * is found by the service it moves from.
 */
export class MoveTimes1764000000007 implements MigrationInterface {
  name = 'MoveTimes1764000000007';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE observers ADD COLUMN moved_at timestamptz`);
    await db.query(
      `CREATE INDEX observers_job_age ON observers ((coalesce(moved_at, created_at))) WHERE status = 'Processing'`,
    );
    await db.query(`CREATE INDEX observers_moved_from ON observers (moved_from) WHERE moved_from IS NOT NULL`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX observers_moved_from`);
    await db.query(`DROP INDEX observers_job_age`);
    await db.query(`ALTER TABLE observers DROP COLUMN moved_at`);
  }
}
