import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Observers whose next generation is published while an older one still runs: a move, a restart
 * or new params under way. The lost-job audit looks for those that stalled (the new generation
 * lost before any service ran it) on every pass, and only a handful exist at any time, so an
 * index on just those rows keeps that from scanning every observer.
 */
export class MovingIndex1764000000014 implements MigrationInterface {
  name = 'MovingIndex1764000000014';

  async up(db: QueryRunner): Promise<void> {
    await db.query(
      `CREATE INDEX observers_moving ON observers (pool, moved_at)
       WHERE service_id IS NOT NULL AND generation <> running_generation`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX observers_moving`);
  }
}
