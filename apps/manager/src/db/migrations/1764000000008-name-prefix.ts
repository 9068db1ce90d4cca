import type { MigrationInterface, QueryRunner } from 'typeorm';

/** `?name=abc*` lists observers by the start of their name: a pattern index serves the LIKE. */
export class NamePrefix1764000000008 implements MigrationInterface {
  name = 'NamePrefix1764000000008';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`CREATE INDEX observers_name_prefix ON observers (name text_pattern_ops)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX observers_name_prefix`);
  }
}
