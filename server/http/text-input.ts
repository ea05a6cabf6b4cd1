import type { RequestHandler } from 'express';
import { ApiError } from '../errors.ts';

/**
 * Where a NUL character hides in a parsed query or body (`reason`, `metadata[note]`), if anywhere.
 * PostgreSQL's text type cannot hold U+0000, so such a value would fail at the database as a 500
 * (SQLite would store it and cut it short elsewhere); no field of ours or of a channel takes it.
 */
export function nulPath(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path || 'body' : undefined;
  if (!value || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    const name = path ? `${path}[${k}]` : k;
    if (k.includes('\u0000')) return name;
    const hit = nulPath(v, name);
    if (hit) return hit;
  }
  return undefined;
}

/** Refuses a request whose query or parsed body holds a NUL character, naming the parameter. */
export const refuseNulText: RequestHandler = (req, _res, next) => {
  const param = nulPath(req.query) ?? nulPath(req.body);
  if (!param) return next();
  next(new ApiError(400, 'invalid_request_error', 'parameter_invalid', `Invalid ${param}: text may not contain the NUL character (U+0000).`, param));
};
