import path from 'node:path';
import { z } from 'zod';
import { KindName, secretPaths, type KindDescription, type SecretPath } from '@vigil/contracts';
import type { ObserverKind } from '@vigil/observer-sdk';

/** The kinds this service can run, by name. */
export class KindRegistry {
  private readonly kinds = new Map<string, ObserverKind>();
  private readonly secrets = new Map<string, SecretPath[]>();

  constructor(kinds: Iterable<ObserverKind>) {
    for (const kind of kinds) this.add(kind);
  }

  get(name: string): ObserverKind | undefined {
    return this.kinds.get(name);
  }

  /** Where the kind's params hold secrets (fields marked `writeOnly`, see `secret`). */
  secretPaths(name: string): SecretPath[] {
    return this.secrets.get(name) ?? [];
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }

  /** What the service announces in its birth, so the manager can validate params. */
  describe(): KindDescription[] {
    return [...this.kinds.values()].map((kind) => ({
      name: kind.name,
      paramsSchema: paramsSchema(kind),
      overlap: kind.overlap ?? 'allowed',
    }));
  }

  private add(kind: ObserverKind): void {
    if (!KindName.safeParse(kind.name).success) throw new Error(`invalid kind name ${JSON.stringify(kind.name)}`);
    if (this.kinds.has(kind.name)) throw new Error(`kind ${kind.name} is defined twice`);
    this.kinds.set(kind.name, kind);
    this.secrets.set(kind.name, secretPaths(paramsSchema(kind)));
  }
}

function paramsSchema(kind: ObserverKind): Record<string, unknown> {
  return z.toJSONSchema(kind.params, { io: 'input', unrepresentable: 'any' });
}

function isKind(value: unknown): value is ObserverKind {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<ObserverKind>;
  // Duck-typed: a module may bring its own copy of zod, which `instanceof` would reject.
  return (
    typeof candidate.name === 'string' &&
    typeof candidate.run === 'function' &&
    typeof (candidate.params as { safeParse?: unknown } | undefined)?.safeParse === 'function'
  );
}

/** Loads every kind exported by the given modules (relative paths resolve from the cwd). */
export function loadKindModules(specifiers: readonly string[]): ObserverKind[] {
  return specifiers.flatMap((specifier) => {
    const resolved = specifier.startsWith('.') ? path.resolve(specifier) : specifier;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- kinds are plain CommonJS modules chosen at run time
    const exported = require(resolved) as Record<string, unknown>;
    const kinds = Object.values(exported).filter(isKind);
    if (kinds.length === 0) throw new Error(`KIND_MODULES: ${specifier} exports no kind (see defineKind)`);
    return kinds;
  });
}
