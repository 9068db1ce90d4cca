/**
 * Limits on a params schema a service announced, checked before Ajv compiles it. Whoever can
 * write to the broker can announce one, and compiling it runs in the manager's event loop, so
 * it must be small, shallow and self-contained. Compile time grows with the schema as Ajv
 * generates it, which is the schema with every `$ref` to a ref-free subschema inlined: that
 * expanded size is bounded too.
 */
export const SCHEMA_BOUNDS = {
  /** Serialized JSON, bytes. */
  maxBytes: 64 * 1024,
  /** Objects and arrays inside one another. */
  maxDepth: 32,
  /** Values in the schema: every object, array, string, number, boolean and null. */
  maxNodes: 1024,
  /** Values once each local `$ref` is counted as the subschema it points at. */
  maxExpandedNodes: 2048,
  /** Characters in one `pattern` or `patternProperties` key. */
  maxPatternLength: 1024,
} as const;

export type SchemaVerdict = { ok: true; schema: Record<string, unknown>; text: string } | { ok: false; why: string };

const REF_KEYWORDS = ['$ref', '$dynamicRef', '$recursiveRef'] as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class Refused extends Error {}

/**
 * Checks `schema` against SCHEMA_BOUNDS and what Ajv may be given: references only inside the
 * schema (Ajv is never asked to load one), no `$id` (one schema's would be visible to every
 * other on the shared Ajv instance) and no `$schema` below the top. The top `$schema` is
 * dropped: draft 2020-12 is what the manager speaks. The walk stops at the first excess, so a
 * huge schema costs no more than a small one.
 */
export function checkSchema(schema: Record<string, unknown>): SchemaVerdict {
  const { $schema: _dialect, ...rest } = schema;
  try {
    let nodes = 0;
    let bytes = 0;
    const walk = (value: unknown, depth: number): void => {
      if (++nodes > SCHEMA_BOUNDS.maxNodes) throw new Refused(`it has more than ${SCHEMA_BOUNDS.maxNodes} values`);
      if (typeof value === 'string') bytes += value.length;
      if (bytes > SCHEMA_BOUNDS.maxBytes) throw new Refused(`it is larger than ${SCHEMA_BOUNDS.maxBytes} bytes`);
      if (typeof value !== 'object' || value === null) return;
      if (depth >= SCHEMA_BOUNDS.maxDepth) throw new Refused(`it nests deeper than ${SCHEMA_BOUNDS.maxDepth} levels`);
      if (Array.isArray(value)) {
        for (const item of value) walk(item, depth + 1);
        return;
      }
      for (const [key, child] of Object.entries(value)) {
        bytes += key.length;
        checkKeyword(key, child, depth);
        walk(child, depth + 1);
      }
    };
    walk(rest, 0);
    const text = JSON.stringify(rest);
    const size = Buffer.byteLength(text);
    if (size > SCHEMA_BOUNDS.maxBytes) throw new Refused(`it is ${size} bytes, more than ${SCHEMA_BOUNDS.maxBytes}`);
    const expanded = expandedNodes(rest);
    if (expanded > SCHEMA_BOUNDS.maxExpandedNodes) {
      throw new Refused(
        `its references expand it to more than ${SCHEMA_BOUNDS.maxExpandedNodes} values (Ajv inlines them)`,
      );
    }
    return { ok: true, schema: rest, text };
  } catch (err) {
    if (err instanceof Refused) return { ok: false, why: err.message };
    throw err;
  }
}

/**
 * A keyword's value as Ajv would use it. Data that merely looks like a keyword (inside `const`
 * or `default`) is held to the same rules: refusing it costs a schema nothing it needs.
 */
function checkKeyword(key: string, value: unknown, depth: number): void {
  if (typeof value === 'string') {
    if ((REF_KEYWORDS as readonly string[]).includes(key) && !value.startsWith('#')) {
      throw new Refused(
        `${key} "${clip(value)}" points outside the schema (only local "#..." references are followed)`,
      );
    }
    if (key === '$id') throw new Refused(`it has an $id ("${clip(value)}"); announce schemas without one`);
    if (key === '$schema' && depth > 0) throw new Refused(`it has a nested $schema ("${clip(value)}")`);
    if (key === 'pattern') checkPattern(value);
  }
  if (key === 'patternProperties' && isObject(value)) for (const pattern of Object.keys(value)) checkPattern(pattern);
}

function checkPattern(pattern: string): void {
  if (pattern.length > SCHEMA_BOUNDS.maxPatternLength) {
    throw new Refused(`a pattern is longer than ${SCHEMA_BOUNDS.maxPatternLength} characters`);
  }
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/**
 * The schema's size with each local reference counted as what it points at (recursively, each
 * target once per reference); a reference back into itself counts 1, as Ajv calls a function
 * there rather than inlining. Stops counting past the bound.
 */
function expandedNodes(root: Record<string, unknown>): number {
  const limit = SCHEMA_BOUNDS.maxExpandedNodes + 1;
  const sizes = new Map<unknown, number>();
  const open = new Set<unknown>();
  const size = (value: unknown): number => {
    if (typeof value !== 'object' || value === null) return 1;
    const known = sizes.get(value);
    if (known !== undefined) return known;
    if (open.has(value)) return 1;
    open.add(value);
    let total = 1;
    for (const [key, child] of Object.entries(value)) {
      if (total > limit) break;
      total += size(child);
      if (key === '$ref' && typeof child === 'string') total += size(resolveLocal(root, child));
    }
    open.delete(value);
    const bounded = Math.min(total, limit);
    sizes.set(value, bounded);
    return bounded;
  };
  return size(root);
}

/** What a `#/a/b` reference points at; `#` is the schema itself, an anchor nothing here. */
function resolveLocal(root: Record<string, unknown>, ref: string): unknown {
  if (ref !== '#' && !ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref
    .slice(2)
    .split('/')
    .filter((step) => ref !== '#' || step)) {
    const step = unescapeStep(raw);
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[step] : undefined;
  }
  return node;
}

function unescapeStep(raw: string): string {
  try {
    return decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
  } catch {
    return raw;
  }
}
