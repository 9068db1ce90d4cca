import type { Response } from 'express';

/** An RFC 9457 problem type: a stable URN, its title, and its HTTP status. */
export const PROBLEMS = {
  'invalid-request': { status: 400, title: 'The request is invalid' },
  unauthorized: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'The token may not do this' },
  'not-found': { status: 404, title: 'Not found' },
  'name-in-use': { status: 409, title: 'An observer with this name exists' },
  'service-dead': { status: 409, title: 'The service is dead' },
  'wrong-status': { status: 409, title: "The request makes no sense in the observer's status" },
  gone: { status: 410, title: 'The observer is deleted' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'unknown-kind': { status: 422, title: 'Unknown kind' },
  'invalid-params': { status: 422, title: 'The params do not fit the kind' },
  'quota-exceeded': { status: 422, title: 'The observer quota is reached' },
  'rate-limited': { status: 429, title: 'Too many writes' },
  'schema-refused': { status: 422, title: "The kind's announced params schema was refused" },
  'no-service-for-pool': { status: 503, title: 'No service serves the pool' },
  'broker-unavailable': { status: 503, title: 'The broker is unavailable' },
  'broker-blocked': { status: 503, title: 'The broker blocks publishing (a resource alarm)' },
  overloaded: { status: 503, title: 'Too many requests are waiting' },
  timeout: { status: 503, title: 'No answer in time' },
  'database-unavailable': { status: 503, title: 'The database is unavailable' },
  'not-ready': { status: 503, title: 'Not ready' },
  internal: { status: 500, title: 'Internal error' },
} as const;

export type ProblemType = keyof typeof PROBLEMS;

export interface FieldError {
  path: string;
  message: string;
}

export function sendProblem(
  res: Response,
  type: ProblemType,
  detail: string,
  extra: { errors?: FieldError[]; [key: string]: unknown } = {},
): void {
  const { status, title } = PROBLEMS[type];
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: `urn:vigil:problem:${type}`, title, status, detail, instance: res.req.originalUrl, ...extra });
}
