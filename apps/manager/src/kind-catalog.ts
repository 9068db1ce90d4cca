import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import type { DataSource } from 'typeorm';
import type { KindDescription } from '@vigil/contracts';
import { EgressPolicy } from '@vigil/egress';
import { sql } from './db/sql';
import { addEgressKeyword } from './egress-keyword';

export type KindCheck =
  | { ok: true }
  | {
      ok: false;
      reason: 'no-service-for-pool' | 'unknown-kind' | 'invalid-params';
      detail: string;
      errors?: ParamError[];
    };

export interface ParamError {
  path: string;
  message: string;
}

/**
 * What kinds exist and what params they take, as announced by services in their births. The
 * manager holds no observer code: it validates params against the JSON Schema a service sent.
 */
export class KindCatalog {
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  /** Per pool: what its live services announced, and until when that answer is used. */
  private readonly cache = new Map<string, { until: number; rows: Promise<{ kinds: KindDescription[] }[]> }>();

  /**
   * `egress`: the policy that URLs annotated for it are judged by (egress-keyword.ts). `ttlMs`:
   * how long one look at the services serves creates in the same pool.
   */
  constructor(
    private readonly db: DataSource,
    egress = new EgressPolicy(),
    private readonly ttlMs = 1_000,
  ) {
    this.ajv = addEgressKeyword(new Ajv2020({ allErrors: true, strict: false }), egress);
  }

  async check(kind: string, pool: string, params: Record<string, unknown>): Promise<KindCheck> {
    const rows = await this.servicesOf(pool);
    if (rows.length === 0) {
      return { ok: false, reason: 'no-service-for-pool', detail: `no live observer service serves pool "${pool}"` };
    }
    const description = rows.flatMap((row) => row.kinds).find((k) => k.name === kind);
    if (!description) {
      const known = [...new Set(rows.flatMap((row) => row.kinds.map((k) => k.name)))].sort();
      return {
        ok: false,
        reason: 'unknown-kind',
        detail: `kind "${kind}" is not served in pool "${pool}" (known there: ${known.join(', ') || 'none'})`,
      };
    }
    const validate = this.validator(description.paramsSchema);
    if (validate(params)) return { ok: true };
    const errors = (validate.errors ?? []).map((e) => ({
      path: `params${e.instancePath.replaceAll('/', '.')}`,
      message: e.message ?? 'is invalid',
    }));
    return {
      ok: false,
      reason: 'invalid-params',
      detail: `params do not fit kind "${kind}": ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
      errors,
    };
  }

  private servicesOf(pool: string): Promise<{ kinds: KindDescription[] }[]> {
    const now = Date.now();
    const cached = this.cache.get(pool);
    if (cached && cached.until > now) return cached.rows;
    const rows = sql<{ kinds: KindDescription[] }>(
      this.db,
      `SELECT kinds FROM services WHERE status = 'Alive' AND pools @> $1::jsonb ORDER BY started_at DESC NULLS LAST`,
      [JSON.stringify([pool])],
    );
    this.cache.set(pool, { until: now + this.ttlMs, rows });
    // A failed look, or one that found no service, is not kept: a service that has just been
    // born must be usable at once.
    rows.then(
      (found) => found.length === 0 && this.cache.delete(pool),
      () => this.cache.delete(pool),
    );
    return rows;
  }

  private validator(schema: Record<string, unknown>): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.validators.get(key);
    if (!validate) {
      const { $schema: _ignored, ...rest } = schema;
      validate = this.ajv.compile(rest);
      this.validators.set(key, validate);
    }
    return validate;
  }
}
