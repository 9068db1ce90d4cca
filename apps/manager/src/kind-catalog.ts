import { createHash } from 'node:crypto';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import type { DataSource } from 'typeorm';
import { secretPaths, type KindDescription, type SecretPath } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import { EgressPolicy } from '@vigil/egress';
import { sql } from './db/sql';
import { addEgressKeyword } from './egress-keyword';
import { Lru } from './lru';
import { safeRegExp } from './safe-regexp';
import { checkSchema } from './schema-bounds';

export type KindCheck =
  | { ok: true; secretPaths: SecretPath[] }
  | {
      ok: false;
      reason: 'no-service-for-pool' | 'unknown-kind' | 'invalid-params' | 'schema-refused';
      detail: string;
      errors?: ParamError[];
    };

/** What the manager made of an announced params schema. */
export type SchemaVerdict =
  { ok: true; validate: ValidateFunction; secretPaths: SecretPath[] } | { ok: false; why: string };

/** Compiled schemas kept (each is generated code): a service announcing new ones evicts old ones. */
const VALIDATORS_KEPT = 256;
/**
 * A compile that takes more CPU time than this refuses the schema, and it is not compiled again.
 * The bounds keep a compile well below it; CPU time rather than wall time, so that a busy
 * machine does not make a good schema look slow.
 */
