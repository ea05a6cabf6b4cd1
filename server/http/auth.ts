import type { RequestHandler } from 'express';
import type { Knex } from 'knex';
import { ApiError } from '../errors.ts';
import { sha256Hex } from '../crypto.ts';
import type { AuthContext } from '../deps.ts';

const keyPattern = /^sk_(test|live)_[A-Za-z0-9]{24,}$/;

type KeyCache = Map<string, { auth: AuthContext; keyId: string; at: number; expiresAtMs: number | null }>;
/** Every auth cache of this process, so that a roll or revocation made here applies here at once. */
const caches = new Set<KeyCache>();

/** Forgets this process's cached keys (after a key is rolled or revoked); other processes within 5 s. */
export function forgetCachedApiKeys(): void {
  for (const c of caches) c.clear();
}

/** Bearer secret-key auth for /v1: sets res.locals.auth = {appId, livemode} and apiKeyId; the key's prefix decides the mode. */
export function apiKeyAuth(db: Knex): RequestHandler {
  const cache: KeyCache = new Map();
  caches.add(cache);
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
    // A short cache spares one query per request; revocation takes effect within 5 s, a rolled
    // key's expiry exactly when it comes.
    const now = Date.now();
    if (hit && now - hit.at < 5000 && (hit.expiresAtMs === null || now < hit.expiresAtMs)) {
      res.locals.auth = hit.auth;
      res.locals.apiKeyId = hit.keyId;
      return next();
    }
    const row = await db('api_keys').where({ key_hash: hash }).whereNull('revoked_at').first('id', 'app_id', 'livemode', 'expires_at');
    const expiresAtMs = row && row.expires_at !== null && row.expires_at !== undefined ? Number(row.expires_at) * 1000 : null;
    if (!row || (expiresAtMs !== null && now >= expiresAtMs)) {
      cache.delete(hash);
      return next(invalidKey());
    }
    const auth: AuthContext = { appId: row.app_id, livemode: row.livemode === true || row.livemode === 1 };
    if (auth.livemode !== key.startsWith('sk_live_')) return next(invalidKey());
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, { auth, keyId: row.id, at: now, expiresAtMs });
    res.locals.auth = auth;
    // Who made a change, for the audit log.
    res.locals.apiKeyId = row.id;
    next();
  };
}

const invalidKey = () => new ApiError(401, 'authentication_error', 'invalid_api_key', 'Invalid API key provided.');

export const authOf = (res: { locals: Record<string, any> }): AuthContext => res.locals.auth as AuthContext;
