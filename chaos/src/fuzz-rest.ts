/**
 * Bad input at volume, over HTTP: thousands of generated requests (seeded, so any run can be
 * replayed) against the manager's REST API — broken and hostile JSON bodies, wrong content
 * types and encodings, odd paths and query strings over every method — checking what must hold
 * for each answer: no 5xx except the designed ones, every error an RFC 9457 problem, and the
 * manager still up at the end.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import fc from 'fast-check';
import { ObserverName } from '@vigil/contracts';
import type { World } from '@vigil/testkit';

export interface FuzzRestOptions {
  /** How many requests to generate and send. */
  runs: number;
  seed: number;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Counterexamples kept in the report (default 10). */
  keepFailures?: number;
}

/** One generated request. `knownId` asks for the id of an observer this run created, if any. */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** What the generator meant to send (for the report). */
  shape: string;
  /** `path` holds `{known}`, to be replaced by the id of an observer created earlier in the run. */
  knownId?: number;
  /**
   * Who the Authorization header (if any) says sent it: a token that may do everything, one that
   * may only read, or nothing that authenticates. The header names tokens as `{admin}`, `{read}`
   * and `{revoked}`, replaced by the run's tokens when sent.
   */
  auth: Auth;
}

type Auth = 'admin' | 'read' | 'none';

export interface FuzzFailure {
  reason: string;
  shape: string;
  method: string;
  /** The path as sent, cut to 300 characters. */
  path: string;
  pathLength: number;
  headers: Record<string, string>;
  /** The body as sent, cut to 300 characters (see bodyLength). */
  body?: string;
  bodyLength: number;
  status: number;
  contentType: string;
  /** The answer, cut to 300 characters. */
  response: string;
}

export interface FuzzRestReport {
  seed: number;
  requests: number;
  durationMs: number;
  /** Answers per HTTP status ("error" for a request that got no answer). */
  byStatus: Record<string, number>;
  /** Answers per generated shape, e.g. "post:mutated-params". */
  byShape: Record<string, number>;
  /** How many requests broke a property, and of which kind (reason, status, method, route). */
  failureCount: number;
  failureKinds: Record<string, number>;
  /** The first few counterexamples, replayable as they are. */
  failures: FuzzFailure[];
  /** What the manager logged for its 500s ("request failed"), distinct messages with counts. */
  managerErrors: Record<string, number>;
  /** Observers the run created (valid bodies draw their names from a small pool). */
  created: number;
  /** Of those, deleted again at the end. */
  cleanedUp: number;
  managerRunning: boolean;
  healthzAfter: number;
}

const API = '/api/v1';
/** Kinds that harm their service on purpose (loaded from the testkit's test kinds): never created. */
const HARMFUL_KINDS = new Set(['service-killer', 'crasher', 'stubborn', 'slow-stop', 'http-poll']);
const NAME_POOL = ['fuzz-a', 'fuzz-b', 'fuzz-c', 'fuzz-d', 'fuzz-e'];
const OBSERVER_STATUSES = ['Created', 'Processing', 'OnDeleting', 'Deleted', 'Failed'];
const SERVICE_STATUSES = ['Alive', 'Dead'];
const METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH'];

