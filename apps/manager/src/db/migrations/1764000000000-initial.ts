import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1764000000000 implements MigrationInterface {
  name = 'Initial1764000000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE observers (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        kind text NOT NULL,
        pool text NOT NULL,
        params jsonb NOT NULL,
        status text NOT NULL CHECK (status IN ('Created', 'Processing', 'OnDeleting', 'Deleted', 'Failed')),
        service_id uuid,
        last_error text,
        job_published boolean NOT NULL DEFAULT false,
        cancel_sent_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // A deleted observer frees its name for a new one.
    await db.query(`CREATE UNIQUE INDEX observers_name_live ON observers (name) WHERE status <> 'Deleted'`);
    await db.query(`CREATE INDEX observers_status ON observers (status)`);
    await db.query(`CREATE INDEX observers_service ON observers (service_id) WHERE service_id IS NOT NULL`);
    await db.query(`CREATE INDEX observers_listing ON observers (created_at, id)`);

    await db.query(`
      CREATE TABLE observer_events (
        id bigserial PRIMARY KEY,
        observer_id uuid NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        event text NOT NULL,
        status text NOT NULL,
        service_id uuid,
        reason text
      )`);
    await db.query(`CREATE INDEX observer_events_timeline ON observer_events (observer_id, id)`);

    await db.query(`
      CREATE TABLE services (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        status text NOT NULL CHECK (status IN ('Alive', 'Dead')),
        capacity int NOT NULL,
        pools jsonb NOT NULL,
        kinds jsonb NOT NULL,
        version text NOT NULL DEFAULT '',
        host text NOT NULL DEFAULT '',
        pid int NOT NULL DEFAULT 0,
        started_at timestamptz,
        heartbeat_interval_ms int NOT NULL,
        running int NOT NULL DEFAULT 0,
        free_slots int NOT NULL DEFAULT 0,
        last_seen_at timestamptz NOT NULL,
        died_at timestamptz,
        death_reason text
      )`);
    await db.query(`CREATE INDEX services_alive_name ON services (name) WHERE status = 'Alive'`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE services');
    await db.query('DROP TABLE observer_events');
    await db.query('DROP TABLE observers');
  }
}
