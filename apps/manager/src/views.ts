import { z } from 'zod';
import { Observation } from '@vigil/contracts';
import { OBSERVER_STATUSES, SERVICE_VIEW_STATUSES } from './db/statuses';
import { ROLES } from './tokens';
import { PROBLEMS } from './http/problem';

/*
 * What the manager answers, as zod schemas: the OpenAPI document is generated from them and the
 * view types are inferred from them, so the document cannot describe a field the code lacks or
 * miss one it has. Objects are strict (additionalProperties: false) so that a field added to a
 * view without being described here fails the test suite's check of every answer.
 */

const Timestamp = z.iso.datetime();
const NullableTimestamp = z.iso.datetime().nullable();

export const ObserverView = z
  .strictObject({
    id: z.uuid(),
    name: z.string(),
    kind: z.string(),
    pool: z.string(),
    params: z
      .record(z.string(), z.unknown())
      .meta({ description: 'as created or last updated; values at the kind\'s secret paths are shown as "***"' }),
    status: z.enum(OBSERVER_STATUSES),
    serviceId: z.uuid().nullable().meta({ description: 'the service running it, if any' }),
    generation: z
      .int()
      .min(1)
      .meta({ description: 'the latest placement: 1 when created, one more each time the manager placed it anew' }),
    lastError: z.string().nullable(),
    waitReason: z.string().nullable().meta({ description: 'why it waits while no service runs it' }),
    staleAfterMs: z
      .int()
      .nullable()
      .meta({ description: "its own staleAfterMs, when its create gave one (its kind's applies otherwise)" }),
    staleSince: NullableTimestamp.meta({
      description: 'running, and silent past its staleAfterMs since then (its service said so); else null',
    }),
    lastPublishedAt: NullableTimestamp.meta({ description: 'when it last published, as of the last staleness report' }),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: 'Observer', description: 'An observer as the manager records it' });
export type ObserverView = z.infer<typeof ObserverView>;

export const TimelineView = z
  .strictObject({
    at: Timestamp,
    event: z.string(),
    status: z.enum(OBSERVER_STATUSES),
    serviceId: z.uuid().nullable(),
    generation: z.int().nullable(),
    reason: z.string().nullable(),
  })
  .meta({ id: 'TimelineEntry', description: "One step of an observer's history" });
export type TimelineView = z.infer<typeof TimelineView>;

export const ObserverWithTimeline = z
  .strictObject({
    ...ObserverView.shape,
    timeline: z.array(TimelineView).meta({ description: 'its latest 200 steps, oldest first' }),
  })
  .meta({ id: 'ObserverWithTimeline', description: 'An observer and its timeline' });

export const ObserverPage = z
  .strictObject({
    items: z.array(ObserverView),
    nextCursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null on the last' }),
  })
  .meta({ id: 'ObserverPage', description: 'A page of observers, oldest first' });

export const ObserverCounts = z
  .strictObject({
    byStatus: z
      .record(z.enum(OBSERVER_STATUSES), z.int().min(0))
      .meta({ description: 'every status, with how many observers are in it (0 when none)' }),
  })
  .meta({ id: 'ObserverCounts', description: 'How many observers are in each status' });

export const ObservationList = z
  .strictObject({ items: z.array(Observation.meta({ id: 'Observation', description: 'What an observer published' })) })
  .meta({ id: 'ObservationList', description: "An observer's latest observations kept by this manager, oldest first" });

export const ServiceView = z
  .strictObject({
    id: z.uuid(),
    name: z.string(),
    status: z.enum(SERVICE_VIEW_STATUSES),
    capacity: z.int(),
    running: z.int(),
    freeSlots: z.int(),
    load: z.number().meta({ description: 'running / capacity' }),
    pools: z.array(z.string()),
    kinds: z.array(z.string()),
    version: z.string(),
    host: z.string(),
    pid: z.int(),
    startedAt: NullableTimestamp,
    lastHeartbeatAt: Timestamp,
    diedAt: NullableTimestamp,
    deathReason: z.string().nullable(),
    drainingSince: NullableTimestamp.meta({
      description: 'since when it drains (an operator, or a SIGTERM): it takes no new jobs and its observers move',
    }),
    memory: z
      .strictObject({ heapUsedBytes: z.int(), rssBytes: z.int() })
      .nullable()
      .meta({ description: 'as of its last heartbeat; null until one reported it' }),
  })
  .meta({ id: 'Service', description: 'An observer service' });
export type ServiceView = z.infer<typeof ServiceView>;