/** The one 503 the manager gives by design while broker and database are up. */
const NO_SERVICE_FOR_POOL = 'urn:vigil:problem:no-service-for-pool';

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** Percent-encodes the UTF-8 bytes of `text` (a lone surrogate becomes U+FFFD, as Node writes it). */
function percentBytes(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/** A path segment with everything but unreserved characters percent-encoded. */
function encodeSegment(raw: string): string {
  return raw.replace(/[^A-Za-z0-9\-._~]/gu, percentBytes);
}

const percentGarbage = fc.constantFrom(
  '%',
  '%%',
  '%zz',
  '%0',
  '%00',
  '%2F',
  '%2f..%2f',
  '%ff',
  '%E0%A4%A',
  '%C0%AF',
  '%ED%A0%80',
  '%F0%9F%98%80',
  '..',
  '.',
  '%2e%2e',
  '~',
  ';jsessionid=1',
  ':id',
  '*',
  '$',
  "'",
  '+',
);

const unicodeText = fc.string({ unit: 'grapheme', maxLength: 30 });
const binaryText = fc.string({ unit: 'binary', maxLength: 40 });

/**
 * Up to 6,000 characters: with a query string the request head stays under the 16 KB Node's
 * HTTP parser accepts (past it Node itself answers a bare 431, before the app sees anything).
 */
const longSegment = fc
  .constantFrom(300, 2_000, 6_000)
  .chain((n) =>
    fc
      .constantFrom('a', '%41', 'é', '0')
      .map((unit) => (unit === 'é' ? encodeSegment('é'.repeat(n / 6)) : unit.repeat(n / unit.length))),
  );

const uuidLike = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.uuid().map((u) => u.slice(0, -1)),
  fc.uuid().map((u) => `${u}0`),
  fc.uuid().map((u) => u.replaceAll('-', '')),
  fc.uuid().map((u) => `{${u}}`),
  fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', 'undefined'),
);

/** An id segment: a real uuid, a near miss, text, percent garbage, or a very long one. */
const idSegment: fc.Arbitrary<{ segment: string; known: boolean }> = fc.oneof(
  { arbitrary: uuidLike.map((segment) => ({ segment, known: false })), weight: 5 },
  { arbitrary: fc.constant({ segment: '{known}', known: true }), weight: 1 },
  { arbitrary: unicodeText.map((s) => ({ segment: encodeSegment(s), known: false })), weight: 2 },
  { arbitrary: binaryText.map((s) => ({ segment: encodeSegment(s), known: false })), weight: 1 },
  { arbitrary: percentGarbage.map((segment) => ({ segment, known: false })), weight: 2 },
  { arbitrary: longSegment.map((segment) => ({ segment, known: false })), weight: 1 },
);

/** A cursor the API could have made, with digits the regex accepts but a calendar may not. */
const structuredCursor = fc
  .tuple(
    fc.stringMatching(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/),
    fc.oneof(fc.uuid(), fc.string()),
  )
  .map(([createdAt, id]) => Buffer.from(JSON.stringify({ createdAt, id })).toString('base64url'));

const queryValue = fc.oneof(
  fc.constantFrom(...OBSERVER_STATUSES, ...SERVICE_STATUSES, 'processing', 'ALIVE', ''),
  fc.constantFrom(
    '0',
    '1',
    '-1',
    '1000',
    '1001',
    '1e3',
    '1.5',
    'NaN',
    'Infinity',
    '0x10',
    '%205',
    '99999999999999999999',
  ),
  fc.constantFrom('ticker', 'default', 'blue', 'no-such-kind', 'Ticker', 'a'.repeat(64)),
  fc.constantFrom('%00', 'a%00b', '%', '%zz', '%ED%A0%80', '%F0%9F%98%80', '%E2%80%AE', '+', '%2B', '&', '='),
  fc.uuid(),
  structuredCursor,
  fc.base64String({ maxLength: 120 }),
  fc.constantFrom(200, 201, 1_500).map((n) => 'A'.repeat(n)),
  unicodeText.map(encodeSegment),
  binaryText.map(encodeSegment),
);

const queryKey = fc.oneof(
  { arbitrary: fc.constantFrom('status', 'serviceId', 'kind', 'pool', 'limit', 'cursor', 'name'), weight: 8 },
  { arbitrary: fc.constantFrom('__proto__', 'constructor', 'limit[]', 'status[0]', '', 'a.b'), weight: 1 },
  { arbitrary: unicodeText.map(encodeSegment), weight: 1 },
);

