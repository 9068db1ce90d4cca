import { randomUUID } from 'node:crypto';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { coerceError, type Logger } from '@vigil/logging';
import { OverloadedError } from '../db/batched';
import { isDatabaseUnavailable, isDataException } from '../db/errors';
import type { KindCheck } from '../kind-catalog';
import type { Metrics } from '../metrics';
import { parseCursor, type EventFeed, type FeedEvent } from '../event-feed';
import type { ObservationLog } from '../observation-log';
import type { Observers } from '../observers';
import type { ObserverVerbs, VerbResult } from '../observer-verbs';
import type { Services } from '../services';
import type { Tokens } from '../tokens';
import { authenticate, limitWrites, requireRole } from './auth';
import { docsRouter } from './docs';
import { openApiDocument } from './openapi';
import { sendProblem, type FieldError, type ProblemType } from './problem';
import {
  CreateObserverBody,
  CreateTokenBody,
  IdParam,
  ListObserversQuery,
  ListServicesQuery,
  EventsQuery,
  ObservationsQuery,
  UpdateObserverBody,
  encodeCursor,
} from './schemas';

export interface AppDependencies {
  observers: Observers;
  verbs: ObserverVerbs;
  feed: EventFeed;
  observations: ObservationLog;
  services: Services;
  metrics: Metrics;
  log: Logger;
  /** Resolves to the names of the dependencies that are down (empty when ready). */
  readiness: () => Promise<string[]>;
  /** Which manager this is, and whether it is the active one. */
  role: () => { managerId: string; active: boolean; epoch: number | null; brokerBlocked: string | null };
  /** A request not answered in this long gets a 503, ms. */
  requestTimeoutMs: number;
  tokens: Tokens;
  /** `off` lets every request in as an admin (VIGIL_AUTH=off). */
  auth: 'on' | 'off';
  /** Creates and deletes each token may make a minute; 0 for no limit. */
  writeRateLimitPerMinute: number;
}

/** The dashboard's static files: apps/manager/public, beside dist/ (this file is dist/http/app.js). */
const DASHBOARD_DIR = path.join(__dirname, '..', '..', 'public');

/** Parses `value` or answers 400 naming every bad field; returns undefined when it answered. */
/** A comment line this often keeps proxies from closing a quiet event stream, ms. */
const SSE_KEEPALIVE_MS = 15_000;

/** Answers 200 with an event stream that stays open; nothing may buffer it on the way. */
export function openEventStream(res: Response): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
}

/** A kind's verdict on params (or on its own announced schema) as a problem answer. */
function sendRejected(res: Response, check: Extract<KindCheck, { ok: false }>): void {
  sendProblem(res, check.reason, check.detail, check.errors ? { errors: check.errors } : {});
}

