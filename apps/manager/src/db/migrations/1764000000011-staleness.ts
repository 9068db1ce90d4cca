import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Observer liveness apart from its service's: how long an observer may stay silent (its create
 * body's own; its kind's otherwise), and since when it has been, as its service reported.
 */
export class Staleness1764000000011 implements MigrationInterface {
  name = 'Staleness1764000000011';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE observers ADD COLUMN stale_after_ms int`);
    await db.query(`ALTER TABLE observers ADD COLUMN stale_since timestamptz`);
    await db.query(`ALTER TABLE observers ADD COLUMN last_published_at timestamptz`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE observers DROP COLUMN last_published_at`);
    await db.query(`ALTER TABLE observers DROP COLUMN stale_since`);
    await db.query(`ALTER TABLE observers DROP COLUMN stale_after_ms`);
  }
}
