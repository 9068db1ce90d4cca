/**
 * Secret params: fields a kind's params schema marks `writeOnly: true`. A path is a list of
 * steps; a string step is a property, `null` every element of an array (or every value of an
 * object whose extra properties are secret). `["auth","apiKey"]` reads `auth.apiKey`,
 * `["accounts",null,"secret"]` reads `accounts[].secret`.
 */
export type SecretPath = (string | null)[];

/** What a secret's value is shown as. */
export const REDACTED = '***';

/** Local references followed at most this deep: a recursive schema ends somewhere. */
const MAX_REF_DEPTH = 8;
/** Paths found at most: a hostile schema cannot make the list (or the redaction) large. */
const MAX_PATHS = 256;

type Schema = Record<string, unknown>;

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The subschema a local reference (`#`, `#/$defs/x`) points at, if there is one. */
function resolveLocal(root: Schema, ref: string): Schema | undefined {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const step = unescapeStep(raw);
    node = isSchema(node) ? node[step] : Array.isArray(node) ? node[Number(step)] : undefined;
  }
  return isSchema(node) ? node : undefined;
}

function unescapeStep(raw: string): string {
  try {
    return decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
  } catch {
    return raw;
  }
}

/**
 * Every path the schema marks secret, recursively through `properties`, `items`,
 * `additionalProperties`, `anyOf`/`oneOf`/`allOf` branches and local `$ref`s.
 */
export function secretPaths(schema: Record<string, unknown>): SecretPath[] {
  const found = new Map<string, SecretPath>();
  const walk = (node: unknown, path: SecretPath, refDepth: number): void => {
    if (!isSchema(node) || found.size >= MAX_PATHS) return;
    if (node.writeOnly === true) {
      // Secret params as a whole: each of them is.
      const secret = path.length > 0 ? path : [null];
      found.set(JSON.stringify(secret), secret);
      return;
    }
    if (typeof node.$ref === 'string' && refDepth < MAX_REF_DEPTH) {
      walk(resolveLocal(schema, node.$ref), path, refDepth + 1);
    }
    for (const branch of ['anyOf', 'oneOf', 'allOf'] as const) {
      const options = node[branch];
      if (Array.isArray(options)) for (const option of options) walk(option, path, refDepth);
    }
    if (isSchema(node.properties)) {
      for (const [name, sub] of Object.entries(node.properties)) walk(sub, [...path, name], refDepth);
    }
    walk(node.items, [...path, null], refDepth);
    walk(node.additionalProperties, [...path, null], refDepth);
  };
  walk(schema, [], 0);
  return [...found.values()];
}

/** `auth.apiKey`, `accounts[].secret`: a path as people read it. */
export function formatSecretPath(path: SecretPath): string {
  return path.reduce<string>((text, step) => (step === null ? `${text}[]` : text ? `${text}.${step}` : step), '');
}

/** The values found at `path` in `value`. */
function valuesAt(value: unknown, path: SecretPath): unknown[] {
  if (path.length === 0) return [value];
  const [step, ...rest] = path;
  if (step === null) {
    const children = Array.isArray(value) ? value : isSchema(value) ? Object.values(value) : [];
    return children.flatMap((child) => valuesAt(child, rest));
  }
  return isSchema(value) && Object.hasOwn(value, step as string) ? valuesAt(value[step as string], rest) : [];
}

/** A copy of `value` with what is at `path` replaced by REDACTED; untouched parts are shared. */
function redactAt(value: unknown, path: SecretPath): unknown {
  if (path.length === 0) return value === undefined ? value : REDACTED;
  const [step, ...rest] = path;
  if (step === null) {
    if (Array.isArray(value)) return value.map((child) => redactAt(child, rest));
    if (isSchema(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactAt(v, rest)]));
    return value;
  }
  if (!isSchema(value) || !Object.hasOwn(value, step as string)) return value;
  return { ...value, [step as string]: redactAt(value[step as string], rest) };
}

/** The params as they may be shown: every secret replaced by REDACTED. */
export function redactSecrets(params: Record<string, unknown>, paths: readonly SecretPath[]): Record<string, unknown> {
  return paths.reduce<Record<string, unknown>>(
    (shown, path) => redactAt(shown, path) as Record<string, unknown>,
    params,
  );
}

/** Every string inside `value`. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  return isSchema(value) ? Object.values(value).flatMap(strings) : [];
}

/**
 * The secret strings in `params`, longest first, so that text holding them can be scrubbed.
 * Numbers and booleans are left out (their digits are everywhere in a log line), and so are
 * empty strings.
 */
export function secretValues(params: unknown, paths: readonly SecretPath[]): string[] {
  const texts = paths.flatMap((path) => valuesAt(params, path)).flatMap(strings);
  return [...new Set(texts.filter((text) => text.length > 0))].sort((a, b) => b.length - a.length);
}