/** Values aimed at one parameter, each otherwise valid, so that it gets past validation. */
const focusedValue: Record<string, fc.Arbitrary<string>> = {
  status: fc.constantFrom(...OBSERVER_STATUSES, ...SERVICE_STATUSES, 'processing', '%00', ''),
  serviceId: fc.oneof(fc.uuid(), uuidLike.map(encodeSegment)),
  kind: fc.constantFrom('ticker', 'no-such-kind', 'a'.repeat(63), 'a'.repeat(64), 'a%00', 'a-'),
  pool: fc.constantFrom('default', 'blue', '0', 'a_b', 'a'.repeat(63), 'a'.repeat(64), 'a%00'),
  limit: fc.oneof(
    fc.integer({ min: -5, max: 1005 }).map(String),
    fc.constantFrom('1e3', '0x10', '1.0', '%207', '7%20', '+7', ''),
  ),
  cursor: fc.oneof(structuredCursor, fc.uuid(), fc.base64String({ maxLength: 270 })),
  name: fc.oneof(
    fc.constantFrom(
      '%00',
      'a%00b',
      '%ED%A0%80',
      '%C0%80',
      '%F4%90%80%80',
      'volume-1',
      'a'.repeat(200),
      'a'.repeat(201),
    ),
    unicodeText.map(encodeSegment),
    binaryText.map(encodeSegment),
  ),
};

/** A query string: one parameter aimed at, known keys with good and bad values, repeated keys, garbage. */
const queryString = fc.oneof(
  { arbitrary: fc.constant(''), weight: 2 },
  {
    arbitrary: fc
      .constantFrom(...Object.keys(focusedValue))
      .chain((key) => focusedValue[key]!.map((value) => `?${key}=${value}`)),
    weight: 6,
  },
  {
    arbitrary: fc
      .array(fc.tuple(queryKey, queryValue, fc.boolean()), { minLength: 1, maxLength: 4 })
      .map((pairs) => `?${pairs.map(([k, v, withValue]) => (withValue ? `${k}=${v}` : k)).join('&')}`),
    weight: 6,
  },
  { arbitrary: fc.constantFrom('?', '??', '?&&&', '?=', '?limit=1&limit=2', '?%', '?a=%'), weight: 1 },
);

/** Deeply nested JSON text, arrays or objects. */
const deepJson = fc
  .tuple(fc.constantFrom(100, 1_000, 10_000, 60_000), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
  );

/** Strings that are hard on JSON, validators and databases. */
const hostileString = fc.oneof(
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '\u202e\u0301',
    '\ufeff',
    '\u2028\u2029',
    '🦀'.repeat(50),
    "'; DROP TABLE observers; --",
    '$1',
    '{{7*7}}',
    '<script>',
    '../../etc/passwd',
  ),
  unicodeText,
  binaryText,
  fc.constantFrom(1_000, 100_000, 300_000).map((n) => 'x'.repeat(n)),
);

/** Any JSON value, including ones that would pollute a prototype if merged carelessly. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileString,
  fc.constantFrom(null, true, 0, -1, 1.5, 1e308, [], {}, [1, 2], { intervalMs: 100 }),
);

const validPool = fc.constantFrom(undefined, 'default', 'blue');
const harmlessKind = fc.constantFrom('ticker', 'ticker', 'ticker', 'no-such-kind', 'ticker-x');

/** Keys that may touch an object's prototype when copied with `Object.assign` or a spread. */
const pollutingKey = fc.constantFrom('__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty');

/** Builds JSON text by hand so that a key like `__proto__` stays an own property. */
function objectText(entries: [string, string][]): string {
  return `{${entries.map(([key, valueText]) => `${JSON.stringify(key)}:${valueText}`).join(',')}}`;
}

/** A name that the API must refuse: from a list or generated, anything ObserverName rejects. */
const invalidName = fc
  .oneof(
    fc.constantFrom('', ' ', 'has space', '-lead', '.lead', 'a'.repeat(201), 'ünïcode', 'a\nb', 'x?y', 'a#b'),
    unicodeText,
    hostileString,
  )
  .map((name) => (ObserverName.safeParse(name).success ? ` ${name}` : name));

type Field = 'name' | 'kind' | 'params' | 'pool';

/**
 * A body that would create a ticker, with one thing changed: a field missing, of the wrong
 * type, invalid, oversized; params with extra keys of hostile values or nested deep; polluting
 * keys at the top or in params; or nothing changed at all (then it creates, or answers 409).
 */
