import type { MigrationInterface, QueryRunner } from 'typeorm';

/** An observer may be `Paused`: kept, running nowhere, until it is resumed. */
export class Paused1764000000009 implements MigrationInterface {
  name = 'Paused1764000000009';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE observers DROP CONSTRAINT observers_status_check`);
    await db.query(
      `ALTER TABLE observers ADD CONSTRAINT observers_status_check
         CHECK (status IN ('Created', 'Processing', 'Paused', 'OnDeleting', 'Deleted', 'Failed'))`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`UPDATE observers SET status = 'Created', service_id = NULL WHERE status = 'Paused'`);
    await db.query(`ALTER TABLE observers DROP CONSTRAINT observers_status_check`);
    await db.query(
      `ALTER TABLE observers ADD CONSTRAINT observers_status_check
         CHECK (status IN ('Created', 'Processing', 'OnDeleting', 'Deleted', 'Failed'))`,
    );
  }
}
