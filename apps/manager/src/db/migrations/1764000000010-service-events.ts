import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What happened to services (born, dead, draining, undrained), in order: with the observers'
 * timeline, the live event feed (`GET /events`) reads it, and resumes from an id.
 */
export class ServiceEvents1764000000010 implements MigrationInterface {
  name = 'ServiceEvents1764000000010';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE service_events (
        id bigserial PRIMARY KEY,
        service_id uuid NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        event text NOT NULL,
        reason text
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE service_events`);
  }
}