const observerBody: fc.Arbitrary<{ shape: string; text: string }> = fc
  .record({
    name: fc.constantFrom(...NAME_POOL),
    kind: harmlessKind,
    intervalMs: fc.constantFrom(1_000, 2_000, 5_000),
    pool: validPool,
    mutation: fc.oneof(
      { arbitrary: fc.constant({ type: 'none' as const }), weight: 2 },
      {
        arbitrary: fc
          .constantFrom<Field>('name', 'kind', 'params', 'pool')
          .map((field) => ({ type: 'drop' as const, field })),
        weight: 2,
      },
      {
        arbitrary: fc
          .tuple(fc.constantFrom<Field>('name', 'kind', 'params', 'pool'), wrongValue)
          .map(([field, value]) => ({ type: 'wrong' as const, field, value })),
        weight: 4,
      },
      { arbitrary: invalidName.map((value) => ({ type: 'bad-name' as const, value })), weight: 2 },
      {
        arbitrary: fc
          .oneof(
            fc.integer({ min: -1_000_000, max: 9 }),
            fc
              .double({ min: 10.0001, max: 1e6, noNaN: true, noDefaultInfinity: true })
              .filter((n) => !Number.isInteger(n)),
            fc.constantFrom(2 ** 53, 1e21, -0, '1000', null, true, [1000], { value: 1000 }),
          )
          .map((value) => ({ type: 'bad-interval' as const, value })),
        weight: 2,
      },
      {
        arbitrary: fc
          .tuple(
            fc.oneof(fc.string({ maxLength: 20 }), pollutingKey),
            fc.oneof(
              wrongValue,
              deepJson.map((text) => ({ raw: text })),
            ),
          )
          .map(([key, value]) => ({ type: 'extra-param' as const, key, value })),
        weight: 3,
      },
      {
        arbitrary: fc
          .tuple(fc.oneof(pollutingKey, fc.string({ maxLength: 20 })), wrongValue)
          .map(([key, value]) => ({ type: 'extra-field' as const, key, value })),
        weight: 2,
      },
      { arbitrary: deepJson.map((text) => ({ type: 'deep-params' as const, text })), weight: 1 },
    ),
  })
  .map(({ name, kind, intervalMs, pool, mutation }) => {
    const safeKind = HARMFUL_KINDS.has(kind) ? 'no-such-kind' : kind;
    const entries = new Map<string, string>([
      ['name', JSON.stringify(name)],
      ['kind', JSON.stringify(safeKind)],
      ['params', objectText([['intervalMs', JSON.stringify(intervalMs)]])],
    ]);
    if (pool !== undefined) entries.set('pool', JSON.stringify(pool));
    const valueText = (value: unknown): string =>
      typeof value === 'object' && value !== null && 'raw' in value
        ? String((value as { raw: string }).raw)
        : jsonText(value);
    switch (mutation.type) {
      case 'none':
        break;
      case 'drop':
        entries.delete(mutation.field);
        break;
      case 'wrong': {
        // A wrong kind must not name a kind that harms its service.
        const value = mutation.field === 'kind' && HARMFUL_KINDS.has(String(mutation.value)) ? 7 : mutation.value;
        entries.set(mutation.field, jsonText(value));
        break;
      }
      case 'bad-name':
        entries.set('name', JSON.stringify(mutation.value));
        break;
      case 'bad-interval':
        entries.set('params', objectText([['intervalMs', jsonText(mutation.value)]]));
        break;
      case 'extra-param':
        entries.set(
          'params',
          objectText([
            ['intervalMs', JSON.stringify(intervalMs)],
            [mutation.key, valueText(mutation.value)],
          ]),
        );
        break;
      case 'extra-field':
        entries.set(mutation.key, jsonText(mutation.value));
        break;
      case 'deep-params':
        entries.set(
          'params',
          objectText([
            ['intervalMs', JSON.stringify(intervalMs)],
            ['nested', mutation.text],
          ]),
        );
        break;
    }
    return { shape: `observer:${mutation.type}`, text: objectText([...entries]) };
  });

