import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { allows, type Principal, type Role, type Tokens } from '../tokens';
import { sendProblem } from './problem';

/** Everyone may do everything: what a request is worth when authentication is off. */
const ANONYMOUS_ADMIN: Principal = { tokenId: 'anonymous', name: 'anonymous (VIGIL_AUTH=off)', role: 'admin' };

/** The principal the authentication middleware found for this request. */
export function principalOf(res: Response): Principal {
  return (res.locals as { principal?: Principal }).principal ?? ANONYMOUS_ADMIN;
}

/**
 * Finds who sent the request from `Authorization: Bearer <token>`, or answers 401. With
 * `tokens` undefined (VIGIL_AUTH=off) every request passes as an admin.
 */
export function authenticate(tokens: Tokens | undefined): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    if (!tokens) {
      next();
      return;
    }
    const header = req.get('authorization');
    // RFC 6750: the scheme is case-insensitive, the token is one run of token68 characters.
    const match = header === undefined ? null : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (!match) {
      res.set('WWW-Authenticate', 'Bearer realm="vigil"');
      sendProblem(
        res,
        'unauthorized',
        header === undefined
          ? 'this route needs a token: send Authorization: Bearer <token>'
          : 'the Authorization header must be "Bearer <token>"',
      );
      return;
    }
    const principal = await tokens.authenticate(match[1]!);
    if (!principal) {
      res.set('WWW-Authenticate', 'Bearer realm="vigil", error="invalid_token"');
      sendProblem(res, 'unauthorized', 'the token is unknown or revoked');
      return;
    }
    res.locals.principal = principal;
    next();
  };
}

/** Lets the request through when its principal's role allows `needed`, or answers 403. */
export function requireRole(needed: Role): RequestHandler {
  return (_req, res, next) => {
    const { role, name } = principalOf(res);
    if (allows(role, needed)) {
      next();
      return;
    }
    sendProblem(res, 'forbidden', `this needs a token with role "${needed}"; token "${name}" has role "${role}"`);
  };
}

/**
 * At most `perMinute` writes per token per minute, counted by this manager (each manager
 * counts its own). Zero switches the limit off.
 */
export function limitWrites(perMinute: number): RequestHandler {
  if (perMinute === 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req, res) => {
      const { tokenId } = principalOf(res);
      return tokenId === ANONYMOUS_ADMIN.tokenId ? `ip:${ipKeyGenerator(req.ip ?? '')}` : `token:${tokenId}`;
    },
    handler: (_req, res) => {
      sendProblem(
        res,
        'rate-limited',
        `this token may make ${perMinute} writes a minute (WRITE_RATE_LIMIT_PER_MINUTE); retry after the time in the RateLimit header`,
      );
    },
  });
}
