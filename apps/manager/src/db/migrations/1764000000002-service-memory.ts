import type { MigrationInterface, QueryRunner } from 'typeorm';

/** A service's memory as of its last heartbeat: capacity planning, and the benchmark's idle cost. */
export class ServiceMemory1764000000002 implements MigrationInterface {
  name = 'ServiceMemory1764000000002';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE services ADD COLUMN heap_used_bytes bigint, ADD COLUMN rss_bytes bigint`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE services DROP COLUMN heap_used_bytes, DROP COLUMN rss_bytes`);
  }
}