/** JSON text of a value; a lone surrogate stays an escape, as JSON.stringify writes it. */
function jsonText(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/** Bodies that are not an observer: invalid JSON, other JSON, empty, deep, huge. */
const otherBody: fc.Arbitrary<{ shape: string; text: string }> = fc.oneof(
  { arbitrary: fc.constant({ shape: 'empty', text: '' }), weight: 2 },
  {
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '{',
          '{"name": ',
          "{'name':'x'}",
          '{"a":1,}',
          'nul',
          'NaN',
          'undefined',
          '\ufeff{}',
          '{"a":1}{"b":2}',
          '{"a":"\\ud800"}',
          '{"a":"\\u0000"}',
          '{"a":1e999}',
          '[',
          '"',
          '\u0000',
          '{"__proto__":{"polluted":true}}',
          '{"constructor":{"prototype":{"polluted":true}}}',
        ),
        binaryText,
        unicodeText,
      )
      .map((text) => ({ shape: 'not-json', text })),
    weight: 4,
  },
  { arbitrary: fc.json({ maxDepth: 4 }).map((text) => ({ shape: 'json', text })), weight: 4 },
  { arbitrary: deepJson.map((text) => ({ shape: 'deep', text })), weight: 1 },
  {
    arbitrary: fc
      .constantFrom(100_000, 255_000, 300_000, 1_000_000)
      .map((n) => ({ shape: 'huge', text: JSON.stringify({ name: 'fuzz-a', kind: 'ticker', pad: 'x'.repeat(n) }) })),
    weight: 1,
  },
);

const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 12 },
  {
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'application/json; charset=nope',
      'APPLICATION/JSON',
      'application/json;;',
      'application/problem+json',
      'application/merge-patch+json',
      'text/plain',
      'text/json',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
      '*/*',
      'json',
      '',
      ';',
    ),
    weight: 4,
  },
  { arbitrary: fc.constant(undefined), weight: 1 },
);

const contentEncoding = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 20 },
  { arbitrary: fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-nope', 'gzip, gzip'), weight: 1 },
);

interface Draft {
  method: string;
  path: string;
  shape: string;
  knownId?: boolean;
  body?: { shape: string; text: string };
}

const observersCreate: fc.Arbitrary<Draft> = fc
  .tuple(
    fc.oneof({ arbitrary: observerBody, weight: 3 }, { arbitrary: otherBody, weight: 1 }),
    fc.constantFrom('', '/', '?x=1'),
  )
  .map(([body, suffix]) => ({ method: 'POST', path: `${API}/observers${suffix}`, shape: `post:${body.shape}`, body }));

const observersList: fc.Arbitrary<Draft> = queryString.map((query) => ({
  method: 'GET',
  path: `${API}/observers${query}`,
  shape: 'list-observers',
}));

const servicesList: fc.Arbitrary<Draft> = queryString.map((query) => ({
  method: 'GET',
  path: `${API}/services${query}`,
  shape: 'list-services',
}));

const byId: fc.Arbitrary<Draft> = fc
  .tuple(
    fc.constantFrom('GET', 'GET', 'DELETE', 'PUT', 'PATCH', 'POST'),
    fc.constantFrom('observers', 'services'),
    idSegment,
    fc.constantFrom('', '', '', '/', '/timeline', '/..', '/%2e%2e'),
    fc.option(queryString),
  )
  .map(([method, resource, id, suffix, query]) => ({
    method,
    path: `${API}/${resource}/${id.segment}${suffix}${query ?? ''}`,
    shape: `${method.toLowerCase()}-${resource}-by-id${id.known ? ':known' : ''}`,
    knownId: id.known,
  }));

/** Short segments only: several long ones would pass the 16 KB Node allows a request head. */
const pathSegment = fc.oneof(
  fc.constantFrom(
    'observers',
    'services',
    'tokens',
    'openapi.json',
    'healthz',
    'readyz',
    'metrics',
    'api',
    'v1',
    'v2',
    '',
  ),
  idSegment.map((id) => (id.known ? 'x' : id.segment)).filter((segment) => segment.length <= 200),
);