export const COMPILE_BUDGET_MS = 1000;
/** Refusals already logged, by service, kind and reason: one line each, however often it is used. */
const REFUSALS_REMEMBERED = 1024;
/** Announced kinds waiting to be vetted at most; past it they are vetted at their first create. */
const ANNOUNCED_WAITING = 1024;

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
  /** Verdicts by the hash of the schema's text, with the object Ajv holds a compiled copy under. */
  private readonly verdicts = new Lru<string, { verdict: SchemaVerdict; compiled?: object }>(
    VALIDATORS_KEPT,
    ({ compiled }) => compiled && this.ajv.removeSchema(compiled),
  );
  /**
   * Verdicts by the announced schema object itself. A pool's services are read once per `ttlMs`
   * and their schema objects reused by every create meanwhile, so a create finds its verdict here
   * without walking, serializing and hashing the schema again.
   */
  private readonly bySchema = new WeakMap<object, SchemaVerdict>();
  private readonly refusalsLogged = new Lru<string, true>(REFUSALS_REMEMBERED);
  /** Kinds announced in births, waiting to be vetted one per turn of the event loop. */
  private readonly announced: { serviceId: string; kind: KindDescription }[] = [];
  /** Per pool: what its live services announced, and until when that answer is used. */
  private readonly cache = new Map<string, { until: number; rows: Promise<Announcer[]> }>();

  /**
   * `egress`: the policy that URLs annotated for it are judged by (egress-keyword.ts). `ttlMs`:
   * how long one look at the services serves creates in the same pool.
   */
  constructor(
    private readonly db: DataSource,
    private readonly log: Logger,
    egress = new EgressPolicy(),
    private readonly ttlMs = 1_000,
  ) {
    this.ajv = addEgressKeyword(
      new Ajv2020({ allErrors: true, strict: false, logger: false, code: { regExp: safeRegExp } }),
      egress,
    );
    // Ajv compiles the draft's meta-schema on first use: not within the first schema's budget.
    void this.ajv.validateSchema({});
  }

  /**
   * A service was born with these kinds: vet their schemas now, so that a refused one is logged
   * when it is announced rather than at its first create. In the background, one per turn of the
   * event loop: the state consumer that calls this never waits on a compile.
   */
  announce(serviceId: string, kinds: readonly KindDescription[]): void {
    const idle = this.announced.length === 0;
    const room = Math.max(0, ANNOUNCED_WAITING - this.announced.length);
    this.announced.push(...kinds.slice(0, room).map((kind) => ({ serviceId, kind })));
    if (idle && this.announced.length > 0) setImmediate(() => this.vetAnnounced());
  }

  private vetAnnounced(): void {
    const next = this.announced.shift();
    if (!next) return;
    this.vet(next.serviceId, next.kind);
    if (this.announced.length > 0) setImmediate(() => this.vetAnnounced());
  }

  async check(kind: string, pool: string, params: Record<string, unknown>): Promise<KindCheck> {
    const rows = await this.servicesOf(pool);
    if (rows.length === 0) {
      return { ok: false, reason: 'no-service-for-pool', detail: `no live observer service serves pool "${pool}"` };
    }
    const announcer = rows.find((row) => row.kinds.some((k) => k.name === kind));
    const description = announcer?.kinds.find((k) => k.name === kind);
    if (!announcer || !description) {
      const known = [...new Set(rows.flatMap((row) => row.kinds.map((k) => k.name)))].sort();
      return {
        ok: false,
        reason: 'unknown-kind',
        detail: `kind "${kind}" is not served in pool "${pool}" (known there: ${known.join(', ') || 'none'})`,
      };
    }
    const verdict = this.vet(announcer.id, description);
    if (!verdict.ok) {
      return {
        ok: false,
        reason: 'schema-refused',
        detail: `the params schema service ${announcer.id} announced for kind "${kind}" was refused: ${verdict.why}`,
      };
    }
    const { validate } = verdict;
    if (validate(params)) return { ok: true, secretPaths: verdict.secretPaths };
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

  private servicesOf(pool: string): Promise<Announcer[]> {
    const now = Date.now();
    const cached = this.cache.get(pool);
    if (cached && cached.until > now) return cached.rows;
    const rows = sql<Announcer>(
      this.db,
      `SELECT id, kinds FROM services WHERE status = 'Alive' AND pools @> $1::jsonb ORDER BY started_at DESC NULLS LAST`,
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

  /**
   * What the manager makes of a kind's announced schema: checked against its bounds, then
   * compiled (and timed), the verdict kept by the schema's hash. A refusal is logged once per
   * service, kind and reason. Never throws: whatever a schema holds, it is at worst refused.
   */
  vet(serviceId: string, kind: KindDescription): SchemaVerdict {
    let verdict = this.bySchema.get(kind.paramsSchema);
    if (!verdict) {
      try {
        verdict = this.validator(kind.paramsSchema);
      } catch (err) {
        verdict = { ok: false, why: coerceError(err).message };
      }
      this.bySchema.set(kind.paramsSchema, verdict);
    }
    if (!verdict.ok) {
      const key = JSON.stringify([serviceId, kind.name, verdict.why]);
      if (!this.refusalsLogged.get(key)) {
        this.refusalsLogged.set(key, true);
        this.log.error(
          { serviceId, kind: kind.name, why: verdict.why },
          `the params schema announced for kind "${kind.name}" is refused: ${verdict.why}; creates of it are refused`,
        );
      }
    }
    return verdict;
  }

  private validator(schema: Record<string, unknown>): SchemaVerdict {
    const bounded = checkSchema(schema);
    if (!bounded.ok) return bounded;
    const key = createHash('sha256').update(bounded.text).digest('base64');
    const known = this.verdicts.get(key);
    if (known) return known.verdict;
    const started = process.cpuUsage();
    let validate: ValidateFunction;
    try {
      validate = this.ajv.compile(bounded.schema);
    } catch (err) {
      // Ajv keeps what it had begun with even when the compile failed.
      this.ajv.removeSchema(bounded.schema);
      const verdict = { ok: false as const, why: `it does not compile: ${coerceError(err).message}` };
      this.verdicts.set(key, { verdict });
      return verdict;
    }
    const spent = process.cpuUsage(started);
    const tookMs = (spent.user + spent.system) / 1000;
    if (tookMs > COMPILE_BUDGET_MS) {
      this.ajv.removeSchema(bounded.schema);
      const why = `compiling it took ${Math.round(tookMs)} ms, more than ${COMPILE_BUDGET_MS}`;
      const verdict = { ok: false as const, why };
      this.verdicts.set(key, { verdict });
      return verdict;
    }
    const verdict = { ok: true as const, validate, secretPaths: secretPaths(bounded.schema) };
    this.verdicts.set(key, { verdict, compiled: bounded.schema });
    return verdict;
  }
}

interface Announcer {
  id: string;
  kinds: KindDescription[];
}
