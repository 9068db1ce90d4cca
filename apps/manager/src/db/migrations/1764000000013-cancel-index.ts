import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The reconciler looks for cancels to send again (deletes, crash loops, pauses not confirmed) on
 * every pass: an index on just those rows keeps that from scanning every observer.
 */
export class CancelIndex1764000000013 implements MigrationInterface {
  name = 'CancelIndex1764000000013';

  async up(db: QueryRunner): Promise<void> {
    await db.query(
      `CREATE INDEX observers_cancel_pending ON observers (cancel_sent_at)
       WHERE (status = 'OnDeleting' OR quarantine_pending OR (status = 'Paused' AND service_id IS NOT NULL))`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX observers_cancel_pending`);
  }
}
