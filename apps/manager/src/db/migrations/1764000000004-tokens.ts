import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * API tokens. Only a token's SHA-256 is kept: a token is 32 random bytes, so a fast hash is as
 * strong as a slow one, and a stolen table holds nothing that authenticates.
 */
export class Tokens1764000000004 implements MigrationInterface {
  name = 'Tokens1764000000004';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE api_tokens (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
        token_sha256 bytea NOT NULL UNIQUE,
        hint text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE api_tokens`);
  }
}
