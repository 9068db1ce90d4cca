import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `secret_params`: the paths in `params` that the kind's schema marked secret (`writeOnly`) when
 * the observer was created, so that every view of the row shows them as "***". The values stay
 * in `params`: the job needs them.
 */
export class SecretParams1764000000005 implements MigrationInterface {
  name = 'SecretParams1764000000005';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE observers ADD COLUMN secret_params jsonb NOT NULL DEFAULT '[]'`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('ALTER TABLE observers DROP COLUMN secret_params');
  }
}