export const ServiceDetail = z
  .strictObject({
    ...ServiceView.shape,
    observers: z
      .array(z.strictObject({ id: z.uuid(), name: z.string(), kind: z.string(), status: z.enum(OBSERVER_STATUSES) }))
      .meta({ description: 'the observers the manager records on this service' }),
  })
  .meta({ id: 'ServiceDetail', description: 'An observer service and the observers on it' });
export type ServiceDetail = z.infer<typeof ServiceDetail>;

export const ServicePage = z
  .strictObject({
    items: z.array(ServiceView),
    nextCursor: z.uuid().nullable().meta({ description: 'pass as `cursor` for the next page; null on the last' }),
  })
  .meta({ id: 'ServicePage', description: 'A page of services, by id' });

export const KindView = z
  .strictObject({
    name: z.string(),
    paramsSchema: z.record(z.string(), z.unknown()).meta({
      description: 'JSON Schema (draft 2020-12) of its params, as a service announced it; secret fields are writeOnly',
    }),
    overlap: z.enum(['allowed', 'never']),
    pools: z.array(z.string()),
    services: z.array(z.strictObject({ id: z.uuid(), name: z.string() })),
  })
  .meta({ id: 'Kind', description: 'A kind of observer that live services host' });
export type KindView = z.infer<typeof KindView>;

export const KindList = z
  .strictObject({ items: z.array(KindView) })
  .meta({ id: 'KindList', description: 'Every kind' });

export const TokenView = z
  .strictObject({
    id: z.uuid(),
    name: z.string(),
    role: z.enum(ROLES),
    hint: z.string().meta({ description: "the token's first characters, to tell tokens apart" }),
    createdAt: Timestamp,
    revokedAt: NullableTimestamp,
  })
  .meta({ id: 'Token', description: 'An API token, without its text' });
export type TokenView = z.infer<typeof TokenView>;

export const NewToken = z
  .strictObject({ ...TokenView.shape, token: z.string().meta({ description: 'its text: shown in this answer only' }) })
  .meta({ id: 'NewToken', description: 'A new API token and its text' });

export const TokenList = z
  .strictObject({ items: z.array(TokenView) })
  .meta({ id: 'TokenList', description: 'Every token, revoked ones too' });

const FieldError = z.strictObject({ path: z.string(), message: z.string() });

const ManagerRole = {
  role: z.enum(['active', 'standby']),
  managerId: z.string(),
  active: z.boolean(),
  epoch: z.int().nullable().meta({ description: 'the leadership term it holds, if active' }),
  brokerBlocked: z.string().nullable().meta({ description: "the broker's resource alarm, if one blocks publishing" }),
};

export const Problem = z
  .strictObject({
    type: z
      .enum(Object.keys(PROBLEMS).map((name) => `urn:vigil:problem:${name}`) as [string, ...string[]])
      .meta({ description: 'which problem it is; stable' }),
    title: z.string(),
    status: z.int(),
    detail: z.string().meta({ description: 'what went wrong with this request' }),
    instance: z.string().meta({ description: 'the request path' }),
    errors: z
      .array(FieldError)
      .optional()
      .meta({ description: 'each bad field, for invalid-request and invalid-params' }),
    errorId: z.uuid().optional().meta({ description: "the id under which the manager's log has the cause" }),
    quota: z.strictObject({ total: z.int(), perPool: z.int() }).optional(),
    observer: ObserverView.optional().meta({ description: 'the observer as it is, for gone and wrong-status' }),
    allowed: z.array(z.enum(OBSERVER_STATUSES)).optional().meta({ description: 'the statuses the verb applies to' }),
    alarm: z.string().optional().meta({ description: "the broker's resource alarm" }),
    service: ServiceDetail.optional().meta({ description: 'the service as it is, for service-dead' }),
    down: z.array(z.string()).optional().meta({ description: 'the dependencies that are unreachable, for not-ready' }),
    role: ManagerRole.role.optional(),
    managerId: ManagerRole.managerId.optional(),
    active: ManagerRole.active.optional(),
    epoch: ManagerRole.epoch.optional(),
    brokerBlocked: ManagerRole.brokerBlocked.optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

export const Health = z.strictObject({ status: z.literal('ok') }).meta({ id: 'Health', description: 'Alive' });

export const Readiness = z
  .strictObject({ status: z.literal('ready'), ...ManagerRole })
  .meta({ id: 'Readiness', description: 'Ready to serve, and which manager this is' });
