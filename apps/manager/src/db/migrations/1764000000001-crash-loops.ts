import type { MigrationInterface, QueryRunner } from 'typeorm';

/** What the manager needs to notice an observer that keeps killing the services running it. */
export class CrashLoops1764000000001 implements MigrationInterface {
  name = 'CrashLoops1764000000001';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      ALTER TABLE observers
        ADD COLUMN recent_services uuid[] NOT NULL DEFAULT '{}',
        ADD COLUMN crash_deaths int NOT NULL DEFAULT 0,
        ADD COLUMN crash_window_started_at timestamptz,
        ADD COLUMN quarantine_pending boolean NOT NULL DEFAULT false`);
    await db.query(`CREATE INDEX observers_recent_services ON observers USING gin (recent_services)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`
      ALTER TABLE observers
        DROP COLUMN recent_services, DROP COLUMN crash_deaths,
        DROP COLUMN crash_window_started_at, DROP COLUMN quarantine_pending`);
  }
}
