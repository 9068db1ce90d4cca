import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * History is pruned after a retention period: old timeline rows and service events by time (a
 * BRIN index, tiny and cheap to keep on tables appended to in time order), deleted observers and
 * dead services by when they ended.
 */
export class Retention1764000000012 implements MigrationInterface {
  name = 'Retention1764000000012';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`CREATE INDEX observer_events_at ON observer_events USING brin (at)`);
    await db.query(`CREATE INDEX service_events_at ON service_events USING brin (at)`);
    await db.query(`CREATE INDEX observers_deleted_at ON observers (updated_at) WHERE status = 'Deleted'`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX observers_deleted_at`);
    await db.query(`DROP INDEX service_events_at`);
    await db.query(`DROP INDEX observer_events_at`);
  }
}