const anyRoute: fc.Arbitrary<Draft> = fc
  .tuple(
    fc.constantFrom(...METHODS),
    fc.constantFrom('', API, `${API}/`, '/api/v2', '/API/V1', '//api//v1', '/api'),
    fc.array(pathSegment, { maxLength: 4 }),
    fc.option(queryString),
    fc.option(fc.oneof(observerBody, otherBody), { freq: 2 }),
  )
  .map(([method, prefix, segments, query, body]) => ({
    method,
    path: `${prefix}/${segments.join('/')}${query ?? ''}`.replace(/^\/\//, '/'),
    shape: `any-route:${method.toLowerCase()}`,
    ...(body ? { body } : {}),
  }));

const operational: fc.Arbitrary<Draft> = fc
  .tuple(
    fc.constantFrom('/healthz', '/readyz', '/metrics', `${API}/openapi.json`, '/', '/favicon.ico'),
    fc.constantFrom(...METHODS),
  )
  .map(([path, method]) => ({ method, path, shape: `operational:${method.toLowerCase()}` }));

/**
 * The Authorization header: mostly the admin token, sometimes a read-only one, and sometimes
 * something that must not authenticate (missing, another scheme, a token mangled or revoked).
 */
const authorization: fc.Arbitrary<{ auth: Auth; header?: string }> = fc.oneof(
  { arbitrary: fc.constant({ auth: 'admin' as const, header: 'Bearer {admin}' }), weight: 20 },
  {
    arbitrary: fc
      .constantFrom('bearer {admin}', 'BEARER {admin}', 'Bearer   {admin}', 'Bearer {admin} ')
      .map((header) => ({ auth: 'admin' as const, header })),
    weight: 1,
  },
  { arbitrary: fc.constant({ auth: 'read' as const, header: 'Bearer {read}' }), weight: 2 },
  { arbitrary: fc.constant({ auth: 'none' as const }), weight: 2 },
  {
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          'Bearer',
          'Bearer ',
          'Basic dmlnaWw6dmlnaWw=',
          'Token {admin}',
          '{admin}',
          'Bearer {admin}x',
          'Bearer x{admin}',
          'Bearer {admin} {admin}',
          'Bearer {admin},Bearer {admin}',
          'Bearer\t{admin}',
          'Bearer {revoked}',
          'Bearer vgl_',
          `Bearer ${'a'.repeat(600)}`,
          `Bearer ${'='.repeat(40)}`,
        ),
        fc.string({ maxLength: 80 }).map((text) => `Bearer ${text}`),
      )
      .map((header) => ({ auth: 'none' as const, header: header.replace(/[^\u0020-\u007e\t]/gu, '?') })),
    weight: 3,
  },
);

/** One request: what to send, and with which headers. */
export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.oneof(
      { arbitrary: observersCreate, weight: 35 },
      { arbitrary: observersList, weight: 15 },
      { arbitrary: servicesList, weight: 8 },
      { arbitrary: byId, weight: 20 },
      { arbitrary: anyRoute, weight: 17 },
      { arbitrary: operational, weight: 5 },
    ),
    contentType,
    contentEncoding,
    authorization,
  )
  .map(([draft, type, encoding, { auth, header }]) => {
    const headers: Record<string, string> = header === undefined ? {} : { authorization: header };
    if (draft.body !== undefined) {
      if (type !== undefined) headers['content-type'] = type;
      if (encoding !== undefined) headers['content-encoding'] = encoding;
    }
    return {
      method: draft.method,
      path: draft.path,
      headers,
      shape: auth === 'admin' ? draft.shape : `${draft.shape}:auth-${auth}`,
      auth,
      ...(draft.body !== undefined ? { body: draft.body.text } : {}),
      ...(draft.knownId ? { knownId: 0 } : {}),
    };
  });

// ---------------------------------------------------------------------------------------------
// Sending and judging
// ---------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  contentType: string;
  location: string | undefined;
  text: string;
}

/** Node's client refuses a path with spaces, controls or non-Latin-1 characters: encode them. */
function sendable(path: string): string {
  return path.replace(/[^\u0021-\u007e]/gu, percentBytes);
}

