import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Planned moves: a draining service (it stops taking jobs and asks for its observers to be moved),
 * and, per observer, the service the last planned move took it from, so that the release of the
 * copy left there is told apart from a duplicate.
 */
export class Moves1764000000006 implements MigrationInterface {
  name = 'Moves1764000000006';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE services ADD COLUMN draining_since timestamptz`);
    await db.query(`ALTER TABLE observers ADD COLUMN moved_from uuid`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE observers DROP COLUMN moved_from`);
    await db.query(`ALTER TABLE services DROP COLUMN draining_since`);
  }
}
