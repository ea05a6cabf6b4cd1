import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { ApiError } from '../errors.ts';
import { sha256Hex } from '../crypto.ts';
import type { AuthContext } from '../deps.ts';

const keyPattern = /^sk_(test|live)_[A-Za-z0-9]{24,}$/;

/** Bearer secret-key auth for /v1: sets res.locals.auth = {appId, livemode}; the key's prefix decides the mode. */
export function apiKeyAuth(db: Knex): RequestHandler {
  const cache = new Map<string, { auth: AuthContext; at: number }>();
  return async (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) {
      return next(new ApiError(401, 'authentication_error', 'missing_api_key', 'No API key provided. Send Authorization: Bearer sk_test_… or sk_live_…'));
    }
    const key = m[1];
    if (!keyPattern.test(key)) return next(invalidKey());
    const hash = sha256Hex(key);
    const hit = cache.get(hash);
    // A short cache spares one query per request; revocation takes effect within 5 s.
    if (hit && Date.now() - hit.at < 5000) {
      res.locals.auth = hit.auth;
      return next();
    }
    const row = await db('api_keys').where({ key_hash: hash }).whereNull('revoked_at').first('app_id', 'livemode');
    if (!row) return next(invalidKey());
    const auth: AuthContext = { appId: row.app_id, livemode: row.livemode === true || row.livemode === 1 };
    if (auth.livemode !== key.startsWith('sk_live_')) return next(invalidKey());
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, { auth, at: Date.now() });
    res.locals.auth = auth;
    next();
  };
}

const invalidKey = () => new ApiError(401, 'authentication_error', 'invalid_api_key', 'Invalid API key provided.');

export const authOf = (res: { locals: Record<string, any> }): AuthContext => res.locals.auth as AuthContext;
