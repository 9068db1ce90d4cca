import { z } from 'zod';
import { OBSERVER_STATUSES, SERVICE_VIEW_STATUSES } from '../db/statuses';
import { CreateObserverBody, CreateTokenBody, UpdateObserverBody } from './schemas';

const problem = {
  description: 'RFC 9457 problem details',
  content: {
    'application/problem+json': {
      schema: {
        type: 'object',
        required: ['type', 'title', 'status', 'detail'],
        properties: {
          type: { type: 'string' },
          title: { type: 'string' },
          status: { type: 'integer' },
          detail: { type: 'string' },
          instance: { type: 'string' },
          errors: {
            type: 'array',
            items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } },
          },
        },
      },
    },
  },
};

const observer = {
  type: 'object',
  required: ['id', 'name', 'kind', 'params', 'pool', 'status', 'serviceId'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    kind: { type: 'string' },
    params: { type: 'object' },
    pool: { type: 'string' },
    status: { enum: OBSERVER_STATUSES },
    serviceId: { type: ['string', 'null'], format: 'uuid' },
    generation: {
      type: 'integer',
      minimum: 1,
      description: 'the latest placement: 1 when created, one more each time the manager placed it anew',
    },
    lastError: { type: ['string', 'null'] },
    waitReason: { type: ['string', 'null'], description: 'why it waits while no service runs it' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
};

const observerWithTimeline = {
  ...observer,
  properties: {
    ...observer.properties,
    timeline: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          at: { type: 'string', format: 'date-time' },
          event: { type: 'string' },
          status: { enum: OBSERVER_STATUSES },
          serviceId: { type: ['string', 'null'], format: 'uuid' },
          generation: { type: ['integer', 'null'] },
          reason: { type: ['string', 'null'] },
        },
      },
    },
  },
};

const service = {
  type: 'object',
  required: ['id', 'name', 'capacity', 'status', 'running'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    status: { enum: SERVICE_VIEW_STATUSES },
    capacity: { type: 'integer' },
    running: { type: 'integer' },
    freeSlots: { type: 'integer' },
    load: { type: 'number' },
    pools: { type: 'array', items: { type: 'string' } },
    kinds: { type: 'array', items: { type: 'string' } },
    lastHeartbeatAt: { type: 'string', format: 'date-time' },
    drainingSince: {
      type: ['string', 'null'],
      format: 'date-time',
      description: 'since when it drains (an operator, or a SIGTERM): it takes no new jobs',
    },
    memory: {
      type: ['object', 'null'],
      description: 'as of its last heartbeat',
      properties: { heapUsedBytes: { type: 'integer' }, rssBytes: { type: 'integer' } },
    },
  },
};

const kind = {
  type: 'object',
  required: ['name', 'paramsSchema', 'overlap', 'pools', 'services'],
  properties: {
    name: { type: 'string' },
    paramsSchema: { type: 'object', description: 'JSON Schema (draft 2020-12) of its params' },
    overlap: { enum: ['allowed', 'never'] },
    pools: { type: 'array', items: { type: 'string' } },
    services: {
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'string', format: 'uuid' }, name: { type: 'string' } } },
    },
  },
};

const token = {
  type: 'object',
  required: ['id', 'name', 'role', 'hint', 'createdAt', 'revokedAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    role: { enum: ['read', 'write', 'admin'] },
    hint: { type: 'string', description: "the token's first characters" },
    createdAt: { type: 'string', format: 'date-time' },
    revokedAt: { type: ['string', 'null'], format: 'date-time' },
  },
};

/** What every authenticated operation may also answer. */
const denied = { 401: problem, 403: problem };

const page = (item: object) => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: { items: { type: 'array', items: item }, nextCursor: { type: ['string', 'null'] } },
});

const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const nameParam = {
  name: 'name',
  in: 'query',
  schema: { type: 'string' },
  description: 'a name, or the start of names followed by * (e.g. btc-*)',
};
const listParams = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
  { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'nextCursor of the previous page' },
];

