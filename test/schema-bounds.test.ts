import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { KindCatalog } from '../apps/manager/src/kind-catalog';
import { Lru } from '../apps/manager/src/lru';
import { checkSchema, SCHEMA_BOUNDS } from '../apps/manager/src/schema-bounds';

function why(schema: Record<string, unknown>): string {
  const verdict = checkSchema(schema);
  return verdict.ok ? 'ok' : verdict.why;
}

function nested(depth: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < depth; i++) schema = { type: 'object', properties: { inner: schema } };
  return schema;
}

function flat(count: number): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) properties[`p${i}`] = { type: 'string', minLength: 1, maxLength: 9 };
  return { type: 'object', properties };
}

/** A catalog without a database: `vet` needs none. */
function catalog(lines: Record<string, unknown>[] = []): KindCatalog {
  const log = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return new KindCatalog(null as unknown as DataSource, log);
}

describe('announced schemas: bounds checked before compiling', () => {
  it('accepts what zod emits, dropping the top $schema', () => {
    const verdict = checkSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: { url: { type: 'string', format: 'uri' }, tree: { $ref: '#' } },
      $defs: { a: { type: 'string' } },
    });
    assert.equal(verdict.ok, true);
    assert.equal(verdict.ok && '$schema' in verdict.schema, false);
  });

  it('refuses a schema that is too large, in bytes or in values', () => {
    assert.match(why({ type: 'object', description: 'x'.repeat(SCHEMA_BOUNDS.maxBytes) }), /larger than 65536 bytes/);
    assert.match(why({ enum: Array.from({ length: 5_000 }, (_, i) => i) }), /more than 1024 values/);
    assert.equal(why(flat(150)), 'ok');
    assert.match(why(flat(300)), /more than 1024 values/);
  });

  it('refuses nesting past the depth bound', () => {
    assert.equal(why(nested(15)), 'ok');
    assert.match(why(nested(16)), /nests deeper than 32 levels/);
  });

  it('refuses references that leave the schema, and $id', () => {
    assert.match(why({ $ref: 'https://127.0.0.1/other.json' }), /points outside the schema/);
    assert.match(why({ properties: { a: { $ref: 'other.json#/x' } } }), /points outside the schema/);
    assert.match(why({ $dynamicRef: 'https://127.0.0.1/x#meta' }), /\$dynamicRef .* points outside/);
    assert.match(why({ $id: 'https://127.0.0.1/mine.json', type: 'object' }), /has an \$id/);
    assert.match(why({ properties: { a: { $schema: 'http://json-schema.org/draft-07/schema#' } } }), /nested \$schema/);
    // A property that happens to be called $ref is a name, not a reference.
    assert.equal(why({ type: 'object', properties: { $ref: { type: 'string' } } }), 'ok');
  });

  it('refuses references that expand past the bound once inlined', () => {
    const leaf = flat(60).properties as Record<string, unknown>;
    const refs = (count: number) => ({
      type: 'object',
      properties: Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, { $ref: '#/$defs/leaf' }])),
      $defs: { leaf: { type: 'object', properties: leaf } },
    });
    assert.equal(why(refs(4)), 'ok');
    assert.match(why(refs(12)), /expand it to more than 2048 values/);
    // A recursive schema is a call, not an endless expansion.
    assert.equal(why({ $defs: { node: { properties: { children: { items: { $ref: '#/$defs/node' } } } } } }), 'ok');
  });

  it('refuses a pattern that is too long', () => {
    const long = `^${'a'.repeat(SCHEMA_BOUNDS.maxPatternLength)}$`;
    assert.match(why({ type: 'string', pattern: long }), /pattern is longer than 1024/);
    assert.match(why({ type: 'object', patternProperties: { [long]: {} } }), /pattern is longer than 1024/);
  });
});

describe('announced schemas: compiled by the kind catalog', () => {
  it('validates params with a compiled schema, its patterns matched by RE2 in linear time', () => {
    const verdict = catalog().vet('service', {
      name: 'k',
      paramsSchema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } },
    });
    assert.ok(verdict.ok);
    assert.equal(verdict.validate({ s: 'aaa' }), true);
    const started = performance.now();
    assert.equal(verdict.validate({ s: `${'a'.repeat(50_000)}!` }), false);
    assert.ok(performance.now() - started < 500, 'no catastrophic backtracking');
  });

  it('refuses a schema Ajv or RE2 cannot compile, and logs it once per service, kind and reason', () => {
    const lines: Record<string, unknown>[] = [];
    const kinds = catalog(lines);
    const lookahead = { name: 'look', paramsSchema: { type: 'string', pattern: '^(?=a)a$' } };
    const missing = { name: 'missing', paramsSchema: { $ref: '#/$defs/nothing' } };
    for (let i = 0; i < 3; i++) {
      const first = kinds.vet('service-a', lookahead);
      assert.ok(!first.ok);
      assert.match(first.why, /does not compile: pattern "\^\(\?=a\)a\$" is not supported/);
      assert.ok(!kinds.vet('service-a', missing).ok);
    }
    kinds.vet('service-b', lookahead);
    const refusals = lines.filter((line) => String(line.msg).includes('is refused'));
    assert.deepEqual(
      refusals.map((line) => [line.serviceId, line.kind]),
      [
        ['service-a', 'look'],
        ['service-a', 'missing'],
        ['service-b', 'look'],
      ],
    );
  });

  it('compiles the largest schemas the bounds allow within the compile budget', () => {
    const kinds = catalog();
    const largest = [
      flat(200),
      {
        type: 'object',
        properties: Object.fromEntries(
          Array.from({ length: 60 }, (_, i) => [
            `p${i}`,
            { type: 'string', pattern: `^x${i}${'[a-f0-9]'.repeat(110)}$` },
          ]),
        ),
      },
    ];
    for (const paramsSchema of largest) {
      assert.ok(checkSchema(paramsSchema).ok);
      const verdict = kinds.vet('service', { name: 'big', paramsSchema });
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.why);
    }
  });
});

describe('Lru', () => {
  it('keeps the most recently used entries and reports the evicted ones', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, string>(2, (value) => evicted.push(value));
    lru.set('a', 'A');
    lru.set('b', 'B');
    lru.get('a');
    lru.set('c', 'C');
    assert.deepEqual(evicted, ['B']);
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.get('a'), 'A');
    assert.equal(lru.size, 2);
  });
});
