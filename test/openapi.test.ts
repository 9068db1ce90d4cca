import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { httpRequest, OpenApiCheck, World, type OpenApiDocument } from '@vigil/testkit';

const REPO = path.join(__dirname, '..');
const REDOCLY = path.join(REPO, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const SWAGGER_UI = path.join(REPO, 'node_modules', 'swagger-ui-dist');

/**
 * The probes take no input and need no token, so they have no 4xx answer to describe: the one
 * recommended rule they cannot meet, and the only exception.
 */
const LINT_IGNORE = `openapi.json:
  operation-4xx-response:
    - '#/paths/~1healthz/get/responses'
    - '#/paths/~1readyz/get/responses'
`;

describe('OpenAPI document', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
    await world.startService('openapi-1');
  });
  after(() => world.close());

  const document = async () => {
    const response = await world.api('GET', '/openapi.json');
    assert.equal(response.status, 200);
    return response.body;
  };

  it("lints clean under Redocly's recommended rules, offline", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-openapi-'));
    try {
      await writeFile(path.join(dir, 'openapi.json'), JSON.stringify(await document()));
      await writeFile(path.join(dir, 'redocly.yaml'), 'extends:\n  - recommended\ntelemetry: off\n');
      await writeFile(path.join(dir, '.redocly.lint-ignore.yaml'), LINT_IGNORE);
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [REDOCLY, 'lint', 'openapi.json', '--format=json'],
        {
          cwd: dir,
          // No usage report, no update check: the lint needs nothing but the file.
          env: {
            ...process.env,
            REDOCLY_TELEMETRY: 'off',
            REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
            REDOCLY_SUPPRESS_NOTIFICATIONS: 'true',
          },
          timeout: 60_000,
        },
      );
      const report = JSON.parse(stdout) as {
        totals: { errors: number; warnings: number; ignored: number };
        problems: { ruleId: string; message: string; location: { pointer: string }[] }[];
      };
      const problems = report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
      assert.deepEqual(problems, []);
      assert.deepEqual(report.totals, { errors: 0, warnings: 0, ignored: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names every operation, secures all but the probes, and has a license and a server', async () => {
    const doc = (await document()) as {
      info: { license?: { identifier?: string } };
      servers: { url: string }[];
      security: unknown[];
      components: { securitySchemes: Record<string, { scheme?: string }> };
      paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>>;
    };
    assert.equal(doc.info.license?.identifier, 'MIT');
    assert.deepEqual(
      doc.servers.map((s) => s.url),
      ['/api/v1'],
    );
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    assert.equal(doc.components.securitySchemes.bearer?.scheme, 'bearer');
    const operations = Object.entries(doc.paths).flatMap(([route, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ route, method, ...operation })),
    );
    assert.ok(
      operations.every((o) => o.operationId),
      'every operation has an operationId',
    );
    assert.deepEqual(
      operations.filter((o) => o.security?.length === 0).map((o) => o.route),
      ['/healthz', '/readyz'],
    );
  });

  it('holds the answers it describes, and names what does not fit', async () => {
    const check = new OpenApiCheck((await document()) as unknown as OpenApiDocument);
    const service = await world.api('GET', `/services/${world.services[0]!.id}`);
    const answer = { method: 'GET', path: `/services/${world.services[0]!.id}`, ...service };
    assert.equal(check.problem(answer), undefined);

    const { observers: _, ...withoutObservers } = service.body;
    assert.match(
      check.problem({ ...answer, body: withoutObservers }) ?? '',
      /^GET \/services\/\{id\} answered 200 application\/json that does not fit the document: \/ must have required property 'observers'/,
    );
    assert.match(check.problem({ ...answer, body: { ...service.body, extra: 1 } }) ?? '', /additional properties/);
    assert.match(check.problem({ ...answer, status: 418 }) ?? '', /answered 418, which the document does not list/);
    assert.match(check.problem({ ...answer, contentType: 'text/plain' }) ?? '', /as text\/plain/);
  });

  it('serves an interactive reference from the installed package, without a token', async () => {
    const page = await httpRequest('GET', `${world.apiUrl}/docs`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(sources, [
      '/api/v1/docs/swagger-ui.css',
      '/api/v1/docs/swagger-ui-bundle.js',
      '/api/v1/docs/init.js',
    ]);
    for (const asset of ['swagger-ui.css', 'swagger-ui-bundle.js']) {
      const served = await httpRequest('GET', `${world.apiUrl}/docs/${asset}`);
      assert.equal(served.status, 200);
      assert.equal(served.text, await readFile(path.join(SWAGGER_UI, asset), 'utf8'));
    }
    const init = await httpRequest('GET', `${world.apiUrl}/docs/init.js`);
    assert.equal(init.status, 200);
    assert.match(init.text, /Authorization = 'Bearer ' \+ token/);

    // The document itself is read like any other resource: with a token.
    assert.equal((await world.apiAs(null, 'GET', '/openapi.json')).status, 401);
  });
});