/** The REST API's OpenAPI 3.1 description, served at GET /api/v1/openapi.json. */
export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'Vigil manager', version: '1.0.0', description: 'Create, delete and list never-ending observers.' },
    servers: [{ url: '/api/v1' }],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A token from POST /tokens, or VIGIL_ADMIN_TOKEN. Roles: read < write < admin.',
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/observers': {
        post: {
          summary: 'Create an observer: its job is queued and a service with a free slot starts it',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: z.toJSONSchema(CreateObserverBody, { io: 'input' }) } },
          },
          responses: {
            201: json(observer, 'Created; Location names the observer'),
            400: problem,
            409: problem,
            415: problem,
            422: problem,
            429: problem,
            503: problem,
            ...denied,
          },
        },
        get: {
          summary: 'List observers',
          parameters: [
            nameParam,
            { name: 'status', in: 'query', schema: { enum: OBSERVER_STATUSES } },
            { name: 'serviceId', in: 'query', schema: { type: 'string', format: 'uuid' } },
            { name: 'kind', in: 'query', schema: { type: 'string' } },
            { name: 'pool', in: 'query', schema: { type: 'string' } },
            ...listParams,
          ],
          responses: { 200: json(page(observer), 'A page of observers'), 400: problem, ...denied },
        },
      },
      '/observers/counts': {
        get: {
          summary: 'How many observers are in each status',
          responses: {
            200: json(
              {
                type: 'object',
                required: ['byStatus'],
                properties: {
                  byStatus: {
                    type: 'object',
                    required: [...OBSERVER_STATUSES],
                    properties: Object.fromEntries(OBSERVER_STATUSES.map((s) => [s, { type: 'integer' }])),
                  },
                },
              },
              'Every status with its count (0 when none)',
            ),
            ...denied,
          },
        },
      },
      '/observers/{id}': {
        get: {
          summary: 'One observer, with its current service and timeline',
          parameters: [idParam],
          responses: { 200: json(observerWithTimeline, 'The observer and its timeline'), 404: problem, ...denied },
        },
        patch: {
          summary: "Change an observer's params: live for a kind that takes them, a restart otherwise",
          parameters: [idParam],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: z.toJSONSchema(UpdateObserverBody, { io: 'input' }) } },
          },
          responses: {
            202: json(observer, 'Accepted'),
            400: problem,
            404: problem,
            409: problem,
            410: problem,
            422: problem,
            429: problem,
            ...denied,
          },
        },
        delete: {
          summary: 'Delete an observer: the cancel is broadcast and retried until a service confirms it',
          parameters: [idParam],
          responses: {
            202: json(observer, 'Accepted; status OnDeleting (or Deleted for a failed one)'),
            404: problem,
            410: problem,
            429: problem,
            ...denied,
          },
        },
      },
      '/events': {
        get: {
          summary: "Server-Sent Events: observers' timelines and services' history, resumable from Last-Event-ID",
          parameters: [
            { name: 'observerId', in: 'query', schema: { type: 'string', format: 'uuid' } },
            { name: 'since', in: 'query', schema: { type: 'string' }, description: 'an event id, as Last-Event-ID' },
            { name: 'Last-Event-ID', in: 'header', schema: { type: 'string' } },
          ],
          responses: {
            200: { description: 'An event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            400: problem,
            ...denied,
          },
        },
      },
      '/observers/{id}/observations': {
        get: {
          summary: "An observer's latest kept observations, then (as an event stream) live ones",
          parameters: [
            idParam,
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 0, maximum: 1000, default: 10 } },
          ],
          responses: {
            200: {
              description: 'The kept observations, or an event stream for a client that accepts one',
              content: {
                'application/json': { schema: { type: 'object', properties: { items: { type: 'array' } } } },
                'text/event-stream': { schema: { type: 'string' } },
              },
            },
            400: problem,
            404: problem,
            ...denied,
          },
        },
      },
      '/kinds': {
        get: {
          summary: 'The kinds the live services host: params schema, overlap, pools, services',
          responses: {
            200: json({ type: 'object', properties: { items: { type: 'array', items: kind } } }, 'Every kind'),
            ...denied,
          },
        },
      },
      ...Object.fromEntries(
        (
          [
            ['pause', 'Pause an observer: every copy stops and it is kept, Paused'],
            ['resume', 'Resume a paused observer at the next generation'],
            ['restart', 'Restart an observer as a fresh run at the next generation (also a Failed one)'],
          ] as const
        ).map(([verb, summary]) => [
          `/observers/{id}/${verb}`,
          {
            post: {
              summary,
              parameters: [idParam],
              responses: {
                202: json(observer, 'Accepted'),
                404: problem,
                409: problem,
                410: problem,
                429: problem,
                ...denied,
              },
            },
          },
        ]),
      ),
      '/services': {
        get: {
          summary: 'List observer services',
          parameters: [
            { name: 'status', in: 'query', schema: { enum: SERVICE_VIEW_STATUSES } },
            nameParam,
            ...listParams,
          ],
          responses: { 200: json(page(service), 'A page of services'), 400: problem, ...denied },
        },
      },
      '/services/{id}': {
        get: {
          summary: 'One service: capacity, load, observers, last heartbeat',
          parameters: [idParam],
          responses: { 200: json(service, 'The service'), 404: problem, ...denied },
        },
      },
      '/services/{id}/drain': {
        post: {
          summary:
            'Drain a live service (admin): it takes no new jobs and its observers move to other services; it stays up',
          parameters: [idParam],
          responses: { 200: json(service, 'The service, Draining'), 404: problem, 409: problem, ...denied },
        },
      },
      '/services/{id}/undrain': {
        post: {
          summary: 'Let a drained service take jobs again (admin)',
          parameters: [idParam],
          responses: { 200: json(service, 'The service, Alive'), 404: problem, 409: problem, ...denied },
        },
      },
      '/tokens': {
        post: {
          summary: 'Create an API token (admin); its text is in this answer only',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: z.toJSONSchema(CreateTokenBody, { io: 'input' }) } },
          },
          responses: {
            201: json({ ...token, properties: { ...token.properties, token: { type: 'string' } } }, 'The new token'),
            400: problem,
            ...denied,
          },
        },
        get: {
          summary: 'List API tokens (admin), without their text',
          responses: {
            200: json({ type: 'object', properties: { items: { type: 'array', items: token } } }, 'Every token'),
            ...denied,
          },
        },
      },
      '/tokens/{id}': {
        delete: {
          summary: 'Revoke an API token (admin)',
          parameters: [idParam],
          responses: { 200: json(token, 'The revoked token'), 404: problem, ...denied },
        },
      },
    },
  };
}
