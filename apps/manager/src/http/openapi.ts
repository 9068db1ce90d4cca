import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  Health,
  KindList,
  NewToken,
  ObservationList,
  ObserverCounts,
  ObserverPage,
  ObserverView,
  ObserverWithTimeline,
  Problem,
  Readiness,
  ServiceDetail,
  ServicePage,
  TokenList,
  TokenView,
} from '../views';
import {
  CreateObserverBody,
  CreateTokenBody,
  EventsQuery,
  IdParam,
  ListObserversQuery,
  ListServicesQuery,
  ObservationsQuery,
  UpdateObserverBody,
} from './schemas';

const json = (schema: z.ZodType, description: string): ResponseConfig => ({
  description,
  content: { 'application/json': { schema } },
});

const problem = (description: string, headers?: ResponseConfig['headers']): ResponseConfig => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/problem+json': { schema: Problem } },
});

const eventStream = { 'text/event-stream': { schema: { type: 'string' as const } } };

/** What every operation behind a token may also answer. */
const guarded = {
  401: problem('unauthorized: no token, or an unknown or revoked one', {
    'WWW-Authenticate': { description: 'Bearer realm="vigil"', schema: { type: 'string' } },
  }),
  403: problem("forbidden: the token's role does not allow this"),
  500: problem("internal: the cause is in the manager's log under the answer's errorId"),
  503: problem(
    'overloaded, timeout, database-unavailable (and, where it applies, broker or pool problems): retry later',
  ),
};

/** What a write that is counted against the token's rate limit may also answer. */
const rateLimited = {
  429: problem('rate-limited: this token made WRITE_RATE_LIMIT_PER_MINUTE writes in the last minute', {
    RateLimit: { description: 'the remaining writes and when the window resets', schema: { type: 'string' } },
    'RateLimit-Policy': { description: 'the limit and its window', schema: { type: 'string' } },
  }),
};

const bodyErrors = {
  400: problem('invalid-request: the body is not JSON or a field is wrong (each in errors)'),
  413: problem('payload-too-large: the body exceeds 256 kB'),
};

const idParams = z.object({ id: IdParam.meta({ description: 'its id' }) });
const nameDescription = 'a name, or the start of names followed by * (e.g. btc-*)';
const cursorDescription = 'nextCursor of the previous page';

/** The operations outside /api/v1 are served from the root. */
const root = [{ url: '/', description: 'the manager itself, outside the API' }];

const created = (what: string) => ({
  Location: { description: `the new ${what}'s URL`, schema: { type: 'string' as const } },
});

