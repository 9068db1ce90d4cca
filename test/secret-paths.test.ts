import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSecretPath, redactSecrets, secretPaths, secretValues } from '@vigil/contracts';
import { secret, z } from '@vigil/observer-sdk';
import { scrub, scrubText } from '../apps/observer-service/src/secret-scrub';

const params = z.object({
  url: z.string(),
  auth: z.object({ user: z.string(), apiKey: secret(z.string()) }),
  accounts: z.array(z.object({ name: z.string(), secret: secret(z.string()).optional() })),
  token: secret(z.string()).nullable(),
  headers: z.record(z.string(), secret(z.string())),
});
const schema = z.toJSONSchema(params, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;

describe('secret params: the paths a schema marks writeOnly', () => {
  it('secret() marks the field writeOnly in the schema a service announces', () => {
    const properties = schema.properties as Record<string, { properties?: Record<string, unknown> }>;
    assert.deepEqual(properties.auth!.properties!.apiKey, { type: 'string', writeOnly: true });
  });

  it('finds them through properties, array items, nullable branches and records', () => {
    assert.deepEqual(secretPaths(schema).map(formatSecretPath).sort(), [
      'accounts[].secret',
      'auth.apiKey',
      'headers[]',
      'token',
    ]);
  });

  it('follows local references, and stops in a recursive one', () => {
    const withRefs = {
      type: 'object',
      properties: { primary: { $ref: '#/$defs/login' }, tree: { $ref: '#/$defs/node' } },
      $defs: {
        login: { type: 'object', properties: { password: { type: 'string', writeOnly: true } } },
        node: { properties: { key: { writeOnly: true }, children: { items: { $ref: '#/$defs/node' } } } },
      },
    };
    const found = secretPaths(withRefs).map(formatSecretPath);
    assert.ok(found.includes('primary.password'));
    assert.ok(found.includes('tree.key'));
    assert.ok(found.includes('tree.children[].key'));
    assert.ok(found.length < 20);
  });

  it('a schema without secrets has no paths; one wholly writeOnly hides every field', () => {
    assert.deepEqual(secretPaths({ type: 'object', properties: { a: { type: 'string' } } }), []);
    assert.deepEqual(redactSecrets({ a: 1, b: 'x' }, secretPaths({ type: 'object', writeOnly: true })), {
      a: '***',
      b: '***',
    });
  });
});

describe('secret params: redacting and scrubbing', () => {
  const values = {
    url: 'https://example.test',
    auth: { user: 'ann', apiKey: 'k-123456' },
    accounts: [{ name: 'a', secret: 's-1' }, { name: 'b' }],
    token: null,
    headers: { authorization: 'Bearer t-9' },
  };
  const paths = secretPaths(schema);

  it('shows every secret present as "***" and leaves the rest, and the original, alone', () => {
    const before = structuredClone(values);
    assert.deepEqual(redactSecrets(values, paths), {
      url: 'https://example.test',
      auth: { user: 'ann', apiKey: '***' },
      accounts: [{ name: 'a', secret: '***' }, { name: 'b' }],
      token: '***',
      headers: { authorization: '***' },
    });
    assert.deepEqual(values, before);
  });

  it('collects the secret strings, longest first, and scrubs them from text and logged objects', () => {
    const secrets = secretValues(values, paths);
    assert.deepEqual(secrets, ['Bearer t-9', 'k-123456', 's-1']);
    assert.equal(scrubText('GET failed with key k-123456', secrets), 'GET failed with key ***');
    const error = new Error('login k-123456 refused');
    const logged = scrub({ err: error, params: values, n: 3 }, secrets) as { err: Error; params: typeof values };
    assert.equal(logged.err.message, 'login *** refused');
    assert.doesNotMatch(logged.err.stack ?? '', /k-123456/);
    assert.equal(logged.params.auth.apiKey, '***');
    assert.equal(logged.params.url, 'https://example.test');
  });
});