function parseOr400<S extends z.ZodType>(
  schema: S,
  value: unknown,
  res: Response,
  what: string,
): z.infer<S> | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors: FieldError[] = result.error.issues.map((issue) => ({
    path: [what, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  sendProblem(res, 'invalid-request', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
  return undefined;
}

export function createApp(deps: AppDependencies): express.Express {
  const { observers, services, metrics, log } = deps;
  const authenticated = authenticate(deps.auth === 'on' ? deps.tokens : undefined);
  const [read, write, admin] = [requireRole('read'), requireRole('write'), requireRole('admin')];
  const limited = limitWrites(deps.writeRateLimitPerMinute);

  /**
   * An error whose text is the manager's business, not the client's (a database message, a
   * stack): it is logged under an id, and the answer carries only the id.
   */
  const failed = (req: Request, res: Response, err: unknown, type: ProblemType, detail: string, note: string) => {
    const errorId = randomUUID();
    log[type === 'internal' ? 'error' : 'warn'](
      { err: coerceError(err), errorId, method: req.method, url: req.originalUrl },
      note,
    );
    sendProblem(res, type, `${detail} (error id ${errorId} in the manager's log)`, { errorId });
  };
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Nothing the manager waits on may hold a client for ever: a request still unanswered after
  // REQUEST_TIMEOUT_MS gets a 503 (a create keeps to a shorter budget of its own and undoes itself).
  app.use((req, res, next) => {
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      log.warn({ method: req.method, url: req.originalUrl }, 'request timed out');
      sendProblem(res, 'timeout', `the manager could not answer within ${deps.requestTimeoutMs} ms; retry shortly`);
    }, deps.requestTimeoutMs);
    res.on('close', () => clearTimeout(timer));
    next();
  });

  app.use((req, res, next) => {
    const end = metrics.httpDuration.startTimer({ method: req.method });
    res.on('finish', () => {
      const path = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof path === 'string' ? `${req.baseUrl}${path}` : 'unmatched';
      end({ route, status: String(res.statusCode) });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const down = await deps.readiness();
    const role = deps.role();
    const about = { role: role.active ? 'active' : 'standby', ...role };
    if (down.length === 0) res.json({ status: 'ready', ...about });
    else sendProblem(res, 'not-ready', `unreachable: ${down.join(', ')}`, { down, ...about });
  });

  // The dashboard's files hold no data (every figure comes from the API with the user's own
  // token), so they are served to anyone; the policy keeps the page to its own scripts and to
  // this origin, so nothing injected into it could send a token elsewhere.
  const dashboardHeaders = (res: Response) => {
    res.set({
      'content-security-policy':
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
  };
  app.get('/', (_req, res) => {
    dashboardHeaders(res);
    res.sendFile(path.join(DASHBOARD_DIR, 'index.html'));
  });
  app.use('/ui', express.static(path.join(DASHBOARD_DIR, 'ui'), { index: false, setHeaders: dashboardHeaders }));

  app.get('/metrics', authenticated, read, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const api = express.Router();
  // The reference page holds no data; the document it shows is fetched with the user's token.
  api.use(docsRouter());
  // Who is asking comes first: a body from nobody is not even parsed.
  api.use(authenticated);
  api.use(express.json({ limit: '256kb', strict: true }));

  api.get('/openapi.json', read, (_req, res) => {
    res.json(openApiDocument());
  });

  api.post('/observers', write, limited, async (req, res) => {
    if (!req.is('application/json')) {
      sendProblem(
        res,
        'unsupported-media-type',
        'send the observer as a JSON object with Content-Type: application/json',
      );
      return;
    }
    const body = parseOr400(CreateObserverBody, req.body, res, 'body');
    if (!body) return;
    const result = await observers.create(body);
    switch (result.type) {
      case 'created':
        res.status(201).location(`${req.baseUrl}/observers/${result.observer.id}`).json(result.observer);
        return;
      case 'name-in-use':
        sendProblem(res, 'name-in-use', `an observer named "${result.name}" exists and is not deleted`);
        return;
      case 'quota-exceeded':
        sendProblem(
          res,
          'quota-exceeded',
          `pool "${result.pool}" or the whole system holds the most observers allowed (MAX_OBSERVERS ` +
            `${result.quota.total}, MAX_OBSERVERS_PER_POOL ${result.quota.perPool}); delete some first`,
          { quota: result.quota },
        );
        return;
      case 'rejected':
        sendRejected(res, result.check);
        return;
      case 'broker-unavailable':
        failed(
          req,
          res,
          result.error,
          'broker-unavailable',
          'the job could not be queued, nothing was created',
          'a create could not publish its job',
        );
        return;
      case 'broker-blocked':
        sendProblem(
          res,
          'broker-blocked',
          `the broker has raised a resource alarm (${result.reason}) and blocks publishing, so the job could not ` +
            'be queued; nothing was created. Retry once the alarm clears (free memory or disk on the broker).',
          { alarm: result.reason },
        );
        return;
    }
  });

  api.get('/observers', read, async (req, res) => {
    const query = parseOr400(ListObserversQuery, req.query, res, 'query');
    if (!query) return;
    const page = await observers.list(query);
    res.json({ items: page.items, nextCursor: page.nextCursor && encodeCursor(page.nextCursor) });
  });

  api.get('/observers/counts', read, async (_req, res) => {
    res.json({ byStatus: await observers.countByStatus() });
  });

  api.get('/observers/:id', read, async (req, res) => {
    const id = IdParam.safeParse(req.params.id);
    const observer = id.success ? await observers.get(id.data) : undefined;
    if (!observer) {
      sendProblem(res, 'not-found', `no observer with id ${String(req.params.id)}`);
      return;
    }
    res.json({ ...observer, timeline: await observers.timeline(observer.id) });
  });

  api.delete('/observers/:id', write, limited, async (req, res) => {
    const id = IdParam.safeParse(req.params.id);
    const result = id.success ? await observers.remove(id.data) : ({ type: 'not-found' } as const);
    switch (result.type) {
      case 'accepted':
        res.status(202).json(result.observer);
        return;
      case 'already-deleted':
        sendProblem(res, 'gone', `observer ${result.observer.id} is already deleted`, { observer: result.observer });
        return;
      case 'not-found':
        sendProblem(res, 'not-found', `no observer with id ${String(req.params.id)}`);
        return;
    }
  });

  /**
   * Server-Sent Events: the timeline of every observer (or one, `?observerId=`) and the
   * services' history, from `Last-Event-ID` (or `?since=`) on, else from now.
   */
  api.get('/events', read, async (req, res) => {
    const query = parseOr400(EventsQuery, req.query, res, 'query');
    if (!query) return;
    const given = req.get('last-event-id') ?? query.since;
    const from = parseCursor(given);
    if (given !== undefined && !from) {
      sendProblem(res, 'invalid-request', 'Last-Event-ID (or since) is not an event id this feed sent', {
        errors: [{ path: 'headers.last-event-id', message: 'is not an event id this feed sent' }],
      });
      return;
    }
    const stop = new AbortController();
    res.on('close', () => stop.abort());
    const start = from ?? (await deps.feed.now());
    openEventStream(res);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
    try {
      await deps.feed.follow(
        start,
        (events: FeedEvent[]) => {
          for (const event of events)
            res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
        },
        stop.signal,
        query.observerId,
      );
    } catch (err) {
      log.warn({ err: coerceError(err) }, 'event feed failed; closing the stream');
    } finally {
      clearInterval(keepAlive);
      res.end();
    }
  });

  /**
   * The observer's latest observations kept by this manager, then (as Server-Sent Events) each
   * new one as it comes, for a client that accepts `text/event-stream`; any other gets the kept
   * ones as a JSON list.
   */
  api.get('/observers/:id/observations', read, async (req, res) => {
    const query = parseOr400(ObservationsQuery, req.query, res, 'query');
    if (!query) return;
    const id = IdParam.safeParse(req.params.id);
    const observer = id.success ? await observers.get(id.data) : undefined;
    if (!observer) {
      sendProblem(res, 'not-found', `no observer with id ${String(req.params.id)}`);
      return;
    }
    const kept = deps.observations.latest(observer.id, query.limit);
    if (!(req.get('accept') ?? '').includes('text/event-stream')) {
      res.json({ items: kept });
      return;
    }
    openEventStream(res);
    const send = (observation: unknown) => res.write(`event: observation\ndata: ${JSON.stringify(observation)}\n\n`);
    for (const observation of kept) send(observation);
    const stopListening = deps.observations.listen(observer.id, send);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
    res.on('close', () => {
      stopListening();
      clearInterval(keepAlive);
    });
  });

  api.get('/kinds', read, async (_req, res) => {
    res.json({ items: await services.kinds() });
  });

  /** The answer to a verb: 202 with the observer, or why not. */
  const answerVerb = (res: Response, verb: string, id: string, result: VerbResult) => {
    switch (result.type) {
      case 'accepted':
        log.info({ observerId: id, generation: result.observer.generation }, `observer ${verb}`);
        res.status(202).json(result.observer);
        return;
      case 'not-found':
        sendProblem(res, 'not-found', `no observer with id ${id}`);
        return;
      case 'gone':
        sendProblem(res, 'gone', `observer ${id} is deleted`, { observer: result.observer });
        return;
      case 'wrong-status':
        sendProblem(
          res,
          'wrong-status',
          `an observer that is ${result.observer.status} cannot be ${verb}; only one that is ${result.allowed.join(', ')}`,
          { observer: result.observer, allowed: result.allowed },
        );
        return;
      case 'rejected':
        sendRejected(res, result.check);
        return;
    }
  };

  for (const [verb, done] of [
    ['pause', 'paused'],
    ['resume', 'resumed'],
    ['restart', 'restarted'],
  ] as const) {
    api.post(`/observers/:id/${verb}`, write, limited, async (req, res) => {
      const id = String(req.params.id);
      const parsed = IdParam.safeParse(id);
      const result = parsed.success ? await deps.verbs[verb](parsed.data) : ({ type: 'not-found' } as const);
      answerVerb(res, done, id, result);
    });
  }

  api.patch('/observers/:id', write, limited, async (req, res) => {
    const id = String(req.params.id);
    const body = parseOr400(UpdateObserverBody, req.body, res, 'body');
    if (!body) return;
    const parsed = IdParam.safeParse(id);
    const result = parsed.success
      ? await deps.verbs.update(parsed.data, body.params)
      : ({ type: 'not-found' } as const);
    answerVerb(res, 'updated', id, result);
  });

  api.get('/services', read, async (req, res) => {
    const query = parseOr400(ListServicesQuery, req.query, res, 'query');
    if (!query) return;
    res.json(await services.list(query));
  });

  api.get('/services/:id', read, async (req, res) => {
    const id = IdParam.safeParse(req.params.id);
    const service = id.success ? await services.get(id.data) : undefined;
    if (!service) {
      sendProblem(res, 'not-found', `no service with id ${String(req.params.id)}`);
      return;
    }
    res.json(service);
  });

  for (const [verb, draining] of [
    ['drain', true],
    ['undrain', false],
  ] as const) {
    api.post(`/services/:id/${verb}`, admin, async (req, res) => {
      const id = IdParam.safeParse(req.params.id);
      const result = id.success ? await services.setDraining(id.data, draining) : ({ type: 'not-found' } as const);
      switch (result.type) {
        case 'ok':
          log.info({ serviceId: result.service.id, name: result.service.name }, `service ${verb}ed`);
          res.json(result.service);
          return;
        case 'dead':
          sendProblem(res, 'service-dead', `service ${result.service.id} is dead; only a live service can ${verb}`, {
            service: result.service,
          });
          return;
        case 'not-found':
          sendProblem(res, 'not-found', `no service with id ${String(req.params.id)}`);
          return;
      }
    });
  }

  api.post('/tokens', admin, async (req, res) => {
    const body = parseOr400(CreateTokenBody, req.body, res, 'body');
    if (!body) return;
    const { token, view } = await deps.tokens.create(body);
    log.info({ tokenId: view.id, name: view.name, role: view.role }, 'token created');
    res
      .status(201)
      .location(`${req.baseUrl}/tokens/${view.id}`)
      .json({ ...view, token });
  });

  api.get('/tokens', admin, async (_req, res) => {
    res.json({ items: await deps.tokens.list() });
  });

  api.delete('/tokens/:id', admin, async (req, res) => {
    const id = IdParam.safeParse(req.params.id);
    const view = id.success ? await deps.tokens.revoke(id.data) : undefined;
    if (!view) {
      sendProblem(res, 'not-found', `no token with id ${String(req.params.id)}`);
      return;
    }
    log.info({ tokenId: view.id, name: view.name }, 'token revoked');
    res.json(view);
  });

  app.use('/api/v1', api);

  app.use((req, res) => {
    sendProblem(res, 'not-found', `no route for ${req.method} ${req.path}`);
  });

  // Express recognises an error handler by its four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // Answered already (the request timed out first): nothing more to say.
    if (res.headersSent) return;
    const status = typeof err === 'object' && err !== null ? (err as { status?: unknown }).status : undefined;
    const type = typeof err === 'object' && err !== null ? (err as { type?: unknown }).type : undefined;
    if (type === 'entity.parse.failed') {
      sendProblem(res, 'invalid-request', `the body is not valid JSON: ${coerceError(err).message}`);
    } else if (type === 'entity.too.large') {
      sendProblem(res, 'payload-too-large', 'the body exceeds 256 kB');
    } else if (err instanceof OverloadedError) {
      sendProblem(res, 'overloaded', err.message);
    } else if (isDatabaseUnavailable(err)) {
      log.warn({ err: coerceError(err), method: req.method, url: req.originalUrl }, 'database unavailable');
      sendProblem(res, 'database-unavailable', 'the database is unreachable; retry shortly');
    } else if (isDataException(err)) {
      failed(req, res, err, 'invalid-request', 'a value in the request cannot be used', 'the database refused a value');
    } else if (typeof status === 'number' && status >= 400 && status < 500) {
      sendProblem(res, status === 415 ? 'unsupported-media-type' : 'invalid-request', coerceError(err).message);
    } else {
      failed(req, res, err, 'internal', 'the manager failed to handle the request', 'request failed');
    }
  });

  return app;
}