function register(registry: OpenAPIRegistry): void {
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A token from POST /tokens, or VIGIL_ADMIN_TOKEN. Roles: read < write < admin.',
  });

  registry.registerPath({
    method: 'get',
    path: '/openapi.json',
    operationId: 'getOpenApiDocument',
    tags: ['meta'],
    summary: 'This document (read)',
    responses: {
      200: { description: 'The OpenAPI 3.1 description of this API', content: { 'application/json': { schema: {} } } },
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'post',
    path: '/observers',
    operationId: 'createObserver',
    tags: ['observers'],
    summary: 'Create an observer (write): its job is queued and a service with a free slot starts it',
    request: { body: { required: true, content: { 'application/json': { schema: CreateObserverBody } } } },
    responses: {
      201: { ...json(ObserverView, 'Created, status Created'), headers: created('observer') },
      ...bodyErrors,
      409: problem('name-in-use: an observer with this name exists and is not deleted'),
      415: problem('unsupported-media-type: the body is not application/json'),
      422: problem('unknown-kind, invalid-params (each in errors), schema-refused or quota-exceeded'),
      ...rateLimited,
      ...guarded,
      503: problem(
        'no-service-for-pool, broker-unavailable, broker-blocked, overloaded, timeout, database-unavailable',
      ),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/observers',
    operationId: 'listObservers',
    tags: ['observers'],
    summary: 'List observers (read), oldest first, a page at a time',
    request: {
      query: ListObserversQuery.extend({
        name: ListObserversQuery.shape.name.meta({ description: nameDescription }),
        cursor: ListObserversQuery.shape.cursor.meta({ description: cursorDescription }),
      }),
    },
    responses: {
      200: json(ObserverPage, 'A page of observers'),
      400: problem('invalid-request: a query parameter is wrong (each in errors)'),
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/observers/counts',
    operationId: 'countObservers',
    tags: ['observers'],
    summary: 'How many observers are in each status (read), counted in the database',
    responses: { 200: json(ObserverCounts, 'The counts'), ...guarded },
  });

  registry.registerPath({
    method: 'get',
    path: '/observers/{id}',
    operationId: 'getObserver',
    tags: ['observers'],
    summary: 'One observer (read), with its timeline',
    request: { params: idParams },
    responses: {
      200: json(ObserverWithTimeline, 'The observer and its timeline'),
      404: problem('not-found'),
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'patch',
    path: '/observers/{id}',
    operationId: 'updateObserver',
    tags: ['observers'],
    summary: "Change an observer's params (write): live for a kind that takes them, a restart otherwise",
    request: {
      params: idParams,
      body: { required: true, content: { 'application/json': { schema: UpdateObserverBody } } },
    },
    responses: {
      202: json(ObserverView, 'Accepted'),
      ...bodyErrors,
      404: problem('not-found'),
      409: problem('wrong-status: the observer cannot take new params in its status'),
      410: problem('gone: the observer is deleted'),
      422: problem('unknown-kind, invalid-params (each in errors) or schema-refused'),
      ...rateLimited,
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'delete',
    path: '/observers/{id}',
    operationId: 'deleteObserver',
    tags: ['observers'],
    summary: 'Delete an observer (write): the cancel is broadcast and retried until a service confirms it',
    request: { params: idParams },
    responses: {
      202: json(ObserverView, 'Accepted: status OnDeleting (or Deleted for one no service runs)'),
      404: problem('not-found'),
      410: problem('gone: the observer is already deleted'),
      ...rateLimited,
      ...guarded,
    },
  });

  for (const [verb, summary] of [
    ['pause', 'Pause an observer (write): every copy stops and it is kept, Paused'],
    ['resume', 'Resume a paused observer (write) at the next generation'],
    ['restart', 'Restart an observer (write) as a fresh run at the next generation (a Failed one too)'],
  ] as const) {
    registry.registerPath({
      method: 'post',
      path: `/observers/{id}/${verb}`,
      operationId: `${verb}Observer`,
      tags: ['observers'],
      summary,
      request: { params: idParams },
      responses: {
        202: json(ObserverView, 'Accepted'),
        404: problem('not-found'),
        409: problem('wrong-status: the verb does not apply in its status (allowed lists the ones it does)'),
        410: problem('gone: the observer is deleted'),
        422: problem('unknown-kind, invalid-params or schema-refused: its kind no longer takes its params'),
        ...rateLimited,
        ...guarded,
      },
    });
  }

  registry.registerPath({
    method: 'get',
    path: '/observers/{id}/observations',
    operationId: 'listObservations',
    tags: ['observers'],
    summary: "An observer's latest kept observations (read), then, as an event stream, live ones",
    description:
      'A client that accepts text/event-stream gets the kept observations and then each new one as an ' +
      '`observation` event, until it disconnects; any other gets the kept ones as JSON.',
    request: {
      params: idParams,
      query: ObservationsQuery.extend({
        limit: ObservationsQuery.shape.limit.meta({ description: 'how many of the kept observations come first' }),
      }),
    },
    responses: {
      200: {
        description: 'The kept observations, or an event stream for a client that accepts one',
        content: { 'application/json': { schema: ObservationList }, ...eventStream },
      },
      400: problem('invalid-request: a query parameter is wrong (each in errors)'),
      404: problem('not-found'),
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/events',
    operationId: 'streamEvents',
    tags: ['events'],
    summary: "Observers' timelines and services' history as Server-Sent Events (read)",
    description:
      'Each event has an id; a client that reconnects with Last-Event-ID (or since) resumes after it without ' +
      'missing one. Without either the stream starts now.',
    request: {
      query: EventsQuery.extend({
        since: EventsQuery.shape.since.meta({ description: 'an event id, as Last-Event-ID would give it' }),
        observerId: EventsQuery.shape.observerId.meta({ description: "only this observer's timeline" }),
      }),
      headers: z.object({
        'Last-Event-ID': z.string().optional().meta({ description: 'the id of the last event the client had' }),
      }),
    },
    responses: {
      200: { description: 'An event stream that stays open', content: eventStream },
      400: problem('invalid-request: a query parameter is wrong, or Last-Event-ID is not an id this feed sent'),
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/kinds',
    operationId: 'listKinds',
    tags: ['kinds'],
    summary: 'The kinds the live services host (read): params schema, overlap, pools, services',
    responses: { 200: json(KindList, 'Every kind'), ...guarded },
  });

  registry.registerPath({
    method: 'get',
    path: '/services',
    operationId: 'listServices',
    tags: ['services'],
    summary: 'List observer services (read), by id, a page at a time',
    request: {
      query: ListServicesQuery.extend({
        name: ListServicesQuery.shape.name.meta({ description: nameDescription }),
        cursor: ListServicesQuery.shape.cursor.meta({ description: cursorDescription }),
      }),
    },
    responses: {
      200: json(ServicePage, 'A page of services'),
      400: problem('invalid-request: a query parameter is wrong (each in errors)'),
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/services/{id}',
    operationId: 'getService',
    tags: ['services'],
    summary: 'One service (read): capacity, load, heartbeat and the observers on it',
    request: { params: idParams },
    responses: { 200: json(ServiceDetail, 'The service'), 404: problem('not-found'), ...guarded },
  });

  for (const [verb, summary, status] of [
    [
      'drain',
      'Drain a live service (admin): it takes no new jobs and its observers move to other services; it stays up',
      'Draining',
    ],
    ['undrain', 'Let a drained service take jobs again (admin)', 'Alive'],
  ] as const) {
    registry.registerPath({
      method: 'post',
      path: `/services/{id}/${verb}`,
      operationId: `${verb}Service`,
      tags: ['services'],
      summary,
      request: { params: idParams },
      responses: {
        200: json(ServiceDetail, `The service, ${status}`),
        404: problem('not-found'),
        409: problem('service-dead: only a live service drains or undrains'),
        ...guarded,
      },
    });
  }

  registry.registerPath({
    method: 'post',
    path: '/tokens',
    operationId: 'createToken',
    tags: ['tokens'],
    summary: 'Create an API token (admin); its text is in this answer only',
    request: { body: { required: true, content: { 'application/json': { schema: CreateTokenBody } } } },
    responses: {
      201: { ...json(NewToken, 'The new token and its text'), headers: created('token') },
      ...bodyErrors,
      ...guarded,
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/tokens',
    operationId: 'listTokens',
    tags: ['tokens'],
    summary: 'List API tokens (admin), without their text',
    responses: { 200: json(TokenList, 'Every token'), ...guarded },
  });

  registry.registerPath({
    method: 'delete',
    path: '/tokens/{id}',
    operationId: 'revokeToken',
    tags: ['tokens'],
    summary: 'Revoke an API token (admin); revoking twice is no error',
    request: { params: idParams },
    responses: { 200: json(TokenView, 'The revoked token'), 404: problem('not-found'), ...guarded },
  });

  // The probes answer whoever asks: an orchestrator has no token.
  registry.registerPath({
    method: 'get',
    path: '/healthz',
    operationId: 'getHealth',
    tags: ['health'],
    summary: 'Liveness: the process answers',
    servers: root,
    security: [],
    responses: {
      200: json(Health, 'Alive'),
      default: problem('timeout: the process is too busy to answer in time'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/readyz',
    operationId: 'getReadiness',
    tags: ['health'],
    summary: 'Readiness: the database and the broker are reachable; says whether this manager is the active one',
    servers: root,
    security: [],
    responses: {
      200: json(Readiness, 'Ready'),
      503: problem('not-ready: down names what is unreachable'),
      default: problem('timeout: the process is too busy to answer in time'),
    },
  });

  registry.registerPath({
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    tags: ['health'],
    summary: 'Prometheus metrics (read)',
    servers: root,
    responses: {
      200: {
        description: 'The metrics in the Prometheus text format',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
      ...guarded,
    },
  });
}

let document: ReturnType<OpenApiGeneratorV31['generateDocument']> | undefined;

/** The REST API's OpenAPI 3.1 description, served at GET /api/v1/openapi.json; built once. */
export function openApiDocument() {
  if (document) return document;
  const registry = new OpenAPIRegistry();
  register(registry);
  document = new OpenApiGeneratorV31(registry.definitions, { sortComponents: 'alphabetically' }).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Vigil manager',
      version: '1.0.0',
      description:
        'Create, steer and delete never-ending observers, and watch them and the services that run them. ' +
        'Errors are RFC 9457 problem details (application/problem+json) whose type names the problem.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/api/v1', description: 'this manager' }],
    security: [{ bearer: [] }],
    tags: [
      { name: 'observers', description: 'Never-ending jobs: create, list, steer and delete them' },
      { name: 'events', description: 'What happens to observers and services, as it happens' },
      { name: 'kinds', description: 'What the live services can run' },
      { name: 'services', description: 'The observer services that run the jobs' },
      { name: 'tokens', description: 'API tokens and their roles' },
      { name: 'health', description: 'Probes and metrics, outside /api/v1' },
      { name: 'meta', description: 'This description' },
    ],
  });
  return document;
}