function send(agent: http.Agent, base: URL, request: FuzzRequest, timeoutMs = 15_000): Promise<Answer> {
  const body = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8');
  const headers: Record<string, string | number> = { ...request.headers };
  if (body !== undefined) headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: request.method,
        path: request.path,
        headers,
        agent,
        timeout: timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            contentType: response.headers['content-type'] ?? '',
            location: response.headers.location,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** What is wrong with an answer, or undefined when it holds every property. */
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function judge(request: FuzzRequest, answer: Answer): string | undefined {
  const { status } = answer;
  if (status < 100 || status > 599) return `status ${status}`;
  let problem: Record<string, unknown> | undefined;
  if (status >= 400) {
    if (!answer.contentType.startsWith('application/problem+json')) return 'error without application/problem+json';
    try {
      const parsed: unknown = JSON.parse(answer.text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        problem = parsed as Record<string, unknown>;
    } catch {
      return 'problem body is not JSON';
    }
    if (!problem) return 'problem body is not a JSON object';
    if (typeof problem.title !== 'string' || problem.title.length === 0) return 'problem without title';
    if (problem.status !== status) return 'problem status differs from the HTTP status';
  }
  // The health probes, and the pages that hold no data (the dashboard's page and files, the API
  // reference), answer without a token.
  const open = /^\/(healthz|readyz)(\?|$)|^\/(\?|$)|^\/ui\/|^\/api\/v1\/docs(\/|\?|$)/.test(request.path);
  if (request.auth === 'none' && !open && status !== 401 && status !== 404) {
    return `${status} without a token that authenticates`;
  }
  if (status === 401 && (request.auth !== 'none' || open)) return '401 for a request that authenticates';
  if (request.auth === 'read' && WRITES.has(request.method) && status >= 200 && status < 300) {
    return `${status} for a write with a read-only token`;
  }
  if (status >= 500) {
    const designed =
      status === 503 &&
      request.method === 'POST' &&
      problem?.type === NO_SERVICE_FOR_POOL &&
      !String(problem.detail).includes('pool "default"');
    if (!designed) return `${status} (${String(problem?.type)})`;
  }
  if (status === 201 && !answer.location) return '201 without Location';
  return undefined;
}

function cut(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

/** The route of a path, with ids and long segments folded, to group failures. */
function routeOf(path: string): string {
  const [pathname = ''] = path.split('?');
  return cut(
    pathname
      .split('/')
      .map((s) => (/^[0-9a-f-]{32,}$/i.test(s) ? ':uuid' : s.length > 24 ? ':long' : s))
      .join('/'),
    80,
  );
}

/** The tokens a run sends: the world's admin token, a read-only one, and one revoked before the run. */
async function fuzzTokens(world: World): Promise<{ admin: string; read: string; revoked: string }> {
  const create = async (name: string, role: string) => {
    const answer = await world.api<{ id: string; token: string }>('POST', '/tokens', { name, role });
    if (answer.status !== 201) throw new Error(`creating the fuzz run's ${role} token answered ${answer.status}`);
    return answer.body;
  };
  const read = await create('fuzz-read', 'read');
  const revoked = await create('fuzz-revoked', 'write');
  const revoke = await world.api('DELETE', `/tokens/${revoked.id}`);
  if (revoke.status !== 200) throw new Error(`revoking the fuzz run's token answered ${revoke.status}`);
  return { admin: world.adminToken, read: read.token, revoked: revoked.token };
}

/**
 * Sends `runs` generated requests to the manager, a few at a time, and checks each answer. The
 * requests are drawn up front with `fc.sample` (seeded: the same seed sends the same requests)
 * rather than through `fc.assert`, so that every request is sent and counted even after a
 * failure; counterexamples are reported as sent, not shrunk. Valid bodies name observers from a small pool, so few are created; those
 * that are get deleted at the end.
 */
export async function fuzzRest(world: World, options: FuzzRestOptions): Promise<FuzzRestReport> {
  const { runs, seed, concurrency = 8, keepFailures = 10 } = options;
  if (!world.manager || !world.apiUrl) throw new Error('fuzzRest needs a running manager');
  const base = new URL(world.apiUrl);
  const requests = fc.sample(fuzzRequest, { numRuns: runs, seed });
  const tokens = await fuzzTokens(world);
  const withTokens = (headers: Record<string, string>): Record<string, string> =>
    headers.authorization === undefined
      ? headers
      : {
          ...headers,
          authorization: headers.authorization.replace(
            /\{(admin|read|revoked)\}/g,
            (_, who: keyof typeof tokens) => tokens[who],
          ),
        };
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

  const byStatus: Record<string, number> = {};
  const byShape: Record<string, number> = {};
  const failureKinds: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  let failureCount = 0;
  const createdIds: string[] = [];
  let nextKnown = 0;

  const record = (request: FuzzRequest, answer: Answer | undefined, reason: string | undefined) => {
    const statusKey = answer ? String(answer.status) : 'error';
    byStatus[statusKey] = (byStatus[statusKey] ?? 0) + 1;
    byShape[request.shape] = (byShape[request.shape] ?? 0) + 1;
    if (!reason) return;
    failureCount++;
    const kind = `${reason}: ${request.method} ${routeOf(request.path)} [${request.shape}]`;
    failureKinds[kind] = (failureKinds[kind] ?? 0) + 1;
    if (failures.length < keepFailures) {
      failures.push({
        reason,
        shape: request.shape,
        method: request.method,
        path: cut(request.path),
        pathLength: request.path.length,
        headers: request.headers,
        ...(request.body !== undefined ? { body: cut(request.body) } : {}),
        bodyLength: request.body?.length ?? 0,
        status: answer?.status ?? 0,
        contentType: answer?.contentType ?? '',
        response: cut(answer?.text ?? ''),
      });
    }
  };

  const logStart = world.manager.lines.length;
  const started = performance.now();
  let index = 0;
  const worker = async () => {
    while (index < requests.length) {
      const generated = requests[index++]!;
      let request = { ...generated, path: sendable(generated.path), headers: withTokens(generated.headers) };
      if (generated.knownId !== undefined) {
        const id = createdIds.length > 0 ? createdIds[nextKnown++ % createdIds.length]! : randomUUID();
        request = { ...request, path: request.path.replace('{known}', id) };
      }
      try {
        const answer = await send(agent, base, request);
        record(request, answer, judge(request, answer));
        if (answer.status === 201) {
          try {
            const id = (JSON.parse(answer.text) as { id?: unknown }).id;
            if (typeof id === 'string') createdIds.push(id);
          } catch {
            // judged above; a 201 without a JSON body is not an observer we can clean up
          }
        }
      } catch (err) {
        record(request, undefined, `no answer: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const durationMs = performance.now() - started;

  // Clean up: whatever this run created and did not delete itself.
  let cleanedUp = 0;
  for (const id of createdIds) {
    const answer = await send(agent, base, {
      method: 'DELETE',
      path: `${API}/observers/${id}`,
      headers: { authorization: `Bearer ${tokens.admin}` },
      auth: 'admin',
      shape: 'cleanup',
    }).catch(() => undefined);
    if (answer?.status === 202) cleanedUp++;
  }
  const healthz = await send(agent, base, {
    method: 'GET',
    path: '/healthz',
    headers: {},
    auth: 'none',
    shape: 'healthz',
  }).catch(() => undefined);
  agent.destroy();

  const managerErrors: Record<string, number> = {};
  for (const line of world.manager.lines.slice(logStart)) {
    if (!line.includes('"msg":"request failed"')) continue;
    let message = line;
    try {
      const entry = JSON.parse(line) as { err?: { type?: string; message?: string } };
      message = `${entry.err?.type ?? 'Error'}: ${entry.err?.message ?? ''}`;
    } catch {
      // not JSON: keep the line
    }
    message = cut(message, 160);
    managerErrors[message] = (managerErrors[message] ?? 0) + 1;
  }

  return {
    seed,
    requests: requests.length,
    durationMs: Math.round(durationMs),
    byStatus,
    byShape,
    failureCount,
    failureKinds,
    failures,
    managerErrors,
    created: createdIds.length,
    cleanedUp,
    managerRunning: world.manager.running,
    healthzAfter: healthz?.status ?? 0,
  };
}
