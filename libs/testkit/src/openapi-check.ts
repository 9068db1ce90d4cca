import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

/** The parts of an OpenAPI 3.1 document the check reads. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: Record<string, unknown>;
}

/** An answer of the API, as a client sees it. */
export interface Answer {
  method: string;
  /** The path below the API's base URL, query included. */
  path: string;
  status: number;
  contentType: string;
  body: unknown;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Holds the manager's answers to its own OpenAPI document: each JSON answer must be one of the
 * operation's documented statuses, in a documented content type, and fit its schema.
 */
export class OpenApiCheck {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false, logger: false });
  private readonly validators = new Map<string, ValidateFunction>();
  /** Templates with fewer parameters first, so `/observers/{id}` never shadows a literal path. */
  private readonly routes: { template: string; pattern: RegExp }[];

  constructor(private readonly document: OpenApiDocument) {
    this.ajv.addFormat('date-time', (value: string) => DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)));
    this.ajv.addFormat('uuid', UUID);
    this.routes = Object.keys(document.paths)
      .map((template) => ({
        template,
        pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
      }))
      .sort((a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0));
  }

  /** What is wrong with the answer, or undefined when the document describes it. */
  problem(answer: Answer): string | undefined {
    const method = answer.method.toLowerCase();
    const path = answer.path.split('?')[0]!;
    const route = this.routes.find((r) => r.pattern.test(path) && this.document.paths[r.template]![method]);
    const mediaType = answer.contentType.split(';')[0]!.trim().toLowerCase();
    if (!route) {
      // A path or method the API lacks gets the catch-all 404, which is a problem like any other.
      if (answer.status === 404)
        return this.fitsComponent(`${answer.method} ${path}`, 404, mediaType, 'Problem', answer.body);
      return `${answer.method} ${path} answered ${answer.status}, but the document has no such operation`;
    }
    const name = `${answer.method.toUpperCase()} ${route.template}`;
    const responses = this.document.paths[route.template]![method]!.responses ?? {};
    const status = String(answer.status);
    const response = responses[status] ?? responses[`${status[0]}XX`] ?? responses.default;
    if (!response) {
      return `${name} answered ${status}, which the document does not list (it lists ${Object.keys(responses).join(', ')})`;
    }
    const content = response.content ?? {};
    if (!mediaType && Object.keys(content).length === 0) return undefined;
    if (!(mediaType in content)) {
      return `${name} answered ${status} as ${mediaType || 'no content'}, which the document does not list for it (it lists ${Object.keys(content).join(', ') || 'no content'})`;
    }
    const key = `${name} ${status} ${mediaType}`;
    let validate = this.validators.get(key);
    if (!validate) {
      // The operation's schema compiled with the components beside it, so its $refs resolve.
      validate = this.ajv.compile({ components: this.document.components, ...(content[mediaType]!.schema ?? {}) });
      this.validators.set(key, validate);
    }
    return this.errors(validate, name, status, mediaType, answer.body);
  }

  private fitsComponent(name: string, status: number, mediaType: string, component: string, body: unknown) {
    if (mediaType !== 'application/problem+json') return `${name} answered ${status} as ${mediaType}, not a problem`;
    const key = `#/components/schemas/${component}`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile({ components: this.document.components, $ref: key });
      this.validators.set(key, validate);
    }
    return this.errors(validate, name, String(status), mediaType, body);
  }

  private errors(validate: ValidateFunction, name: string, status: string, mediaType: string, body: unknown) {
    if (validate(body)) return undefined;
    const errors = (validate.errors ?? [])
      .map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`)
      .join('; ');
    return `${name} answered ${status} ${mediaType} that does not fit the document: ${errors}; body ${JSON.stringify(body).slice(0, 500)}`;
  }
}
