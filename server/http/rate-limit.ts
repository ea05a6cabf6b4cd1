import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { ApiError } from '../errors.ts';
import { authOf } from './auth.ts';

/**
 * Per-key API limit (requests per second per app and mode); 0 turns it off. Counted per process:
 * with several gateway processes the effective limit is this times their number.
 */
export function apiRateLimit(perSecond: number): RequestHandler {
  if (perSecond <= 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs: 1000,
    limit: perSecond,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (_req, res) => {
      const auth = authOf(res);
      return `${auth.appId}:${auth.livemode ? 'live' : 'test'}`;
    },
    handler: (_req, _res, next) =>
      next(new ApiError(429, 'invalid_request_error', 'rate_limit', `Too many requests: at most ${perSecond} per second for this key. Retry after a moment.`)),
  });
}

/** Per-IP limit for cashier pages and the forms that place channel orders. */
export function cashierRateLimit(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
      res.status(429).type('text/plain').send('Too many requests. Please wait a moment and try again.\n');
    },
  });
}
