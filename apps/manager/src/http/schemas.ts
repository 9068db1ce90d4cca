import { z } from 'zod';
import { DEFAULT_POOL, KindName, MAX_STALE_AFTER_MS, ObserverName, ObserverParams, PoolName } from '@vigil/contracts';
import { OBSERVER_STATUSES, SERVICE_VIEW_STATUSES } from '../db/statuses';
import type { NameFilter } from '../db/sql';
import { ROLES } from '../tokens';

export const CreateObserverBody = z.strictObject({
  name: ObserverName,
  kind: KindName,
  params: ObserverParams.default({}),
  pool: PoolName.default(DEFAULT_POOL),
  /** It is reported stale after publishing nothing this long, ms (over its kind's own). */
  staleAfterMs: z.int().min(100).max(MAX_STALE_AFTER_MS).optional(),
});

const Limit = z.coerce.number().int().min(1).max(1000).default(100);

/** Opaque to clients: base64url of the last item's sort key. */
export const Cursor = z
  .string()
  .max(200)
  .transform((value, ctx) => {
    try {
      const decoded = z
        .object({
          createdAt: z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/),
          id: z.uuid(),
        })
        .parse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
      return decoded;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this API returned' });
      return z.NEVER;
    }
  });

export function encodeCursor(cursor: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** A name, or the start of names followed by `*` (names never hold one). */
export const NameQuery = z
  .string()
  .max(201)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]*\*?$/, 'a name, or the start of names followed by *')
  .transform((value): NameFilter => (value.endsWith('*') ? { prefix: value.slice(0, -1) } : { exact: value }));

export const ListObserversQuery = z.strictObject({
  name: NameQuery.optional(),
  status: z.enum(OBSERVER_STATUSES).optional(),
  serviceId: z.uuid().optional(),
  kind: KindName.optional(),
  pool: PoolName.optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});

export const ListServicesQuery = z.strictObject({
  status: z.enum(SERVICE_VIEW_STATUSES).optional(),
  name: NameQuery.optional(),
  limit: Limit,
  /** Services page by id; the cursor is the last id of the previous page. */
  cursor: z.uuid().optional(),
});

export const IdParam = z.uuid();

export const ObservationsQuery = z.strictObject({
  /** How many of the kept observations come first (the manager keeps OBSERVATIONS_KEPT). */
  limit: z.coerce.number().int().min(0).max(1_000).default(10),
});

export const EventsQuery = z.strictObject({
  /** Where to resume, as `Last-Event-ID` would say it (for clients that cannot set headers). */
  since: z.string().max(40).optional(),
  observerId: z.uuid().optional(),
});

export const UpdateObserverBody = z.strictObject({ params: ObserverParams });

export const CreateTokenBody = z.strictObject({
  /** Who or what holds the token: shown in lists and in 403 answers, never secret. */
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[\x20-\x7e]+$/, 'printable ASCII only'),
  role: z.enum(ROLES),
});
