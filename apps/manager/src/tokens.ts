import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { sql } from './db/sql';
import type { TokenView } from './views';

export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Each role may do what the ones before it may. */
export function allows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** Who made a request: a token from the database, the bootstrap token, or nobody (auth off). */
export interface Principal {
  tokenId: string;
  name: string;
  role: Role;
}

export type { TokenView } from './views';

/** Longer than any token Vigil issues or accepts from VIGIL_ADMIN_TOKEN's schema: not looked up. */
const MAX_TOKEN_LENGTH = 512;
/** Lookups remembered, good and bad, so that a flood of requests is not a flood of queries. */
const MAX_REMEMBERED = 10_000;
const TOKEN_PREFIX = 'vgl_';

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  token_sha256: Buffer;
  hint: string;
  created_at: Date;
  revoked_at: Date | null;
}

/**
 * API tokens: issued at random, kept as their SHA-256 only, compared in constant time. A
 * lookup is remembered for `rememberMs`, so a revoked token stops working on other managers
 * within that time (at once on the manager that revoked it).
 */
export class Tokens {
  private readonly bootstrap: Buffer | undefined;
  private readonly rememberMs: number;
  private readonly remembered = new Map<string, { principal: Principal | undefined; until: number }>();

  constructor(
    private readonly db: DataSource,
    options: { adminToken?: string; rememberMs?: number } = {},
  ) {
    this.bootstrap = options.adminToken === undefined ? undefined : sha256(options.adminToken);
    this.rememberMs = options.rememberMs ?? 5_000;
  }

  async authenticate(presented: string): Promise<Principal | undefined> {
    if (presented.length === 0 || presented.length > MAX_TOKEN_LENGTH) return undefined;
    const digest = sha256(presented);
    if (this.bootstrap && timingSafeEqual(digest, this.bootstrap)) {
      return { tokenId: 'bootstrap', name: 'VIGIL_ADMIN_TOKEN', role: 'admin' };
    }
    const key = digest.toString('hex');
    const known = this.remembered.get(key);
    if (known && known.until > Date.now()) return known.principal;
    const [row] = await sql<TokenRecord>(
      this.db,
      `SELECT id, name, role, token_sha256 FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL`,
      [digest],
    );
    // The index found the row by its hash; comparing again in constant time costs nothing and
    // keeps the check independent of how the index compares.
    const principal =
      row && timingSafeEqual(row.token_sha256, digest)
        ? { tokenId: row.id, name: row.name, role: row.role }
        : undefined;
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear();
    this.remembered.set(key, { principal, until: Date.now() + this.rememberMs });
    return principal;
  }

  /** A new token; its text is in the answer and nowhere else. */
  async create(input: { name: string; role: Role }): Promise<{ token: string; view: TokenView }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const [row] = await sql<TokenRecord>(
      this.db,
      `INSERT INTO api_tokens (id, name, role, token_sha256, hint) VALUES ($1, $2, $3, $4, $5)
       RETURNING id, name, role, hint, created_at, revoked_at`,
      [randomUUID(), input.name, input.role, sha256(token), `${token.slice(0, TOKEN_PREFIX.length + 4)}…`],
    );
    return { token, view: toView(row!) };
  }

  async list(): Promise<TokenView[]> {
    const rows = await sql<TokenRecord>(
      this.db,
      `SELECT id, name, role, hint, created_at, revoked_at FROM api_tokens ORDER BY created_at, id`,
    );
    return rows.map(toView);
  }

  /** Revokes the token; `undefined` when there is none with this id. Revoking twice is fine. */
  async revoke(id: string): Promise<TokenView | undefined> {
    const [row] = await sql<TokenRecord>(
      this.db,
      `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
       RETURNING id, name, role, hint, created_at, revoked_at`,
      [id],
    );
    if (row)
      for (const [key, known] of this.remembered) if (known.principal?.tokenId === id) this.remembered.delete(key);
    return row && toView(row);
  }
}

function toView(row: TokenRecord): TokenView {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    hint: row.hint,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}
